"""Soundtracks: the real StableAudioPipeline on tiny random weights, loudness, and muxing AAC into MP4s."""

from __future__ import annotations

import dataclasses
import io
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from diffusers import CosineDPMSolverMultistepScheduler, StableAudioPipeline

from generator.contract.audio_presets import get_audio_preset
from generator.contract.encode import encode_mp4, probe_mp4
from generator.contract.errors import GenerationCancelled, GeneratorConfigError, VideoTooLarge
from generator.contract.mux import AUDIO_BIT_RATE, Soundtrack, mux_audio, probe_audio, shrink_with_audio
from generator.engine.audio import (
    SoundtrackCancelled,
    generate_audio,
    integrated_loudness,
    load_audio_pipeline,
    normalize_loudness,
    true_peak_db,
)

RATE = 44_100
PROMPT = "rain and wind in a forest at night"
ALL_STEPS = [(1, 4), (2, 4), (3, 4), (4, 4)]  # the tiny preset samples 4 steps


@pytest.fixture(scope="module")
def pipe() -> StableAudioPipeline:
    return load_audio_pipeline(get_audio_preset("tiny"))


def generate(pipe: StableAudioPipeline, *, prompt: str = PROMPT, seconds: float = 81 / 16, seed: int = 7,
             cancel: threading.Event | None = None, cancel_at: int | None = None) -> tuple[Soundtrack, list]:
    steps: list[tuple[int, int]] = []
    cancel = cancel or threading.Event()

    def on_step(step: int, total: int) -> None:
        steps.append((step, total))
        if step == cancel_at:
            cancel.set()

    return generate_audio(pipe, prompt, seconds, seed, 4, on_step=on_step, cancel=cancel), steps


def tone(seconds: float, amplitude: float, channels: int = 2, frequency: float = 997.0) -> np.ndarray:
    """BS.1770's reference: a 997 Hz sine, the same in every channel."""
    wave = amplitude * np.sin(2 * np.pi * frequency * np.arange(round(seconds * RATE)) / RATE)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def noise_video(frames: int = 17, fps: int = 8, height: int = 32, width: int = 64) -> bytes:
    """Random pixels: the worst case for H.264, so byte limits bite on tiny clips."""
    pixels = np.random.default_rng(0).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    return encode_mp4(pixels, fps)


def noise_soundtrack(seconds: float, channels: int = 2, rate: int = RATE) -> Soundtrack:
    samples = np.random.default_rng(1).uniform(-0.3, 0.3, (round(seconds * rate), channels)).astype(np.float32)
    return Soundtrack(samples, rate)


def video_packets(data: bytes) -> list[tuple[bytes, object, object, bool]]:
    with av.open(io.BytesIO(data)) as container:
        return [(bytes(packet), packet.pts * packet.time_base, packet.dts * packet.time_base, packet.is_keyframe)
                for packet in container.demux(video=0) if packet.dts is not None]


# --- generation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [81 / 16, 5 / 16, 1.0, 10.0])
def test_the_soundtrack_has_the_asked_duration_in_stereo_at_the_presets_rate(pipe: StableAudioPipeline,
                                                                             seconds: float) -> None:
    soundtrack, steps = generate(pipe, seconds=seconds)
    assert soundtrack.samples.shape == (round(seconds * RATE), 2)
    assert soundtrack.samples.dtype == np.float32 and np.isfinite(soundtrack.samples).all()
    assert soundtrack.sample_rate == get_audio_preset("tiny").sample_rate == RATE
    assert np.abs(soundtrack.samples).max() > 0  # noise, but sound
    assert steps == ALL_STEPS


def test_the_tiny_preset_is_the_real_pipeline_and_scheduler(pipe: StableAudioPipeline) -> None:
    assert type(pipe) is StableAudioPipeline
    assert isinstance(pipe.scheduler, CosineDPMSolverMultistepScheduler)  # the class the checkpoint names


def test_seeds_reproduce_and_differ(pipe: StableAudioPipeline) -> None:
    first, _ = generate(pipe, seed=1234)
    again, _ = generate(pipe, seed=1234)
    other, _ = generate(pipe, seed=1235)
    assert np.array_equal(first.samples, again.samples)
    assert not np.allclose(first.samples, other.samples)


def test_different_prompts_give_different_soundtracks(pipe: StableAudioPipeline) -> None:
    rain, _ = generate(pipe, prompt="rain and wind in a forest at night")
    fire, _ = generate(pipe, prompt="a fire burns in a quiet room")
    assert not np.allclose(rain.samples, fire.samples)


