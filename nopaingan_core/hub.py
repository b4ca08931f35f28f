"""Loading models from a local folder or a Hugging Face hub id, with one clear error when neither works.

A hub id is first looked up in the Hugging Face cache alone (no network). Only when it is not there is the hub
asked, after one short connection probe: offline, a command fails in seconds instead of retrying for a minute,
and ``HF_HUB_OFFLINE=1`` skips even the probe. Weights are read from safetensors files only, never pickle.
"""

from __future__ import annotations

import json
import os
import socket
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ModelLoadError, ModelNotFoundError

PROBE_SECONDS = 3.0
DEFAULT_ENDPOINT = "https://huggingface.co"

# config.json model_type (or model_index.json class) -> the kind of model, in words
MODEL_KINDS = {
    "StableDiffusionPipeline": "Stable Diffusion (diffusers)",
    "clap": "CLAP",
    "musicgen": "MusicGen",
    "hubert": "MERT",
    "mert_model": "MERT",
    "clip_text_model": "CLIP text encoder",
    "clip": "CLIP",
}


def cache_home(name: str) -> Path:
    """``$XDG_CACHE_HOME/nopaingan/<name>``: ``~/.cache/nopaingan/<name>`` when the variable is unset or empty
    (the XDG base-directory specification's default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nopaingan" / name


def expand(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` expanded; ``~name`` of no such user is kept as written, as a shell does."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def is_local(source: str | os.PathLike) -> bool:
    """A folder on disk, or something that can only be meant as one (a path, not an ``org/name`` id)."""
    text = str(source)
    return expand(text).exists() or text.startswith((".", "/", "~")) or text.count("/") > 1


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: models come from the cache or local folders only."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


@cache
def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=PROBE_SECONDS).close()
    except OSError:
        return False
    return True


def hub_reachable() -> bool:
    """One TCP connection to the hub (``HF_ENDPOINT``), at most ``PROBE_SECONDS``; the answer is kept for the
    process, so a command probes once however many models it loads."""
    return not offline() and _reachable(endpoint())


def folder_kind(folder: str | os.PathLike) -> str | None:
    """What kind of model a folder holds, in words ("CLAP", "Stable Diffusion (diffusers)"...), from its
    ``model_index.json`` or ``config.json``; None when it says nothing we know."""
    folder = expand(folder)
    for name, key in (("model_index.json", "_class_name"), ("config.json", "model_type")):
        try:
            value = json.loads((folder / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if value:
            return MODEL_KINDS.get(value, str(value))
    if (folder / "unet" / "config.json").is_file():
        return MODEL_KINDS["StableDiffusionPipeline"]
    return None


def not_found(source: str, what: str, flag: str) -> ModelNotFoundError:
    if expand(str(source)).is_absolute() or str(source).startswith((".", "~")):
        return ModelNotFoundError(f"{what} folder '{source}' does not exist; pass a model folder with {flag} DIR")
    if offline():
        why = "is not in the Hugging Face cache (HF_HUB_OFFLINE is set)"
    elif not _reachable(endpoint()):
        why = f"is not in the Hugging Face cache and {endpoint()} cannot be reached (set HF_HUB_OFFLINE=1 to skip it)"
    else:
        why = "is not available locally and could not be downloaded"
    return ModelNotFoundError(
        f"{what} '{source}' {why}. Get it on a machine with internet with `hf download {source}` (it lands in the "
        f"Hugging Face cache; copy that cache or point HF_HOME at it), or pass a local folder with {flag} DIR"
    )


def _wrong_folder(source: str, what: str, flag: str, missing: str) -> ModelLoadError:
    kind = folder_kind(source)
    holds = f"this folder holds a {kind} model" if kind else f"it has no {missing}"
    return ModelLoadError(f"{flag} {source}: not a {what} folder; {holds}")


def check_weights_loaded(source: str, loading: dict, kind: str, hint: str = "") -> None:
    """Refuse a ``kind`` model (e.g. "CLAP") that ``from_pretrained(..., output_loading_info=True)`` loaded with
    missing or mismatched weights (transformers fills those at random and only logs it); ``hint`` ends the
    message. Raises :class:`ModelLoadError`."""
    missing = list(loading.get("missing_keys", [])) + list(loading.get("mismatched_keys", []))
    if missing:
        raise ModelLoadError(f"{source}: {kind} checkpoint lacks {len(missing)} weights (e.g. {missing[:3]}){hint}")


def _takes_safetensors_only(loader: Any) -> bool:
    import torch

    return isinstance(loader, type) and issubclass(loader, torch.nn.Module)


def from_pretrained(
    loader: Any, source: str | os.PathLike, what: str, flag: str, kind: str | None = None, **kwargs: Any
) -> Any:
    """Call ``loader.from_pretrained`` on a hub id or folder and turn failures into one-line errors.

    ``what`` names the model for the message (e.g. "miniSD UNet"), ``flag`` is the CLI option that
    takes a local folder instead. With ``kind`` (:data:`MODEL_KINDS` words, e.g. "CLAP"), a local folder whose
    config names another kind of model is refused before loading. Model weights load from safetensors only
    (``use_safetensors=True``): a folder with only pickled weights is refused instead of being unpickled.
    """
    source = str(source)
    local = is_local(source)
    if _takes_safetensors_only(loader):
        kwargs.setdefault("use_safetensors", True)
    if local:
        folder = expand(source)
        if not folder.exists():
            raise not_found(source, what, flag)
        if not folder.is_dir():
            raise ModelLoadError(f"{flag} {source}: expected a model folder, found a file")
        subfolder = kwargs.get("subfolder")
        if subfolder and not (folder / subfolder).is_dir():
            raise _wrong_folder(source, what, flag, f"{subfolder}/ folder")
        found = folder_kind(folder) if kind else None
        if found and found != kind:  # before loading: another model's config can fail in any way, or load at random
            raise ModelLoadError(f"{flag} {source}: not a {what} folder; this folder holds a {found} model")
        return _load(loader, str(folder), source, what, flag, local=True, **kwargs)
    try:  # the Hugging Face cache first: no network, no retries
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise not_found(source, what, flag)
    return _load(loader, source, source, what, flag, local=False, **kwargs)


def _load(loader: Any, path: str, source: str, what: str, flag: str, local: bool, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and not local:
            raise not_found(source, what, flag) from exc
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if local and "safetensors" in reason.lower():
            kind = folder_kind(source)
            if any(expand(source).rglob("*.safetensors")):
                reason = f"a .safetensors file is unreadable or corrupt ({reason})"
            else:
                reason = f"no safetensors weights{f' for a {kind} model' if kind else ''}; pickled weights are not read"
        raise ModelLoadError(f"{source}: not a usable {what} ({reason})") from exc


def hub_file(source: str, filename: str, what: str, flag: str) -> Path:
    """One file of a hub repo (e.g. its config.json), from the cache, else downloaded after the probe."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(source, filename, local_files_only=True))
    except Exception:  # not cached (any hub error means the same here)
        pass
    if not hub_reachable():
        raise not_found(source, what, flag)
    try:
        return Path(hf_hub_download(source, filename))
    except Exception as exc:  # any hub failure means the same to the user: not available
        raise not_found(source, what, flag) from exc


def check_available(source: str | os.PathLike | None, what: str, flag: str, filename: str = "config.json") -> None:
    """Fail now, before torch and the model libraries are imported, when ``source`` is a hub id that is neither
    in the Hugging Face cache (``filename`` is looked up there) nor downloadable; local folders are checked
    when they load. Offline, a command then stops in about a second."""
    if source is None or is_local(source):
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(str(source), filename), str):
        return
    if not hub_reachable():
        raise not_found(str(source), what, flag)
