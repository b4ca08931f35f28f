"""What a source says about one album before anything is checked: the common shape in which music folders
and manifests hand albums to the import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class TrackRef:
    """A song of the album: a local path or a URL, and its title when known."""

    location: str
    song: str | None = None


@dataclass(frozen=True)
class CoverRef:
    """Where the cover may be: an image ``file``, a ``url``, or the picture ``embedded`` in an audio file."""

    kind: Literal["file", "url", "embedded"]
    location: str


@dataclass
class AlbumCandidate:
    """One album as a source describes it.

    ``tracks`` and ``covers`` are in order of preference: the import uses the first track that decodes and
    the first cover that is a usable image. When ``track_marked``, the user chose the first track, so no
    other stands in for it. ``problem`` is set when the source already shows the album cannot be used.
    ``extra`` holds fields added to the album's metadata row (a catalogue's match score and ids).
    ``name_sources`` says where ``artist`` and ``album`` came from when a music folder was scanned: "tags",
    or, when no tag gave them, "folder name" or "unknown". ``genre_source`` says where ``genres`` came from:
    the source itself ("source": a manifest row, the tags, an album list's row) or the catalogue a fetch
    matched ("catalogue"). A ``remote`` album (a catalogue's) has only http(s) URLs for tracks and covers: a
    location that is none is refused, never read as a local file. ``refresh``, for a catalogue's album found in
    a cached answer, gives the album as the catalogue answers anew (its cached links may have expired).
    """

    artist: str
    album: str
    source: str
    tracks: list[TrackRef] = field(default_factory=list)
    covers: list[CoverRef] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)
    year: int | None = None
    popularity: float | None = None
    emotions: list[str] = field(default_factory=list)
    track_marked: bool = False
    problem: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    name_sources: dict[str, str] = field(default_factory=dict)
    genre_source: str = "source"
    remote: bool = False
    refresh: Callable[[], AlbumCandidate] | None = field(default=None, repr=False, compare=False)
