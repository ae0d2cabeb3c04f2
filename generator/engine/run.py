"""Run one generation on loaded pipelines: the official sampling settings, progress, cancellation."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline

from generator.contract.errors import GenerationCancelled, NoAudioModel
from generator.contract.images import fit_image
from generator.contract.mux import Soundtrack
from generator.engine.audio import generate_audio, normalize_loudness
from generator.engine.loader import LoadedModels

logger = logging.getLogger("wanbot.generator")


@dataclass
class GenerationSpec:
    """One clip to render; sizes and frames already derived from the preset (`size_for`, `frames_for`)."""

    prompt: str
    negative_prompt: str | None  # None: the preset's default
    width: int
    height: int
    num_frames: int
    seed: int
    image: PIL.Image.Image | None = None  # image-to-video; resized to about width*height keeping its aspect


@dataclass
class GeneratedVideo:
    frames: np.ndarray  # uint8 (T, H, W, 3)
    fps: int
    seed: int
    steps: int
    seconds: float  # wall time of the pipeline call


@dataclass(frozen=True)
class Sampling:
    """Steps and guidance per expert that every job of a loaded preset runs with."""

    steps: int
    guidance: float
    guidance_2: float | None


def random_seed() -> int:
    return secrets.randbelow(2**32)


def sampling_for(models: LoadedModels) -> Sampling:
    """The preset's official settings (steps may be overridden), or the fused LoRA's (a step-distilled LoRA runs
    fewer steps)."""
    lora, preset = models.settings.lora, models.preset
    if lora is None:
        return Sampling(models.settings.steps or preset.steps, preset.guidance, preset.guidance_2)
    two_experts = preset.boundary_ratio is not None
    guidance_2 = lora.guidance if lora.guidance_2 is None else lora.guidance_2
    return Sampling(lora.steps, lora.guidance, guidance_2 if two_experts else None)


def generate(
    models: LoadedModels, spec: GenerationSpec, on_step: Callable[[int, int], None], cancel: threading.Event
) -> GeneratedVideo:
    """Blocking: render one clip. `on_step(step, total)` runs after each denoising step, in this thread."""
    pipe = _pipeline_for(models, spec)
    sampling = sampling_for(models)
    inputs: dict[str, Any] = {"width": spec.width, "height": spec.height}
    if spec.image is not None:
        image = fit_image(spec.image, spec.width, spec.height, models.preset.size_multiple)
        inputs = {"image": image, "width": image.width, "height": image.height}

    def step_end(pipeline: DiffusionPipeline, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        on_step(index + 1, sampling.steps)
        if cancel.is_set():
            raise GenerationCancelled(f"cancelled after step {index + 1} of {sampling.steps}")
        return {}

    if cancel.is_set():
        raise GenerationCancelled("cancelled before it started")
    started = time.perf_counter()
    try:
        output = pipe(
            prompt=spec.prompt,
            negative_prompt=models.preset.negative_prompt if spec.negative_prompt is None else spec.negative_prompt,
            num_frames=spec.num_frames,
            num_inference_steps=sampling.steps,
            guidance_scale=sampling.guidance,
            guidance_scale_2=sampling.guidance_2,
            # A CPU generator: the same seed gives the same noise on any device.
            generator=torch.Generator(device="cpu").manual_seed(spec.seed),
            output_type="np",
            callback_on_step_end=step_end,
            **inputs,
        )
    except Exception:  # cancelled, or out of memory: do what the pipeline does after its last step
        pipe.maybe_free_model_hooks()  # (offloaded models go back to the CPU, step caches reset)
        raise
    seconds = time.perf_counter() - started
    frames = np.clip(np.rint(output.frames[0] * 255), 0, 255).astype(np.uint8)
    logger.info("generated %d frames %dx%d in %.1fs (seed %d, %d steps)", frames.shape[0], frames.shape[2],
                frames.shape[1], seconds, spec.seed, sampling.steps)
    return GeneratedVideo(frames=frames, fps=models.preset.fps, seed=spec.seed, steps=sampling.steps, seconds=seconds)


def _pipeline_for(models: LoadedModels, spec: GenerationSpec) -> DiffusionPipeline:
    task, pipe = (
        ("image-to-video", models.image_to_video) if spec.image is not None else ("text-to-video", models.text_to_video)
    )
    if pipe is None:
        raise ValueError(f"preset {models.preset.name} does not do {task}")
    return pipe


def make_soundtrack(models: LoadedModels, prompt: str, seconds: float, seed: int,
                    on_step: Callable[[int, int], None] | None, cancel: threading.Event) -> Soundtrack:
    """Blocking: the clip's soundtrack, as long as the clip, at a steady loudness."""
    if models.audio is None or models.audio_preset is None:
        raise NoAudioModel()
    preset = models.audio_preset
    soundtrack = generate_audio(models.audio, prompt, seconds, seed, preset.steps, guidance=preset.guidance,
                                negative_prompt=preset.negative_prompt, on_step=on_step, cancel=cancel)
    return Soundtrack(normalize_loudness(soundtrack.samples, soundtrack.sample_rate), soundtrack.sample_rate)