def test_cancelling_stops_at_the_next_step(pipe: StableAudioPipeline) -> None:
    with pytest.raises(SoundtrackCancelled, match="after step 2 of 4") as caught:
        generate(pipe, cancel_at=2)
    assert isinstance(caught.value, GenerationCancelled)  # the worker's cancellation handling covers it
    cancel = threading.Event()
    cancel.set()
    steps: list[tuple[int, int]] = []
    with pytest.raises(SoundtrackCancelled, match="before it started"):
        generate_audio(pipe, PROMPT, 1.0, 7, 4, on_step=lambda step, total: steps.append((step, total)), cancel=cancel)
    assert steps == []
    _, steps = generate(pipe)  # the pipeline still works afterwards
    assert steps == ALL_STEPS


@pytest.mark.parametrize("seconds", [0.0, -1.0, 10.1])
def test_durations_outside_the_model_are_refused(pipe: StableAudioPipeline, seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds must be in"):
        generate_audio(pipe, PROMPT, seconds, 7, 4)


def test_a_saved_pipeline_loads_from_a_folder_and_must_fit_its_preset(pipe: StableAudioPipeline,
                                                                     tmp_path: Path) -> None:
    pipe.save_pretrained(tmp_path)
    tiny = get_audio_preset("tiny")
    loaded = load_audio_pipeline(dataclasses.replace(tiny, name="saved", source=str(tmp_path)))
    first = generate_audio(pipe, PROMPT, 1.0, 5, 4).samples
    assert np.allclose(generate_audio(loaded, PROMPT, 1.0, 5, 4).samples, first, atol=1e-5)
    with pytest.raises(GeneratorConfigError, match=r"makes 47.0 s at 44100 Hz; its checkpoint makes 10.03 s"):
        load_audio_pipeline(get_audio_preset("stable-audio-open-1.0"), source_override=str(tmp_path))
    with pytest.raises(GeneratorConfigError, match="built in memory"):
        load_audio_pipeline(tiny, source_override=str(tmp_path))
    with pytest.raises(GeneratorConfigError, match="unknown audio preset"):
        get_audio_preset("stable-audio-2")


# --- loudness ---------------------------------------------------------------------------------------------------


def test_loudness_matches_the_bs1770_reference_tone() -> None:
    # EBU Tech 3341 case 1: a stereo 997 Hz sine at -23 dBFS measures -23 LUFS.
    assert integrated_loudness(tone(20.0, 10 ** (-23 / 20)), RATE) == pytest.approx(-23.0, abs=0.1)
    assert integrated_loudness(np.zeros((RATE, 2), np.float32), RATE) == float("-inf")


@pytest.mark.parametrize(("amplitude", "target"), [(0.01, -16.0), (0.9, -16.0), (0.3, -23.0)])
def test_normalizing_hits_the_target(amplitude: float, target: float) -> None:
    normalized = normalize_loudness(tone(3.0, amplitude), RATE, target_lufs=target)
    assert normalized.dtype == np.float32
    assert integrated_loudness(normalized, RATE) == pytest.approx(target, abs=1.0)


def test_a_clip_shorter_than_a_gating_block_is_measured_whole() -> None:
    normalized = normalize_loudness(tone(5 / 16, 0.05), RATE)
    assert integrated_loudness(normalized, RATE) == pytest.approx(-16.0, abs=1.0)


@pytest.mark.parametrize("level_db", [None, -90.0])
def test_silence_stays_silent(level_db: float | None) -> None:
    samples = np.zeros((2 * RATE, 2), np.float32) if level_db is None else tone(2.0, 10 ** (level_db / 20))
    normalized = normalize_loudness(samples, RATE)
    assert np.isfinite(normalized).all()
    assert np.array_equal(normalized, samples)  # below BS.1770's -70 LUFS gate: nothing to bring up


def test_normalizing_never_clips_a_peaky_clip() -> None:
    samples = tone(3.0, 10 ** (-50 / 20))  # quiet: -50 LUFS wants +34 dB
    samples[RATE : RATE + 200] = 0.5  # a click that +34 dB would push far past full scale
    normalized = normalize_loudness(samples, RATE)
    assert np.abs(normalized).max() <= 10 ** (-1 / 20)
    assert true_peak_db(normalized) == pytest.approx(-1.0, abs=0.01)  # the ceiling, not the target, set the gain
    assert integrated_loudness(normalized, RATE) < -16.0


def test_normalizing_a_generated_soundtrack(pipe: StableAudioPipeline) -> None:
    soundtrack, _ = generate(pipe)
    normalized = normalize_loudness(soundtrack.samples, soundtrack.sample_rate)
    assert normalized.shape == soundtrack.samples.shape
    assert integrated_loudness(normalized, RATE) <= -16.0 + 1.0
    assert true_peak_db(normalized) <= -1.0 + 0.01


# --- muxing -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [17 / 8, 1.0, 4.0])  # as long as the video, shorter (padded), longer (cut)
def test_mux_adds_aac_without_touching_the_video(seconds: float) -> None:
    video = noise_video()
    muxed = mux_audio(video, noise_soundtrack(seconds))
    assert video_packets(muxed) == video_packets(video)  # remuxed, not re-encoded
    info = probe_mp4(muxed)
    assert (info.frames, info.width, info.height, info.fps, info.codec, info.faststart) == (17, 64, 32, 8.0, "h264",
                                                                                            True)
    audio = probe_audio(muxed)
    assert audio is not None
    assert (audio.codec, audio.profile, audio.sample_rate, audio.channels) == ("aac", "LC", RATE, 2)
    assert audio.duration_s == pytest.approx(info.duration_s, abs=1 / info.fps)


def test_mono_at_a_rate_aac_lacks_becomes_stereo_at_48k() -> None:
    audio = probe_audio(mux_audio(noise_video(), noise_soundtrack(17 / 8, channels=1, rate=22_000)))
    assert audio is not None
    assert (audio.sample_rate, audio.channels) == (48_000, 2)
    assert audio.duration_s == pytest.approx(17 / 8, abs=1 / 8)


def test_without_a_soundtrack_the_mp4_has_no_audio() -> None:
    video = noise_video()
    assert probe_audio(video) is None
    assert probe_audio(mux_audio(video, None)) is None
    stripped = mux_audio(mux_audio(video, noise_soundtrack(17 / 8)), None)  # replacing audio with none removes it
    assert probe_audio(stripped) is None
    assert video_packets(stripped) == video_packets(video) and probe_mp4(stripped).faststart


def test_a_generated_soundtrack_goes_with_a_clip(pipe: StableAudioPipeline) -> None:
    video = noise_video(frames=81, fps=16)  # the tiny video preset's longest clip
    soundtrack, _ = generate(pipe, seconds=81 / 16)
    normalized = Soundtrack(normalize_loudness(soundtrack.samples, RATE), RATE)
    muxed = mux_audio(video, normalized)
    audio = probe_audio(muxed)
    assert audio is not None and (audio.sample_rate, audio.channels) == (RATE, 2)
    assert audio.duration_s == pytest.approx(81 / 16, abs=1 / 16)
    assert probe_mp4(muxed).frames == 81


# --- byte limits ------------------------------------------------------------------------------------------------


def test_shrinking_lowers_the_audio_bitrate_first_and_keeps_the_video_if_that_is_enough() -> None:
    video = noise_video()
    muxed = mux_audio(video, noise_soundtrack(17 / 8))
    original = probe_audio(muxed)
    assert original is not None and original.bit_rate == pytest.approx(AUDIO_BIT_RATE, rel=0.2)
    assert shrink_with_audio(muxed, len(muxed)) == muxed
    limit = len(video) + 10_000  # room for the video as it is plus about 32 kb/s of audio
    shrunk = shrink_with_audio(muxed, limit)
    assert len(shrunk) <= limit
    assert video_packets(shrunk) == video_packets(video)
    audio = probe_audio(shrunk)
    assert audio is not None and audio.bit_rate < AUDIO_BIT_RATE / 2
    assert audio.duration_s == pytest.approx(17 / 8, abs=1 / 8)


def test_shrinking_re_encodes_the_video_into_what_the_audio_leaves() -> None:
    muxed = mux_audio(noise_video(), noise_soundtrack(17 / 8))
    limit = len(muxed) // 2
    shrunk = shrink_with_audio(muxed, limit)
    assert len(shrunk) <= limit
    info, audio = probe_mp4(shrunk), probe_audio(shrunk)
    assert (info.frames, info.codec, info.faststart) == (17, "h264", True)
    assert audio is not None and (audio.codec, audio.channels, audio.sample_rate) == ("aac", 2, RATE)
    assert audio.duration_s == pytest.approx(info.duration_s, abs=1 / info.fps)


def test_shrinking_a_silent_clip_is_encode_shrink_and_the_impossible_raises() -> None:
    video = noise_video()
    shrunk = shrink_with_audio(video, len(video) // 2)
    assert len(shrunk) <= len(video) // 2 and probe_audio(shrunk) is None
    with pytest.raises(VideoTooLarge):
        shrink_with_audio(mux_audio(video, noise_soundtrack(17 / 8)), 3_000)
