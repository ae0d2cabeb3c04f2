"""Loading: checkpoints from a local folder through from_pretrained (the real presets' path), and LoRAs."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import WanPipeline
from PIL import Image

from generator.contract.options import GeneratorSettings, LoraSettings
from generator.contract.presets import PRESETS, get_preset
from generator.engine.loader import LoadedModels, load_models
from generator.engine.run import GenerationSpec, generate
from generator.engine.tiny import build_tiny_components

# A real preset shrunk to the tiny one's sampling, so the same weights must give the same clip.
SMALL = {name: getattr(get_preset("tiny"), name)
         for name in ("sizes", "size_multiple", "fps", "max_frames", "steps", "default_dtype", "flow_shift")}
SPEC = GenerationSpec("a cat sleeps in the sun", "blurry", 64, 32, 9, seed=11)


def frames(models: LoadedModels, spec: GenerationSpec = SPEC) -> np.ndarray:
    return generate(models, spec, lambda step, total: None, threading.Event()).frames


def test_the_tiny_preset_builds_both_pipelines(tiny_models: LoadedModels) -> None:
    assert tiny_models.text_to_video is not None and tiny_models.image_to_video is not None
    assert (tiny_models.device, tiny_models.dtype) == ("cpu", torch.float32)
    for pipe in (tiny_models.text_to_video, tiny_models.image_to_video):
        assert pipe.config.boundary_ratio == 0.875
        assert pipe.scheduler.config.flow_shift == 5.0 and pipe.scheduler.config.use_flow_sigmas
        assert pipe.vae.dtype == torch.float32


def test_a_two_expert_checkpoint_loads_from_a_local_folder(tiny_models: LoadedModels, tmp_path: Path) -> None:
    tiny_models.text_to_video.save_pretrained(tmp_path)
    preset = dataclasses.replace(PRESETS["wan2.2-t2v-a14b"], name="local-t2v", **SMALL)
    models = load_models(preset, GeneratorSettings(model=str(tmp_path), device="cpu"))
    pipe = models.text_to_video
    assert isinstance(pipe, WanPipeline) and models.image_to_video is None
    assert pipe.transformer_2 is not None and pipe.config.boundary_ratio == 0.875
    assert pipe.vae.dtype == torch.float32 and pipe.transformer.dtype == torch.float32
    assert np.array_equal(frames(models), frames(tiny_models))  # the same weights give the same clip


def test_a_text_and_image_checkpoint_shares_one_model(tmp_path: Path) -> None:
    """The Wan 2.2 TI2V layout: one transformer, an image pipeline on the same modules (expand_timesteps)."""
    components = build_tiny_components("t2v")
    components["transformer_2"] = None
    WanPipeline(**components).save_pretrained(tmp_path)
    preset = dataclasses.replace(PRESETS["wan2.2-ti2v-5b"], name="local-ti2v", **SMALL)
    models = load_models(preset, GeneratorSettings(model=str(tmp_path), device="cpu"))
    text, image = models.text_to_video, models.image_to_video
    assert text is not None and image is not None
    assert image.transformer is text.transformer and image.config.expand_timesteps and text.config.expand_timesteps
    assert frames(models).shape == (9, 32, 64, 3)
    with_image = dataclasses.replace(SPEC, image=Image.new("RGB", (128, 64), "orange"))
    assert frames(models, with_image).shape == (9, 32, 64, 3)


def test_a_single_expert_folder_is_refused_for_a_two_expert_preset(tmp_path: Path) -> None:
    components = build_tiny_components("t2v")
    components["transformer_2"] = None
    WanPipeline(**components).save_pretrained(tmp_path)
    preset = dataclasses.replace(get_preset("wan2.2-t2v-a14b"), **SMALL)
    with pytest.raises(ValueError, match=r"has a single transformer; preset wan2\.2-t2v-a14b needs two experts"):
        load_models(preset, GeneratorSettings(model=str(tmp_path), device="cpu"))


def test_a_lora_made_in_process_loads_on_the_tiny_preset(tiny_models: LoadedModels, tmp_path: Path) -> None:
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = build_tiny_components("t2v", seed=3)["transformer"]
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    WanPipeline.save_lora_weights(tmp_path, transformer_lora_layers=get_peft_model_state_dict(transformer),
                                  weight_name="lora.safetensors")
    lora = LoraSettings(path=str(tmp_path), weight_name="lora.safetensors", path_2=str(tmp_path / "lora.safetensors"),
                        steps=1, guidance=1.0)
    models = load_models(get_preset("tiny"), GeneratorSettings(device="cpu", lora=lora))
    fused = models.text_to_video.transformer.blocks[0].attn1.to_q.weight
    plain = tiny_models.text_to_video.transformer.blocks[0].attn1.to_q.weight
    assert fused.shape == plain.shape and not torch.equal(fused, plain)  # fused into plain weights
    steps: list[tuple[int, int]] = []
    video = generate(models, SPEC, lambda step, total: steps.append((step, total)), threading.Event())
    assert steps == [(1, 1)] and video.steps == 1 and video.frames.shape == (9, 32, 64, 3)


def test_a_bf16_vae_with_tiling_decodes_close_to_the_fp32_one(tiny_models: LoadedModels, tmp_path: Path) -> None:
    """The VAE speed options keep the clip: same size, pixels within a few levels of the fp32 decode."""
    models = load_models(get_preset("tiny"), GeneratorSettings(device="cpu", vae_dtype="bfloat16", vae_tiling=True))
    for pipe in (models.text_to_video, models.image_to_video):
        assert pipe.vae.dtype == torch.bfloat16 and pipe.vae.use_tiling
    fast, exact = frames(models).astype(np.int16), frames(tiny_models).astype(np.int16)
    assert fast.shape == exact.shape == (9, 32, 64, 3)
    assert np.abs(fast - exact).mean() < 4.0
    with_image = dataclasses.replace(SPEC, image=Image.new("RGB", (128, 64), "orange"))
    assert frames(models, with_image).shape == (9, 32, 64, 3)  # the image is encoded by the bf16 VAE too
