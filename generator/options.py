"""The `[generator]` config section, and the start-up check that this machine can run it.

The bot process loads this model with the rest of the config, so torch is imported only inside the
methods that the worker calls.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from generator.audio_presets import get_audio_preset
from generator.errors import GeneratorConfigError
from generator.presets import Preset, get_preset

if TYPE_CHECKING:
    import torch

DTYPES = ("bfloat16", "float16", "float32")
# Attention backends that run on a CPU; every other one is a CUDA kernel.
CPU_ATTENTION_BACKENDS = ("native", "_native_math")
FP8_MATMUL_CAPABILITY = (8, 9)  # fp8 tensor cores: Ada and Hopper onwards
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


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

    def resolved_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def resolved_dtype(self, preset: Preset) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype or preset.default_dtype)

    def validate_for(self, preset: Preset, device: str) -> None:
        """Refuse, with every reason at once, a combination this machine cannot run."""
        problems = [*self._device_problems(device), *self._model_problems(preset), *self._lora_problems(preset)]
        if problems:
            raise GeneratorConfigError(f"[generator] for preset {preset.name}: " + "; ".join(problems))

    def _device_problems(self, device: str) -> list[str]:
        import torch

        if not _DEVICE.match(device):
            return [f"device {device!r} is not auto, cpu, cuda or cuda:N"]
        problems: list[str] = []
        on_cpu = device == "cpu"
        if not on_cpu and not torch.cuda.is_available():
            problems.append(f"device {device} was asked for but torch sees no CUDA GPU")
        if on_cpu and self.memory_mode != "gpu":
            problems.append(f"memory_mode {self.memory_mode} needs a CUDA GPU; use memory_mode = \"gpu\" on a CPU")
        if on_cpu and self.compile_blocks:
            problems.append("compile_blocks needs a CUDA GPU")
        if self.compile_blocks and self.memory_mode == "fp8":
            # The fp8 casting hooks make parameters inside the compiled blocks, which torch.compile cannot trace.
            problems.append("compile_blocks does not work with memory_mode fp8 (use fp8_matmul to compile fp8)")
        if self.fp8_matmul:
            problems.extend(self._fp8_matmul_problems(device))
        if on_cpu and self.audio_offload:
            problems.append("audio_offload needs a CUDA GPU (on a CPU there is nothing to offload to)")
        if self.attention_backend:
            problems.extend(_attention_problems(self.attention_backend, on_cpu))
        return problems

    def _fp8_matmul_problems(self, device: str) -> list[str]:
        import importlib.util

        import torch

        problems: list[str] = []
        if self.memory_mode != "gpu":
            problems.append(f"fp8_matmul quantizes the weights on the card: it needs memory_mode \"gpu\", "
                            f"not {self.memory_mode}")
        if device == "cpu" or not torch.cuda.is_available():
            problems.append("fp8_matmul needs a CUDA GPU with fp8 tensor cores (Ada or Hopper)")
        elif (capability := torch.cuda.get_device_capability(device)) < FP8_MATMUL_CAPABILITY:
            problems.append(f"fp8_matmul needs compute capability 8.9 or newer; {device} has "
                            f"{'.'.join(map(str, capability))}")
        if (self.dtype or "bfloat16") != "bfloat16":
            problems.append(f"fp8_matmul scales bfloat16 weights row by row: it needs dtype bfloat16, not {self.dtype}")
        if importlib.util.find_spec("torchao") is None:
            problems.append("fp8_matmul needs torchao: pip install 'wanbot[fp8]'")
        return problems

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


def _attention_problems(backend: str, on_cpu: bool) -> list[str]:
    from diffusers.models.attention_dispatch import AttentionBackendName, _check_attention_backend_requirements

    known = [name.value for name in AttentionBackendName]
    if backend not in known:
        return [f"attention_backend {backend!r} is unknown to diffusers; known: {', '.join(known)}"]
    if on_cpu and backend not in CPU_ATTENTION_BACKENDS:
        return [f"attention_backend {backend} needs a CUDA GPU; on a CPU use {' or '.join(CPU_ATTENTION_BACKENDS)}"]
    try:
        _check_attention_backend_requirements(AttentionBackendName(backend))
    except RuntimeError as error:  # the kernel's package is missing or too old; diffusers says which
        return [f"attention_backend {backend}: {error}"]
    return []
