"""Writing files so that an interrupted run never leaves a half-written one under its final name: each file
is written next to its destination under a temporary name, then renamed over it in one step."""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def _temporary_beside(dest: Path) -> Iterator[IO[bytes]]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(dest: Path, data: bytes) -> None:
    """Replace ``dest`` with ``data`` in one step; an unchanged file is left alone (idempotent re-runs)."""
    if dest.is_file() and dest.stat().st_size == len(data) and dest.read_bytes() == data:
        return
    with _temporary_beside(dest) as handle:
        handle.write(data)


def write_text(dest: Path, text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


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
    with _temporary_beside(dest) as handle, open(src, "rb") as source:
        shutil.copyfileobj(source, handle, 1 << 20)
