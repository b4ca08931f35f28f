"""Inputs named more than once on a command line: files and folders (``a.csv ./a.csv``, ``music ~/music``) and
web pages (``.../List_of_2019_albums#January`` and ``.../List_of_2019_albums``)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

P = TypeVar("P", str, Path)
T = TypeVar("T")


def _distinct(items: Sequence[T], key: Callable[[T], Hashable | None]) -> tuple[list[T], list[tuple[T, T]]]:
    """``items`` without those whose ``key`` is one an item before them had, and each of those with that first
    item; an item whose key is None always stays."""
    first: dict[Hashable, T] = {}
    kept: list[T] = []
    repeated: list[tuple[T, T]] = []
    for item in items:
        named = key(item)
        if named is None:
            kept.append(item)
        elif named in first:
            repeated.append((item, first[named]))
        else:
            first[named] = item
            kept.append(item)
    return kept, repeated


def distinct_files(paths: Sequence[P]) -> tuple[list[P], list[tuple[P, P]]]:
    """``paths`` without those that name a file or folder named before them, and each of those with that first
    name, each as given (a command's arguments as typed, :func:`~nopaingan_core.cli_args.as_typed`: a note says
    ``./a.csv`` where it was typed so; ``~`` is expanded to compare them only). Two names are one file when they
    give the same device and inode, as :func:`os.path.samefile` compares them: ``a.csv``, ``./a.csv``, its
    absolute path, a symbolic or hard link to it. A path that cannot be read stays, for its reader to report."""

    def inode(path: P) -> tuple[int, int] | None:
        try:
            status = Path(path).expanduser().stat()
        except OSError:
            return None
        return status.st_dev, status.st_ino

    return _distinct(paths, inode)


def distinct_urls(urls: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """``urls`` without those that name a page named before them, and each of those with that first URL, as
    :func:`distinct_files` does for files. Two URLs are one page when they differ only in their fragment (the
    section a link points at: ``#January``) and the case of the scheme and host (RFC 3986, 6.2.2.1)."""

    def page(url: str) -> str:
        parts = urlsplit(url)
        return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower(), fragment="").geturl()

    return _distinct(urls, page)
