"""The bot's side of the arq queue: enqueue by job id, find a job's place, read its outcome."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, result_key_prefix
from arq.jobs import DeserializationError, JobResult, JobStatus, deserialize_result
from pydantic import ValidationError
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import RedisError

from generator.contract import metrics, wire
from generator.contract.jobs import JOB_FUNCTION, Failure, FailureKind, VideoJob, image_key, progress_key, result_key
from generator.contract.jobs import Progress as WorkerProgress

logger = logging.getLogger("wanbot.queue")

MAX_CONNECTIONS = 16
POOL_WAIT_S = 20
MAX_REASON_CHARS = 300  # of a failure reason that is not a `Failure`, as logged and stored in the jobs row


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
    """One job as the queue sees it at one moment.

    `unreadable` says why its arq result could not be decoded (not JSON: planted, or written by
    a pickling arq): that job ends failed, the others carry on.
    """

    status: JobStatus
    position: int | None
    progress: WorkerProgress | None
    result: JobResult | None
    unreadable: str | None = None


@dataclass(frozen=True)
class RedisMemory:
    """Redis' own memory figures (INFO memory), for `/admin stats`."""

    used: str  # used_memory_human, e.g. "1.20M"
    limit: str | None  # maxmemory_human; None when Redis has no maxmemory
    policy: str  # maxmemory_policy: noeviction keeps queue keys, refusing writes when full


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
        return cls(ArqRedis(pool, job_serializer=wire.dumps, job_deserializer=wire.loads), queue_name, image_ttl_s)

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue(self, job: VideoJob, image: bytes | None) -> bool:
        """Idempotent: False when a job with this id is already queued or finished.

        An image stored for a job that could not be queued (Redis full, or gone) is dropped again.
        """
        if image is not None:
            await self.redis.set(image_key(job.job_id), image, ex=self._image_ttl_s)
        try:
            queued = await self.redis.enqueue_job(
                JOB_FUNCTION, job.model_dump(), _job_id=job.job_id, _queue_name=self.queue_name
            )
        except (RedisError, OSError):
            if image is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.delete(image_key(job.job_id))
            raise
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
            if raw_result:
                status = JobStatus.complete
            elif running:
                status = JobStatus.in_progress
            elif score is not None:
                status = JobStatus.deferred if score > time.time() * 1000 else JobStatus.queued
            else:
                status = JobStatus.not_found
            result, unreadable = _decode_result(job_id, raw_result)
            progress = _decode_progress(job_id, raw_progress)
            observations[job_id] = Observation(status, snapshot.position(job_id), progress, result, unreadable)
        return observations

    async def fetch_video(self, job_id: str) -> bytes | None:
        data: bytes | None = await self.redis.get(result_key(job_id))
        return data

    async def forget(self, job_id: str) -> None:
        """Drop the job's bulky keys once it has ended, however it ended: nothing waits for them any more."""
        await self.redis.delete(result_key(job_id), image_key(job_id), progress_key(job_id))

    async def abort(self, job_id: str) -> None:
        """Ask arq to drop a queued job at dequeue or cancel it mid-run; never waits for the worker.

        Only the id goes into arq's abort set, which every worker polls: arq's `Job.abort` would
        first read (and decode) the job's result, for nothing.
        """
        await self.redis.zadd(abort_jobs_ss, {job_id: int(time.time() * 1000)})

    async def memory(self) -> RedisMemory:
        info = await self.redis.info("memory")
        return RedisMemory(used=str(info["used_memory_human"]),
                           limit=str(info["maxmemory_human"]) if int(info["maxmemory"]) else None,
                           policy=str(info["maxmemory_policy"]))

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:  # any connection failure means "down" for the caller
            return False


def _decode_result(job_id: str, raw: bytes | None) -> tuple[JobResult | None, str | None]:
    """(arq result, None), or (None, why) when its bytes are not ours to decode."""
    if not raw:
        return None, None
    try:
        return deserialize_result(raw, deserializer=wire.loads), None
    except DeserializationError:
        logger.warning("job %s: its result in Redis is not JSON; failing the job", job_id)
        return None, "unreadable result in Redis"


def _decode_progress(job_id: str, raw: bytes | None) -> WorkerProgress | None:
    if not raw:
        return None
    try:
        return WorkerProgress.model_validate_json(raw)
    except ValidationError:
        logger.warning("job %s: ignoring malformed progress in Redis", job_id)
        return None


# What the user is told of each kind of failure that carries no message of its own, and what is logged.
FAILURE_TEXT: dict[FailureKind, tuple[str | None, str | None]] = {
    "timeout": ("timed out", "it took longer than the time limit"),
    "cancelled": ("cancelled on the worker", "it was cancelled"),
    "retries_exceeded": (None, "the GPU worker running it stopped each time it tried"),
    "expired": (None, "no GPU worker was free to take it in time"),
    "failed": (None, None),
}


def describe_failure(result: JobResult) -> tuple[str, str | None]:
    """(reason for the log, message for the user or None) of a failed arq result: its kind, looked up."""
    failure = _read_failure(result.result)
    reason, user_message = FAILURE_TEXT[failure.kind]
    return reason or failure.message or failure.error, failure.user_message or user_message


def _read_failure(value: Any) -> Failure:
    """A failed result's plain data as a `Failure`; arq's fallback (a bare string) and anything odd as its text."""
    try:
        return Failure.model_validate(value)
    except ValidationError:
        return Failure(error=type(value).__name__, message=str(value)[:MAX_REASON_CHARS])
