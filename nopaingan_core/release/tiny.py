"""Tiny, randomly initialised upscalers with the real layouts, for tests and benchmarks (no download).

- :func:`build_tiny_x4`: a ``StableDiffusionUpscalePipeline`` folder laid out like
  ``stabilityai/stable-diffusion-x4-upscaler`` (7-channel UNet with noise-level class embedding, 4x VAE,
  CLIP text encoder, DDPM low-res scheduler, DDIM scheduler), loaded by the same ``from_pretrained`` path;
- :func:`build_tiny_x4_real_size`: the real x4 UNet/VAE widths (from the published config) with random
  weights, for measuring costs;
- :func:`build_tiny_esrgan`: a Real-ESRGAN (``RRDBNet``) state dict with the keys of ``RealESRGAN_x4plus``
  (``conv_first``, ``body.N.rdbM.convK``, ``conv_up1/2``, ``conv_hr``, ``conv_last``) and few blocks/features,
  saved as safetensors, which spandrel recognises as ESRGAN.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..tiny import _byte_vocab

GROWTH = 32  # RRDB's dense-block growth channels, fixed by the architecture


def build_tiny_x4(path: Path, seed: int = 0, real_size: bool = False) -> Path:
    """Save a tiny (or, with ``real_size``, real-width) x4 upscaler pipeline to ``path``."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    text_dim = 1024 if real_size else 32
    unet = UNet2DConditionModel(
        sample_size=128 if real_size else 32,
        in_channels=7,  # 4 latent + 3 low-resolution image channels
        out_channels=4,
        block_out_channels=(256, 512, 512, 1024) if real_size else (16, 32),
        layers_per_block=2 if real_size else 1,
        down_block_types=(
            ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
            if real_size
            else ("DownBlock2D", "CrossAttnDownBlock2D")
        ),
        up_block_types=(
            ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")
            if real_size
            else ("CrossAttnUpBlock2D", "UpBlock2D")
        ),
        cross_attention_dim=text_dim,
        attention_head_dim=8,
        norm_num_groups=32 if real_size else 8,
        num_class_embeds=1000,  # the noise level added to the low-resolution image
        use_linear_projection=True,
    )
    vae = AutoencoderKL(
        sample_size=256 if real_size else 64,  # VAE tiling's tile size in pixels
        in_channels=3,
        out_channels=3,
        block_out_channels=(128, 256, 512) if real_size else (8, 8, 16),  # 3 blocks: 4x down/up
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=2 if real_size else 1,
        latent_channels=4,
        norm_num_groups=32 if real_size else 4,
        scaling_factor=0.08333,
    )
    vocab, merges = _byte_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=text_dim,
            intermediate_size=4096 if real_size else 64,
            num_hidden_layers=23 if real_size else 1,
            num_attention_heads=16 if real_size else 4,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear"),
        scheduler=DDIMScheduler(
            num_train_timesteps=1000,
            beta_start=0.0001,
            beta_end=0.02,
            beta_schedule="scaled_linear",
            prediction_type="v_prediction",
            set_alpha_to_one=False,
        ),
        max_noise_level=350,
    )
    pipe.save_pretrained(path)
    return path


def esrgan_state_dict(features: int = 8, blocks: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in Real-ESRGAN's ``RRDBNet`` key layout (x4: two nearest+conv upsampling stages)."""
    gen = torch.Generator().manual_seed(seed)

    def conv(out_ch: int, in_ch: int, prefix: str, scale: float = 0.1) -> dict[str, torch.Tensor]:
        weight = torch.randn(out_ch, in_ch, 3, 3, generator=gen) * scale / (in_ch * 9) ** 0.5
        return {f"{prefix}.weight": weight, f"{prefix}.bias": torch.zeros(out_ch)}

    state = conv(features, 3, "conv_first", 1.0)
    for b in range(blocks):
        for r in range(1, 4):
            for k in range(1, 6):
                out_ch = features if k == 5 else GROWTH
                state |= conv(out_ch, features + (k - 1) * GROWTH, f"body.{b}.rdb{r}.conv{k}")
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        state |= conv(features, features, name, 1.0)
    state |= conv(3, features, "conv_last", 1.0)
    return state


def build_tiny_esrgan(path: Path, features: int = 8, blocks: int = 1, seed: int = 0) -> Path:
    """Save :func:`esrgan_state_dict` as ``path`` (.safetensors)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(esrgan_state_dict(features, blocks, seed), str(path))
    return path
