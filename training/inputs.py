"""Input files and folders named more than once on a command line (``a.csv ./a.csv``, ``music ~/music``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

P = TypeVar("P", str, Path)


def distinct_files(paths: Sequence[P]) -> tuple[list[P], list[tuple[P, P]]]:
    """``paths`` without those that name a file or folder named before them, and each of those with that first
    name, each as given (a command's arguments as typed, :func:`~nopaingan_core.cli_args.as_typed`: a note says
    ``./a.csv`` where it was typed so; ``~`` is expanded to compare them only). Two names are one file when they
    give the same device and inode, as :func:`os.path.samefile` compares them: ``a.csv``, ``./a.csv``, its
    absolute path, a symbolic or hard link to it. A path that cannot be read stays, for its reader to report."""
    first: dict[tuple[int, int], P] = {}
    kept: list[P] = []
    repeated: list[tuple[P, P]] = []
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
