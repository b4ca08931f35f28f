"""The values our own socket types carry between nodes. Native types (AUDIO, CONDITIONING, IMAGE, LATENT,
STRING) are used wherever ComfyUI has one, so native nodes connect to ours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

CATEGORY = "No-Pain-No-GAN"

MINISD = "NOPAINGAN_MINISD"  # Loaded: nopaingan_core.sampling.MiniSD
MIR = "NOPAINGAN_MIR"  # Loaded: nopaingan_core.encoders.MusicEncoder
MUSIC_EMBEDDING = "NOPAINGAN_MUSIC_EMBEDDING"  # nopaingan_core.encoders.MusicEmbedding
FUSION = "NOPAINGAN_FUSION"  # nopaingan_core.checkpoint.FusionModel
MUSIC_TOKENS = "NOPAINGAN_MUSIC_TOKENS"  # MusicTokens


@dataclass(frozen=True)
class Loaded:
    """A model kept on the offload device and the device it runs on when a node uses it."""

    model: Any
    device: torch.device


@dataclass(frozen=True)
class MusicTokens:
    """The adapter's music tokens ``[B, N, 768]`` and the fusion that made them, which the Fusion
    Conditioning node applies to any text conditioning."""

    tokens: torch.Tensor
    fusion: Any
