"""What this machine can run: the device, dtypes and kernels a `[generator]` section asks for.

Checked once at worker start-up (and by `wanbot generate`), before any weight is loaded, so a
setting this machine cannot honour is refused with every reason at once, never mid-job.
"""

from __future__ import annotations

import re

import torch

from generator.contract.errors import GeneratorConfigError
from generator.contract.options import GeneratorSettings
from generator.contract.presets import Preset

# Attention backends that run on a CPU; every other one is a CUDA kernel.
CPU_ATTENTION_BACKENDS = ("native", "_native_math")
FP8_MATMUL_CAPABILITY = (8, 9)  # fp8 tensor cores: Ada and Hopper onwards
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def resolved_device(settings: GeneratorSettings) -> str:
    """`auto` is the GPU when torch sees one."""
    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return settings.device


def resolved_dtype(settings: GeneratorSettings, preset: Preset) -> torch.dtype:
    return getattr(torch, settings.dtype or preset.default_dtype)


def validate_for(settings: GeneratorSettings, preset: Preset, device: str) -> None:
    """Refuse, with every reason at once, a combination this machine cannot run."""
    problems = [*_device_problems(settings, device), *settings.problems(preset)]
    if problems:
        raise GeneratorConfigError(f"[generator] for preset {preset.name}: " + "; ".join(problems))


def _device_problems(settings: GeneratorSettings, device: str) -> list[str]:
    if not _DEVICE.match(device):
        return [f"device {device!r} is not auto, cpu, cuda or cuda:N"]
    problems: list[str] = []
    on_cpu = device == "cpu"
    if not on_cpu and not torch.cuda.is_available():
        problems.append(f"device {device} was asked for but torch sees no CUDA GPU")
    if on_cpu and settings.memory_mode != "gpu":
        problems.append(f"memory_mode {settings.memory_mode} needs a CUDA GPU; use memory_mode = \"gpu\" on a CPU")
    if on_cpu and settings.compile_blocks:
        problems.append("compile_blocks needs a CUDA GPU")
    if settings.compile_blocks and settings.memory_mode == "fp8":
        # The fp8 casting hooks make parameters inside the compiled blocks, which torch.compile cannot trace.
        problems.append("compile_blocks does not work with memory_mode fp8 (use fp8_matmul to compile fp8)")
    if settings.fp8_matmul:
        problems.extend(_fp8_matmul_problems(settings, device))
    if on_cpu and settings.audio_offload:
        problems.append("audio_offload needs a CUDA GPU (on a CPU there is nothing to offload to)")
    if settings.attention_backend:
        problems.extend(_attention_problems(settings.attention_backend, on_cpu))
    return problems


def _fp8_matmul_problems(settings: GeneratorSettings, device: str) -> list[str]:
    import importlib.util

    problems: list[str] = []
    if settings.memory_mode != "gpu":
        problems.append(f"fp8_matmul quantizes the weights on the card: it needs memory_mode \"gpu\", "
                        f"not {settings.memory_mode}")
    if device == "cpu" or not torch.cuda.is_available():
        problems.append("fp8_matmul needs a CUDA GPU with fp8 tensor cores (Ada or Hopper)")
    elif (capability := torch.cuda.get_device_capability(device)) < FP8_MATMUL_CAPABILITY:
        problems.append(f"fp8_matmul needs compute capability 8.9 or newer; {device} has "
                        f"{'.'.join(map(str, capability))}")
    if (settings.dtype or "bfloat16") != "bfloat16":
        problems.append(f"fp8_matmul scales bfloat16 weights row by row: it needs dtype bfloat16, not {settings.dtype}")
    if importlib.util.find_spec("torchao") is None:
        problems.append("fp8_matmul needs torchao: pip install 'wanbot[fp8]'")
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
