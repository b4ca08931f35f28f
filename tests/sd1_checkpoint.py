"""A small single-file SD1.x checkpoint for ComfyUI's native Load Checkpoint, built at test time.

The tiny diffusers SD of ``nopaingan_core.tiny`` cannot be loaded by ComfyUI: ComfyUI recognises SD1.x by
its UNet's 320 base channels, and builds CLIP-L (49408-token vocabulary, 12 layers of 768) and the SD VAE
(128 base channels) with fixed shapes. So this builds an SD1.x-shaped model whose UNet is cut to one level
(~24M parameters) while the text encoder and VAE keep their real shapes, with random weights, and converts
the diffusers state dicts to the original single-file (LDM) key layout that ComfyUI, A1111 and the original
``miniSD.ckpt`` use. diffusers ships only the opposite conversion inside its package (its diffusers-to-LDM
script is not installed), so the key mapping is written out here.
"""

from __future__ import annotations

from pathlib import Path

import torch

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def sd1_modules(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """UNet, VAE and text encoder shaped like SD1.x as ComfyUI expects it: a one-level UNet with 320 channels
    and 768-d cross-attention, the SD VAE's shapes and CLIP-L's (fewer layers would leave ComfyUI's others
    uninitialised)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(320,),
        down_block_types=("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",),
        layers_per_block=1,
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
    )
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
    )
    return unet, vae, CLIPTextModel(config)


def _rename(key: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        key = key.replace(f".{old}.", f".{new}.")
    return key


def unet_to_ldm(state: dict[str, torch.Tensor], layers: int, levels: int) -> dict[str, torch.Tensor]:
    """diffusers ``UNet2DConditionModel`` keys -> ``model.diffusion_model.*`` (input/middle/output blocks)."""
    fixed = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    prefixes = dict(fixed)
    for i in range(levels):
        for j in range(layers):
            block = 1 + i * (layers + 1) + j
            prefixes[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{block}.0"
            prefixes[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{block}.1"
        prefixes[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{(i + 1) * (layers + 1)}.0.op"
        for j in range(layers + 1):
            block = i * (layers + 1) + j
            prefixes[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{block}.0"
            prefixes[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{block}.1"
        has_attention = any(k.startswith(f"up_blocks.{i}.attentions.") for k in state)
        last = i * (layers + 1) + layers
        prefixes[f"up_blocks.{i}.upsamplers.0"] = f"output_blocks.{last}.{2 if has_attention else 1}"
    prefixes["mid_block.attentions.0"] = "middle_block.1"
    prefixes["mid_block.resnets.0"] = "middle_block.0"
    prefixes["mid_block.resnets.1"] = "middle_block.2"
    out = {}
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p + ".")), None)
        if prefix is None:
            raise KeyError(f"no LDM name for UNet key {key}")
        new = prefixes[prefix] + key[len(prefix) :]
        if ".resnets." in key:
            new = _rename(new, _RESNET)
        out["model.diffusion_model." + new] = value
    return out


def vae_to_ldm(state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """diffusers ``AutoencoderKL`` keys -> ``first_stage_model.*`` (encoder.down / decoder.up / mid)."""
    prefixes = {
        "encoder.conv_norm_out": "encoder.norm_out",
        "decoder.conv_norm_out": "decoder.norm_out",
        "encoder.mid_block.attentions.0": "encoder.mid.attn_1",
        "decoder.mid_block.attentions.0": "decoder.mid.attn_1",
    }
    for part in ("encoder", "decoder"):
        for j in range(2):
            prefixes[f"{part}.mid_block.resnets.{j}"] = f"{part}.mid.block_{j + 1}"
    for i in range(levels):
        prefixes[f"encoder.down_blocks.{i}.resnets"] = f"encoder.down.{i}.block"
        prefixes[f"encoder.down_blocks.{i}.downsamplers.0"] = f"encoder.down.{i}.downsample"
        prefixes[f"decoder.up_blocks.{i}.resnets"] = f"decoder.up.{levels - 1 - i}.block"
        prefixes[f"decoder.up_blocks.{i}.upsamplers.0"] = f"decoder.up.{levels - 1 - i}.upsample"
    out = {}
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p + ".")), None)
        new = key if prefix is None else prefixes[prefix] + key[len(prefix) :]
        if ".attn_1." in new:
            new = _rename(new, _VAE_ATTENTION)
            if value.dim() == 2:  # linear -> 1x1 convolution
                value = value[:, :, None, None]
        elif ".block" in new:
            new = _rename(new, _VAE_RESNET)
        out["first_stage_model." + new] = value
    return out


def write_sd1_checkpoint(out: Path, seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    """Build :func:`sd1_modules` and save them as one ``.safetensors`` in the original checkpoint layout."""
    from safetensors.torch import save_file

    unet, vae, text = sd1_modules(seed)
    state = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block, len(unet.config.block_out_channels))
    state |= vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels))
    state |= {f"cond_stage_model.transformer.{k}": v for k, v in text.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(dtype).contiguous() for k, v in state.items()}, str(out))
    return out
