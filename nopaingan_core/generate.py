"""Song + album metadata -> album covers: the one path behind ``nopaingan generate``, the ComfyUI graph
(whose nodes call the same steps one by one) and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .checkpoint import FusionModel
from .deep_cache import check_deep_cache
from .encoders.base import MusicEmbedding
from .errors import NoPainGanError
from .sampling import CancelCheck, MiniSD, ProgressCallback, sample


@dataclass(frozen=True)
class SamplerSettings:
    """What :func:`sampling.sample` takes besides the conditioning. ``cfg_cutoff`` < 1 and ``deep_cache`` > 1
    do less work per image at some cost in fidelity (see ``sample``); the defaults compute everything."""

    scheduler: str = "pndm"
    steps: int = 20
    guidance: float = 7.5
    seed: int = 0
    num: int = 1
    width: int = 256
    height: int = 256
    cfg_cutoff: float = 1.0
    deep_cache: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.cfg_cutoff <= 1.0:
            raise NoPainGanError(f"cfg_cutoff must be a fraction of the steps between 0 and 1, got {self.cfg_cutoff}")
        check_deep_cache(None, self.deep_cache)


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
        cfg_cutoff=settings.cfg_cutoff,
        deep_cache=settings.deep_cache,
    )
    return sd.decode(latents)
