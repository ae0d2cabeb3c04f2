"""`[generator]` settings: what a machine cannot run is refused at start-up, with the reason."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from pydantic import ValidationError

from generator.contract.errors import GeneratorConfigError
from generator.contract.options import GeneratorSettings, LoraSettings
from generator.contract.presets import get_preset
from generator.engine.loader import LoadedModels
from generator.engine.machine import resolved_device, resolved_dtype, validate_for
from generator.engine.run import sampling_for

TINY = get_preset("tiny")
ONE_EXPERT = get_preset("wan2.1-t2v-1.3b")


def refusal(settings: GeneratorSettings, preset=TINY, device: str = "cpu") -> str:
    with pytest.raises(GeneratorConfigError) as caught:
        validate_for(settings, preset, device)
    return str(caught.value)


def test_defaults_run_the_tiny_preset_on_cpu() -> None:
    settings = GeneratorSettings()
    validate_for(settings, TINY, "cpu")
    assert settings.preset == "tiny" and settings.memory_mode == "gpu"
    assert resolved_dtype(settings, TINY) == torch.float32
    assert resolved_dtype(settings, get_preset("wan2.2-t2v-a14b")) == torch.bfloat16
    assert resolved_dtype(GeneratorSettings(dtype="float16"), TINY) == torch.float16
    assert resolved_device(settings) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolved_device(GeneratorSettings(device="cpu")) == "cpu"


@pytest.mark.parametrize(("settings", "message"), [
    (GeneratorSettings(memory_mode="fp8"), "memory_mode fp8 needs a CUDA GPU"),
    (GeneratorSettings(memory_mode="model_offload"), "memory_mode model_offload needs a CUDA GPU"),
    (GeneratorSettings(compile_blocks=True), "compile_blocks needs a CUDA GPU"),
    (GeneratorSettings(attention_backend="flash"), "attention_backend flash needs a CUDA GPU"),
    (GeneratorSettings(attention_backend="sage"), "attention_backend sage needs a CUDA GPU"),
    (GeneratorSettings(attention_backend="fastest"), "attention_backend 'fastest' is unknown to diffusers; known: "),
    (GeneratorSettings(dtype="fp16"), "dtype 'fp16' is not one of bfloat16, float16, float32"),
    (GeneratorSettings(vae_dtype="bf16"), "vae_dtype 'bf16' is not one of bfloat16, float16, float32"),
    (GeneratorSettings(fp8_matmul=True), "fp8_matmul needs a CUDA GPU with fp8 tensor cores (Ada or Hopper)"),
    (GeneratorSettings(fp8_matmul=True, dtype="float16"), "fp8_matmul scales bfloat16 weights row by row: it needs"
                                                          " dtype bfloat16, not float16"),
    (GeneratorSettings(fp8_matmul=True, memory_mode="fp8"), 'fp8_matmul quantizes the weights on the card: it needs'
                                                             ' memory_mode "gpu", not fp8'),
    (GeneratorSettings(model="/models/wan"), "built in memory: `model` applies to presets with a checkpoint"),
])
def test_cpu_refusals(settings: GeneratorSettings, message: str) -> None:
    assert message in refusal(settings)


def test_fp8_storage_cannot_be_compiled_on_any_device() -> None:
    """Lazy compilation would only fail at the first job: refused at start-up, on a GPU too."""
    message = "compile_blocks does not work with memory_mode fp8 (use fp8_matmul to compile fp8)"
    assert message in refusal(GeneratorSettings(memory_mode="fp8", compile_blocks=True))
    assert message in refusal(GeneratorSettings(memory_mode="fp8", compile_blocks=True), device="cuda")


def test_every_problem_is_reported_at_once() -> None:
    message = refusal(GeneratorSettings(memory_mode="fp8", compile_blocks=True, dtype="half"))
    assert message.startswith("[generator] for preset tiny: ")
    assert "fp8" in message and "compile_blocks" in message and "'half'" in message


def test_native_attention_backends_run_on_cpu() -> None:
    validate_for(GeneratorSettings(attention_backend="native"), TINY, "cpu")
    validate_for(GeneratorSettings(attention_backend="_native_math"), TINY, "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused() -> None:
    assert "device cuda:1 was asked for but torch sees no CUDA GPU" in refusal(GeneratorSettings(), device="cuda:1")


def test_an_odd_device_name_is_refused() -> None:
    assert "device 'gpu0' is not auto, cpu, cuda or cuda:N" in refusal(GeneratorSettings(), device="gpu0")


def test_second_expert_lora_on_a_single_expert_preset_is_refused() -> None:
    settings = GeneratorSettings(preset=ONE_EXPERT.name, lora=LoraSettings(path="high.safetensors",
                                                                          path_2="low.safetensors", guidance_2=1.0))
    message = refusal(settings, ONE_EXPERT)
    assert "lora.path_2 is for the low-noise expert, and wan2.1-t2v-1.3b has a single expert" in message
    assert "lora.guidance_2 is for the low-noise expert" in message


def test_a_lora_on_the_tiny_preset_is_allowed() -> None:
    validate_for(GeneratorSettings(lora=LoraSettings(path="lora.safetensors")), TINY, "cpu")


def test_unknown_preset_and_keys_fail_when_the_config_loads() -> None:
    with pytest.raises(ValidationError, match="unknown preset 'wan3'; presets: "):
        GeneratorSettings(preset="wan3")
    with pytest.raises(ValidationError, match="extra"):
        GeneratorSettings.model_validate({"preset": "tiny", "sampler": "euler"})
    with pytest.raises(ValidationError, match="memory_mode"):
        GeneratorSettings.model_validate({"memory_mode": "cpu_offload"})
    with pytest.raises(ValidationError, match="path"):
        GeneratorSettings.model_validate({"lora": {"path": ""}})


def test_lora_defaults_suit_a_step_distilled_lora() -> None:
    lora = GeneratorSettings.model_validate({"lora": {"path": "x/y"}}).lora
    assert lora is not None and (lora.steps, lora.guidance, lora.guidance_2, lora.scale) == (4, 1.0, None, 1.0)


def test_steps_override_the_preset_and_clash_with_a_lora(tiny_models: LoadedModels) -> None:
    fewer = dataclasses.replace(tiny_models, settings=GeneratorSettings(steps=2))
    assert sampling_for(fewer).steps == 2 and sampling_for(tiny_models).steps == 4
    clash = GeneratorSettings(steps=8, lora=LoraSettings(path="lora.safetensors"))
    assert "set its steps under [generator.lora]" in refusal(clash)
