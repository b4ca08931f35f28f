"""The seed's adapter: linear and convolutional layers that turn any music encoder's hidden states
``[B, T, D]`` into a few CLIP-text-shaped music tokens ``[B, N, 768]``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class AdapterConfig:
    in_dim: int
    out_dim: int = 768
    tokens: int = 16
    kernel: int = 3
    stride: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class MusicAdapter(nn.Module):
    """Linear projection to the text width, average pooling to ``tokens * stride`` steps (any clip length
    and frame rate), a convolution over time, then a strided convolution down to ``tokens`` tokens."""

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__()
        self.config = config
        width = config.out_dim
        self.proj = nn.Linear(config.in_dim, width)
        self.pool = nn.AdaptiveAvgPool1d(config.tokens * config.stride)
        self.conv = nn.Conv1d(width, width, config.kernel, padding=config.kernel // 2)
        self.down = nn.Conv1d(width, width, config.stride, stride=config.stride)
        self.norm = nn.LayerNorm(width)
        self.act = nn.GELU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.act(self.proj(features)).transpose(1, 2)  # [B, width, T]
        hidden = self.pool(hidden)
        hidden = hidden + self.act(self.conv(hidden))
        return self.norm(self.down(hidden).transpose(1, 2))
