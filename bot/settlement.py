"""The settler: ends a job's money and its delivery, once per job id, whoever asks and however often.

Every ending is a compare-and-set on the jobs row first; only the caller that wins it moves credits
or tells the user, so a job the poll, a cancel and a restart all reach is charged and delivered once.
Delivered: the video is uploaded (with retries), then the reservation captured. Any other ending
releases it (a cancel keeps the pro-rata share of what was rendered). At start, `reconcile` settles
every reservation a previous run left behind, so every reserved credit ends captured or released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.frontend import FrontEnd
from bot.jobstore import JobRecord, JobState, JobStore
from bot.queue import VideoQueue
from credits.ledger import Ledger
from credits.models import Settlement
from generator.contract import metrics
from generator.contract.errors import VideoTooLarge
from generator.contract.jobs import Progress, Stage, VideoResult, progress_key
from generator.contract.mux import shrink_with_audio

logger = logging.getLogger("wanbot.delivery")

DELIVERY_ATTEMPTS = 3
LIVE = (JobState.RESERVED, JobState.QUEUED, JobState.RUNNING)
UNFINISHED = (*LIVE, JobState.DELIVERING)


class Settler:
    def __init__(self, ledger: Ledger, jobs: JobStore, queue: VideoQueue, frontends: Mapping[str, FrontEnd]) -> None:
        self.ledger = ledger
        self.jobs = jobs
        self.queue = queue
        self._frontends = frontends

    async def reconcile(self) -> None:
        """Every reserved credit ends captured or released, even across a crash."""
        for reservation in await self.ledger.active_reservations():
            record = await self.jobs.get(reservation.job_id)
            if record is None:
                await self.ledger.release(reservation.job_id, "no job was recorded")
            elif record.state is JobState.DELIVERED:
                await self.ledger.capture(reservation.job_id)
            elif record.state.finished:
                await self.ledger.release(reservation.job_id, record.error or record.state.value)

    async def deliver(self, record: JobRecord, frontend: FrontEnd) -> JobState | None:
        """Upload a finished job's video and capture its credits; how the job ended (None: not by this call).

        The worker fitted the clip under the job's `max_bytes` already; a clip still over it (a worker
        from before that rule) is re-encoded here, once. Raises RedisError/OSError when the video
        cannot be fetched now: the job stays delivering and is tried again.
        """
        video = await self.queue.fetch_video(record.job_id)
        result = record.result
        if video is None or result is None:
            return await self.fail(record, JobState.LOST, "result expired", "its video expired before delivery")
        limit = record.payload.max_bytes
        if limit is not None and len(video) > limit:
            logger.warning("job %s: the worker's %d-byte video is over the %d-byte limit, re-encoding it",
                           record.job_id, len(video), limit)
            try:
                video = await asyncio.to_thread(shrink_with_audio, video, limit)
            except VideoTooLarge:
                return await self.fail(record, JobState.FAILED, "video over the upload limit",
                                       "the video is too large for this chat even after re-encoding")
        return await self._upload(record, frontend, video, result)

    async def _upload(self, record: JobRecord, frontend: FrontEnd, video: bytes,
                      result: VideoResult) -> JobState | None:
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                await frontend.deliver(record, video, result)
                break
            except Exception as error:
                logger.warning("job %s: delivery attempt %d failed: %s", record.job_id, attempt, error)
                if attempt == DELIVERY_ATTEMPTS:
                    return await self.fail(record, JobState.FAILED, f"delivery failed: {error}",
                                           "the chat platform refused the video")
                await asyncio.sleep(2**attempt)
        await self.jobs.set_state(record.job_id, JobState.DELIVERED, only_from=(JobState.DELIVERING,))
        captured = await self.ledger.capture(record.job_id)
        if captured:
            metrics.CREDITS_CAPTURED.inc(record.cost)
        logger.info("job %s: delivered to %s, %d credits %s", record.job_id, record.account, record.cost,
                    "captured" if captured else "already captured")
        return JobState.DELIVERED

    async def fail(self, record: JobRecord, state: JobState, reason: str, user_message: str | None) -> JobState | None:
        """End a job without a video: one path wins the state change, then release and tell; `state` if it won."""
        if not await self.jobs.set_state(record.job_id, state, only_from=UNFINISHED, error=reason):
            return None
        await self.ledger.release(record.job_id, reason)
        logger.warning("job %s: %s (%s); credits released", record.job_id, state.value, reason)
        frontend = self._frontends.get(record.platform)
        if frontend is not None:
            why = user_message or f"something went wrong on our side (job {record.job_id})"
            try:
                await frontend.notify(record, f"Sorry, job {record.job_id} failed: {why}. "
                                              f"Your {record.cost} credits were returned.")
            except Exception as error:  # the credits are back either way
                logger.warning("job %s: could not tell the user: %s", record.job_id, error)
        return state

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
