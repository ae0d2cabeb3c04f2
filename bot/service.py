"""The platform-neutral bot: every front end calls these methods and only formats the answers.

A video request goes validate → price → reserve → jobs row → enqueue, in that order, so a
refusal at any step costs the user nothing; the job id made here is the idempotency key
for the reservation, the jobs row, arq's `_job_id` and the result key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from bot.delivery import DeliveryWatcher
from bot.errors import QueueUnavailable, RateLimited, UserError
from bot.frontend import FrontEnd, User
from bot.jobstore import JobRecord, JobState, JobStore
from bot.moderation import Moderation
from bot.queue import VideoQueue
from bot.ratelimit import RateLimiter
from bot.requests import VideoOptions, VideoRequest, build_request, parse_video_request
from bot.seen import SeenEvents
from credits.errors import Banned
from credits.ledger import Ledger
from credits.models import AccountView
from generator.contract import metrics
from generator.contract.config import Config
from generator.contract.errors import BadImage, Refusal
from generator.contract.images import ImageChecker
from generator.contract.jobs import VideoJob
from generator.contract.logs import log_context
from generator.contract.presets import Preset

logger = logging.getLogger("wanbot.service")


@dataclass(frozen=True)
class Submitted:
    """The immediate answer to a video request."""

    job: JobRecord
    request: VideoRequest
    seed: int
    cost: int
    available: int
    position: int | None


@dataclass(frozen=True)
class QueueView:
    depth: int
    jobs: list[tuple[JobRecord, int | None]]  # the user's unfinished jobs and their places


@contextlib.contextmanager
def _counting_refusals() -> Iterator[None]:
    try:
        yield
    except Refusal as error:
        metrics.REFUSALS.labels(type(error).__name__).inc()
        raise


JOB_ID = re.compile(r"[0-9a-f]{12}")


def new_job_id() -> str:
    """Random and never reused (arq keeps aborted ids forever, see design.md)."""
    return secrets.token_hex(6)


class BotService:
    def __init__(self, config: Config, preset: Preset, ledger: Ledger, jobs: JobStore, queue: VideoQueue,
                 seen: SeenEvents) -> None:
        self.config = config
        self.preset = preset
        self.ledger = ledger
        self.jobs = jobs
        self.queue = queue
        self.seen = seen  # platform events handled already (front ends drop redeliveries)
        self.limiter = RateLimiter(config.bot.commands_per_minute, config.bot.command_burst)
        self.moderation = Moderation(config.moderation)
        self.watcher = DeliveryWatcher(ledger, jobs, queue, config.bot)
        self.images = ImageChecker(config.bot.max_image_pixels, config.bot.image_check_timeout_s)

    def add_frontend(self, frontend: FrontEnd) -> None:
        self.watcher.add_frontend(frontend)

    def is_admin(self, user: User) -> bool:
        return self.config.admins.is_admin(user.platform, user.user_id)

    def price(self, request: VideoRequest) -> int:
        return self.config.credits.price(self.preset.name, request.resolution, request.seconds, request.audio)

    @property
    def makes_sound(self) -> bool:
        return bool(self.config.generator.audio)

    async def submit(
        self,
        user: User,
        options: VideoOptions,
        reply_to: dict[str, Any],
        image: bytes | None = None,
    ) -> Submitted:
        """Check `/video`'s options against the preset and submit them; raises a Refusal (nothing charged).

        The caller has admitted the user already (`admit`), as every command and button is, once.
        """
        with _counting_refusals(), log_context(account=user.account):
            await self._refuse_banned(user)
            request = build_request(options, self.preset, self.config.bot.max_prompt_chars,
                                    audio_default=self.config.bot.audio_default and self.makes_sound)
            return await self._submit(user, request, reply_to, image)

    async def submit_request(
        self,
        user: User,
        request: VideoRequest,
        reply_to: dict[str, Any],
        image: bytes | None = None,
    ) -> Submitted:
        """A request made otherwise (options, a re-roll or vary button); raises like `submit`."""
        with _counting_refusals(), log_context(account=user.account):
            await self._refuse_banned(user)
            return await self._submit(user, request, reply_to, image)

    async def admit_video(self, user: User) -> None:
        """`admit` and the ban check, for front ends to call before they download an attachment:
        a banned or flooding user's upload is never fetched, let alone decoded."""
        self.admit(user)
        with _counting_refusals(), log_context(account=user.account):
            await self._refuse_banned(user)

    async def _refuse_banned(self, user: User) -> None:
        """Touch the account (the day's grants) and refuse a banned one before any costly check."""
        view = await self.ledger.touch(user.account)
        if view.banned:
            raise Banned(user.account, view.ban_reason)

    def admit(self, user: User) -> None:
        """The per-user rate limit: every command, button and dialog passes it once, first thing, on every
        front end (admins are not limited), so a flood costs its sender alone."""
        if self.is_admin(user):
            return
        refusal = self.limiter.check(user.account)
        if refusal is not None:
            if refusal.first:
                logger.warning("%s is rate limited for %.0fs", user.account, refusal.retry_after_s)
            metrics.REFUSALS.labels(RateLimited.__name__).inc()
            raise RateLimited(refusal.retry_after_s, refusal.first)

    async def _submit(
        self,
        user: User,
        request: VideoRequest,
        reply_to: dict[str, Any],
        image: bytes | None,
    ) -> Submitted:
        """Moderate, validate, price, reserve, record, enqueue, in that order; a refusal charges nothing.

        The upload limit is the front end's, asked once here: the worker fits the clip under it, so
        the video is encoded to size once, on the GPU side.
        """
        self.moderation.check(f"{request.prompt}\n{request.sound or ''}", request.negative_prompt,
                              reply_to.get("chat_key"))
        if request.audio and not self.makes_sound:
            raise UserError("This bot makes videos without sound; please send the command without --audio or --sound.")
        await self._check_caps(user, reply_to.get("chat_key"), len(image) if image is not None else 0)
        if image is not None:
            await self._check_image(user, image)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
        width, height = self.preset.size_for(request.resolution, request.aspect)
        job = VideoJob(
            job_id=new_job_id(),
            preset=self.preset.name,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            width=width,
            height=height,
            num_frames=self.preset.frames_for(request.seconds),
            seed=seed,
            has_image=image is not None,
            max_bytes=self._upload_limit(user.platform, reply_to),
            audio_prompt=request.audio_prompt,
        )
        cost = self.price(request)
        reservation = await self.ledger.reserve(user.account, job.job_id, cost)
        record = JobRecord(job.job_id, user.account, user.platform, dict(reply_to), job, cost,
                           JobState.RESERVED, request=request, image_bytes=len(image) if image is not None else 0)
        await self.jobs.insert(record)
        try:
            await self.queue.enqueue(job, image)
        except (RedisError, OSError) as error:
            logger.warning("job %s: enqueue failed: %s", job.job_id, error)
            await self.jobs.set_state(job.job_id, JobState.FAILED, error=f"enqueue failed: {error}")
            await self.ledger.release(job.job_id, "enqueue failed")
            raise QueueUnavailable() from None
        await self.jobs.set_state(job.job_id, JobState.QUEUED, only_from=(JobState.RESERVED,))
        record.state = JobState.QUEUED
        self.watcher.watch(record)
        metrics.JOBS_SUBMITTED.labels(self.preset.name).inc()
        view = await self.ledger.view(user.account)
        try:
            position = (await self.queue.snapshot()).position(job.job_id)
        except (RedisError, OSError):  # queued all the same: the status message will say where
            position = None
        logger.info("job %s: queued for %s, %d credits, position %s", job.job_id, user.account,
                    reservation.amount, position)
        return Submitted(record, request, seed, cost, view.available, position)

    def _upload_limit(self, platform: str, reply_to: dict[str, Any]) -> int | None:
        """The largest video the chat in `reply_to` accepts, by its front end (None: no limit or no front end)."""
        frontend = self.watcher.frontends.get(platform)
        return None if frontend is None else frontend.max_upload_bytes(reply_to)

    async def _check_caps(self, user: User, chat_key: str | None, image_bytes: int) -> None:
        """Limits that hold however many accounts one person makes: jobs waiting in all, in this chat,
        and input-image bytes this account keeps in Redis (each 0: no cap). Checked before any charge."""
        settings = self.config.bot
        if settings.max_jobs_waiting and await self.jobs.count_unfinished() >= settings.max_jobs_waiting:
            logger.warning("refused a job from %s: %d jobs waiting in all", user.account, settings.max_jobs_waiting)
            raise UserError("The bot is very busy right now; nothing was charged. Please try again in a while.")
        if (settings.max_jobs_waiting_per_chat and chat_key is not None
                and await self.jobs.count_unfinished(chat_key) >= settings.max_jobs_waiting_per_chat):
            raise UserError(f"This chat already has {settings.max_jobs_waiting_per_chat} videos in progress; "
                            "nothing was charged. Please wait for some to finish.")
        if image_bytes and settings.max_queued_image_bytes:
            held = await self.jobs.queued_image_bytes(user.account)
            if held + image_bytes > settings.max_queued_image_bytes:
                raise UserError(f"Your images waiting in the queue take {held / 2**20:.1f} MB and this one "
                                f"{image_bytes / 2**20:.1f} MB; the limit is "
                                f"{settings.max_queued_image_bytes / 2**20:.0f} MB. Please wait for a job to finish.")

    async def job(self, job_id: str) -> JobRecord:
        """A job by id, or a UserError that says it does not exist."""
        record = await self.jobs.get(job_id.strip()) if JOB_ID.fullmatch(job_id.strip()) else None
        if record is None:
            raise UserError(f"There is no job {job_id}.")
        return record

    async def job_to_repeat(self, job_id: str, user: User, chat_key: str | None) -> JobRecord:
        """The job a re-roll, vary or extend button names, if this user may repeat it here.

        Button data is whatever a modified client sends, so the id alone proves nothing: the owner
        may repeat a job anywhere, others only in the chat where it was made (where they saw it).
        A job seen nowhere reads as missing, so a forged id reveals neither prompt nor image.
        """
        record = await self.job(job_id)
        if record.account != user.account and (chat_key is None or record.reply_to.get("chat_key") != chat_key):
            logger.warning("%s may not repeat job %s from %s", user.account, record.job_id, chat_key)
            raise UserError(f"There is no job {job_id}.")
        return record

    def variant(self, record: JobRecord, prompt: str | None = None) -> VideoRequest:
        """The request of an earlier job again: re-roll (no prompt: a new seed) or vary (a new prompt, same seed)."""
        original = record.request
        if original is None:
            raise UserError(f"Job {record.job_id} is too old to repeat; please send the command again.")
        if prompt is None:
            return dataclasses.replace(original, seed=None)
        same_seed = dataclasses.replace(original, seed=record.payload.seed)
        return parse_video_request(prompt, self.preset, self.config.bot.max_prompt_chars, base=same_seed)

    async def attach_status(self, job_id: str, status_ref: dict[str, Any]) -> None:
        """The front end posted the job's status message: later progress edits it."""
        await self.jobs.set_status_ref(job_id, status_ref)
        self.watcher.status_attached(job_id, status_ref)

    async def _check_image(self, user: User, image: bytes) -> None:
        """Refuse an image the worker could not use; decoded in a child process, off the event loop."""
        if not self.preset.image_to_video:
            raise UserError(f"This bot's model ({self.preset.name}) makes videos from text only; "
                            "send the prompt without an image.")
        limit = self.config.bot.max_image_bytes
        if len(image) > limit:
            raise UserError(f"The image is {len(image) / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB.")
        try:
            await self.images.check(image, user.account)
        except BadImage as error:
            raise UserError(error.user_message) from None

    async def balance(self, user: User) -> AccountView:
        return await self.ledger.touch(user.account)

    async def queue_view(self, user: User) -> QueueView:
        mine = await self.jobs.unfinished(user.account)
        try:
            snapshot = await self.queue.snapshot()
            depth = len(snapshot.waiting)
        except (RedisError, OSError):
            raise QueueUnavailable() from None
        return QueueView(depth, [(job, snapshot.position(job.job_id)) for job in mine])

    async def cancel(self, user: User, job_id: str | None = None) -> JobRecord:
        """Cancel the user's job (the newest unfinished one when no id is given); admins may name any."""
        if job_id is None:
            mine = await self.jobs.unfinished(user.account)
            if not mine:
                raise UserError("You have no job in progress.")
            record = mine[-1]
        else:
            found = await self.jobs.get(job_id.strip())
            if found is None or (found.account != user.account and not self.is_admin(user)):
                raise UserError(f"There is no job {job_id} of yours.")
            record = found
        if record.state.finished:
            raise UserError(f"Job {record.job_id} already ended ({record.state.value}).")
        if not await self.watcher.cancel(record, f"cancelled by {user.account}"):
            raise UserError(f"Job {record.job_id} is already being delivered; it can't be cancelled now.")
        return record

    async def start(self) -> None:
        await self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.stop()
