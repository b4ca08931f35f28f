"""Options that do less UNet work per image: guidance cut-off and DeepCache.

Off (their defaults) they must give bit-identical images to the plain loop; on, the UNet must do the expected
amount of work less, and the image must stay close to the full computation's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nopaingan_core.deep_cache import DeepCacheUNet
from nopaingan_core.errors import NoPainGanError
from nopaingan_core.generate import SamplerSettings
from nopaingan_core.sampling import sample

PROMPT = "Create an album cover for the album Tests. The genre is noise."
SIZE, STEPS, SEED = 64, 10, 3


@pytest.fixture(scope="module")
def prompts(tiny_sd):
    return tiny_sd.encode_prompt([PROMPT]), tiny_sd.encode_prompt([""])


class Calls:
    """Counts the UNet's full forward calls and the batch rows of each (2 = guided, 1 = conditional only)."""

    def __init__(self, unet):
        self.rows: list[int] = []
        self.unet = unet

    def __enter__(self):
        self.hook = self.unet.register_forward_pre_hook(lambda m, args: self.rows.append(args[0].shape[0]))
        return self

    def __exit__(self, *exc):
        self.hook.remove()


def run(sd, prompts, scheduler="pndm", steps=STEPS, **options) -> tuple[torch.Tensor, list[int]]:
    cond, uncond = prompts
    with Calls(sd.unet) as calls:
        latents = sample(
            sd, cond, uncond, scheduler=scheduler, steps=steps, seed=SEED, width=SIZE, height=SIZE, **options
        )
    return sd.decode(latents), calls.rows


def plain_loop(sd, cond, uncond, steps: int) -> torch.Tensor:
    """Today's loop (diffusers' text-to-image loop, PNDM), written out: the reference for bit-identity."""
    from nopaingan_core.sampling import initial_noise

    sched = sd.scheduler("pndm")
    sched.set_timesteps(steps)
    latents, _ = initial_noise(sd, 1, SIZE, SIZE, SEED)
    context = torch.cat([uncond, cond])
    with torch.inference_mode():
        for t in sched.timesteps:
            noise = sd.unet(torch.cat([latents] * 2), t, encoder_hidden_states=context, return_dict=False)[0]
            u, c = noise.chunk(2)
            latents = sched.step(u + 7.5 * (c - u), t, latents, return_dict=False)[0]
        return sd.decode(latents)


def test_defaults_are_bit_identical_to_the_plain_loop(tiny_sd, prompts):
    images, rows = run(tiny_sd, prompts)
    explicit, _ = run(tiny_sd, prompts, cfg_cutoff=1.0, deep_cache=1)
    assert torch.equal(images, explicit)
    assert torch.equal(images, plain_loop(tiny_sd, *prompts, STEPS))
    assert rows == [2] * (STEPS + 1)  # PNDM: one extra call for its first step


@pytest.mark.parametrize(("cutoff", "guided"), [(0.5, 6), (0.8, 9), (0.0, 0), (0.9, 10)])
def test_cfg_cutoff_drops_the_unconditional_branch_late(tiny_sd, prompts, cutoff, guided):
    full, _ = run(tiny_sd, prompts)
    images, rows = run(tiny_sd, prompts, cfg_cutoff=cutoff)
    calls = STEPS + 1
    assert guided == math.ceil(cutoff * calls)
    assert rows == [2] * guided + [1] * (calls - guided)
    assert sum(rows) < sum([2] * calls)
    difference = (images - full).abs()
    if cutoff >= 0.8:  # only the last, low-noise steps unguided: the image stays close
        assert difference.mean() < 0.02, difference.mean()
    assert not torch.equal(images, full)


@pytest.mark.parametrize("interval", [2, 3, 5])
def test_deep_cache_runs_the_full_unet_every_n_steps(tiny_sd, prompts, interval):
    full, _ = run(tiny_sd, prompts)
    images, rows = run(tiny_sd, prompts, deep_cache=interval)
    calls = STEPS + 1
    assert len(rows) == len(range(0, calls, interval))  # full forwards at steps 0, N, 2N...
    difference = (images - full).abs()
    assert 0 < difference.mean() < 0.05, difference.mean()
    assert images.shape == full.shape and images.std() > 0.01


