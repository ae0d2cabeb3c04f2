"""Redis memory is not free to fill: every ending of a job removes its image, MP4 and progress keys,
the worker drops an input it is done with, and a full Redis (noeviction) refuses new jobs, charging nothing."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator

import pytest
from arq.constants import job_key_prefix
from arq.jobs import JobStatus
from PIL import Image
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.commands import Message, handle
from bot.frontend import User
from bot.jobstore import JobState
from bot.queue import VideoQueue
from generator.contract.config import Config, RedisSettings
from generator.contract.jobs import VideoJob, image_key, result_key
from generator.engine.loader import LoadedModels
from generator.worker import serve
from tests.conftest import Stack, running_stack
from tests.faults.conftest import submit, wait_state
from wanbot.redis_server import LocalRedis

BULKY = ("wanbot:image:*", "wanbot:result:*", "wanbot:progress:*")
REFUSED = "The video queue is unavailable right now; nothing was charged. Please try again soon."


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: its bytes in Redis are about its pixels."""
    pixels = random.Random(side).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def big_image() -> bytes:
    return noise_png(1024)  # about 3 MiB


async def bulky_keys(redis: Redis) -> list[bytes]:
    return [key for pattern in BULKY async for key in redis.scan_iter(match=pattern)]


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def stored_bytes(redis: Redis) -> int:
    """What every key holds (MEMORY USAGE), unlike INFO's total, which lags while Redis trims client buffers."""
    return sum([await redis.memory_usage(key) or 0 async for key in redis.scan_iter()])


async def submit_with_image(stack: Stack, user: str, image: bytes) -> str:
    reply = await handle(stack.service, Message(stack.user(user), "/video the picture comes alive", image=image))
    assert reply is not None and reply.startswith("🎬 Job "), reply
    return reply.split()[2]


async def test_submit_and_cancel_cycles_leave_nothing_in_redis(stack: Stack, big_image: bytes) -> None:
    redis = stack.service.queue.redis
    before = await stored_bytes(redis)
    for cycle in range(4):
        user = f"cycler{cycle}"
        job_id = await submit_with_image(stack, user, big_image)
        assert await redis.exists(image_key(job_id))
        await handle(stack.service, Message(stack.user(user), f"/cancel {job_id}"))
        record = await stack.service.jobs.get(job_id)
        assert record is not None and record.state is JobState.CANCELLED
    assert await bulky_keys(redis) == []
    assert await stored_bytes(redis) - before < len(big_image)


async def test_failed_expired_and_delivered_jobs_leave_no_bulky_keys(stack: Stack, config: Config,
                                                                   tiny_models: LoadedModels, big_image: bytes) -> None:
    redis = stack.service.queue.redis
    expired = await submit_with_image(stack, "alice", big_image)
    delivered = await submit_with_image(stack, "bob", big_image)
    await redis.delete(job_key_prefix + expired)  # arq fails it as expired, never reading its image
    await serve(config, tiny_models, burst=True, poll_delay=0, handle_signals=False)

    assert await wait_state(stack.service, expired) is JobState.FAILED
    assert await wait_state(stack.service, delivered) is JobState.DELIVERED
    assert await bulky_keys(redis) == []


@pytest.fixture
async def queue(config: Config) -> AsyncIterator[VideoQueue]:
    queue = VideoQueue.connect(config.redis.url.get_secret_value(), config.redis.queue, config.redis.result_ttl_s)
    yield queue
    await queue.close()


