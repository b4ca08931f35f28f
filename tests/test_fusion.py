"""Adapter and fusion: shapes for any encoder and text length, exact identity when untrained or at
strength 0, and music that changes the conditioning once trained."""

from __future__ import annotations

import pytest
import torch

from nopaingan_core.adapter import AdapterConfig, MusicAdapter
from nopaingan_core.checkpoint import new_fusion
from nopaingan_core.encoders import EncoderInfo, MusicEmbedding
from nopaingan_core.errors import CheckpointError, NoPainGanError
from nopaingan_core.fusion import FusionConfig, MusicTextFusion

INFO = EncoderInfo("codified-lm", "facebook/musicgen-small", 12, 64, 50, 32000)


def embedding(batch: int = 1, frames: int = 1250, info: EncoderInfo = INFO) -> MusicEmbedding:
    gen = torch.Generator().manual_seed(batch * 1000 + frames)
    return MusicEmbedding(torch.randn(batch, frames, info.dim, generator=gen), info, 0.0, 25.0)


@pytest.mark.parametrize(("frames", "dim"), [(1250, 64), (1875, 48), (80, 32), (3, 16)])
def test_adapter_maps_any_length_to_n_tokens(frames, dim):
    adapter = MusicAdapter(AdapterConfig(in_dim=dim, out_dim=768, tokens=16))
    out = adapter(torch.randn(2, frames, dim))
    assert out.shape == (2, 16, 768)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("length", [77, 154, 231])
def test_fusion_keeps_the_text_shape_for_long_prompts(length):
    fusion = MusicTextFusion(FusionConfig(dim=768))
    with torch.no_grad():
        fusion.gate.fill_(0.5)
    text = torch.randn(2, length, 768)
    out = fusion(text, torch.randn(2, 16, 768))
    assert out.shape == text.shape
    assert not torch.allclose(out, text)


def test_untrained_fusion_and_strength_zero_are_exact_identities():
    model = new_fusion(INFO)
    text = torch.randn(3, 77, 768)
    tokens = model.music_tokens(embedding(3))
    assert tokens.shape == (3, 16, 768)
    assert torch.equal(model.fuse(text, tokens, 1.0), text)  # gate starts at zero
    with torch.no_grad():
        model.fusion.gate.fill_(1.0)
    assert not torch.equal(model.fuse(text, tokens, 1.0), text)
    assert torch.equal(model.fuse(text, tokens, 0.0), text)


def test_strength_scales_the_music_contribution():
    model = new_fusion(INFO, gate=0.3)
    text = torch.randn(1, 77, 768)
    tokens = model.music_tokens(embedding())
    with torch.no_grad():
        half = model.fuse(text, tokens, 0.5) - text
        full = model.fuse(text, tokens, 1.0) - text
    assert torch.allclose(full, 2 * half, atol=1e-5)


def test_batches_broadcast_and_mismatches_are_named():
    model = new_fusion(INFO, gate=1.0)
    with torch.no_grad():
        tokens = model.music_tokens(embedding(1))
        out = model.fuse(torch.randn(4, 77, 768), tokens)
    assert out.shape == (4, 77, 768)
    with pytest.raises(NoPainGanError, match="batch of 3 text embeddings with a batch of 2 music"):
        model.fuse(torch.randn(3, 77, 768), model.music_tokens(embedding(2)))
    with pytest.raises(CheckpointError, match="expects 768-d text embeddings .* got 1024-d"):
        model.fuse(torch.randn(1, 77, 1024), tokens)


def test_encoder_mismatch_is_explained():
    model = new_fusion(INFO)
    clap = EncoderInfo("clap", "laion/larger_clap_music", 4, 32, 3.2, 48000)
    with pytest.raises(CheckpointError, match="expects a 64-d codified-lm layer-12 embedding, got 32-d clap layer-4"):
        model.music_tokens(embedding(info=clap))


def test_fusion_learns_to_use_the_music():
    """A few optimiser steps on a toy target that depends only on the music move the output toward it:
    gradients reach the adapter and the fusion through the zero-initialised gate (narrow text to keep it fast)."""
    torch.manual_seed(0)
    model = new_fusion(INFO, text_dim=64)
    text = torch.randn(1, 77, 64)
    emb_a, emb_b = embedding(1, 100), embedding(1, 120)
    target_a, target_b = text + 0.1, text - 0.1
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        out_a = model.fuse(text, model.music_tokens(emb_a))
        out_b = model.fuse(text, model.music_tokens(emb_b))
        return (out_a - target_a).pow(2).mean() + (out_b - target_b).pow(2).mean()

    start = loss().item()
    for _ in range(30):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < 0.5 * start
    assert model.adapter.proj.weight.grad.abs().sum() > 0
