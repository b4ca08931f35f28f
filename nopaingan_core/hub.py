"""Loading models from a local folder or a Hugging Face hub id, with one clear error when neither works."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import ModelLoadError, ModelNotFoundError


def is_local(source: str | os.PathLike) -> bool:
    """A folder on disk, or something that can only be meant as one (a path, not an ``org/name`` id)."""
    text = str(source)
    return Path(text).expanduser().exists() or text.startswith((".", "/", "~")) or text.count("/") > 1


def not_found(source: str, what: str, flag: str) -> ModelNotFoundError:
    if Path(str(source)).expanduser().is_absolute() or str(source).startswith((".", "~")):
        return ModelNotFoundError(f"{what} folder '{source}' does not exist; pass a model folder with {flag} DIR")
    return ModelNotFoundError(
        f"{what} '{source}' is not available locally and could not be downloaded. "
        f"Get it on a machine with internet with `hf download {source}` (it lands in the Hugging Face cache; "
        f"copy that cache or point HF_HOME at it), or pass a local folder with {flag} DIR"
    )


def from_pretrained(loader: Any, source: str | os.PathLike, what: str, flag: str, **kwargs: Any) -> Any:
    """Call ``loader.from_pretrained`` on a hub id or folder and turn failures into one-line errors.

    ``what`` names the model for the message (e.g. "miniSD UNet"), ``flag`` is the CLI option that
    takes a local folder instead.
    """
    source = str(source)
    local = is_local(source)
    if local and not Path(source).expanduser().exists():
        raise not_found(source, what, flag)
    try:
        return loader.from_pretrained(str(Path(source).expanduser()) if local else source, **kwargs)
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and not local:
            raise not_found(source, what, flag) from exc
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{source}: not a usable {what} ({reason})") from exc
