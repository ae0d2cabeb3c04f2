"""The real sizes of Wan 2.2's components, the workloads a clip puts on them, and their FLOP count.

Configs are those of the diffusers checkpoints (Wan-AI/Wan2.2-T2V-A14B-Diffusers and
Wan-AI/Wan2.2-TI2V-5B-Diffusers); `tiny=True` swaps in the tiny preset's sizes so the GPU
benchmark runs anywhere. The FLOP model counts the matmuls of one transformer pass
(2·m·n·k each); it gives 6.5e15 per pass at 1280×720×81 for an A14B expert, as in issue 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from generator.contract.presets import get_preset

TEXT_TOKENS = 512  # Wan pads every prompt to 512 UMT5 tokens

A14B_TRANSFORMER = {
    "patch_size": (1, 2, 2), "num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16,
    "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824, "num_layers": 40,
    "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 1024,
}
TI2V_5B_TRANSFORMER = {
    **A14B_TRANSFORMER, "num_attention_heads": 24, "in_channels": 48, "out_channels": 48, "ffn_dim": 14336,
    "num_layers": 30,
}
WAN21_VAE: dict[str, Any] = {}  # AutoencoderKLWan's defaults are the Wan 2.1 VAE (A14B, 1.3B)
WAN22_VAE = {
    "base_dim": 160, "decoder_base_dim": 256, "z_dim": 48, "in_channels": 12, "out_channels": 12, "patch_size": 2,
    "scale_factor_spatial": 16, "scale_factor_temporal": 4, "is_residual": True,
    "latents_mean": [0.0] * 48, "latents_std": [1.0] * 48,
}
UMT5_XXL = {
    "vocab_size": 256384, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "feed_forward_proj": "gated-gelu",
    "dropout_rate": 0.0,
}
# The tiny preset's components (generator/engine/tiny.py), keyed the same way.
TINY_TRANSFORMER = {
    "patch_size": (1, 2, 2), "num_attention_heads": 2, "attention_head_dim": 12, "in_channels": 16,
    "out_channels": 16, "text_dim": 32, "freq_dim": 256, "ffn_dim": 32, "num_layers": 2, "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 32,
}
TINY_VAE = {"base_dim": 3, "z_dim": 16, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1,
            "temperal_downsample": [False, True, True]}
TINY_UMT5 = {"vocab_size": 400, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
             "relative_attention_num_buckets": 8, "dropout_rate": 0.0}


@dataclass(frozen=True)
class Workload:
    """One clip of a preset at one size: what each transformer pass and the VAE decode are given."""

    name: str
    preset: str  # the preset whose settings are validated and whose recipe is projected
    transformer: dict[str, Any] = field(hash=False)
    vae: dict[str, Any] = field(hash=False)
    width: int = 1280
    height: int = 720
    frames: int = 81
    expand_timesteps: bool = False  # TI2V: a timestep per token

    @property
    def vae_stride(self) -> int:
        return self.vae.get("scale_factor_spatial", 8)

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """(channels, frames, height, width) of the latents the transformer denoises."""
        frames = (self.frames - 1) // 4 + 1
        return self.vae.get("z_dim", 16), frames, self.height // self.vae_stride, self.width // self.vae_stride

    @property
    def tokens(self) -> int:
        _, frames, height, width = self.latent_shape
        _, patch_h, patch_w = self.transformer["patch_size"]
        return frames * (height // patch_h) * (width // patch_w)

    @property
    def flops_per_pass(self) -> float:
        return transformer_flops(self.transformer, self.tokens)

    def passes(self, four_step: bool) -> int:
        """Transformer passes per clip: steps × 2 with classifier-free guidance; 4 without (distilled)."""
        return 4 if four_step else get_preset(self.preset).steps * 2


def transformer_flops(config: dict[str, Any], tokens: int, text_tokens: int = TEXT_TOKENS) -> float:
    """Matmul FLOPs of one WanTransformer3DModel forward over `tokens` video tokens."""
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    patch = math.prod(config["patch_size"])
    self_attention = 4 * 2 * tokens * dim * dim + 2 * 2 * tokens * tokens * dim  # q, k, v, out; QKᵀ and AV
    cross_attention = 2 * 2 * tokens * dim * dim + 2 * 2 * text_tokens * dim * dim + 2 * 2 * tokens * text_tokens * dim
    feed_forward = 2 * 2 * tokens * dim * config["ffn_dim"]
    per_block = self_attention + cross_attention + feed_forward
    embed = 2 * tokens * patch * (config["in_channels"] + config["out_channels"]) * dim
    text = 2 * text_tokens * (config["text_dim"] * dim + dim * dim)
    return config["num_layers"] * per_block + embed + text


def workloads(tiny: bool) -> list[Workload]:
    """A14B expert at 480p and 720p (81 frames) and TI2V-5B at 1280×704 (121 frames)."""
    if tiny:
        return [
            Workload("A14B 480p", "wan2.2-t2v-a14b", TINY_TRANSFORMER, TINY_VAE, 64, 32, 81),
            Workload("A14B 720p", "wan2.2-t2v-a14b", TINY_TRANSFORMER, TINY_VAE, 96, 48, 81),
            Workload("5B 704p", "wan2.2-ti2v-5b", TINY_TRANSFORMER, TINY_VAE, 96, 48, 121, expand_timesteps=True),
        ]
    return [
        Workload("A14B 480p", "wan2.2-t2v-a14b", A14B_TRANSFORMER, WAN21_VAE, 832, 480, 81),
        Workload("A14B 720p", "wan2.2-t2v-a14b", A14B_TRANSFORMER, WAN21_VAE, 1280, 720, 81),
        Workload("5B 704p", "wan2.2-ti2v-5b", TI2V_5B_TRANSFORMER, WAN22_VAE, 1280, 704, 121, expand_timesteps=True),
    ]


def text_encoder_config(tiny: bool) -> dict[str, Any]:
    return TINY_UMT5 if tiny else UMT5_XXL
