"""The real diffusers Wan pipelines on tiny random weights: clips, seeds, progress, cancellation."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from PIL import Image

from generator.contract.encode import encode_mp4, probe_mp4
from generator.contract.errors import GenerationCancelled
from generator.engine.loader import LoadedModels
from generator.engine.run import GenerationSpec, generate, random_seed, sampling_for

ALL_STEPS = [(1, 4), (2, 4), (3, 4), (4, 4)]  # the tiny preset samples 4 steps


def spec_for(models: LoadedModels, *, resolution: str = "480p", aspect: str = "16:9", seconds: float | None = None,
             seed: int = 7, image: Image.Image | None = None, negative: str | None = None) -> GenerationSpec:
    preset = models.preset
    width, height = preset.size_for(resolution, aspect)
    frames = preset.frames_for(preset.max_seconds if seconds is None else seconds)
    return GenerationSpec("a red fox runs through the snow", negative, width, height, frames, seed, image)


def render(models: LoadedModels, spec: GenerationSpec, cancel: threading.Event | None = None) -> tuple:
    steps: list[tuple[int, int]] = []
    video = generate(models, spec, lambda step, total: steps.append((step, total)), cancel or threading.Event())
    return video, steps


@pytest.mark.parametrize(("resolution", "aspect", "seconds", "size", "frames"), [
    ("480p", "16:9", None, (64, 32), 81),
    ("480p", "9:16", 1.0, (32, 64), 17),
    ("720p", "1:1", 0.5, (64, 64), 9),
])
def test_text_to_video_makes_the_clip_asked_for(tiny_models: LoadedModels, resolution: str, aspect: str,
                                                seconds: float | None, size: tuple[int, int], frames: int) -> None:
    video, steps = render(tiny_models, spec_for(tiny_models, resolution=resolution, aspect=aspect, seconds=seconds))
    assert video.frames.dtype == np.uint8 and video.frames.shape == (frames, size[1], size[0], 3)
    assert (video.fps, video.seed, video.steps) == (16, 7, 4) and video.seconds > 0
    assert steps == ALL_STEPS
    info = probe_mp4(encode_mp4(video.frames, video.fps))
    assert (info.frames, info.width, info.height, info.fps) == (frames, *size, 16.0)
    assert (info.codec, info.pix_fmt, info.faststart) == ("h264", "yuv420p", True)


def test_image_to_video_fits_the_image_to_the_area(tiny_models: LoadedModels) -> None:
    image = Image.new("RGBA", (300, 200), (0, 128, 255, 255))
    video, steps = render(tiny_models, spec_for(tiny_models, image=image))  # 3:2 into 64×32's area
    assert video.frames.shape == (81, 32, 48, 3)
    assert steps == ALL_STEPS
    info = probe_mp4(encode_mp4(video.frames, video.fps))
    assert (info.frames, info.width, info.height, info.codec, info.faststart) == (81, 48, 32, "h264", True)


def test_seeds_reproduce_and_differ(tiny_models: LoadedModels) -> None:
    first, _ = render(tiny_models, spec_for(tiny_models, seed=1234))
    again, _ = render(tiny_models, spec_for(tiny_models, seed=1234))
    other, _ = render(tiny_models, spec_for(tiny_models, seed=1235))
    assert np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.frames, other.frames)
    image = Image.new("RGB", (64, 32), "green")
    image_first, _ = render(tiny_models, spec_for(tiny_models, seed=5, image=image))
    image_again, _ = render(tiny_models, spec_for(tiny_models, seed=5, image=image))
    assert np.array_equal(image_first.frames, image_again.frames)


def test_the_prompt_and_negative_prompt_reach_the_model(tiny_models: LoadedModels) -> None:
    base, _ = render(tiny_models, spec_for(tiny_models))
    negative, _ = render(tiny_models, spec_for(tiny_models, negative="dark cold rain"))
    other_prompt = dataclasses.replace(spec_for(tiny_models), prompt="a blue whale sings at night")
    prompted, _ = render(tiny_models, other_prompt)
    assert not np.array_equal(base.frames, negative.frames)
    assert not np.array_equal(base.frames, prompted.frames)


def test_both_experts_run(tiny_models: LoadedModels) -> None:
    pipe = tiny_models.text_to_video
    calls = {"transformer": 0, "transformer_2": 0}
    hooks = [getattr(pipe, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
             for name in calls]
    try:
        render(tiny_models, spec_for(tiny_models))
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == {"transformer": 4, "transformer_2": 4}  # two steps each, conditional + unconditional


def test_cancel_stops_mid_way_and_the_models_stay_usable(tiny_models: LoadedModels) -> None:
    cancel = threading.Event()
    steps: list[tuple[int, int]] = []

    def on_step(step: int, total: int) -> None:
        steps.append((step, total))
        cancel.set()  # the user cancels while step 1 finishes

    with pytest.raises(GenerationCancelled, match="after step 1 of 4"):
        generate(tiny_models, spec_for(tiny_models), on_step, cancel)
    assert steps == [(1, 4)]
    with pytest.raises(GenerationCancelled, match="before it started"):
        render(tiny_models, spec_for(tiny_models), cancel)
    video, steps = render(tiny_models, spec_for(tiny_models))
    assert video.frames.shape[0] == 81 and steps == ALL_STEPS


def test_a_task_the_preset_lacks_is_refused(tiny_models: LoadedModels) -> None:
    text_only = dataclasses.replace(tiny_models, image_to_video=None)
    with pytest.raises(ValueError, match="preset tiny does not do image-to-video"):
        render(text_only, spec_for(text_only, image=Image.new("RGB", (64, 32))))


def test_sampling_comes_from_the_preset(tiny_models: LoadedModels) -> None:
    sampling = sampling_for(tiny_models)
    assert (sampling.steps, sampling.guidance, sampling.guidance_2) == (4, 4.0, 3.0)


def test_random_seeds_fit_the_payload() -> None:
    seeds = {random_seed() for _ in range(100)}
    assert len(seeds) > 90 and all(0 <= seed < 2**32 for seed in seeds)