def test_deep_cache_full_steps_are_exact_and_shallow_steps_close(tiny_sd_fp32):
    """The first call is the UNet's own output; a shallow call on the same input reuses features of that very
    input, so it must reproduce the full output (to float rounding): the outer level is computed exactly."""
    cached = DeepCacheUNet(tiny_sd_fp32.unet, 2)  # fp32 rounding, whatever --dtype auto picks on this CPU
    x, context, t = torch.randn(2, 4, 8, 8), torch.randn(2, 77, 768), torch.tensor(500)
    with torch.inference_mode():
        expected = tiny_sd_fp32.unet(x, t, encoder_hidden_states=context).sample
        assert torch.equal(cached(x, t, context, 0), expected)
        torch.testing.assert_close(cached(x, t, context, 1), expected, rtol=1e-4, atol=1e-5)
        # conditional branch only after a guided full step: the kept features' second half
        torch.testing.assert_close(cached(x[1:], t, context[1:], 3), expected[1:], rtol=1e-4, atol=1e-5)
    assert (cached.full_calls, cached.shallow_calls) == (1, 2)


def test_both_options_together(tiny_sd, prompts):
    full, _ = run(tiny_sd, prompts)
    images, rows = run(tiny_sd, prompts, cfg_cutoff=0.7, deep_cache=2)
    assert rows and sum(rows) < 2 * (STEPS + 1) // 2
    assert (images - full).abs().mean() < 0.05


@settings(max_examples=25, deadline=None)
@given(st.floats(allow_nan=True).filter(lambda f: not 0.0 <= f <= 1.0))
def test_cfg_cutoff_outside_0_1_is_one_line(cutoff):
    with pytest.raises(NoPainGanError, match="cfg_cutoff must be a fraction"):
        SamplerSettings(cfg_cutoff=cutoff)


@given(st.integers(max_value=0) | st.floats(allow_nan=False) | st.booleans())
def test_deep_cache_needs_a_whole_number_of_steps(interval):
    with pytest.raises(NoPainGanError, match="deep_cache must be a whole number"):
        SamplerSettings(deep_cache=interval)


def test_deep_cache_refuses_a_non_diffusers_unet(tiny_sd, prompts):
    class Compiled(torch.nn.Module):  # e.g. an exported runtime's model: no blocks to reach into
        config = {}

    with pytest.raises(NoPainGanError, match="deep_cache needs the torch backend"):
        DeepCacheUNet(Compiled(), 3)


def test_cli_options_reach_the_image_and_its_record(tmp_path, tiny_models, monkeypatch, capsys):
    import json

    from PIL import Image

    from nopaingan_core import precision
    from nopaingan_core.generate import generate_covers
    from nopaingan_core.prompt import album_prompt
    from nopaingan_core.sampling import load_minisd, to_pil
    from training.cli import main

    monkeypatch.setattr(precision, "cpu_flags", lambda *a, **k: {"avx2"})  # no native bf16: auto is fp32
    options = ["--steps", "3", "--width", "64", "--height", "64", "--cfg-cutoff", "0.5", "--deep-cache", "2"]
    sd_dir = str(tiny_models["sd"])
    main(["generate", "--album", "Opts", "--genre", "noise", "--sd", sd_dir, "--out", str(tmp_path), *options])
    assert "precision: fp32 (--dtype auto)" in capsys.readouterr().out
    (png,) = tmp_path.glob("*.png")
    record = json.loads(Image.open(png).text["nopaingan"])
    assert (record["cfg_cutoff"], record["deep_cache"], record["precision"]) == (0.5, 2, "fp32")
    settings = SamplerSettings(steps=3, width=64, height=64, cfg_cutoff=0.5, deep_cache=2)
    expected = generate_covers(load_minisd(sd_dir, prepack=True), album_prompt("Opts", "noise"), settings=settings)
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(to_pil(expected)[0]))
