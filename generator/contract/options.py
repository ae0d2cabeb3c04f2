"""The `[generator]` config section, and the start-up check that this machine can run it.

The bot process loads this model with the rest of the config; what depends on the machine (device,
dtypes, kernels) is checked by `generator.engine.machine` on the worker.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from generator.contract.audio_presets import get_audio_preset
from generator.contract.presets import Preset, get_preset

DTYPES = ("bfloat16", "float16", "float32")


class LoraSettings(BaseModel):
    """A LoRA fused into the transformer(s) at load time, typically a step-distilled one."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)  # hub id, local folder or file: the high-noise (or only) transformer
    path_2: str = ""  # the low-noise expert of a two-expert preset
    weight_name: str = ""  # the file inside `path` when it is a folder or hub id
    weight_name_2: str = ""
    scale: float = 1.0
    steps: int = Field(default=4, gt=0)
    guidance: float = Field(default=1.0, ge=0)
    guidance_2: float | None = Field(default=None, ge=0)  # None: the same as `guidance`


class GeneratorSettings(BaseModel):
    """The `[generator]` section: which preset a worker loads and how it fits it on the machine."""

    model_config = ConfigDict(extra="forbid")

    preset: str = "tiny"
    model: str = ""  # a hub id or local folder overriding the preset's checkpoint
    device: str = "auto"  # auto: cuda if available, else cpu
    dtype: str = ""  # empty: the preset's default
    memory_mode: Literal["gpu", "model_offload", "fp8"] = "gpu"
    attention_backend: str = ""  # a diffusers attention backend name; empty: diffusers' default
    compile_blocks: bool = False
    fp8_matmul: bool = False  # fp8 weights and activations in the transformer's linear layers (torchao; Ada/Hopper)
    vae_dtype: str = "float32"  # the VAE's weights and decode; bfloat16 decodes faster at a small error
    vae_tiling: bool = False  # decode in overlapping spatial tiles: less memory, a little slower
    job_timeout_s: int = Field(default=0, ge=0)  # 0: the preset's
    steps: int = Field(default=0, ge=0)  # sampling steps; 0: the preset's (fewer: faster and rougher)
    lora: LoraSettings | None = None
    audio: str = ""  # a soundtrack preset (stable-audio-open-1.0, tiny); empty: this deployment makes no sound
    audio_model: str = ""  # a hub id or local folder overriding the audio preset's checkpoint
    audio_offload: bool = False  # keep the audio model in CPU memory between jobs (cards short of memory)
    audio_overlap: bool = False  # sample the soundtrack in a second thread while the video renders
    metrics_port: int = Field(default=0, ge=0, le=65535)  # /metrics and /healthz of each worker; 0: off
    metrics_host: str = Field(default="127.0.0.1", min_length=1)  # they have no auth: "0.0.0.0" only behind a firewall

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str) -> str:
        get_preset(name)
        return name

    @field_validator("audio")
    @classmethod
    def _known_audio_preset(cls, name: str) -> str:
        if name:
            get_audio_preset(name)
        return name

    def problems(self, preset: Preset) -> list[str]:
        """What is wrong with these settings for `preset`, whatever the machine (the engine adds the machine's)."""
        return [*self._model_problems(preset), *self._lora_problems(preset)]

    def _model_problems(self, preset: Preset) -> list[str]:
        problems: list[str] = []
        if self.dtype and self.dtype not in DTYPES:
            problems.append(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.vae_dtype not in DTYPES:
            problems.append(f"vae_dtype {self.vae_dtype!r} is not one of {', '.join(DTYPES)}")
        if preset.source is None and self.model:
            problems.append(f"preset {preset.name} is built in memory: `model` applies to presets with a checkpoint")
        if self.audio_model and not self.audio:
            problems.append("audio_model is set but audio (the soundtrack preset) is not")
        if self.audio and get_audio_preset(self.audio).source is None and self.audio_model:
            problems.append(f"audio preset {self.audio} is built in memory: audio_model applies to a checkpoint")
        if self.audio and get_audio_preset(self.audio).max_seconds < preset.max_seconds:
            problems.append(f"audio preset {self.audio} makes at most {get_audio_preset(self.audio).max_seconds:g} s,"
                            f" shorter than {preset.name}'s {preset.max_seconds:g} s clips")
        return problems

    def _lora_problems(self, preset: Preset) -> list[str]:
        if self.lora is None:
            return []
        problems: list[str] = []
        if self.steps:
            problems.append("with a LoRA, set its steps under [generator.lora], not [generator] steps")
        if preset.boundary_ratio is None and self.lora.path_2:
            problems.append(f"lora.path_2 is for the low-noise expert, and {preset.name} has a single expert")
        if preset.boundary_ratio is None and self.lora.guidance_2 is not None:
            problems.append(f"lora.guidance_2 is for the low-noise expert, and {preset.name} has a single expert")
        return problems
