"""The arq worker with the real tiny pipelines and a real redis-server: progress, results, abort, timeout.

Jobs that must still be running when the test acts use the tiny models with many more sampling
steps (the same pipeline, only longer), so nothing depends on how fast this machine is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import time
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
from arq.jobs import Job, JobStatus
from redis.asyncio import Redis

from bot.queue import VideoQueue, describe_failure
from generator.contract.config import Config
from generator.contract.encode import probe_mp4
from generator.contract.errors import NoAudioModel
from generator.contract.jobs import PROGRESS_CHANNEL, Progress, Stage, VideoJob, progress_key, result_key
from generator.engine.loader import LoadedModels
from tests.conftest import Pace, WorkerHandle

SLOW_STEPS = 400  # ~10 s on a CPU: long enough to act on a running job, cut short by every test
WAIT_S = 120  # a hang guard, not a speed check: a busy machine may take a minute over a tiny job


def video_job(job_id: str, seed: int = 5) -> VideoJob:
    return VideoJob(job_id=job_id, preset="tiny", prompt="waves break on a rocky shore", width=64, height=32,
                    num_frames=17, seed=seed)


@pytest.fixture
async def queue(config: Config) -> AsyncIterator[VideoQueue]:
    queue = VideoQueue.connect(config.redis.url.get_secret_value(), config.redis.queue, config.redis.result_ttl_s)
    yield queue
    await queue.close()


@pytest.fixture
def slow_models(tiny_models: LoadedModels) -> LoadedModels:
    return dataclasses.replace(tiny_models, preset=dataclasses.replace(tiny_models.preset, steps=SLOW_STEPS))


async def wait_status(queue: VideoQueue, job_id: str, *statuses: JobStatus, timeout_s: float = WAIT_S) -> JobStatus:
    async with asyncio.timeout(timeout_s):
        while True:
            status = (await queue.observe([job_id]))[job_id].status
            if status in statuses:
                return status
            await asyncio.sleep(0.02)


async def wait_step(redis: Redis, job_id: str, at_least: int) -> Progress:
    async with asyncio.timeout(WAIT_S):
        while True:
            raw = await redis.get(progress_key(job_id))
            if raw is not None:
                progress = Progress.model_validate_json(raw)
                if progress.step >= at_least and progress.stage is Stage.DENOISING:
                    return progress
            await asyncio.sleep(0.02)


async def test_a_job_reports_every_step_and_stores_its_mp4_with_a_ttl(
        queue: VideoQueue, worker: WorkerHandle, config: Config) -> None:
    messages: list[Progress] = []
    async with queue.redis.pubsub() as pubsub:
        await pubsub.subscribe(PROGRESS_CHANNEL)
        await worker.start()
        assert await queue.enqueue(video_job("job-steps-1"), None)
        assert not await queue.enqueue(video_job("job-steps-1"), None)  # the same id is queued once
        await wait_status(queue, "job-steps-1", JobStatus.complete)
        async with asyncio.timeout(WAIT_S):
            while not messages or messages[-1].stage is not Stage.ENCODING:  # the last one published
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    messages.append(Progress.model_validate_json(message["data"]))

    stages = [progress.stage for progress in messages]
    assert stages[0] is Stage.STARTING and Stage.ENCODING in stages
    steps = [progress.step for progress in messages if progress.stage is Stage.DENOISING]
    assert steps == sorted(steps) and set(steps) <= {1, 2, 3} and max(p.total for p in messages) == 4
    result = (await queue.observe(["job-steps-1"]))["job-steps-1"].result
    assert result is not None and result.success
    assert (result.result["seed"], result.result["num_frames"], result.result["fps"]) == (5, 17, 16)
    video = await queue.fetch_video("job-steps-1")
    assert video is not None and len(video) == result.result["size_bytes"]
    info = probe_mp4(video)
    assert (info.width, info.height, info.frames) == (64, 32, 17)
    assert 0 < await queue.redis.ttl(result_key("job-steps-1")) <= config.redis.result_ttl_s
    final = json.loads(await queue.redis.get(progress_key("job-steps-1")))
    assert final["stage"] == Stage.DONE


async def test_abort_mid_run_stops_the_pipeline_thread(queue: VideoQueue, config: Config,
                                                       slow_models: LoadedModels, tiny_models: LoadedModels,
                                                       pace: Pace) -> None:
    slow = WorkerHandle(config, slow_models)
    await slow.start()
    try:
        await queue.enqueue(video_job("job-abort-1"), None)
        await wait_step(queue.redis, "job-abort-1", at_least=2)
        started = time.monotonic()
        await queue.abort("job-abort-1")
        assert await wait_status(queue, "job-abort-1", JobStatus.complete) is JobStatus.complete
        stopped_s = time.monotonic() - started
        result = (await queue.observe(["job-abort-1"]))["job-abort-1"].result
        assert result is not None and not result.success
        assert describe_failure(result) == ("cancelled on the worker", "it was cancelled")
        # The GPU thread stopped at a step boundary: no step is reported after the result.
        last = Progress.model_validate_json(await queue.redis.get(progress_key("job-abort-1")))
        await asyncio.sleep(0.3)
        again = Progress.model_validate_json(await queue.redis.get(progress_key("job-abort-1")))
        assert again == last and last.step < SLOW_STEPS
        assert stopped_s < pace.job_timeout_s(SLOW_STEPS)  # well before the whole job would have run
    finally:
        await slow.stop()
    # The thread is free: the same process serves the next job at once.
    fast = WorkerHandle(config, tiny_models)
    await fast.start()
    try:
        await queue.enqueue(video_job("job-abort-2"), None)
        assert await wait_status(queue, "job-abort-2", JobStatus.complete) is JobStatus.complete
    finally:
        await fast.stop()


async def test_a_job_over_its_timeout_fails_and_frees_the_worker(queue: VideoQueue, config: Config,
                                                                 slow_models: LoadedModels) -> None:
    short = config.model_copy(update={"generator": config.generator.model_copy(update={"job_timeout_s": 1})})
    handle = WorkerHandle(short, slow_models)
    await handle.start()
    try:
        await queue.enqueue(video_job("job-timeout-1"), None)
        await wait_status(queue, "job-timeout-1", JobStatus.complete)
        result = (await queue.observe(["job-timeout-1"]))["job-timeout-1"].result
        assert result is not None and not result.success
        assert describe_failure(result) == ("timed out", "it took longer than the time limit")
        last = Progress.model_validate_json(await queue.redis.get(progress_key("job-timeout-1")))
        await asyncio.sleep(0.3)
        assert Progress.model_validate_json(await queue.redis.get(progress_key("job-timeout-1"))) == last
    finally:
        await handle.stop()


async def test_a_bad_payload_fails_with_a_reason(queue: VideoQueue, worker: WorkerHandle) -> None:
    await worker.start()
    payload = video_job("job-bad-1").model_dump() | {"version": 99}
    await queue.redis.enqueue_job("generate_video", payload, _job_id="job-bad-1", _queue_name=queue.queue_name)
    await wait_status(queue, "job-bad-1", JobStatus.complete)
    result = (await queue.observe(["job-bad-1"]))["job-bad-1"].result
    assert result is not None and not result.success and result.result["error"] == "JobFailed"
    reason, user_message = describe_failure(result)
    assert "bad job payload" in reason and "version" in reason and user_message is None


async def test_shutdown_mid_job_waits_for_the_pipeline_thread(queue: VideoQueue, config: Config,
                                                              slow_models: LoadedModels) -> None:
    handle = WorkerHandle(config, slow_models)
    await handle.start()
    await queue.enqueue(video_job("job-shutdown-1"), None)
    await wait_step(queue.redis, "job-shutdown-1", at_least=1)
    await handle.stop()
    last = await queue.redis.get(progress_key("job-shutdown-1"))
    await asyncio.sleep(0.3)
    assert await queue.redis.get(progress_key("job-shutdown-1")) == last  # nothing runs after shutdown
    job = Job("job-shutdown-1", queue.redis, _queue_name=queue.queue_name)
    assert await job.status() in (JobStatus.queued, JobStatus.in_progress)  # left for another worker


def decoded_audio(mp4: bytes) -> np.ndarray:
    with av.open(io.BytesIO(mp4)) as container:
        return np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)


async def test_the_audio_stage_reports_progress_and_overlapping_it_changes_nothing(
        queue: VideoQueue, config: Config, tiny_models_with_audio: LoadedModels) -> None:
    job = video_job("job-audio-1").model_copy(update={"audio_prompt": "surf and gulls"})
    handle = WorkerHandle(config, tiny_models_with_audio)
    stages: list[Progress] = []
    async with queue.redis.pubsub() as pubsub:
        await pubsub.subscribe(PROGRESS_CHANNEL)
        await handle.start()
        try:
            await queue.enqueue(job, None)
            async with asyncio.timeout(WAIT_S):
                while not stages or stages[-1].stage is not Stage.ENCODING:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is not None:
                        stages.append(Progress.model_validate_json(message["data"]))
            await wait_status(queue, "job-audio-1", JobStatus.complete)
        finally:
            await handle.stop()
    audio_steps = [(p.step, p.total) for p in stages if p.stage is Stage.AUDIO]
    assert audio_steps and audio_steps[-1] == (4, 4) and audio_steps == sorted(audio_steps)
    result = (await queue.observe(["job-audio-1"]))["job-audio-1"].result
    assert result is not None and result.success and result.result["has_audio"] and result.result["audio_s"] > 0
    sequential = await queue.fetch_video("job-audio-1")

    overlapping = dataclasses.replace(tiny_models_with_audio, settings=tiny_models_with_audio.settings.model_copy(
        update={"audio_overlap": True}))
    handle = WorkerHandle(config, overlapping)
    await handle.start()
    try:
        await queue.enqueue(job.model_copy(update={"job_id": "job-audio-2"}), None)
        await wait_status(queue, "job-audio-2", JobStatus.complete)
    finally:
        await handle.stop()
    overlapped = await queue.fetch_video("job-audio-2")
    assert sequential is not None and overlapped is not None
    # Same seed, same soundtrack, up to float noise: two pipelines at once share the CPU's thread pool, so
    # a reduction may run in another order, and the SDE sampler carries that noise into the clip's tail
    # (seen under two busy loops; bit-identical on an idle machine). Same length, same start, same loudness.
    alone, beside = decoded_audio(sequential), decoded_audio(overlapped)
    assert alone.shape == beside.shape
    start = alone.shape[1] // 10
    assert np.allclose(alone[:, :start], beside[:, :start], atol=1e-3)
    assert abs(20 * np.log10(np.sqrt(np.mean(alone**2)) / np.sqrt(np.mean(beside**2)))) < 1.0  # dB


async def test_a_worker_without_an_audio_model_fails_sound_jobs_clearly(queue: VideoQueue,
                                                                        worker: WorkerHandle) -> None:
    await worker.start()
    await queue.enqueue(video_job("job-mute-1").model_copy(update={"audio_prompt": "thunder"}), None)
    await wait_status(queue, "job-mute-1", JobStatus.complete)
    result = (await queue.observe(["job-mute-1"]))["job-mute-1"].result
    assert result is not None and not result.success
    assert describe_failure(result)[1] == NoAudioModel.user_message
