"""Real-size Wan components with random weights, made straight on the device.

The module is declared on the meta device, its storage dtypes are settled (fp32 modules that
from_pretrained keeps in fp32, fp8 storage when asked), and only then is each parameter filled
with random values on the device: no CPU copy of 14B parameters, and no bf16 copy of an expert
that will be stored in fp8. A seed gives the same weights to every variant being compared.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch
from accelerate import init_empty_weights
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def declare(build: Callable[[], ModuleT], dtype: torch.dtype, keep_in_fp32: Sequence[str] = ()) -> ModuleT:
    """The module with its parameters on the meta device (its small buffers are real, on the CPU).

    Parameters under a name in `keep_in_fp32` stay float32, as from_pretrained keeps them.
    """
    with default_dtype(dtype), init_empty_weights(include_buffers=False):
        module = build()
    if hasattr(module, "tie_weights"):  # transformers ties shared embeddings when loading a checkpoint
        module.tie_weights()
    for name, param in module.named_parameters():
        if set(name.split(".")) & set(keep_in_fp32):
            param.data = param.data.float()
    return module.eval()


def materialize(module: ModuleT, device: str, seed: int) -> ModuleT:
    """Fill every parameter with seeded random values on `device`, in the dtype it was declared with."""
    generator = torch.Generator(device).manual_seed(seed)
    made: dict[int, nn.Parameter] = {}  # tied weights (UMT5's shared embedding) stay one tensor
    for owner in module.modules():
        for name, param in list(owner.named_parameters(recurse=False)):
            if id(param) not in made:
                values = _random_values(name, param.shape, device, generator)
                made[id(param)] = nn.Parameter(values.to(param.dtype), requires_grad=False)
            owner._parameters[name] = made[id(param)]
    return module.to(device)


def _random_values(name: str, shape: torch.Size, device: str, generator: torch.Generator) -> torch.Tensor:
    """Default-init-like values: uniform ±1/√fan_in for matrices, ones for norm scales, zeros for biases."""
    if len(shape) >= 2:
        bound = 1 / math.sqrt(math.prod(shape[1:]))
        return torch.empty(shape, device=device).uniform_(-bound, bound, generator=generator)
    return (torch.zeros if name == "bias" else torch.ones)(shape, device=device)
