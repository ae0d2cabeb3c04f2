"""Soundtracks from a text prompt with diffusers' StableAudioPipeline (Stable Audio Open 1.0), and loudness.

The real preset loads the checkpoint through `from_pretrained`; `tiny` builds the same pipeline class
from random-weight components in memory (the classes and sizing rules of diffusers' own Stable Audio
tests, at the real sample rate and VAE strides), so tests run the production code end to end. Its
output is noise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyloudnorm
import torch
from diffusers import (
    AutoencoderOobleck,
    CosineDPMSolverMultistepScheduler,
    StableAudioDiTModel,
    StableAudioPipeline,
    StableAudioProjectionModel,
)
from scipy.signal import resample_poly
from transformers import T5Config, T5EncoderModel

from generator.contract.audio_presets import STABLE_AUDIO_GUIDANCE, STABLE_AUDIO_NEGATIVE_PROMPT, AudioPreset
from generator.contract.errors import GenerationCancelled, GeneratorConfigError
from generator.contract.mux import Soundtrack, fit_duration
from generator.engine.tiny import build_tokenizer, tiny_t5_config

logger = logging.getLogger("wanbot.generator")

TARGET_LUFS = -16.0  # what phones and chat apps play speech and music at; EBU R128 broadcast is -23
CEILING_DBTP = -1.0  # true-peak headroom for the AAC encoder's overshoot (EBU R128 and streaming services)
BLOCK_S = 0.4  # BS.1770's gating block
OVERSAMPLING = 4  # BS.1770's true-peak meter: peaks between samples show at 4x the rate


class SoundtrackCancelled(GenerationCancelled):
    """The job's cancel event was set while its soundtrack was sampling (a GenerationCancelled, so handled alike)."""


# Tiny sizes; the rate, the VAE's strides (2048 samples a latent) and the scheduler are the real ones.
TINY_LATENTS = 216
TINY_LATENT_CHANNELS = 8
TINY_CONDITIONING = 16  # the projection's width: text tokens and both timing embeddings
TINY_TEXT_DIM = 32
TINY_TEXT_LENGTH = 128  # Stable Audio Open's T5 length


def load_audio_pipeline(
    preset: AudioPreset, source_override: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None
) -> StableAudioPipeline:
    """The preset's pipeline on `device`; `source_override` is a hub id or local folder; dtype None: the preset's."""
    dtype = dtype or getattr(torch, preset.default_dtype)
    started = time.perf_counter()
    if preset.source is None:
        if source_override:
            raise GeneratorConfigError(f"audio preset {preset.name} is built in memory: it takes no model source")
        pipe = StableAudioPipeline(**build_tiny_audio_components())
        if dtype != torch.float32:  # built in float32
            pipe.to(dtype=dtype)
    else:
        source = source_override or preset.source
        logger.info("loading StableAudioPipeline from %s", source)
        pipe = StableAudioPipeline.from_pretrained(source, torch_dtype=dtype)
    if pipe.vae.sampling_rate != preset.sample_rate or longest_clip_s(pipe) < preset.max_seconds:
        raise GeneratorConfigError(
            f"audio preset {preset.name} makes {preset.max_seconds} s at {preset.sample_rate} Hz; its checkpoint makes"
            f" {longest_clip_s(pipe):.2f} s at {pipe.vae.sampling_rate} Hz"
        )
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    logger.info("audio preset %s loaded in %.1fs on %s (%s)", preset.name, time.perf_counter() - started, device,
                str(dtype).removeprefix("torch."))
    return pipe


def build_tiny_audio_components(seed: int = 0) -> dict[str, Any]:
    """The keyword arguments of StableAudioPipeline at tiny sizes, in memory, without files or network."""
    tokenizer = build_tokenizer()  # the tiny UMT5 word-level vocabulary; T5 ends texts with </s> the same way
    tokenizer.model_max_length = TINY_TEXT_LENGTH
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(tiny_t5_config(T5Config, tokenizer, TINY_TEXT_DIM))
    torch.manual_seed(seed)
    projection_model = StableAudioProjectionModel(
        text_encoder_dim=TINY_TEXT_DIM, conditioning_dim=TINY_CONDITIONING, min_value=0, max_value=512
    )
    torch.manual_seed(seed)
    transformer = StableAudioDiTModel(
        sample_size=TINY_LATENTS,
        in_channels=TINY_LATENT_CHANNELS,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        num_key_value_attention_heads=TINY_CONDITIONING // 8,  # as in the real one: cross-attention width / head
        out_channels=TINY_LATENT_CHANNELS,
        cross_attention_dim=TINY_CONDITIONING,
        time_proj_dim=8,
        global_states_input_dim=2 * TINY_CONDITIONING,  # start and end seconds, concatenated
        cross_attention_input_dim=TINY_CONDITIONING,
    )
    torch.manual_seed(seed)
    vae = AutoencoderOobleck(
        encoder_hidden_size=2 * TINY_LATENT_CHANNELS,  # mean and scale
        downsampling_ratios=[2, 4, 4, 8, 8],
        channel_multiples=[1, 2, 2, 2, 2],
        decoder_channels=4,
        decoder_input_channels=TINY_LATENT_CHANNELS,
        audio_channels=2,
        sampling_rate=44_100,
    )
    for module in (text_encoder, projection_model, transformer, vae):
        module.eval()  # built modules start in training mode
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder,
        "projection_model": projection_model,
        "transformer": transformer,
        "vae": vae,
        # The checkpoint's scheduler; its defaults are the checkpoint's config (sigmas 0.3 to 500, v-prediction).
        "scheduler": CosineDPMSolverMultistepScheduler(),
    }


