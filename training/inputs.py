"""Input files and folders named more than once on a command line (``a.csv ./a.csv``, ``music ~/music``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def distinct_files(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """``paths`` without those that name a file or folder named before them, and each of those with that first
    name. Two names are one file when they give the same device and inode, as :func:`os.path.samefile` compares
    them: ``a.csv``, ``./a.csv``, its absolute path, a symbolic or hard link to it. A path that cannot be read
    stays, for its reader to report."""
    first: dict[tuple[int, int], Path] = {}
    kept: list[Path] = []
    repeated: list[tuple[Path, Path]] = []
    for path in paths:
        try:
            status = Path(path).expanduser().stat()
        except OSError:
            kept.append(path)
            continue
        key = (status.st_dev, status.st_ino)
        if key in first:
            repeated.append((path, first[key]))
        else:
            first[key] = path
            kept.append(path)
    return kept, repeated
