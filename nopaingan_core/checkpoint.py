"""Fusion weights: adapter + fusion in one ``.safetensors`` file with JSON metadata saying which encoder,
layer and width they were trained for. Loading checks all of it and explains any mismatch; pickle is
never read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .adapter import AdapterConfig, MusicAdapter
from .encoders.base import EncoderInfo, MusicEmbedding
from .errors import CheckpointError
from .fusion import FusionConfig, MusicTextFusion

FORMAT = "nopaingan-fusion"
FORMAT_VERSION = 1
METADATA_KEY = "nopaingan"


class FusionModel(nn.Module):
    """Adapter and fusion for one music encoder: music embedding -> tokens -> fused text conditioning."""

    def __init__(
        self,
        encoder: EncoderInfo,
        adapter: AdapterConfig | None = None,
        fusion: FusionConfig | None = None,
        training: dict | None = None,
    ) -> None:
        super().__init__()
        fusion = fusion or FusionConfig()
        adapter = adapter or AdapterConfig(in_dim=encoder.dim, out_dim=fusion.dim)
        if adapter.in_dim != encoder.dim or adapter.out_dim != fusion.dim:
            raise CheckpointError(
                f"adapter maps {adapter.in_dim}-d to {adapter.out_dim}-d, but the encoder gives {encoder.dim}-d "
                f"and the fusion takes {fusion.dim}-d"
            )
        self.encoder = encoder
        self.training_summary = training or {}
        self.adapter = MusicAdapter(adapter)
        self.fusion = MusicTextFusion(fusion)

    @property
    def text_dim(self) -> int:
        return self.fusion.config.dim

    @property
    def trained(self) -> bool:
        return bool(self.training_summary)

    def check_encoder(self, info: EncoderInfo) -> None:
        """Refuse embeddings from another encoder, layer or width than the weights were trained on."""
        mine = self.encoder
        if (info.kind, info.layer, info.dim) != (mine.kind, mine.layer, mine.dim):
            raise CheckpointError(
                f"fusion checkpoint expects a {mine.describe()} embedding, got {info.describe()}; "
                f"use the encoder it was trained with ({mine.kind} '{mine.model}', layer {mine.layer})"
            )

    def music_tokens(self, embedding: MusicEmbedding) -> torch.Tensor:
        """``[B, T, D]`` music embedding -> ``[B, N, text_dim]`` music tokens."""
        self.check_encoder(embedding.encoder)
        param = next(self.parameters())
        return self.adapter(embedding.features.to(param.device, param.dtype))

    def fuse(self, text: torch.Tensor, tokens: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """Fused conditioning with the text's shape ``[B, L, text_dim]``."""
        if text.shape[-1] != self.text_dim:
            raise CheckpointError(
                f"fusion checkpoint expects {self.text_dim}-d text embeddings (SD1.x CLIP), got {text.shape[-1]}-d"
            )
        param = next(self.parameters())
        fused = self.fusion(text.to(param.device, param.dtype), tokens.to(param.device, param.dtype), strength)
        return fused.to(text.device, text.dtype)

    def metadata(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoder": self.encoder.to_dict(),
            "adapter": self.adapter.config.to_dict(),
            "fusion": self.fusion.config.to_dict(),
            "training": self.training_summary,
        }

    def describe(self) -> str:
        """One paragraph for users (ComfyUI's loader shows it)."""
        e = self.encoder
        lines = [
            f"encoder: {e.kind} '{e.model}' layer {e.layer} ({e.dim}-d, {e.frame_rate:g} frames/s)",
            f"music tokens: {self.adapter.config.tokens} x {self.text_dim}",
        ]
        if self.trained:
            lines.append("training: " + ", ".join(f"{k}={v}" for k, v in self.training_summary.items()))
        else:
            lines.append("untrained: returns the text conditioning unchanged")
        return "\n".join(lines)


def new_fusion(
    encoder: EncoderInfo, tokens: int = 16, text_dim: int = 768, seed: int = 0, gate: float = 0.0
) -> FusionModel:
    """A fresh, untrained fusion for ``encoder``. With the gate at 0 (the default) it is an exact identity on
    the text until trained; an open gate lets its random music path show (demo, tests)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FusionModel(encoder, AdapterConfig(encoder.dim, text_dim, tokens), FusionConfig(dim=text_dim))
    with torch.no_grad():
        model.fusion.gate.fill_(gate)
    return model


def non_finite_tensors(model: nn.Module) -> list[str]:
    """Names of ``model``'s floating-point parameters and buffers holding a NaN or an infinite value."""
    return [
        name
        for name, value in model.state_dict().items()
        if value.is_floating_point() and not torch.isfinite(value).all()
    ]


def save_fusion(model: FusionModel, path: str | os.PathLike) -> Path:
    """Write weights and metadata atomically: a crash mid-write leaves the previous file intact. Weights that are
    not all finite are refused (CheckpointError, nothing written), as :func:`load_fusion` would refuse them."""
    from .atomic import save_safetensors

    if bad := non_finite_tensors(model):
        raise CheckpointError(f"{path}: not written: tensor '{bad[0]}' contains NaN or infinite values")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(tensors, path, metadata={METADATA_KEY: json.dumps(model.metadata())})


def read_metadata(path: str | os.PathLike) -> dict:
    """The checkpoint's JSON metadata, checked for format and version."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such fusion checkpoint")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: fusion checkpoints are .safetensors files, found '{path.suffix}'")
    try:
        with safe_open(str(path), "pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    if raw is None:
        raise CheckpointError(f"{path}: safetensors file has no '{METADATA_KEY}' metadata; not a fusion checkpoint")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: expected format '{FORMAT}', found {meta.get('format')!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {meta.get('format_version')} is not supported (expected {FORMAT_VERSION}); "
            "update No-Pain-No-GAN"
        )
    return meta


def load_fusion(path: str | os.PathLike, device: str | torch.device = "cpu") -> FusionModel:
    """Rebuild the fusion from its metadata and load its weights, refusing any missing, extra, misshapen
    or non-finite tensor."""
    meta = read_metadata(path)
    try:
        model = FusionModel(
            EncoderInfo(**meta["encoder"]),
            AdapterConfig(**meta["adapter"]),
            FusionConfig(**meta["fusion"]),
            meta.get("training") or {},
        )
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: metadata is incomplete or malformed ({exc})") from exc
    tensors = load_file(str(path))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{path}: weights do not match the metadata: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for name, value in tensors.items():
        if value.shape != expected[name].shape:
            raise CheckpointError(
                f"{path}: tensor '{name}' has shape {list(value.shape)}, expected {list(expected[name].shape)}"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: tensor '{name}' contains NaN or infinite values")
    model.load_state_dict(tensors)
    return model.to(device).eval()
