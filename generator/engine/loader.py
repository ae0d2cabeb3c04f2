"""Build the diffusers pipelines of a preset once per worker, placed and tuned as the settings say.

Real presets load through `from_pretrained` (a hub id or a local folder); `tiny` builds the same
classes in memory. Every preset then gets the same treatment: the official flow shift, an optional
fused LoRA, the attention backend, fp8 storage or fp8 matmuls, compiled blocks, the VAE's dtype and
tiling, placement (GPU or model offload).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from diffusers import (
    AutoencoderKLWan,
    DiffusionPipeline,
    StableAudioPipeline,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanPipeline,
)
from diffusers.models import ModelMixin

from generator.contract.audio_presets import AudioPreset, get_audio_preset
from generator.contract.errors import GeneratorConfigError
from generator.contract.options import GeneratorSettings, LoraSettings
from generator.contract.presets import Preset
from generator.engine.audio import load_audio_pipeline
from generator.engine.machine import resolved_device, resolved_dtype, validate_for
from generator.engine.tiny import build_tiny_components

logger = logging.getLogger("wanbot.generator")


@dataclass
class LoadedModels:
    """The pipelines of one preset, ready to run; a task the preset lacks is None."""

    preset: Preset
    settings: GeneratorSettings
    device: str
    dtype: torch.dtype
    text_to_video: DiffusionPipeline | None
    image_to_video: DiffusionPipeline | None
    audio: StableAudioPipeline | None = None  # the soundtrack pipeline, when the deployment makes sound
    audio_preset: AudioPreset | None = None


def load_models(preset: Preset, settings: GeneratorSettings) -> LoadedModels:
    device = resolved_device(settings)
    validate_for(settings, preset, device)
    dtype = resolved_dtype(settings, preset)
    started = time.perf_counter()
    text_to_video, image_to_video = _build(preset, settings, dtype)
    for pipe in (text_to_video, image_to_video):
        if pipe is not None:
            _prepare_modules(pipe, preset, settings, dtype)
            _place(pipe, settings, device)
    if image_to_video is None and text_to_video is not None and preset.image_to_video:
        # One model for both tasks (Wan 2.2 TI2V): the image pipeline shares the prepared, placed modules.
        image_to_video = WanImageToVideoPipeline(
            **text_to_video.components, boundary_ratio=preset.boundary_ratio, expand_timesteps=True
        )
        _place(image_to_video, settings, device)
    logger.info("preset %s loaded in %.1fs on %s (%s, memory mode %s)", preset.name, time.perf_counter() - started,
                device, str(dtype).removeprefix("torch."), settings.memory_mode)
    audio_preset = get_audio_preset(settings.audio) if settings.audio else None
    audio = None
    if audio_preset is not None:
        audio = load_audio_pipeline(audio_preset, settings.audio_model or None, "cpu" if settings.audio_offload
                                    else device)
        if settings.audio_offload:
            audio.enable_model_cpu_offload(device=device)
    return LoadedModels(preset, settings, device, dtype, text_to_video, image_to_video, audio, audio_preset)


def _build(
    preset: Preset, settings: GeneratorSettings, dtype: torch.dtype
) -> tuple[DiffusionPipeline | None, DiffusionPipeline | None]:
    """The raw (text-to-video, image-to-video) pipelines; TI2V's image pipeline is derived later."""
    if preset.source is None:
        return _tiny_pipeline(WanPipeline, preset, dtype), _tiny_pipeline(WanImageToVideoPipeline, preset, dtype)
    source = settings.model or preset.source
    if preset.text_to_video:
        return _pretrained(WanPipeline, source, preset, settings, dtype), None
    return None, _pretrained(WanImageToVideoPipeline, source, preset, settings, dtype)


def _tiny_pipeline(cls: type[DiffusionPipeline], preset: Preset, dtype: torch.dtype) -> DiffusionPipeline:
    image = cls is WanImageToVideoPipeline
    components = build_tiny_components("i2v" if image else "t2v")
    if dtype != torch.float32:  # built in float32; the VAE stays so, as for real checkpoints
        for name in ("text_encoder", "transformer", "transformer_2"):
            components[name].to(dtype)
    extra = {"image_encoder": None, "image_processor": None} if image else {}
    return cls(**components, **extra, boundary_ratio=preset.boundary_ratio)


