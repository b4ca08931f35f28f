"""Our sampling loop gives diffusers' StableDiffusionPipeline images, for every scheduler, and is deterministic.

The pipeline runs on identical copies of the tiny miniSD components loaded the way diffusers loads them (no
channels-last, no inference mode), so this also checks that our speed choices keep the images within float
tolerance: 1e-3 on [0, 1] images, a quarter of one 8-bit level. Channels-last convolutions sum in another order
(~1e-6 per UNet call); DDIM's x0 prediction at high noise amplifies that to ~1e-4 after a few steps. Ours runs
in fp32 here as the pipeline does (``tiny_sd_fp32``): bf16, which ``--dtype auto`` picks on CPUs with native bf16,
is a precision choice whose image difference BENCHMARKS.md reports, not a speed choice held to float tolerance.
"""

from __future__ import annotations

import pytest
import torch

from nopaingan_core.prepack import PackedConv2d
from nopaingan_core.sampling import SCHEDULERS, load_minisd, sample

PROMPT = "Create an album cover for the album Tests. The genre is noise."
SIZE, STEPS, SEED, GUIDANCE = 64, 5, 3, 7.5


@pytest.fixture(scope="module")
def pipeline(tiny_models):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        str(tiny_models["sd"]), safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def ours(sd, scheduler: str, seed: int = SEED) -> torch.Tensor:
    cond, uncond = sd.encode_prompt([PROMPT]), sd.encode_prompt([""])
    latents = sample(
        sd, cond, uncond, scheduler=scheduler, steps=STEPS, guidance=GUIDANCE, seed=seed, width=SIZE, height=SIZE
    )
    return sd.decode(latents)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_matches_stable_diffusion_pipeline(tiny_sd_fp32, pipeline, scheduler):
    pipeline.scheduler = tiny_sd_fp32.scheduler(scheduler)
    theirs = pipeline(
        PROMPT,
        negative_prompt="",
        num_inference_steps=STEPS,
        guidance_scale=GUIDANCE,
        height=SIZE,
        width=SIZE,
        generator=torch.Generator("cpu").manual_seed(SEED),
        output_type="pt",
    ).images.permute(0, 2, 3, 1)
    mine = ours(tiny_sd_fp32, scheduler)
    assert mine.shape == theirs.shape == (1, SIZE, SIZE, 3)
    assert mine.std() > 0.01  # a real image, not a constant that would match trivially
    torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-3)


def test_same_seed_same_image(tiny_sd):
    """DDPM draws fresh noise at every step: the hardest case for determinism."""
    first, second = ours(tiny_sd, "ddpm"), ours(tiny_sd, "ddpm")
    assert torch.equal(first, second)
    assert not torch.equal(first, ours(tiny_sd, "ddpm", seed=SEED + 1))


def test_prepacked_unet_gives_the_same_images(tiny_models):
    packed = load_minisd(str(tiny_models["sd"]), dtype="fp32", prepack=True)
    tiny_sd = load_minisd(str(tiny_models["sd"]), dtype="fp32")
    assert sum(isinstance(m, PackedConv2d) for m in packed.unet.modules()) > 0
    assert not any(isinstance(m, PackedConv2d) for m in tiny_sd.unet.modules())
    torch.testing.assert_close(ours(packed, "pndm"), ours(tiny_sd, "pndm"), rtol=0, atol=1e-4)
    # Packed for the first call's size (batch 2, 8x8 latents), still exact for another size.
    other, context = torch.randn(1, 4, 6, 10), torch.randn(1, 77, 768)
    with torch.inference_mode():
        expected = tiny_sd.unet(other, 10, encoder_hidden_states=context).sample
        torch.testing.assert_close(packed.unet(other, 10, encoder_hidden_states=context).sample, expected)
    latents = torch.randn(1, 4, 8, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="prepacked for inference"):
        packed.unet(latents, 10, encoder_hidden_states=torch.zeros(1, 77, 768))
