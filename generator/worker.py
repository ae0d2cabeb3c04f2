"""The arq adapter: load the pipelines once, run one job at a time off the event loop.

Everything about models lives in `loader`/`run`/`encode`; this module only turns an arq
job into a render, reports progress to Redis and stores the MP4 under a key with a TTL.
The pipeline runs in a one-thread executor so the event loop keeps arq's in-progress key
alive, and a cancelled job (abort or timeout) stops at the next denoising step before the
coroutine re-raises: the GPU is really free when arq moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from arq.connections import RedisSettings
from arq.worker import Worker, func
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from generator.contract import metrics, wire
from generator.contract.config import Config
from generator.contract.encode import encode_mp4
from generator.contract.errors import Refusal
from generator.contract.images import load_image
from generator.contract.jobs import (
    JOB_FUNCTION,
    PROGRESS_CHANNEL,
    JobFailed,
    Progress,
    Stage,
    VideoJob,
    VideoResult,
    image_key,
    progress_key,
    result_key,
)
from generator.contract.logs import log_context
from generator.contract.mux import mux_audio, shrink_with_audio
from generator.contract.presets import get_preset
from generator.engine.loader import LoadedModels, load_models
from generator.engine.machine import resolved_device, validate_for
from generator.engine.run import GenerationSpec, generate, make_soundtrack

logger = logging.getLogger("wanbot.worker")

# A job that died with its worker is run again once more on a live worker, then failed.
MAX_TRIES = 2
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0


@dataclass
class WorkerState:
    """What every job of this worker process shares: the models and the single GPU thread."""

    models: LoadedModels
    executor: ThreadPoolExecutor
    audio_executor: ThreadPoolExecutor  # the soundtrack's own thread when it overlaps the video
    result_ttl_s: int
    max_image_pixels: int
    name: str


class ProgressReporter:
    """Carries progress from the GPU thread to Redis in order, coalescing bursts."""

    def __init__(self, redis: Redis, job_id: str, worker: str, ttl_s: int) -> None:
        self._redis = redis
        self._job_id = job_id
        self._worker = worker
        self._ttl_s = ttl_s
        self._loop = asyncio.get_running_loop()
        self._pending: asyncio.Queue[Progress | None] = asyncio.Queue()
        self._started_at = time.time()
        self._writer = asyncio.create_task(self._write_loop())

    def report(self, stage: Stage, step: int = 0, total: int = 0) -> None:
        """Thread-safe: called from the pipeline's step callback."""
        progress = Progress(
            job_id=self._job_id,
            stage=stage,
            step=step,
            total=total,
            started_at=self._started_at,
            worker=self._worker,
        )
        self._loop.call_soon_threadsafe(self._pending.put_nowait, progress)

    async def close(self) -> None:
        self._pending.put_nowait(None)
        await self._writer

    async def _write_loop(self) -> None:
        while True:
            progress = await self._pending.get()
            while progress is not None and not self._pending.empty():
                progress = self._pending.get_nowait()  # only the latest state matters
            if progress is None:
                return
            try:
                payload = progress.model_dump_json()
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.set(progress_key(self._job_id), payload, ex=self._ttl_s)
                    pipe.publish(PROGRESS_CHANNEL, payload)
                    await pipe.execute()
            except Exception:
                logger.warning("job %s: progress not written", self._job_id, exc_info=True)


def render(
    state: WorkerState, job: VideoJob, image: bytes | None, reporter: ProgressReporter, cancel: threading.Event
) -> tuple[bytes, VideoResult]:
    """Blocking: the whole GPU part of one job, run in the worker's one thread."""
    reporter.report(Stage.STARTING)
    spec = GenerationSpec(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        width=job.width,
        height=job.height,
        num_frames=job.num_frames,
        seed=job.seed,
        image=load_image(image, state.max_image_pixels) if image is not None else None,
    )

    def on_step(step: int, total: int) -> None:
        reporter.report(Stage.DENOISING if step < total else Stage.DECODING, step, total)

    seconds = job.num_frames / state.models.preset.fps
    overlapped = None
    if job.audio_prompt is not None and state.models.settings.audio_overlap:
        overlapped = state.audio_executor.submit(make_soundtrack, state.models, job.audio_prompt, seconds, job.seed,
                                                 None, cancel)
    started = time.perf_counter()
    try:
        video = generate(state.models, spec, on_step, cancel)
    except BaseException:
        cancel.set()  # a soundtrack sampling beside it stops too
        raise
    pipeline_s = time.perf_counter() - started
    soundtrack = None
    if job.audio_prompt is not None:
        def on_audio_step(step: int, total: int) -> None:
            reporter.report(Stage.AUDIO, step, total)

        soundtrack = overlapped.result() if overlapped is not None else make_soundtrack(
            state.models, job.audio_prompt, seconds, job.seed, on_audio_step, cancel)
    audio_s = time.perf_counter() - started - pipeline_s
    reporter.report(Stage.ENCODING, video.steps, video.steps)
    data = encode_mp4(video.frames, video.fps)
    if soundtrack is not None:
        data = mux_audio(data, soundtrack)
    if job.max_bytes is not None:
        data = shrink_with_audio(data, job.max_bytes)
    encode_s = time.perf_counter() - started - pipeline_s - audio_s
    frames, height, width = video.frames.shape[:3]
    result = VideoResult(
        job_id=job.job_id,
        seed=video.seed,
        width=width,
        height=height,
        num_frames=frames,
        fps=video.fps,
        size_bytes=len(data),
        pipeline_s=pipeline_s,
        audio_s=audio_s,
        encode_s=encode_s,
        has_audio=soundtrack is not None,
        worker=state.name,
    )
    return data, result



