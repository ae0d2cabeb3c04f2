"""Videos with sound through the whole stack: flags, prices, refusals, and the AAC track in the MP4."""

from __future__ import annotations

import pytest

from bot.commands import Message, handle
from bot.jobstore import JobState
from generator.contract.config import Config
from generator.contract.encode import probe_mp4
from generator.contract.mux import probe_audio
from generator.engine.loader import LoadedModels
from tests.bot.test_end_to_end import wait_for_state
from tests.conftest import Stack, WorkerHandle, running_stack

FRAME_S = 1 / 16  # the tiny preset's clips run at 16 fps


async def submit(stack: Stack, text: str, user: str = "alice") -> str:
    reply = await handle(stack.service, Message(stack.user(user), text))
    assert reply is not None and reply.startswith("🎬 Job "), reply
    return reply.split()[2]


@pytest.fixture
async def sound_stack(audio_config: Config, tiny_models_with_audio: LoadedModels):
    worker = WorkerHandle(audio_config, tiny_models_with_audio)
    async with running_stack(audio_config) as stack:
        await worker.start()
        yield stack
        await worker.stop()


async def test_audio_is_muxed_for_the_clips_whole_length_and_priced(sound_stack: Stack) -> None:
    with_sound = await submit(sound_stack, "/video waves break on a beach --audio --seed 3")
    silent = await submit(sound_stack, "/video waves break on a beach --seed 3")
    for job_id in (with_sound, silent):
        assert await wait_for_state(sound_stack, job_id, JobState.DELIVERED, JobState.FAILED) is JobState.DELIVERED
    data = sound_stack.frontend.delivered[with_sound].read_bytes()
    video, audio = probe_mp4(data), probe_audio(data)
    assert audio is not None and audio.codec == "aac" and audio.channels == 2 and audio.sample_rate == 44_100
    assert abs(audio.duration_s - video.frames / video.fps) <= FRAME_S
    assert video.frames == 81 and video.faststart
    assert probe_audio(sound_stack.frontend.delivered[silent].read_bytes()) is None
    sound_job = await sound_stack.service.jobs.get(with_sound)
    assert sound_job is not None and sound_job.cost == 15 and sound_job.result.has_audio  # 10 + 5 s of sound
    assert (await sound_stack.service.jobs.get(silent)).cost == 10  # type: ignore[union-attr]
    assert (await sound_stack.service.ledger.view("console:alice")).balance == 200 - 25


async def test_a_sound_prompt_and_the_deployment_default(audio_config: Config) -> None:
    async with running_stack(audio_config) as stack:
        reply = await handle(stack.service, Message(stack.user(), '/video a harbour --sound "seagulls and a foghorn"'))
        assert reply is not None and "🔊" in reply and "15 credits" in reply
        job = await stack.service.jobs.get(reply.split()[2])
        assert job is not None and job.payload.audio_prompt == "seagulls and a foghorn"
        assert job.request.sound == "seagulls and a foghorn"
        assert "--audio for a soundtrack" in await handle(stack.service, Message(stack.user(), "/help"))
    on_by_default = audio_config.model_copy(update={"bot": audio_config.bot.model_copy(update={"audio_default": True})})
    async with running_stack(on_by_default) as stack:
        loud = await stack.service.jobs.get(await submit(stack, "/video a storm at sea", "bob"))
        quiet = await stack.service.jobs.get(await submit(stack, "/video a storm at sea --audio off", "bob"))
        assert loud is not None and loud.payload.audio_prompt == "a storm at sea" and loud.cost == 15
        assert quiet is not None and quiet.payload.audio_prompt is None and quiet.cost == 10


async def test_sound_is_refused_free_where_no_audio_model_is_configured(stack: Stack) -> None:
    for text in ("/video a storm --audio", '/video a storm --sound "thunder"'):
        reply = await handle(stack.service, Message(stack.user(), text))
        assert reply == "This bot makes videos without sound; please send the command without --audio or --sound."
    view = await stack.service.ledger.view("console:alice")
    assert (view.balance, view.reserved) == (200, 0)
    assert "--audio" not in await handle(stack.service, Message(stack.user(), "/help"))
