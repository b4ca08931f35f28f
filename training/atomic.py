"""Writing files so that an interrupted run never leaves a half-written one under its final name (see
:mod:`nopaingan_core.atomic`), plus placing a copy of a file by hard link where the file system allows."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

from nopaingan_core.atomic import save_safetensors, temporary_beside, write_bytes, write_text

__all__ = ["place_file", "save_safetensors", "write_bytes", "write_text"]


def place_file(src: Path, dest: Path, link: bool = True) -> None:
    """Put a copy of ``src`` at ``dest``: a hard link when ``link`` and the file system allow it (no extra
    space), else a byte copy. A ``dest`` that already holds the same bytes is left alone."""
    if dest.exists() and (os.path.samefile(src, dest) or filecmp.cmp(src, dest, shallow=False)):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if link:
        tmp = dest.with_name(f".{dest.name}.link.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            pass  # another device or a file system without hard links: copy instead
        else:
            os.replace(tmp, dest)
            return
    with temporary_beside(dest) as tmp, open(src, "rb") as source, open(tmp, "wb") as handle:
        shutil.copyfileobj(source, handle, 1 << 20)
