"""Tiny random-weight versions of the real Wan components, built in memory without files or network.

The classes are the ones the real checkpoints load (UMT5, AutoencoderKLWan, WanTransformer3DModel,
UniPC), so tests and the demo run the production pipeline code end to end; only the sizes shrink
(configs as in diffusers' own Wan 2.2 tests). The output is noise.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PretrainedConfig, PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

TEXT_DIM = 32  # UMT5 d_model == the transformer's text_dim
T5ConfigT = TypeVar("T5ConfigT", bound=PretrainedConfig)
MAX_LENGTH = 512  # Wan's text length
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5

# Enough words that different prompts give different embeddings; the rest map to <unk>.
WORDS = """
a an the and or but with without of in on at to from into over under near behind above below through across
around between while as is are was be being very slowly quickly gently softly suddenly
i you he she it we they my your his her its our their this that these those one two three many some all
cat dog bird fish horse cow sheep fox wolf bear lion tiger rabbit mouse owl eagle duck whale dolphin shark
butterfly bee dragon robot man woman boy girl child baby person people crowd family friend king queen knight
astronaut soldier dancer chef painter musician farmer monk ghost monster alien
city town village street road bridge house castle tower church temple room kitchen garden park forest jungle
desert beach ocean sea lake river waterfall mountain hill valley cave island field farm sky space moon sun
star planet cloud clouds rain snow storm wind fog fire smoke water ice lightning rainbow sunset sunrise night
day morning evening winter summer spring autumn
car bus train plane ship boat bicycle motorcycle rocket spaceship balloon kite umbrella lamp candle book
flower flowers tree trees grass leaf leaves rock stone sand wave waves light shadow mirror window door
runs run running walks walk walking flies fly flying swims swim swimming jumps jump jumping dances dance
dancing sings sing singing plays play playing eats eat eating drinks drink sleeps sleep sleeping smiles
smile laughs laugh cries cry looks look looking turns turn moves move falls fall rises rise spins spin
floats float glows glow shines shine burns burn melts melt grows grow opens open closes close waves wave
red orange yellow green blue purple pink white black gray grey brown golden silver dark bright colorful
big small tiny huge tall short long old young new happy sad calm wild beautiful cute scary magical cinematic
realistic detailed blurry sharp soft warm cold wet dry fast slow quiet loud
camera shot close-up closeup wide aerial view pan zoom tracking slow-motion motion scene video frame style
anime cartoon painting photo film 4k 8k hd high quality lighting background foreground
"""


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A WordLevel tokenizer that ends every text with </s>, like UMT5's."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for word in WORDS.split():
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=MAX_LENGTH,
    )


def tiny_t5_config(config_class: type[T5ConfigT], tokenizer: PreTrainedTokenizerFast,
                   d_model: int = TEXT_DIM) -> T5ConfigT:
    """A two-layer (U)T5 encoder's config over the tiny vocabulary (Wan uses UMT5, Stable Audio T5)."""
    return config_class(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def build_tiny_components(kind: Literal["t2v", "i2v"], seed: int = 0) -> dict[str, Any]:
    """The keyword arguments of WanPipeline / WanImageToVideoPipeline minus the config ones."""
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(tiny_t5_config(UMT5Config, tokenizer))
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    # Image-to-video experts see the noise (16 channels) plus the mask (4) and the encoded image (16).
    in_channels = 16 if kind == "t2v" else 36
    torch.manual_seed(seed)
    transformer = _transformer(in_channels)
    torch.manual_seed(seed + 1)
    transformer_2 = _transformer(in_channels)
    for module in (text_encoder, vae, transformer, transformer_2):
        module.eval()  # built modules start in training mode: dropout would make seeds not reproduce
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder,
        "vae": vae,
        "scheduler": UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
        "transformer": transformer,
        "transformer_2": transformer_2,
    }


def _transformer(in_channels: int) -> WanTransformer3DModel:
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
