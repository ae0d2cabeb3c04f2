"""Presets: the official Wan numbers, sizes the pipelines accept, durations to 4k+1 frames."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from generator.contract.errors import GeneratorConfigError
from generator.contract.presets import ASPECTS, PRESETS, WAN_NEGATIVE_PROMPT, get_preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_makes_sizes_and_frames_the_pipelines_accept(name: str) -> None:
    preset = get_preset(name)
    assert preset.name == name
    assert (preset.max_frames - 1) % 4 == 0
    assert preset.frames_for(preset.max_seconds) == preset.max_frames
    for resolution in preset.resolutions:
        for aspect in ASPECTS:
            width, height = preset.size_for(resolution, aspect)
            assert width % preset.size_multiple == 0 and height % preset.size_multiple == 0
            assert width * height <= preset.sizes[resolution][0] * preset.sizes[resolution][1]
    assert (preset.boundary_ratio is None) == (preset.guidance_2 is None)
    assert preset.job_timeout_s > 0 and preset.default_dtype in ("bfloat16", "float32")
    assert preset.is_toy == (preset.source is None)


def test_official_numbers() -> None:
    def numbers(name: str) -> tuple:
        p = get_preset(name)
        return (p.max_frames, p.fps, p.steps, p.boundary_ratio, p.guidance, p.guidance_2, p.flow_shift)

    assert numbers("wan2.2-t2v-a14b") == (81, 16, 40, 0.875, 4.0, 3.0, 12.0)
    assert numbers("wan2.2-i2v-a14b") == (81, 16, 40, 0.9, 3.5, 3.5, 5.0)
    assert numbers("wan2.2-ti2v-5b") == (121, 24, 50, None, 5.0, None, 5.0)
    assert numbers("wan2.1-t2v-1.3b") == (81, 16, 50, None, 5.0, None, 3.0)
    assert numbers("tiny") == (81, 16, 4, 0.875, 4.0, 3.0, 5.0)


def test_official_checkpoints_tasks_and_sizes() -> None:
    t2v, i2v, ti2v, small, tiny = (get_preset(name) for name in PRESETS)
    assert t2v.source == "Wan-AI/Wan2.2-T2V-A14B-Diffusers" and (t2v.text_to_video, t2v.image_to_video) == (True, False)
    assert i2v.source == "Wan-AI/Wan2.2-I2V-A14B-Diffusers" and (i2v.text_to_video, i2v.image_to_video) == (False, True)
    assert ti2v.source == "Wan-AI/Wan2.2-TI2V-5B-Diffusers" and ti2v.text_to_video and ti2v.image_to_video
    assert small.source == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" and not small.image_to_video
    assert t2v.sizes == i2v.sizes == {"480p": (832, 480), "720p": (1280, 720)}
    assert ti2v.sizes == {"720p": (1280, 704)} and ti2v.size_multiple == 32
    assert small.sizes == {"480p": (832, 480)}
    assert tiny.sizes == {"480p": (64, 32), "720p": (96, 48)} and tiny.text_to_video and tiny.image_to_video
    assert all(get_preset(name).negative_prompt == WAN_NEGATIVE_PROMPT for name in PRESETS if name != "tiny")
    assert WAN_NEGATIVE_PROMPT.startswith("色调艳丽，过曝") and WAN_NEGATIVE_PROMPT.endswith("背景人很多，倒着走")


def test_sizes_per_aspect() -> None:
    preset = get_preset("wan2.2-t2v-a14b")
    assert preset.size_for("480p", "16:9") == (832, 480)
    assert preset.size_for("480p", "9:16") == (480, 832)
    assert preset.size_for("480p", "1:1") == (624, 624)  # √(832·480) ≈ 631.9, down to a multiple of 16
    assert preset.size_for("720p", "1:1") == (960, 960)
    assert get_preset("wan2.2-ti2v-5b").size_for("720p", "1:1") == (928, 928)  # √(1280·704) ≈ 949.3, multiple of 32
    assert get_preset("tiny").size_for("480p", "1:1") == (32, 32)


@pytest.mark.parametrize(("resolution", "aspect", "message"), [
    ("1080p", "16:9", "makes 480p, 720p; resolution '1080p'"),
    ("480p", "4:3", "aspect ratio '4:3' is not one of 16:9, 9:16, 1:1"),
])
def test_unsupported_sizes_are_refused(resolution: str, aspect: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_preset("wan2.2-t2v-a14b").size_for(resolution, aspect)
    with pytest.raises(ValueError, match="makes 720p; resolution '480p'"):
        get_preset("wan2.2-ti2v-5b").size_for("480p", "16:9")


@pytest.mark.parametrize(("seconds", "frames"), [
    (5.0, 81),  # 80 + 1
    (3.0, 49),
    (3.1, 49),  # round(49.6) + 1 = 51, down to 4k+1
    (2.0, 33),
    (0.25, 5),  # 4 + 1
    (0.0, 5),  # at least 5
    (-3.0, 5),
    (10.0, 81),  # capped
    (4.97, 81),  # round(79.52) + 1 = 81
])
def test_frames_for(seconds: float, frames: int) -> None:
    assert get_preset("wan2.2-t2v-a14b").frames_for(seconds) == frames


def test_frames_for_other_rates() -> None:
    assert get_preset("wan2.2-ti2v-5b").frames_for(5.0) == 121
    assert get_preset("wan2.2-ti2v-5b").frames_for(2.0) == 49
    assert get_preset("tiny").frames_for(1.0) == 17
    assert get_preset("tiny").frames_for(0.3) == 5
    assert get_preset("tiny").max_seconds == 5.0
    assert get_preset("wan2.2-ti2v-5b").max_seconds == 5.0
    with pytest.raises(ValueError, match="finite"):
        get_preset("tiny").frames_for(float("nan"))


def test_resolutions_put_the_default_first() -> None:
    assert get_preset("wan2.2-t2v-a14b").resolutions == ("480p", "720p")
    assert get_preset("wan2.2-ti2v-5b").resolutions == ("720p",)


def test_unknown_preset_lists_the_names() -> None:
    with pytest.raises(GeneratorConfigError, match=r"unknown preset 'wan3'; presets: wan2\.2-t2v-a14b, .*tiny"):
        get_preset("wan3")


def test_a_preset_with_impossible_numbers_is_refused() -> None:
    with pytest.raises(GeneratorConfigError, match="max_frames 80 is not 4k"):
        dataclasses.replace(get_preset("tiny"), max_frames=80)
    with pytest.raises(GeneratorConfigError, match="not a multiple of 32"):
        dataclasses.replace(get_preset("wan2.2-ti2v-5b"), sizes={"720p": (1280, 720)})
    with pytest.raises(GeneratorConfigError, match="boundary_ratio and guidance_2 go together"):
        dataclasses.replace(get_preset("tiny"), guidance_2=None)


def test_the_contract_the_bot_shares_imports_no_torch() -> None:
    code = ("import importlib, pkgutil, sys, generator.contract as contract; "
            "[importlib.import_module(f'generator.contract.{module.name}') for module in "
            "pkgutil.iter_modules(contract.__path__)]; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
