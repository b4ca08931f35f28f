"""A small single-file SD x4 upscaler checkpoint for ComfyUI's native Load Checkpoint, built at test time.

ComfyUI recognises ``stable-diffusion-x4-upscaler`` (``x4-upscaler-ema.safetensors``) in
``comfy/model_detection.py`` (``detect_unet_config``) by shapes it reads from the UNet and matches them against
``comfy/supported_models.py`` ``SD_X4Upscaler.unet_config``: 256 base channels (``input_blocks.0.0.weight``
is ``[256, 7, 3, 3]``: 4 latent + 3 image channels), 1024-d cross-attention, linear transformer projections and
no ADM input. Everything else (levels, blocks per level, transformer depths, middle block) is read from the
state dict too, so this UNet keeps those values and cuts the rest to the least ComfyUI builds: one level, one
residual block with a (cross-attention only, as ``SD_X4Upscaler`` disables self-attention there) transformer,
two decoder residual blocks and no middle block (~8M parameters). Its cost is linear in the pixel count.

The other two parts have fixed shapes in ComfyUI, and ComfyUI leaves weights a checkpoint lacks uninitialised,
so they keep their real sizes: the VAE ComfyUI builds for the x4 upscaler (``comfy/sd.py`` ``VAE``: 128 base
channels, multipliers 1-2-4, two blocks per level, 4x down/up; ~84M parameters) and OpenCLIP ViT-H's text
transformer (``comfy/text_encoders/sd2_clip_config.json``: 24 layers of 1024, vocabulary 49408; ~354M
parameters), here in OpenCLIP's key layout as the published file has it. All weights are random (seeded), in
fp16 on disk: ~0.9 GB, so the tests build it once per session.
"""

from __future__ import annotations

from pathlib import Path

import torch
from sd1_checkpoint import unet_to_ldm, vae_to_ldm

TEXT_WIDTH = 1024  # OpenCLIP ViT-H text transformer, fixed by ComfyUI's SD2 CLIP config
TEXT_LAYERS = 24
TEXT_VOCAB = 49408
TEXT_POSITIONS = 77
LEVELS = 4  # SD_X4Upscaler's disable_self_attentions has 4 entries, and ComfyUI's UNet asserts one per level


def x4_unet_vae(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The UNet (7 input channels, 1000 noise-level classes, one level of 256 channels with a cross-attention-only
    transformer, no middle block) and the x4 VAE (real shapes), as diffusers modules with seeded random weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        in_channels=7,  # 4 latent + 3 low-resolution image channels
        out_channels=4,
        block_out_channels=(256,) * LEVELS,
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * (LEVELS - 1) + ("CrossAttnDownBlock2D",),
        up_block_types=("UpBlock2D",) * LEVELS,
        mid_block_type=None,
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=8,
        num_class_embeds=1000,  # the noise level added to the low-resolution image
        use_linear_projection=True,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(128, 256, 512),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=2,
        latent_channels=4,
    )
    return unet, vae


def openclip_text_state(seed: int = 0, std: float = 0.02) -> dict[str, torch.Tensor]:
    """Random weights for OpenCLIP ViT-H's text transformer under ``cond_stage_model.model.`` (the layout of the
    SD 2.x checkpoints, which ``SD20.process_clip_state_dict`` converts): normal(0, ``std``) matrices and
    embeddings, unit layer-norm scales, zero biases; fp32."""
    gen = torch.Generator().manual_seed(seed)
    width = TEXT_WIDTH

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std

    prefix = "cond_stage_model.model."
    state = {
        "token_embedding.weight": normal(TEXT_VOCAB, width),
        "positional_embedding": normal(TEXT_POSITIONS, width),
        "ln_final.weight": torch.ones(width),
        "ln_final.bias": torch.zeros(width),
        "text_projection": normal(width, width),
    }
    for layer in range(TEXT_LAYERS):
        block = f"transformer.resblocks.{layer}."
        state |= {
            block + "ln_1.weight": torch.ones(width),
            block + "ln_1.bias": torch.zeros(width),
            block + "attn.in_proj_weight": normal(3 * width, width),
            block + "attn.in_proj_bias": torch.zeros(3 * width),
            block + "attn.out_proj.weight": normal(width, width),
            block + "attn.out_proj.bias": torch.zeros(width),
            block + "ln_2.weight": torch.ones(width),
            block + "ln_2.bias": torch.zeros(width),
            block + "mlp.c_fc.weight": normal(4 * width, width),
            block + "mlp.c_fc.bias": torch.zeros(4 * width),
            block + "mlp.c_proj.weight": normal(width, 4 * width),
            block + "mlp.c_proj.bias": torch.zeros(width),
        }
    return {prefix + key: value for key, value in state.items()}


def x4_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The whole checkpoint's state dict in the original (LDM) single-file layout: ``model.diffusion_model.*``,
    ``first_stage_model.*`` and ``cond_stage_model.model.*``; fp32."""
    unet, vae = x4_unet_vae(seed)
    unet_state = unet.state_dict()
    label = unet_state.pop("class_embedding.weight")  # [1000, 1024]: ComfyUI's ``label_emb`` (nn.Embedding)
    state = unet_to_ldm(unet_state, unet.config.layers_per_block, len(unet.config.block_out_channels))
    state["model.diffusion_model.label_emb.weight"] = label
    state |= vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels))
    return state | openclip_text_state(seed)


def write_x4_checkpoint(out: Path, seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    """Save :func:`x4_state` as one ``.safetensors`` file (``dtype`` on disk, fp16 by default: ~0.9 GB)."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(dtype).contiguous() for k, v in x4_state(seed).items()}, str(out))
    return out
