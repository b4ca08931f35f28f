"""Full-size models with the real architectures and random weights, for the benchmarks.

Weights cannot be downloaded here, so each model is built from its published config (values quoted from the
hub repos' ``config.json`` files, see BENCHMARKS.md) with random weights, saved once with ``save_pretrained``
under a cache folder and then loaded through the library's own loaders, so the timed code path is the real one.
Random weights cost the same arithmetic as trained ones; only the outputs are meaningless.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the worktree's library, not an installed copy

DEFAULT_CACHE = ROOT / ".cache" / "bench-models"


def parser(description: str) -> argparse.ArgumentParser:
    """A benchmark's command line with the options the real-size benchmarks share: ``--out`` (the JSON file for
    the results, required) and ``--cache`` (the folder of the built models)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="folder of the built models")
    return parser


def build_sd(path: Path, seed: int = 0) -> None:
    """miniSD = SD1.4 at 256x256: CompVis/stable-diffusion-v1-4's UNet, VAE, CLIP ViT-L/14 text encoder and
    PNDM configs (VAE ``sample_size`` 256 as in lambdalabs/miniSD-diffusers). The tokenizer is the tiny models'
    byte-level CLIP tokenizer: its cost is negligible and it changes no tensor shape (ids < 49408, 77 long)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from nopaingan_core.tiny import _byte_vocab

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        sample_size=256,
        in_channels=3,
        out_channels=3,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
        scaling_factor=0.18215,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
        )
    )
    vocab, merges = _byte_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(path)


def build_musicgen_small(path: Path, seed: int = 0) -> None:
    """facebook/musicgen-small: EnCodec 32 kHz (facebook/encodec_32khz's config) and the 24-layer, 1024-wide
    decoder over 4 codebooks of 2048. The T5 text encoder is shrunk: the encoder discards it unused."""
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    torch.manual_seed(seed)
    text = T5Config(vocab_size=32, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    codec = EncodecConfig(
        sampling_rate=32000,
        audio_channels=1,
        num_filters=64,
        hidden_size=128,
        codebook_dim=128,
        codebook_size=2048,
        num_residual_layers=1,
        num_lstm_layers=2,
        upsampling_ratios=[8, 5, 4, 4],
        target_bandwidths=[2.2],
        use_causal_conv=False,
        normalize=False,
        compress=2,
        norm_type="weight_norm",
        pad_mode="reflect",
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=2048,
        num_codebooks=4,
        hidden_size=1024,
        ffn_dim=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        max_position_embeddings=2048,
        activation_function="gelu",
        pad_token_id=2048,
        bos_token_id=2048,
        decoder_start_token_id=2048,
    )
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=codec.to_dict(), decoder=decoder.to_dict())
    config.decoder_start_token_id = 2048
    config.pad_token_id = 2048
    MusicgenForConditionalGeneration(config).save_pretrained(path)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=32000).save_pretrained(path)


def build_mert_95m(path: Path, seed: int = 0) -> None:
    """m-a-p/MERT-v1-95M as a HuBERT base: 12 post-norm layers of 768, 3072 FFN, 7-layer 512-channel conv
    front end (320x, 75 frames/s at 24 kHz), 128-wide conv positions in 16 groups."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(seed)
    config = HubertConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        conv_dim=(512,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=False,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
    )
    HubertModel(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=24000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(path)


def build_larger_clap_music(path: Path, seed: int = 0) -> None:
    """laion/larger_clap_music: its config.json sets only the audio tower's depths [2, 2, 12, 2],
    hidden_size 1024 and patch_embeds_hidden_size 128; everything else is ClapAudioConfig's default (heads
    [4, 8, 16, 32], window 8, 64 mels, spec 256, no fusion) and a default RoBERTa-base text tower."""
    from transformers import ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig

    torch.manual_seed(seed)
    audio = ClapAudioConfig(depths=[2, 2, 12, 2], hidden_size=1024, patch_embeds_hidden_size=128)
    config = ClapConfig(text_config=ClapTextConfig().to_dict(), audio_config=audio.to_dict(), projection_dim=512)
    ClapModel(config).save_pretrained(path)
    ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=48000,
        hop_length=480,
        max_length_s=10,
        fft_window_size=1024,
        truncation="rand_trunc",
        padding="repeatpad",
    ).save_pretrained(path)


BUILDERS: dict[str, Callable[[Path, int], None]] = {
    "sd": build_sd,
    "codified-lm": build_musicgen_small,
    "mert": build_mert_95m,
    "clap": build_larger_clap_music,
}


def model_path(name: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The folder of model ``name``, built on first use (a marker file makes an interrupted build redo)."""
    path = Path(cache) / name
    if not (path / ".complete").exists():
        print(f"building {name} with random weights under {path} (once)", file=sys.stderr)
        BUILDERS[name](path, 0)
        (path / ".complete").touch()
    return path
