"""The bot's side of the arq queue: enqueue by job id, find a job's place, read its outcome."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, result_key_prefix
from arq.jobs import Job, JobResult, JobStatus, deserialize_result
from arq.worker import JobExecutionFailed
from redis.asyncio import BlockingConnectionPool

from generator.jobs import JOB_FUNCTION, VideoJob, image_key, progress_key, result_key
from generator.jobs import Progress as WorkerProgress
from wanbot import metrics

logger = logging.getLogger("wanbot.queue")

MAX_CONNECTIONS = 16
POOL_WAIT_S = 20


@dataclass(frozen=True)
class QueueSnapshot:
    """The due, not-yet-running job ids in order: one read serves every job's position."""

    waiting: tuple[str, ...]

    def position(self, job_id: str) -> int | None:
        """1-based place among jobs that still wait for a worker, None if not waiting."""
        try:
            return self.waiting.index(job_id) + 1
        except ValueError:
            return None


@dataclass(frozen=True)
class Observation:
    """One job as the queue sees it at one moment."""

    status: JobStatus
    position: int | None
    progress: WorkerProgress | None
    result: JobResult | None


class VideoQueue:
    def __init__(self, redis: ArqRedis, queue_name: str, image_ttl_s: int) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self._image_ttl_s = image_ttl_s

    @classmethod
    def connect(cls, url: str, queue_name: str, image_ttl_s: int) -> VideoQueue:
        """Connects lazily: the bot starts (and answers /balance) while Redis is down.

        A bounded pool that waits for a free connection: a burst of requests shares a few
        connections instead of opening hundreds at once (which Redis and the kernel would queue).
        """
        pool = BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S,
                                               socket_connect_timeout=2, socket_timeout=10)
        return cls(ArqRedis(pool), queue_name, image_ttl_s)

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue(self, job: VideoJob, image: bytes | None) -> bool:
        """Idempotent: False when a job with this id is already queued or finished."""
        if image is not None:
            await self.redis.set(image_key(job.job_id), image, ex=self._image_ttl_s)
        queued = await self.redis.enqueue_job(
            JOB_FUNCTION, job.model_dump(), _job_id=job.job_id, _queue_name=self.queue_name
        )
        return queued is not None

    async def snapshot(self) -> QueueSnapshot:
        """ZRANK over-counts (running jobs stay in the sorted set), so skip ids with an in-progress key."""
        due = await self.redis.zrangebyscore(self.queue_name, "-inf", int(time.time() * 1000))
        if not due:
            metrics.QUEUE_WAITING.labels(self.queue_name).set(0)
            return QueueSnapshot(())
        ids = [raw.decode() for raw in due]
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.exists(in_progress_key_prefix + job_id)
            running = await pipe.execute()
        waiting = tuple(job_id for job_id, busy in zip(ids, running, strict=True) if not busy)
        metrics.QUEUE_WAITING.labels(self.queue_name).set(len(waiting))
        return QueueSnapshot(waiting)

    async def observe(self, job_ids: list[str]) -> dict[str, Observation]:
        """Status, place, progress and arq result of many jobs in two round trips.

        The per-job reads run in one MULTI/EXEC, so a job finishing meanwhile is seen either
        before (queued or running) or after (complete), never as missing.
        """
        if not job_ids:
            return {}
        snapshot = await self.snapshot()
        async with self.redis.pipeline(transaction=True) as pipe:
            for job_id in job_ids:
                pipe.get(result_key_prefix + job_id)
                pipe.exists(in_progress_key_prefix + job_id)
                pipe.zscore(self.queue_name, job_id)
                pipe.get(progress_key(job_id))
            replies = await pipe.execute()
        observations = {}
        for index, job_id in enumerate(job_ids):
            raw_result, running, score, raw_progress = replies[4 * index: 4 * index + 4]
            result = deserialize_result(raw_result) if raw_result else None
            if result is not None:
                status = JobStatus.complete
            elif running:
                status = JobStatus.in_progress
            elif score is not None:
                status = JobStatus.deferred if score > time.time() * 1000 else JobStatus.queued
            else:
                status = JobStatus.not_found
            progress = WorkerProgress.model_validate_json(raw_progress) if raw_progress else None
            observations[job_id] = Observation(status, snapshot.position(job_id), progress, result)
        return observations

    async def fetch_video(self, job_id: str) -> bytes | None:
        data: bytes | None = await self.redis.get(result_key(job_id))
        return data

    async def forget(self, job_id: str) -> None:
        """Drop the bulky keys once the user has the video (or never will)."""
        await self.redis.delete(result_key(job_id), image_key(job_id))

    async def abort(self, job_id: str) -> None:
        """Ask arq to drop a queued job at dequeue or cancel it mid-run; never waits for the worker."""
        try:
            await self._job(job_id).abort(timeout=0, poll_delay=0.01)
        except TimeoutError:
            pass

    def _job(self, job_id: str) -> Job:
        return Job(job_id, self.redis, _queue_name=self.queue_name)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:  # any connection failure means "down" for the caller
            return False


def describe_failure(result: JobResult) -> tuple[str, str | None]:
    """(reason for the log, message for the user or None) of a failed arq result."""
    error: Any = result.result
    if isinstance(error, TimeoutError):
        return "timed out", "it took longer than the time limit"
    if isinstance(error, BaseException) and type(error).__name__ == "CancelledError":
        return "cancelled on the worker", "it was cancelled"
    if isinstance(error, JobExecutionFailed) and "retries exceeded" in str(error):
        return str(error), "the GPU worker running it stopped each time it tried"
    if isinstance(error, JobExecutionFailed) and "expired" in str(error):
        return str(error), "no GPU worker was free to take it in time"
    reason = str(error) or type(error).__name__
    return reason, getattr(error, "user_message", None)
