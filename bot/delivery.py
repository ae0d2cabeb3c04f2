"""The delivery watcher: follows every unfinished job until its credits are captured or released.

Two loops. The tick loop reads the state of every followed job from Redis in one batch every
`poll_interval_s`, moves jobs along (running, finished, failed, lost) and hands finished videos
to a delivery task. The listener receives the workers' progress messages and updates status
messages between ticks. The jobs table is the truth, so a restarted bot resumes every
unfinished job and settles every reservation left behind.

Both loops also stop on a flag, not only on cancellation: redis-py can swallow a
cancellation that lands at the wrong moment (redis/redis-py#2028), and a loop that relied on
it would then never end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from arq.jobs import JobStatus
from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.frontend import FrontEnd, StatusView
from bot.jobstore import JobRecord, JobState, JobStore
from bot.queue import Observation, VideoQueue, describe_failure
from bot.status import StatusThrottle
from credits.ledger import Ledger
from credits.models import Settlement
from generator.contract import metrics
from generator.contract.config import BotSettings
from generator.contract.errors import VideoTooLarge
from generator.contract.jobs import PROGRESS_CHANNEL, Progress, Stage, VideoJob, VideoResult, progress_key
from generator.contract.logs import log_context
from generator.contract.mux import shrink_with_audio

logger = logging.getLogger("wanbot.delivery")

DELIVERY_ATTEMPTS = 3
LIVE = (JobState.RESERVED, JobState.QUEUED, JobState.RUNNING)
UNFINISHED = (*LIVE, JobState.DELIVERING)
ETA_MARGIN = 1.1  # steps late in a clip take as long as early ones, plus the decode


class DeliveryWatcher:
    def __init__(self, ledger: Ledger, jobs: JobStore, queue: VideoQueue, settings: BotSettings) -> None:
        self.ledger = ledger
        self.jobs = jobs
        self.queue = queue
        self.settings = settings
        self.frontends: dict[str, FrontEnd] = {}
        self._records: dict[str, JobRecord] = {}  # every unfinished job this bot follows
        self._delivering: dict[str, asyncio.Task[None]] = {}
        self._status: dict[str, StatusThrottle] = {}
        self._finished = asyncio.Condition()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._mean_job_s: float | None = None

    def add_frontend(self, frontend: FrontEnd) -> None:
        self.frontends[frontend.platform] = frontend

    async def start(self) -> None:
        """Settle what a previous run left behind, then follow every unfinished job."""
        self._stopping = False
        await self._reconcile_reservations()
        for record in await self.jobs.unfinished():
            if record.state is JobState.RESERVED:
                await self._enqueue_again(record)
            self._records[record.job_id] = record
        logger.info("watching %d unfinished jobs", len(self._records))
        self._tasks = [asyncio.create_task(self._tick_loop(), name="delivery ticks"),
                       asyncio.create_task(self._listen(), name="progress listener")]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        tasks = [*self._tasks, *self._delivering.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for throttle in self._status.values():
            await throttle.close()
        self._tasks.clear()

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    def watch(self, record: JobRecord) -> None:
        self._records[record.job_id] = record
        metrics.JOBS_FOLLOWED.set(len(self._records))
        self._wake.set()

    def status_attached(self, job_id: str, status_ref: dict[str, Any]) -> None:
        """The front end made the job's status message: show the latest state in it."""
        record = self._records.get(job_id)
        if record is not None:
            record.status_ref = status_ref
            throttle = self._status.get(job_id)
            if throttle is not None:
                throttle.repeat()

    async def wait_finished(self, job_ids: set[str]) -> None:
        """Until none of `job_ids` is still followed (the console waits on this at end of input)."""
        async with self._finished:
            await self._finished.wait_for(lambda: not job_ids & self._records.keys())

    async def cancel(self, record: JobRecord, reason: str) -> Settlement | None:
        """Cancel a job that has not produced its video yet; None when it is too late.

        A job still queued is free; one already rendering keeps a pro-rata share of its price
        (`[credits] cancel_charge`), read from the worker's latest progress before the abort stops
        it. The numbers come back, and on `record.charged` / `record.returned`, for the user's answer.
        """
        if not await self.jobs.set_state(record.job_id, JobState.CANCELLED, only_from=LIVE, error=reason):
            return None
        step, total = await self._rendered(record.job_id)
        with contextlib.suppress(RedisError, OSError):
            await self.queue.abort(record.job_id)
        settlement = await self.ledger.settle_cancelled(record.job_id, reason, step, total)
        if settlement is None:  # settled already (a restart's reconciliation): nothing moves now
            settlement = Settlement(record.job_id, charged=0, returned=0)
        record.charged = settlement.charged
        metrics.CREDITS_CAPTURED.inc(settlement.charged)
        await self._done(record, JobState.CANCELLED)
        logger.info("job %s: cancelled (%s) at step %d/%d, %d credits kept, %d returned", record.job_id, reason,
                    step, total, settlement.charged, settlement.returned)
        return settlement

    async def _rendered(self, job_id: str) -> tuple[int, int]:
        """(step, total) of the video's denoising so far, from the worker's progress; (0, 0) when unknown."""
        try:
            raw = await self.queue.redis.get(progress_key(job_id))
            progress = Progress.model_validate_json(raw) if raw else None
        except (RedisError, OSError, ValidationError) as error:
            logger.warning("job %s: progress unreadable, the cancel is free: %s", job_id, error)
            return 0, 0
        if progress is None:
            return 0, 0
        if progress.stage in (Stage.AUDIO, Stage.DONE):  # every video step is rendered
            return 1, 1
        return progress.step, progress.total

    # -- the loops ------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while not self._stopping:
            try:
                await self._tick()
            except (RedisError, OSError) as error:
                logger.warning("queue unreachable, retrying: %s", error)
            except Exception:
                logger.exception("delivery tick failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as its timeout fires.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval_s):
                    await self._wake.wait()
            self._wake.clear()

    async def _listen(self) -> None:
        """Show workers' progress as it is published, not a poll late."""
        while not self._stopping:
            try:
                async with self.queue.redis.pubsub() as pubsub:
                    await pubsub.subscribe(PROGRESS_CHANNEL)
                    while not self._stopping:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None:
                            self._on_progress(message["data"])
            except (RedisError, OSError):
                await asyncio.sleep(max(1.0, self.settings.poll_interval_s))

    def _on_progress(self, data: bytes) -> None:
        try:
            progress = Progress.model_validate_json(data)
        except ValidationError:
            logger.warning("ignoring a malformed progress message")
            return
        record = self._records.get(progress.job_id)
        if record is not None and record.state in LIVE and progress.job_id not in self._delivering:
            self._show(record, self._running_view(record, progress))

    async def _tick(self) -> None:
        await self.jobs.drop_expired_tokens(time.time())
        pending = [record for job_id, record in self._records.items() if job_id not in self._delivering]
        if not pending:
            return
        observations = await self.queue.observe([record.job_id for record in pending])
        for record in pending:
            if record.job_id in self._records:  # not cancelled meanwhile
                with log_context(job_id=record.job_id, account=record.account):
                    await self._follow(record, observations[record.job_id])

    async def _follow(self, record: JobRecord, observation: Observation) -> None:
        if record.state is JobState.DELIVERING:
            self._start_delivery(record)
        elif observation.unreadable is not None:
            await self._finish(record, JobState.FAILED, observation.unreadable, None)
        elif observation.status is JobStatus.complete and observation.result is not None:
            await self._completed(record, observation)
        elif observation.status is JobStatus.not_found:
            await self._finish(record, JobState.LOST, "lost from the queue",
                               "the queue lost it (was Redis restarted?)")
        else:
            if observation.status is JobStatus.in_progress and record.state is JobState.QUEUED:
                await self.jobs.set_state(record.job_id, JobState.RUNNING, only_from=(JobState.QUEUED,))
                record.state = JobState.RUNNING
            self._show(record, self._view(record, observation))

    async def _completed(self, record: JobRecord, observation: Observation) -> None:
        assert observation.result is not None
        if not observation.result.success:
            reason, user_message = describe_failure(observation.result)
            await self._finish(record, JobState.FAILED, reason, user_message)
            return
        try:
            result = VideoResult.model_validate(observation.result.result)
        except ValidationError:
            await self._finish(record, JobState.FAILED, "malformed result in Redis", None)
            return
        self._learn_duration(result)
        if await self.jobs.set_state(record.job_id, JobState.DELIVERING, only_from=LIVE,
                                     result=result.model_dump()):
            record.state, record.result = JobState.DELIVERING, result.model_dump()
            self._start_delivery(record)

    # -- delivery -------------------------------------------------------------------------

    def _start_delivery(self, record: JobRecord) -> None:
        frontend = self.frontends.get(record.platform)
        if frontend is None or record.job_id in self._delivering:
            return  # that front end is not running in this process (yet): keep the job pending
        with log_context(job_id=record.job_id, account=record.account):  # the task copies the context
            self._delivering[record.job_id] = asyncio.create_task(self._deliver(record, frontend),
                                                                  name=f"deliver {record.job_id}")

    async def _deliver(self, record: JobRecord, frontend: FrontEnd) -> None:
        try:
            self._show(record, StatusView(record.job_id, JobState.DELIVERING, stage=Stage.DONE), now=True)
            video = await self.queue.fetch_video(record.job_id)
            if video is None or record.result is None:
                await self._finish(record, JobState.LOST, "result expired", "its video expired before delivery")
                return
            result = VideoResult.model_validate(record.result)
            limit = frontend.max_upload_bytes(record)
            if limit is not None and len(video) > limit:
                try:
                    video = await asyncio.to_thread(shrink_with_audio, video, limit)
                except VideoTooLarge:
                    await self._finish(record, JobState.FAILED, "video over the upload limit",
                                       "the video is too large for this chat even after re-encoding")
                    return
            throttle = self._status.get(record.job_id)
            if throttle is not None:
                await throttle.flush()  # the "uploading" edit lands before the front end finishes the message
            await self._upload(record, frontend, video, result)
        except (RedisError, OSError) as error:
            logger.warning("job %s: delivery paused, queue unreachable: %s", record.job_id, error)
        finally:
            self._delivering.pop(record.job_id, None)
            await self._notify_finished()

    async def _upload(self, record: JobRecord, frontend: FrontEnd, video: bytes, result: VideoResult) -> None:
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                await frontend.deliver(record, video, result)
                break
            except Exception as error:
                logger.warning("job %s: delivery attempt %d failed: %s", record.job_id, attempt, error)
                if attempt == DELIVERY_ATTEMPTS:
                    await self._finish(record, JobState.FAILED, f"delivery failed: {error}",
                                       "the chat platform refused the video")
                    return
                await asyncio.sleep(2**attempt)
        await self.jobs.set_state(record.job_id, JobState.DELIVERED, only_from=(JobState.DELIVERING,))
        captured = await self.ledger.capture(record.job_id)
        if captured:
            metrics.CREDITS_CAPTURED.inc(record.cost)
        logger.info("job %s: delivered to %s, %d credits %s", record.job_id, record.account, record.cost,
                    "captured" if captured else "already captured")
        await self._done(record, JobState.DELIVERED)

    # -- endings --------------------------------------------------------------------------

    async def _finish(self, record: JobRecord, state: JobState, reason: str, user_message: str | None) -> None:
        """End a job without a video: one path wins the state change, then release and tell."""
        ended = await self.jobs.set_state(record.job_id, state, only_from=UNFINISHED, error=reason)
        if ended:
            await self.ledger.release(record.job_id, reason)
            logger.warning("job %s: %s (%s); credits released", record.job_id, state.value, reason)
            frontend = self.frontends.get(record.platform)
            if frontend is not None:
                why = user_message or f"something went wrong on our side (job {record.job_id})"
                try:
                    await frontend.notify(record, f"Sorry, job {record.job_id} failed: {why}. "
                                                  f"Your {record.cost} credits were returned.")
                except Exception as error:  # the credits are back either way
                    logger.warning("job %s: could not tell the user: %s", record.job_id, error)
        await self._done(record, state if ended else None)

    async def _done(self, record: JobRecord, final: JobState | None) -> None:
        """Stop following the job; its status message shows how it ended.

        Every ending passes here (delivered, cancelled, failed, expired, lost), so this is where the
        job's bulky Redis keys go: an input image or an MP4 nobody will fetch is memory for free.
        """
        self._records.pop(record.job_id, None)
        with contextlib.suppress(RedisError, OSError):
            await self.queue.forget(record.job_id)
        metrics.JOBS_FOLLOWED.set(len(self._records))
        if final is not None:
            metrics.JOBS_FINISHED.labels(final.value).inc()
            self._show(record, StatusView(record.job_id, final, charged=record.charged), now=True)
        throttle = self._status.pop(record.job_id, None)
        if throttle is not None:
            await throttle.flush()
            await throttle.close()
        await self._notify_finished()

    async def _notify_finished(self) -> None:
        async with self._finished:
            self._finished.notify_all()

    async def _reconcile_reservations(self) -> None:
        """Every reserved credit ends captured or released, even across a crash."""
        for reservation in await self.ledger.active_reservations():
            record = await self.jobs.get(reservation.job_id)
            if record is None:
                await self.ledger.release(reservation.job_id, "no job was recorded")
            elif record.state is JobState.DELIVERED:
                await self.ledger.capture(reservation.job_id)
            elif record.state.finished:
                await self.ledger.release(reservation.job_id, record.error or record.state.value)

    async def _enqueue_again(self, record: JobRecord) -> None:
        """A job recorded but not queued when the bot stopped: queue it now (idempotent by job id)."""
        with contextlib.suppress(RedisError, OSError):
            await self.queue.enqueue(VideoJob.model_validate(record.payload), None)
            if await self.jobs.set_state(record.job_id, JobState.QUEUED, only_from=(JobState.RESERVED,)):
                record.state = JobState.QUEUED

    # -- status ---------------------------------------------------------------------------

    def _view(self, record: JobRecord, observation: Observation) -> StatusView:
        progress = observation.progress
        if progress is not None and progress.stage is not Stage.DONE:
            return self._running_view(record, progress)
        eta = None if self._mean_job_s is None else self._mean_job_s * (observation.position or 1)
        return StatusView(record.job_id, record.state, position=observation.position, eta_s=eta)

    def _running_view(self, record: JobRecord, progress: Progress) -> StatusView:
        eta = None
        if progress.stage is Stage.DENOISING and progress.step > 0:
            per_step = (progress.updated_at - progress.started_at) / progress.step
            eta = per_step * (progress.total - progress.step) * ETA_MARGIN
        return StatusView(record.job_id, JobState.RUNNING, stage=progress.stage, step=progress.step,
                          total=progress.total, eta_s=eta)

    def _show(self, record: JobRecord, view: StatusView, now: bool = False) -> None:
        frontend = self.frontends.get(record.platform)
        if frontend is None:
            return
        throttle = self._status.get(record.job_id)
        if throttle is None:
            interval = max(self.settings.status_interval_s, frontend.status_interval_s(record))

            async def show(view: StatusView, record: JobRecord = record, frontend: FrontEnd = frontend) -> None:
                status_ref = await frontend.show_status(record, view)
                if status_ref is not None and status_ref != record.status_ref:
                    record.status_ref = status_ref
                    await self.jobs.set_status_ref(record.job_id, status_ref)

            throttle = self._status[record.job_id] = StatusThrottle(record.job_id, show, interval)
        throttle.offer(view, now=now)

    def _learn_duration(self, result: VideoResult) -> None:
        seconds = result.pipeline_s + result.encode_s
        self._mean_job_s = seconds if self._mean_job_s is None else 0.8 * self._mean_job_s + 0.2 * seconds
