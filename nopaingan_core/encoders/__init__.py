"""Music encoders behind one interface: ``load_encoder(kind, model)`` -> :class:`MusicEncoder`."""

from __future__ import annotations

import torch

from ..errors import NoPainGanError
from .base import EncoderInfo, MusicEmbedding, MusicEncoder

ENCODER_KINDS = ("codified-lm", "mert", "clap")
DEFAULT_KIND = "codified-lm"
DEFAULT_MODELS = {
    "codified-lm": "facebook/musicgen-small",
    "mert": "m-a-p/MERT-v1-95M",
    "clap": "laion/larger_clap_music",
}

__all__ = [
    "ENCODER_KINDS",
    "DEFAULT_KIND",
    "DEFAULT_MODELS",
    "EncoderInfo",
    "MusicEmbedding",
    "MusicEncoder",
    "detect_kind",
    "load_encoder",
]


MODEL_TYPES = {"musicgen": "codified-lm", "hubert": "mert", "mert_model": "mert", "clap": "clap"}


def detect_kind(model: str) -> str:
    """The encoder kind of a hub id or folder, from its ``config.json`` model type."""
    import json
    from pathlib import Path

    for kind, default in DEFAULT_MODELS.items():
        if model == default:
            return kind
    from ..hub import hub_file, is_local, not_found

    if is_local(model):
        config = Path(model).expanduser() / "config.json"
        if not config.is_file():
            raise (
                not_found(model, "music encoder", "--mir")
                if not config.parent.exists()
                else NoPainGanError(f"{model}: no config.json; expected a MusicGen, MERT or CLAP model folder")
            )
    else:
        config = hub_file(model, "config.json", "music encoder", "--mir")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type not in MODEL_TYPES:
        raise NoPainGanError(
            f"{model}: model type {model_type!r} is not a supported music encoder "
            f"(expected one of {', '.join(sorted(MODEL_TYPES))})"
        )
    return MODEL_TYPES[model_type]


def load_encoder(
    kind: str = DEFAULT_KIND,
    model: str | None = None,
    layer: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> MusicEncoder:
    """Load a frozen music encoder from a hub id or local folder (``model``, default per kind)."""
    if kind == "codified-lm":
        from .codified_lm import CodifiedLMEncoder as cls
    elif kind == "mert":
        from .mert import MertEncoder as cls
    elif kind == "clap":
        from .clap import ClapEncoder as cls
    else:
        raise NoPainGanError(f"unknown encoder kind {kind!r}; expected one of {', '.join(ENCODER_KINDS)}")
    return cls(model or DEFAULT_MODELS[kind], layer=layer, device=device, dtype=dtype)