def longest_clip_s(pipe: StableAudioPipeline) -> float:
    """The longest clip the pipeline makes: it always samples its full latent length, then cuts."""
    return pipe.transformer.config.sample_size * pipe.vae.hop_length / pipe.vae.sampling_rate


def generate_audio(
    pipe: StableAudioPipeline,
    prompt: str,
    seconds: float,
    seed: int,
    steps: int,
    *,
    guidance: float = STABLE_AUDIO_GUIDANCE,
    negative_prompt: str | None = STABLE_AUDIO_NEGATIVE_PROMPT,
    on_step: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Soundtrack:
    """Blocking: exactly round(seconds * rate) samples. `on_step(step, total)` runs after each step, in this thread."""
    if not 0 < seconds <= longest_clip_s(pipe):
        raise ValueError(f"seconds must be in (0, {longest_clip_s(pipe):.2f}], got {seconds}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")

    # diffusers 0.42's StableAudioPipeline has only the old per-step `callback`, not `callback_on_step_end`.
    def step_end(index: int, timestep: torch.Tensor, latents: torch.Tensor) -> None:
        if on_step is not None:
            on_step(index + 1, steps)
        if cancel is not None and cancel.is_set():
            raise SoundtrackCancelled(f"soundtrack cancelled after step {index + 1} of {steps}")

    if cancel is not None and cancel.is_set():
        raise SoundtrackCancelled("soundtrack cancelled before it started")
    started = time.perf_counter()
    try:
        output = pipe(
            prompt=prompt,
            negative_prompt=negative_prompt,
            audio_end_in_s=seconds,
            num_inference_steps=steps,
            guidance_scale=guidance,
            # A CPU generator: the same seed gives the same starting noise on any device; the scheduler's
            # SDE noise is seeded from it too.
            generator=torch.Generator(device="cpu").manual_seed(seed),
            output_type="np",
            callback=step_end,
            callback_steps=1,
        )
    except Exception:  # cancelled, or out of memory: do what the pipeline does after its last step
        pipe.maybe_free_model_hooks()
        raise
    samples = np.ascontiguousarray(output.audios[0].T, dtype=np.float32)  # (channels, n) -> (n, channels)
    # The pipeline cuts at int(seconds * rate): a sample short of the clip's length now and then.
    soundtrack = fit_duration(Soundtrack(samples, pipe.vae.sampling_rate), seconds)
    logger.info("generated %.2fs of audio in %.1fs (seed %d, %d steps)", seconds, time.perf_counter() - started,
                seed, steps)
    return soundtrack


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 gated loudness in LUFS (-inf for silence); a clip under one block is one block."""
    block_s = min(BLOCK_S, (len(samples) - 1) / sample_rate)  # pyloudnorm wants more samples than a block
    if block_s <= 0:
        return float("-inf")
    return float(pyloudnorm.Meter(sample_rate, block_size=block_s).integrated_loudness(samples))


def true_peak_db(samples: np.ndarray) -> float:
    """The peak of the 4x oversampled signal in dBTP (-inf for silence); slightly high, which errs on the safe side."""
    peak = float(np.abs(resample_poly(samples, OVERSAMPLING, 1, axis=0)).max(initial=0.0))
    return float(20 * np.log10(peak)) if peak > 0 else float("-inf")


def normalize_loudness(
    samples: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS, ceiling_dbtp: float = CEILING_DBTP
) -> np.ndarray:
    """One gain to `target_lufs`, lowered if the true peak would pass `ceiling_dbtp`: never clips. Silence stays.

    A peaky clip (a crash in quiet ambience) therefore ends quieter than the target rather than limited.
    """
    loudness = integrated_loudness(samples, sample_rate)
    if not np.isfinite(loudness):  # nothing above BS.1770's -70 LUFS gate
        return samples.astype(np.float32)
    gain_db = min(target_lufs - loudness, ceiling_dbtp - true_peak_db(samples))
    logger.debug("loudness %.1f LUFS: gain %+.1f dB", loudness, gain_db)
    return (samples * 10 ** (gain_db / 20)).astype(np.float32)
