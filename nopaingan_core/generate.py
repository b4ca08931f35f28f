"""Song + album metadata -> album covers: the one path behind ``nopaingan generate``, the ComfyUI graph
(whose nodes call the same steps one by one) and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .checkpoint import FusionModel
from .encoders.base import MusicEmbedding
from .sampling import CancelCheck, MiniSD, ProgressCallback, sample


@dataclass(frozen=True)
class SamplerSettings:
    scheduler: str = "pndm"
    steps: int = 20
    guidance: float = 7.5
    seed: int = 0
    num: int = 1
    width: int = 256
    height: int = 256


@torch.no_grad()
def condition(
    sd: MiniSD,
    prompt: str,
    music: MusicEmbedding | None = None,
    fusion: FusionModel | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """The conditioning the UNet sees: the prompt's CLIP embedding, fused with the music when given."""
    text = sd.encode_prompt([prompt])
    if fusion is None or music is None:
        return text
    return fusion.fuse(text, fusion.music_tokens(music), strength)


def generate_covers(
    sd: MiniSD,
    prompt: str,
    negative: str = "",
    music: MusicEmbedding | None = None,
    fusion: FusionModel | None = None,
    strength: float = 1.0,
    settings: SamplerSettings = SamplerSettings(),
    callback: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> torch.Tensor:
    """Images ``[num, H, W, 3]`` in [0, 1]. Without ``fusion`` this is the seed's text-only baseline."""
    cond = condition(sd, prompt, music, fusion, strength)
    uncond = sd.encode_prompt([negative]) if settings.guidance > 1 else None
    latents = sample(
        sd,
        cond,
        uncond,
        scheduler=settings.scheduler,
        steps=settings.steps,
        guidance=settings.guidance,
        seed=settings.seed,
        num=settings.num,
        width=settings.width,
        height=settings.height,
        callback=callback,
        cancel=cancel,
    )
    return sd.decode(latents)
