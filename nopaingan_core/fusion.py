"""The seed's fusion: text and music tokens are concatenated and mixed by a linear layer, then the text
tokens (queries) attend to the music tokens (keys/values), followed by a feed-forward block.

The result is added to the text embedding through a learnable gate that starts at zero, so an untrained
fusion, or strength 0, returns the text embedding exactly and any SD1.x UNet sees what it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .errors import NoPainGanError


@dataclass(frozen=True)
class FusionConfig:
    dim: int = 768
    heads: int = 8
    ff_mult: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


def match_batch(text: torch.Tensor, music: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Broadcast a batch of one against the other side's batch."""
    bt, bm = text.shape[0], music.shape[0]
    if bt == bm:
        return text, music
    if bm == 1:
        return text, music.expand(bt, -1, -1)
    if bt == 1:
        return text.expand(bm, -1, -1), music
    raise NoPainGanError(f"cannot fuse a batch of {bt} text embeddings with a batch of {bm} music embeddings")


class MusicTextFusion(nn.Module):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.mix = nn.Linear(dim, dim)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, config.heads, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim * config.ff_mult), nn.GELU(), nn.Linear(dim * config.ff_mult, dim))
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(self, text: torch.Tensor, music: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """``text`` ``[B, L, dim]`` (any length L, e.g. 77 or ComfyUI's 154) and ``music`` ``[B, N, dim]``
        -> ``[B, L, dim]``."""
        if text.shape[-1] != self.config.dim or music.shape[-1] != self.config.dim:
            raise NoPainGanError(
                f"fusion expects {self.config.dim}-d text and music tokens, "
                f"got {text.shape[-1]}-d text and {music.shape[-1]}-d music"
            )
        if strength == 0:
            return text
        text, music = match_batch(text, music.to(text.dtype))
        length = text.shape[1]
        mixed = self.mix(torch.cat([text, music], dim=1))
        query, memory = mixed[:, :length], self.norm_kv(mixed[:, length:])
        hidden = query + self.attn(self.norm_q(query), memory, memory, need_weights=False)[0]
        hidden = hidden + self.ff(self.norm_ff(hidden))
        return text + strength * torch.tanh(self.gate) * hidden
