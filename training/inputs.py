"""Inputs named more than once on a command line: files and folders (``a.csv ./a.csv``, ``music ~/music``) and
web pages (``.../List_of_2019_albums#January`` and ``.../List_of_2019_albums``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

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


def distinct_urls(urls: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """``urls`` without those that name a page named before them, and each of those with that first URL, as
    :func:`distinct_files` does for files. Two URLs are one page when they differ only in their fragment (the
    section a link points at: ``#January``) and the case of the scheme and host (RFC 3986, 6.2.2.1)."""
    first: dict[str, str] = {}
    kept: list[str] = []
    repeated: list[tuple[str, str]] = []
    for url in urls:
        parts = urlsplit(url)
        key = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower(), fragment="").geturl()
        if key in first:
            repeated.append((url, first[key]))
        else:
            first[key] = url
            kept.append(url)
    return kept, repeated