async def test_the_worker_drops_an_input_it_is_done_with(queue: VideoQueue, config: Config,
                                                         tiny_models: LoadedModels, big_image: bytes) -> None:
    """With no bot watching: the image goes when the job ends on the worker, rendered or failed."""
    rendered = VideoJob(job_id="job-image-ok", preset="tiny", prompt="a wave", width=64, height=32, num_frames=17,
                        seed=1, has_image=True)
    failing = rendered.model_copy(update={"job_id": "job-image-no-sound", "audio_prompt": "gulls"})  # no audio model
    for job in (rendered, failing):
        assert await queue.enqueue(job, big_image)
    await serve(config, tiny_models, burst=True, poll_delay=0, handle_signals=False)

    outcomes = await queue.observe([rendered.job_id, failing.job_id])
    assert {job_id: (seen.status, seen.result is not None and seen.result.success)
            for job_id, seen in outcomes.items()} == {rendered.job_id: (JobStatus.complete, True),
                                                     failing.job_id: (JobStatus.complete, False)}
    assert not await queue.redis.exists(image_key(rendered.job_id), image_key(failing.job_id))
    assert await queue.redis.exists(result_key(rendered.job_id))  # the MP4 waits for the bot


@pytest.fixture
async def full_redis() -> AsyncIterator[LocalRedis]:
    """A redis-server over its maxmemory, policy noeviction (as compose.yaml runs it), until `filler` goes."""
    server = LocalRedis().start()
    client = Redis.from_url(server.url)
    await client.setrange("filler", 4 * 2**20 - 1, "x")  # 4 MiB made by the server: no client buffer to trim later
    await client.config_set("maxmemory-policy", "noeviction")
    await client.config_set("maxmemory", await used_memory(client) - 2**20)
    await client.aclose()
    yield server
    server.cleanup()


async def test_a_full_redis_refuses_jobs_clearly_and_charges_nothing(config: Config, full_redis: LocalRedis) -> None:
    full = config.model_copy(update={"redis": RedisSettings(url=full_redis.url, queue="wanbot:full")})
    async with running_stack(full) as stack:
        redis = stack.service.queue.redis
        with_image = Message(stack.user(), "/video the picture comes alive", image=noise_png(64))
        assert await handle(stack.service, with_image) == REFUSED
        assert await handle(stack.service, Message(stack.user(), "/video a text request")) == REFUSED
        assert (await stack.service.ledger.view("console:alice")).available == 200
        assert await bulky_keys(redis) == [] and await redis.zcard("wanbot:full") == 0

        info = await redis.info("memory")
        stats = await handle(stack.service, Message(User("console", "admin"), "/admin stats"))
        assert stats is not None and f"of {info['maxmemory_human']} (noeviction)." in stats, stats

        await redis.delete("filler")  # deliveries free memory: new jobs are taken again
        record = await stack.service.jobs.get(await submit(stack, "/video room again"))
        assert record is not None and record.state is JobState.QUEUED


async def test_an_image_stored_for_a_job_redis_then_refuses_is_removed(
        queue: VideoQueue, monkeypatch: pytest.MonkeyPatch, big_image: bytes) -> None:
    """Redis fills between the image and the job (another upload, an operator lowering maxmemory)."""
    enqueue_job = queue.redis.enqueue_job

    async def filled_meanwhile(*args: object, **kwargs: object) -> object:
        await queue.redis.config_set("maxmemory-policy", "noeviction")
        await queue.redis.config_set("maxmemory", 1)
        return await enqueue_job(*args, **kwargs)

    monkeypatch.setattr(queue.redis, "enqueue_job", filled_meanwhile)
    job = VideoJob(job_id="job-refused-1", preset="tiny", prompt="a wave", width=64, height=32, num_frames=17,
                   seed=1, has_image=True)
    try:
        with pytest.raises(ResponseError):
            await queue.enqueue(job, big_image)
        assert not await queue.redis.exists(image_key(job.job_id))
    finally:
        await queue.redis.config_set("maxmemory", 0)


async def test_admin_stats_say_when_redis_has_no_memory_limit(stack: Stack) -> None:
    stats = await handle(stack.service, Message(User("console", "admin"), "/admin stats"))
    assert stats is not None and "Redis memory: " in stats and "(no maxmemory set)." in stats, stats
