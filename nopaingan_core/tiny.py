"""Tiny, randomly initialised models with the real architectures, for the offline demo and the tests.

Each is saved with ``save_pretrained`` in the layout of its real hub repo, so every command loads it
through the same code path as ``lambdalabs/miniSD-diffusers`` or ``facebook/musicgen-small``. Their
outputs are noise: they prove the plumbing, not the art.
"""

from __future__ import annotations

from pathlib import Path

import torch

TEXT_DIM = 768  # miniSD's CLIP text width, kept so the fusion sees real shapes


def _byte_vocab() -> tuple[dict[str, int], list[str]]:
    """A byte-level BPE vocabulary with every byte, with and without CLIP's end-of-word mark."""
    from tokenizers.pre_tokenizers import ByteLevel

    chars = sorted(ByteLevel.alphabet())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, []


def _roberta_tokenizer(max_length: int):
    """A byte-level RoBERTa tokenizer (no merges) with RoBERTa's special-token ids, as CLAP's text tower uses."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizer

    tokens = ["<s>", "<pad>", "</s>", "<unk>", *sorted(ByteLevel.alphabet()), "<mask>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def build_tiny_sd(path: Path, seed: int = 0) -> Path:
    """miniSD-shaped: UNet with 768-d cross-attention, 8x VAE, CLIP text encoder and tokenizer, PNDM."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        block_out_channels=(32, 64),
        layers_per_block=1,
        # attention at the lower resolution only: at 256 px a full-resolution self-attention over 32x32
        # latents costs more than everything else in the tiny pipeline
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        sample_size=256,
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
    )
    vocab, merges = _byte_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=TEXT_DIM,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    return path


def build_tiny_musicgen(path: Path, seed: int = 0, layers: int = 4) -> Path:
    """MusicGen-small-shaped: 32 kHz EnCodec with 4 codebooks at 50 Hz, a ``layers``-deep decoder (the encoder
    reads the middle one, as it reads layer 12 of musicgen-small's 24), tiny T5."""
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    torch.manual_seed(seed)
    codes = 64
    text = T5Config(vocab_size=32, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    codec = EncodecConfig(
        sampling_rate=32000,
        audio_channels=1,
        num_filters=4,
        hidden_size=16,
        num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 4],
        codebook_size=codes,
        codebook_dim=16,
        target_bandwidths=[1.2],  # 4 codebooks of 6 bits at 50 Hz, as musicgen-small's 2.2 kbps with 11 bits
        use_causal_conv=False,
        normalize=False,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=codes,
        num_codebooks=4,
        hidden_size=32,
        ffn_dim=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=2048,
        pad_token_id=codes,
        bos_token_id=codes,
        decoder_start_token_id=codes,
    )
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=codec.to_dict(), decoder=decoder.to_dict())
    config.decoder_start_token_id = codes
    config.pad_token_id = codes
    model = MusicgenForConditionalGeneration(config)
    _init_codebooks(model.audio_encoder)
    model.save_pretrained(path)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=32000).save_pretrained(path)
    return path


def _init_codebooks(codec: torch.nn.Module) -> None:
    """Fill EnCodec's codebooks (zeros until trained) with encoder frames of synthetic songs, as k-means
    initialisation would, so different music gives different codes."""
    from .synth import MINOR, synth_song

    songs = [
        synth_song(2.0, 32000, tempo, root, mode, seed=i).mono().waveform[:, 0]
        for i, (tempo, root, mode) in enumerate([(80, 196.0, MINOR), (120, 262.0, None), (150, 330.0, MINOR)])
    ]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        frames = codec.encoder(torch.cat(songs)[:, None])
        residual = frames.transpose(1, 2).reshape(-1, frames.shape[1])
        for layer in codec.quantizer.layers:
            book = layer.codebook
            picks = residual[torch.randperm(residual.shape[0], generator=gen)[: book.codebook_size]]
            book.embed.copy_(picks)
            book.embed_avg.copy_(picks)
            residual = residual - book.decode(book.encode(residual))


