"""Tags and embedded cover pictures of music files, read with mutagen: ID3 (mp3, also in wav/aiff),
FLAC, Vorbis comments (ogg, opus) and MP4 atoms (m4a)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, TCON
from mutagen.mp4 import MP4Tags

from .cleaning import split_genres

# Picture types of ID3 APIC and FLAC/Vorbis pictures that show the album's cover.
FRONT_COVER = 3
OTHER_PICTURE = 0


@dataclass(frozen=True)
class TrackTags:
    """What the tags say about one track; a field is None (or empty) when the file does not say."""

    path: Path
    title: str | None = None
    album: str | None = None
    artist: str | None = None
    album_artist: str | None = None
    genres: tuple[str, ...] = ()
    year: int | None = None
    duration: float = 0.0
    has_picture: bool = False
    error: str | None = None


def read_tags(path: Path) -> TrackTags:
    """Tags of ``path``. A file mutagen cannot read gives empty tags and ``error`` set, not an exception:
    whether its audio is usable is decided later by decoding it."""
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError) as exc:
        return TrackTags(path, error=f"tags unreadable ({exc})")
    if audio is None:
        return TrackTags(path, error="not a format the tag library knows")
    duration = float(getattr(audio.info, "length", 0.0) or 0.0)
    tags = audio.tags
    if tags is None:
        return TrackTags(path, duration=duration, has_picture=bool(_flac_pictures(audio)))
    if isinstance(tags, ID3):
        fields = _id3_fields(tags)
    elif isinstance(tags, MP4Tags):
        fields = _mp4_fields(tags)
    else:
        fields = _vorbis_fields(tags)
    return TrackTags(path, duration=duration, has_picture=_picture(audio) is not None, **fields)


def embedded_picture(path: Path) -> bytes | None:
    """The embedded front cover of ``path`` (else a picture of type "other"), or None.

    Back covers, artist photos and the like are not album covers, so they are not returned.
    """
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError):
        return None
    return None if audio is None else _picture(audio)


def _first(values: Sequence[object] | None) -> str | None:
    for value in values or ():
        text = str(value).strip()
        if text:
            return text
    return None


def _year(text: str | None) -> int | None:
    match = re.search(r"\b(1[0-9]{3}|2[0-9]{3})\b", text or "")
    return int(match.group(1)) if match else None


def _id3_fields(tags: ID3) -> dict:
    def text(frame_id: str) -> str | None:
        frame = tags.get(frame_id)
        return _first(frame.text) if frame is not None else None

    genre_frame = tags.get("TCON")
    return {
        "title": text("TIT2"),
        "album": text("TALB"),
        "artist": text("TPE1"),
        "album_artist": text("TPE2"),
        # TCON.genres resolves ID3v1 numbers such as "(17)" to names
        "genres": tuple(g for v in (genre_frame.genres if genre_frame else []) for g in split_genres(v)),
        "year": _year(text("TDRC") or text("TYER") or text("TDOR")),
    }


def _vorbis_fields(tags) -> dict:
    def text(*keys: str) -> str | None:
        for key in keys:
            value = _first(tags.get(key))
            if value:
                return value
        return None

    return {
        "title": text("title"),
        "album": text("album"),
        "artist": text("artist"),
        "album_artist": text("albumartist", "album artist", "album_artist"),
        "genres": tuple(g for v in tags.get("genre", []) for g in split_genres(v)),
        "year": _year(text("date", "year", "originaldate")),
    }


def _mp4_fields(tags: MP4Tags) -> dict:
    genres = [g for v in tags.get("\xa9gen", []) for g in split_genres(v)]
    if not genres and tags.get("gnre"):
        # MP4 "gnre" holds ID3v1 genre numbers plus one
        genres = TCON(text=[f"({n - 1})" for n in tags["gnre"]]).genres
    return {
        "title": _first(tags.get("\xa9nam")),
        "album": _first(tags.get("\xa9alb")),
        "artist": _first(tags.get("\xa9ART")),
        "album_artist": _first(tags.get("aART")),
        "genres": tuple(genres),
        "year": _year(_first(tags.get("\xa9day"))),
    }


def _choose(pictures: Sequence[tuple[int, bytes]]) -> bytes | None:
    for wanted in (FRONT_COVER, OTHER_PICTURE):
        for kind, data in pictures:
            if kind == wanted and data:
                return data
    return None


def _flac_pictures(audio) -> list[tuple[int, bytes]]:
    return [(p.type, p.data) for p in getattr(audio, "pictures", [])] if isinstance(audio, FLAC) else []


def _picture(audio) -> bytes | None:
    tags = audio.tags
    pictures = _flac_pictures(audio)
    if isinstance(tags, ID3):
        pictures += [(frame.type, frame.data) for frame in tags.getall("APIC")]
    elif isinstance(tags, MP4Tags):
        pictures += [(FRONT_COVER, bytes(cover)) for cover in tags.get("covr", [])]
    elif tags is not None:
        for value in tags.get("metadata_block_picture", []):
            try:
                picture = Picture(base64.b64decode(value))
            except (binascii.Error, mutagen.MutagenError, ValueError):
                continue
            pictures.append((picture.type, picture.data))
        for value in tags.get("coverart", []):  # the older, typeless Vorbis way
            try:
                pictures.append((OTHER_PICTURE, base64.b64decode(value)))
            except (binascii.Error, ValueError):
                continue
    return _choose(pictures)
