"""Generation on tiny models: determinism, the text-only baseline, music fusion, progress and cancel."""

from __future__ import annotations

import pytest
import torch

from nopaingan_core.checkpoint import new_fusion
from nopaingan_core.encoders import load_encoder
from nopaingan_core.errors import Cancelled, NoPainGanError
from nopaingan_core.generate import SamplerSettings, condition, generate_covers
from nopaingan_core.sampling import sample, to_pil

FAST = SamplerSettings(steps=3, num=2, width=64, height=64, seed=7)
PROMPT = "Create an album cover for the album Test. The genre is jazz."


@pytest.fixture(scope="module")
def music(tiny_models, song):
    encoder = load_encoder("mert", str(tiny_models["mert"]))
    fusion = new_fusion(encoder.info, gate=1.0)
    return encoder.encode(song), fusion


@pytest.mark.parametrize("scheduler", ["ddpm", "pndm", "ddim", "dpmpp"])
def test_same_seed_same_images_bit_for_bit(tiny_sd, scheduler):
    settings = SamplerSettings(scheduler, 3, 7.5, 11, 2, 64, 64)
    first = generate_covers(tiny_sd, PROMPT, settings=settings)
    second = generate_covers(tiny_sd, PROMPT, settings=settings)
    assert first.shape == (2, 64, 64, 3) and first.dtype == torch.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert torch.equal(first, second)
    assert not torch.equal(first[0], first[1])  # each image of the batch has its own noise
    other = generate_covers(tiny_sd, PROMPT, settings=SamplerSettings(scheduler, 3, 7.5, 12, 2, 64, 64))
    assert not torch.equal(first, other)


def test_music_changes_the_cover_and_strength_zero_is_text_only(tiny_sd, music):
    embedding, fusion = music
    text_only = generate_covers(tiny_sd, PROMPT, settings=FAST)
    fused = generate_covers(tiny_sd, PROMPT, music=embedding, fusion=fusion, settings=FAST)
    zero = generate_covers(tiny_sd, PROMPT, music=embedding, fusion=fusion, strength=0.0, settings=FAST)
    assert torch.equal(zero, text_only)
    assert (fused - text_only).abs().mean() > 1e-3


def test_condition_is_the_prompt_embedding_fused(tiny_sd, music):
    embedding, fusion = music
    text = tiny_sd.encode_prompt([PROMPT])
    assert text.shape == (1, 77, 768)
    assert torch.equal(condition(tiny_sd, PROMPT), text)
    with torch.no_grad():
        expected = fusion.fuse(text, fusion.music_tokens(embedding), 0.5)
    assert torch.equal(condition(tiny_sd, PROMPT, embedding, fusion, 0.5), expected)


def test_progress_and_cancel(tiny_sd):
    text = tiny_sd.encode_prompt([PROMPT])
    seen = []
    sample(
        tiny_sd, text, text, steps=4, scheduler="ddim", width=64, height=64, callback=lambda i, n: seen.append((i, n))
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled, match="cancelled at step 2 of 4"):
        sample(tiny_sd, text, text, steps=4, scheduler="ddim", width=64, height=64, cancel=cancel)


def test_bad_settings_are_named(tiny_sd):
    text = tiny_sd.encode_prompt([PROMPT])
    with pytest.raises(NoPainGanError, match="multiples of 8, got 60x64"):
        sample(tiny_sd, text, text, width=60, height=64)
    with pytest.raises(NoPainGanError, match="unknown scheduler 'euler'"):
        sample(tiny_sd, text, text, scheduler="euler")
    with pytest.raises(NoPainGanError, match="needs a negative conditioning"):
        sample(tiny_sd, text, None, guidance=5.0)
    with pytest.raises(NoPainGanError, match="steps must be between 1 and 999, got 1000"):
        sample(tiny_sd, text, text, steps=1000)


def test_pil_output(tiny_sd):
    images = generate_covers(tiny_sd, PROMPT, settings=FAST)
    pil = to_pil(images)
    assert [im.size for im in pil] == [(64, 64), (64, 64)]