def pretrain_tiny_musicgen(path: Path, clips: list, steps: int = 200, seed: int = 0, lr: float = 3e-3) -> dict:
    """Train a tiny MusicGen's decoder briefly as what it is, a language model of EnCodec codes, on ``clips``
    (:class:`~nopaingan_core.audio.AudioClip`), and save it back to ``path``; returns the first and last losses.

    A randomly initialised decoder's hidden states are almost only its position embeddings (its token
    embeddings start at std 0.02, the sinusoidal positions at about 0.7), so a music encoder reading them barely
    sees the audio; the published musicgen-small was trained on 20 000 hours of music. A couple of hundred steps
    of next-code prediction (cross-entropy over the four codebooks with MusicGen's delay pattern) make the
    token embeddings and layers carry the codes, as training made the real model's. Deterministic: the same
    model, clips and ``seed`` give the same weights (dropout included); torch's global generator is left as it was.
    """
    from transformers import MusicgenForConditionalGeneration

    from .encoders.codified_lm import CodifiedLMEncoder

    # Loading (weights the checkpoint lacks start random) and the decoder's dropout draw from torch's global
    # generator: seeded here and the caller's state restored, so the same seed gives the same weights bit for bit.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = CodifiedLMEncoder(str(path))
        with torch.no_grad():
            codes = torch.stack(
                [encoder.codes(c.mono().resample(encoder.sample_rate).waveform[:, 0])[0] for c in clips]
            )
        model = MusicgenForConditionalGeneration.from_pretrained(path)
        decoder = model.decoder
        pad = decoder.config.pad_token_id
        optimizer = torch.optim.AdamW(decoder.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        batch = min(8, len(codes))
        losses = []
        decoder.train()
        for _ in range(steps):
            ids = encoder.delayed(codes[torch.randint(0, len(codes), (batch,), generator=gen)])  # [B*K, F+K]
            logits = decoder(input_ids=ids[:, :-1]).logits  # [B*K, F+K-1, V]
            target = ids[:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=pad)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        model.eval().save_pretrained(path)
    return {"first_loss": losses[0], "last_loss": losses[-1], "steps": steps, "clips": len(clips)}


def build_tiny_mert(path: Path, seed: int = 0) -> Path:
    """MERT-v1-shaped HuBERT: 24 kHz, 320x convolutional front end (75 frames/s), 4 post-norm layers."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(seed)
    config = HubertConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    HubertModel(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=24000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(path)
    return path


def build_tiny_clap(path: Path, seed: int = 0) -> Path:
    """larger_clap_music-shaped: HTSAT audio tower on 48 kHz 10 s log-mels, RoBERTa text tower and its
    tokenizer, so one folder serves the music encoder (audio) and the tagger (audio and text)."""
    from transformers import ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig

    torch.manual_seed(seed)
    audio = ClapAudioConfig(
        window_size=8,
        num_mel_bins=64,
        spec_size=256,
        patch_size=4,
        patch_stride=(4, 4),
        depths=[1, 1],
        num_attention_heads=[2, 2],
        patch_embeds_hidden_size=16,
        hidden_size=32,
        projection_dim=16,
        enable_fusion=False,
    )
    text = ClapTextConfig(
        vocab_size=514,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=80,
        projection_dim=16,
    )
    config = ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16)
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
    _roberta_tokenizer(max_length=text.max_position_embeddings - 2).save_pretrained(path)
    return path


BUILDERS = {
    "sd": build_tiny_sd,
    "codified-lm": build_tiny_musicgen,
    "mert": build_tiny_mert,
    "clap": build_tiny_clap,
}


# Written into each folder's ``.complete``; bump it when a builder changes so older folders are rebuilt.
TINY_VERSION = "3"  # 2: the CLAP folder has a tokenizer; 3: UNet attention at 16x16 only


def build_tiny_models(root: Path, seed: int = 0) -> dict[str, Path]:
    """Build (once per :data:`TINY_VERSION`) every tiny model under ``root``: ``root/sd``, ``root/mir/<kind>``."""
    paths = {}
    for name, build in BUILDERS.items():
        path = Path(root) / ("sd" if name == "sd" else f"mir/{name}")
        stamp = path / ".complete"
        if not stamp.is_file() or stamp.read_text() != TINY_VERSION:
            build(path, seed)
            stamp.write_text(TINY_VERSION)
        paths[name] = path
    return paths
