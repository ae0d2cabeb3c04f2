"""A prompt becomes an MP4 through the real parts: SQLite ledger, redis-server, arq worker, tiny Wan."""

from __future__ import annotations

import asyncio
import io

from PIL import Image
from redis.asyncio import Redis

from bot.commands import Message, handle
from bot.jobstore import JobState
from credits.models import ReservationState
from generator.contract.config import Config
from generator.contract.encode import probe_mp4
from generator.contract.jobs import image_key, result_key
from tests.conftest import Stack, WorkerHandle, running_stack, settled

TIMEOUT_S = 60


async def wait_for_state(stack: Stack, job_id: str, *states: JobState) -> JobState:
    async def poll() -> JobState:
        while True:
            record = await stack.service.jobs.get(job_id)
            if record is not None and record.state in states:
                if record.state.finished:
                    await settled(stack.service, job_id)  # its credits are captured or released too
                return record.state
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), TIMEOUT_S)


async def submit(stack: Stack, text: str, user_id: str = "alice", image: bytes | None = None) -> str:
    reply = await handle(stack.service, Message(stack.user(user_id), text, image=image))
    assert reply is not None and reply.startswith("🎬 Job "), reply
    return reply.split()[2]


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_text_to_video_delivers_a_decodable_mp4_and_captures(stack: Stack, worker: WorkerHandle) -> None:
    await worker.start()
    job_id = await submit(stack, "/video a red fox running through snow --ar 9:16 --seed 7")

    assert await wait_for_state(stack, job_id, JobState.DELIVERED, JobState.FAILED) is JobState.DELIVERED
    path = stack.frontend.delivered[job_id]
    info = probe_mp4(path.read_bytes())
    preset = stack.service.preset
    width, height = preset.size_for(preset.resolutions[0], "9:16")
    assert (info.width, info.height, info.frames) == (width, height, preset.frames_for(preset.max_seconds))
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.faststart
    assert "step 1/" in stack.out.getvalue()  # live progress reached the front end
    assert "seed 7" in stack.out.getvalue()
    view = await stack.service.ledger.view("console:alice")
    assert (view.balance, view.reserved) == (200 - 10, 0)
    reservation = await stack.service.ledger.reservation(job_id)
    assert reservation is not None and reservation.state is ReservationState.CAPTURED


async def test_image_to_video_uses_the_attached_image(stack: Stack, worker: WorkerHandle) -> None:
    await worker.start()
    job_id = await submit(stack, "/video the bird takes off --ar 1:1", image=png(300, 200))
    assert await wait_for_state(stack, job_id, JobState.DELIVERED, JobState.FAILED) is JobState.DELIVERED
    info = probe_mp4(stack.frontend.delivered[job_id].read_bytes())
    assert info.frames == stack.service.preset.frames_for(stack.service.preset.max_seconds)
    assert info.width % 16 == 0 and info.height % 16 == 0


async def test_a_failing_job_releases_its_credits(stack: Stack, worker: WorkerHandle, config: Config) -> None:
    job_id = await submit(stack, "/video a lighthouse", image=png(64, 64))
    redis = Redis.from_url(config.redis.url.get_secret_value())
    await redis.delete(image_key(job_id))  # the input vanishes before a worker is free
    await redis.aclose()
    await worker.start()

    assert await wait_for_state(stack, job_id, JobState.FAILED) is JobState.FAILED
    view = await stack.service.ledger.view("console:alice")
    assert (view.balance, view.reserved) == (200, 0)
    assert "credits were returned" in stack.out.getvalue()
    assert job_id not in stack.frontend.delivered


async def test_cancel_a_queued_job_releases_and_it_never_runs(stack: Stack, worker: WorkerHandle,
                                                               config: Config) -> None:
    job_id = await submit(stack, "/video waves on a beach")
    reply = await handle(stack.service, Message(stack.user(), f"/cancel {job_id}"))
    assert reply == f"Job {job_id} cancelled; 10 credits returned."
    assert (await stack.service.ledger.view("console:alice")).available == 200

    await worker.start()
    other = await submit(stack, "/video a second clip")  # the worker is alive and serves the queue
    assert await wait_for_state(stack, other, JobState.DELIVERED) is JobState.DELIVERED
    redis = Redis.from_url(config.redis.url.get_secret_value())
    assert await redis.exists(result_key(job_id)) == 0
    await redis.aclose()
    assert (await stack.service.jobs.get(job_id)).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert job_id not in stack.frontend.delivered


async def test_someone_else_cannot_cancel_my_job(stack: Stack) -> None:
    job_id = await submit(stack, "/video a quiet forest")
    reply = await handle(stack.service, Message(stack.user("mallory"), f"/cancel {job_id}"))
    assert reply == f"There is no job {job_id} of yours."
    assert (await stack.service.jobs.get(job_id)).state is JobState.QUEUED  # type: ignore[union-attr]


async def test_bot_restart_mid_job_still_delivers(config: Config, worker: WorkerHandle) -> None:
    async with running_stack(config) as first:
        job_id = await submit(first, "/video a paper boat on a river")
    # The bot is down; the worker renders meanwhile.
    await worker.start()
    async with running_stack(config) as second:
        assert await wait_for_state(second, job_id, JobState.DELIVERED) is JobState.DELIVERED
        assert job_id in second.frontend.delivered
        view = await second.service.ledger.view("console:alice")
        assert (view.balance, view.reserved) == (190, 0)


async def test_a_job_lost_from_redis_is_released(stack: Stack, config: Config) -> None:
    job_id = await submit(stack, "/video a city at night")
    redis = Redis.from_url(config.redis.url.get_secret_value())
    await redis.flushall()  # Redis restarted empty
    await redis.aclose()
    assert await wait_for_state(stack, job_id, JobState.LOST) is JobState.LOST
    assert (await stack.service.ledger.view("console:alice")).available == 200
    assert "the queue lost it" in stack.out.getvalue()


async def test_not_enough_credits_is_refused_before_anything_is_queued(stack: Stack) -> None:
    await stack.service.ledger.touch("console:bob")
    await stack.service.ledger.take("console:bob", 195, "test", "")
    reply = await handle(stack.service, Message(stack.user("bob"), "/video a huge castle --res 720p"))
    assert reply is not None and "5" in reply and "credits" in reply.lower()
    assert await stack.service.jobs.unfinished("console:bob") == []
    assert (await stack.service.queue.snapshot()).waiting == ()


async def test_bad_input_gets_a_message_and_costs_nothing(stack: Stack) -> None:
    for text, expected in [
        ("/video", "Please describe the video"),
        ("/video a fox --ar 4:3", "--ar must be one of"),
        ("/video a fox --fps 60", "Unknown flag --fps"),
        ("/video a fox --seconds 99", "--seconds must be between"),
        ("/video a fox --seed -1", "--seed must be a whole number"),
    ]:
        reply = await handle(stack.service, Message(stack.user(), text))
        assert reply is not None and expected in reply, (text, reply)
    reply = await handle(stack.service, Message(stack.user(), "/video a fox", image=b"not an image"))
    assert reply is not None and "image" in reply.lower()
    view = await stack.service.ledger.view("console:alice")
    assert (view.balance, view.reserved) == (200, 0)
    assert await stack.service.jobs.unfinished("console:alice") == []