def _pretrained(
    cls: type[DiffusionPipeline], source: str, preset: Preset, settings: GeneratorSettings, dtype: torch.dtype
) -> DiffusionPipeline:
    logger.info("loading %s from %s", cls.__name__, source)
    vae = AutoencoderKLWan.from_pretrained(source, subfolder="vae", torch_dtype=getattr(torch, settings.vae_dtype))
    options = {"expand_timesteps": True} if preset.text_to_video and preset.image_to_video else {}
    pipe = cls.from_pretrained(source, vae=vae, torch_dtype=dtype, boundary_ratio=preset.boundary_ratio, **options)
    if preset.boundary_ratio is not None and pipe.transformer_2 is None:
        raise GeneratorConfigError(f"{source} has a single transformer; preset {preset.name} needs two experts")
    return pipe


def _transformers(pipe: DiffusionPipeline) -> list[ModelMixin]:
    return [model for model in (pipe.transformer, pipe.transformer_2) if model is not None]


def _prepare_modules(pipe: DiffusionPipeline, preset: Preset, settings: GeneratorSettings, dtype: torch.dtype) -> None:
    """Everything that changes the modules themselves, in the order that keeps each step valid."""
    # diffusers' checkpoints ship flow shift 3.0; the official runs use the preset's.
    pipe.scheduler = UniPCMultistepScheduler.from_config(
        pipe.scheduler.config, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=preset.flow_shift
    )
    if settings.lora is not None:
        _fuse_lora(pipe, settings.lora)
    for transformer in _transformers(pipe):
        tune_transformer(transformer, settings, dtype)
    tune_vae(pipe.vae, settings)


def tune_vae(vae: AutoencoderKLWan, settings: GeneratorSettings) -> None:
    """The VAE's dtype and tiling; the pipelines cast latents to the VAE's dtype before decoding."""
    vae_dtype = getattr(torch, settings.vae_dtype)
    if vae.dtype != vae_dtype:
        vae.to(vae_dtype)
    if settings.vae_tiling:
        vae.enable_tiling()


def tune_transformer(transformer: ModelMixin, settings: GeneratorSettings, dtype: torch.dtype) -> None:
    """The speed options of one expert, in the order that keeps each valid (the GPU benchmark calls this too)."""
    if settings.attention_backend:
        transformer.set_attention_backend(settings.attention_backend)
    if settings.memory_mode == "fp8":
        transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    if settings.fp8_matmul:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

        # Row-wise scales keep the error of fp8 activations and weights near bf16's on DiT linears. Only the
        # bf16 linears of the blocks: the float32 time embedder stays as it is (PerRow takes bf16 weights only).
        quantize_(transformer, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
                  filter_fn=lambda module, name: isinstance(module, torch.nn.Linear) and name.startswith("blocks.")
                  and module.weight.dtype == torch.bfloat16)
    if settings.compile_blocks:
        transformer.compile_repeated_blocks(fullgraph=True)


def _fuse_lora(pipe: DiffusionPipeline, lora: LoraSettings) -> None:
    """Load, fuse and drop the LoRA layers: no per-step cost, and fp8 casting or compiling sees plain weights."""
    logger.info("fusing LoRA %s%s (scale %s)", lora.path, f" + {lora.path_2}" if lora.path_2 else "", lora.scale)
    pipe.load_lora_weights(lora.path, weight_name=lora.weight_name or None, adapter_name="lora")
    components = ["transformer"]
    if lora.path_2:
        pipe.load_lora_weights(lora.path_2, weight_name=lora.weight_name_2 or None, adapter_name="lora_2",
                               load_into_transformer_2=True)
        components.append("transformer_2")
    pipe.fuse_lora(components=components, lora_scale=lora.scale)
    pipe.unload_lora_weights()


def _place(pipe: DiffusionPipeline, settings: GeneratorSettings, device: str) -> None:
    if settings.memory_mode == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
