"""Text-to-audio presets: which checkpoint makes a clip's soundtrack and how to sample it.

Free of torch, like presets.py: the bot reads them to check and price requests for sound.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.contract.errors import GeneratorConfigError

# The model card's diffusers example (and diffusers' Stable Audio docs): guidance 7 (the pipeline's
# default too) and this negative prompt.
STABLE_AUDIO_GUIDANCE = 7.0
STABLE_AUDIO_NEGATIVE_PROMPT = "Low quality."


@dataclass(frozen=True)
class AudioPreset:
    """A text-to-audio checkpoint and how to sample it; max_seconds is the longest clip it makes."""

    name: str
    source: str | None  # diffusers-format hub id; None: built in memory (tiny)
    steps: int
    guidance: float
    negative_prompt: str
    sample_rate: int
    max_seconds: float
    default_dtype: str


AUDIO_PRESETS: dict[str, AudioPreset] = {
    preset.name: preset
    for preset in (
        AudioPreset(
            name="stable-audio-open-1.0",
            source="stabilityai/stable-audio-open-1.0",  # gated: accept its licence on the hub, set HF_TOKEN
            # The model card's diffusers example; its stable-audio-tools example runs 100 steps of a 3rd-order
            # sampler, and the checkpoint's diffusers scheduler is 2nd-order.
            steps=200,
            guidance=STABLE_AUDIO_GUIDANCE,
            negative_prompt=STABLE_AUDIO_NEGATIVE_PROMPT,
            sample_rate=44_100,
            max_seconds=47.0,  # 1024 latents x 2048 samples at 44.1 kHz: 47.55 s; the card says "up to 47 s"
            default_dtype="float16",  # as the model card loads it
        ),
        AudioPreset(
            name="tiny",
            source=None,
            steps=4,
            guidance=STABLE_AUDIO_GUIDANCE,  # > 1: guidance with the negative prompt runs, as in production
            negative_prompt=STABLE_AUDIO_NEGATIVE_PROMPT,
            sample_rate=44_100,
            max_seconds=10.0,  # 216 latents: 10.03 s, past the tiny video preset's longest clip
            default_dtype="float32",
        ),
    )
}


def get_audio_preset(name: str) -> AudioPreset:
    try:
        return AUDIO_PRESETS[name]
    except KeyError:
        known = ", ".join(AUDIO_PRESETS)
        raise GeneratorConfigError(f"unknown audio preset {name!r}; audio presets: {known}") from None