async def generate_video(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The arq job: render, store the MP4 under its result key, return the small result."""
    try:
        job = VideoJob.model_validate(payload)
    except ValidationError as error:  # a bot of another version: say what, don't guess
        raise JobFailed(f"bad job payload: {error}") from None
    with log_context(job_id=job.job_id):
        try:
            return await _run(ctx, job)
        except Exception:  # a failure is final (arq retries only a cancelled job): its input goes now
            await _drop_image(ctx["redis"], job)
            raise


async def _drop_image(redis: Redis, job: VideoJob) -> None:
    """Delete the job's input image once the job has ended on this worker.

    Not on read: a worker that dies mid-job leaves the job to arq's retry, which needs the image again.
    """
    if job.has_image:
        with contextlib.suppress(RedisError, OSError):
            await redis.delete(image_key(job.job_id))


async def _run(ctx: dict[str, Any], job: VideoJob) -> dict[str, Any]:
    state: WorkerState = ctx["wanbot"]
    redis: Redis = ctx["redis"]
    logger.info("job %s: start (try %s, %dx%d, %d frames)", job.job_id, ctx.get("job_try"), job.width,
                job.height, job.num_frames)
    image = await redis.get(image_key(job.job_id)) if job.has_image else None
    if job.has_image and image is None:
        raise JobFailed("input image missing from Redis", "the image expired before a worker was free")
    reporter = ProgressReporter(redis, job.job_id, state.name, state.result_ttl_s)
    cancel = threading.Event()
    loop = asyncio.get_running_loop()
    # The GPU thread logs with this job's context too.
    rendering = loop.run_in_executor(state.executor, contextvars.copy_context().run, render, state, job, image,
                                     reporter, cancel)
    preset = state.models.preset.name
    metrics.WORKER_BUSY.set(1)
    try:
        data, result = await asyncio.shield(rendering)
    except asyncio.CancelledError:
        cancel.set()
        logger.info("job %s: cancelled, waiting for the GPU thread to stop", job.job_id)
        await asyncio.gather(rendering, return_exceptions=True)
        metrics.WORKER_JOBS.labels(preset, "cancelled").inc()
        raise
    except Exception as error:
        logger.exception("job %s: render failed", job.job_id)
        metrics.WORKER_JOBS.labels(preset, "failed").inc()
        user_message = error.user_message if isinstance(error, Refusal) else None
        raise JobFailed(f"{type(error).__name__}: {error}", user_message) from None
    finally:
        metrics.WORKER_BUSY.set(0)
        metrics.WORKER_HEARTBEAT.set_to_current_time()
        await reporter.close()
    metrics.WORKER_JOBS.labels(preset, "done").inc()
    metrics.GENERATION_SECONDS.labels(preset).observe(result.pipeline_s)
    async with redis.pipeline(transaction=True) as pipe:  # the MP4 in, the input out, in one step
        pipe.set(result_key(job.job_id), data, ex=state.result_ttl_s)
        pipe.set(progress_key(job.job_id), Progress(job_id=job.job_id, stage=Stage.DONE, step=1, total=1,
                                                    started_at=time.time(), worker=state.name).model_dump_json(),
                 ex=state.result_ttl_s)
        if job.has_image:
            pipe.delete(image_key(job.job_id))
        await pipe.execute()
    logger.info("job %s: done in %.2fs pipeline + %.2fs encode, %d bytes", job.job_id, result.pipeline_s,
                result.encode_s, result.size_bytes)
    return result.model_dump()


async def _heartbeat(interval_s: float = 10.0) -> None:
    """Liveness for Prometheus: a worker whose timestamp stops moving is gone or stuck."""
    while True:
        metrics.WORKER_HEARTBEAT.set_to_current_time()
        await asyncio.sleep(interval_s)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_options(config: Config, models: LoadedModels) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker` on models loaded already."""
    timeout_s = job_timeout_s(config)

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["wanbot"] = WorkerState(
            models=models,
            executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu"),
            audio_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio"),
            result_ttl_s=config.redis.result_ttl_s,
            max_image_pixels=config.bot.max_image_pixels,
            name=worker_name(),
        )
        logger.info("worker %s ready on queue %s (preset %s, timeout %ss)", ctx["wanbot"].name,
                    config.redis.queue, models.preset.name, timeout_s)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        state: WorkerState | None = ctx.pop("wanbot", None)
        if state is not None:
            state.executor.shutdown(wait=True, cancel_futures=True)
            state.audio_executor.shutdown(wait=True, cancel_futures=True)

    return {
        "functions": [func(generate_video, name=JOB_FUNCTION, timeout=timeout_s, max_tries=MAX_TRIES)],
        # Job definitions and results as JSON, never pickle: nothing read from Redis can run code here.
        "job_serializer": wire.dumps,
        "job_deserializer": wire.loads,
        "queue_name": config.redis.queue,
        "redis_settings": redis_settings(config.redis.url.get_secret_value()),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_jobs": 1,
        "job_timeout": timeout_s,
        "keep_result": config.redis.result_ttl_s,
        "allow_abort_jobs": True,
        "health_check_interval": 30,
    }


def job_timeout_s(config: Config) -> int:
    return config.generator.job_timeout_s or get_preset(config.generator.preset).job_timeout_s


def redis_settings(url: str) -> RedisSettings:
    """arq's settings from a Redis URL, read as redis-py reads it for the bot: the password percent-decoded
    (arq's from_dsn keeps `%40` as it is) and TLS query options (`rediss://…?ssl_ca_certs=/path/ca.pem`)."""
    settings = RedisSettings.from_dsn(url)
    parts = urlparse(url)
    settings.username = unquote(parts.username) if parts.username else None
    settings.password = unquote(parts.password) if parts.password else None
    query = parse_qs(parts.query)
    for option in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"):
        if option in query:
            setattr(settings, option, query[option][0])
    if "ssl_check_hostname" in query:
        settings.ssl_check_hostname = query["ssl_check_hostname"][0].lower() in ("1", "true", "yes")
    return settings


async def serve(config: Config, models: LoadedModels | None = None, **overrides: Any) -> None:
    """The worker process: load the models once, then consume the queue until stopped.

    arq's own worker ends when its Redis connection breaks; here a new one starts as soon as Redis
    answers again, on the models already loaded (reloading 14B-parameter experts would take minutes).
    `overrides` go to arq's Worker (burst, poll_delay, handle_signals).
    """
    preset = get_preset(config.generator.preset)
    if models is None:
        validate_for(config.generator, preset, resolved_device(config.generator))
        logger.info("loading preset %s", preset.name)
        models = await asyncio.to_thread(load_models, preset, config.generator)
    async with contextlib.AsyncExitStack() as services:
        services.push_async_callback(_cancelled, asyncio.create_task(_heartbeat(), name="worker heartbeat"))
        if config.generator.metrics_port:
            await services.enter_async_context(metrics.serving(config.generator.metrics_port,
                                                               {"redis": _redis_check(config)},
                                                               config.generator.metrics_host))
        delay_s = RECONNECT_MIN_S
        while True:
            worker = Worker(**{**worker_options(config, models), **overrides})
            started = time.monotonic()
            try:
                await worker.async_run()
                return  # a burst worker that found nothing left to do
            except (RedisError, OSError) as error:
                delay_s = RECONNECT_MIN_S if time.monotonic() - started > RECONNECT_MAX_S else delay_s
                logger.warning("lost Redis (%s); connecting again in %.0fs", error, delay_s)
                await _shut_down(worker)
                await asyncio.sleep(delay_s)
                delay_s = min(2 * delay_s, RECONNECT_MAX_S)
            except asyncio.CancelledError:
                await _shut_down(worker)
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # cancelled from outside
                return  # arq's own SIGINT / SIGTERM handler stopped it


async def _shut_down(worker: Worker) -> None:
    """arq's `close` without needing Redis: stop running jobs (their GPU threads end at a step), free threads."""
    for task in worker.tasks.values():
        task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    if worker.on_shutdown is not None:
        await worker.on_shutdown(worker.ctx)
    with contextlib.suppress(Exception):  # the connection may be what broke
        await worker.pool.aclose()


def _redis_check(config: Config) -> metrics.HealthCheck:
    client = Redis.from_url(config.redis.url.get_secret_value(), socket_connect_timeout=2, socket_timeout=2)

    async def redis_problem() -> str | None:
        try:
            return None if await client.ping() else "redis does not answer"
        except (RedisError, OSError) as error:
            return f"redis: {type(error).__name__}"

    return redis_problem
