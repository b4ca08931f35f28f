"""Tags and embedded cover pictures of music files, read with mutagen: ID3v2 (all versions, in mp3, wav and
aiff) and ID3v1, APEv2, FLAC and Vorbis comments (ogg, opus) and MP4 atoms (m4a). A field mutagen does not
find is taken from an ID3v2 tag in front of a FLAC file, an APEv2 tag, then what FFmpeg reads (RIFF INFO in
WAV files, a second, stacked ID3v2 tag...)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.apev2 import APENoHeaderError, APEv2
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, TCON
from mutagen.mp4 import MP4Tags

from nopaingan_core.audio import container_tags
from nopaingan_core.errors import AudioError

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
    whether its audio is usable is decided later by decoding it. Fields the main tag leaves empty are filled
    from an ID3v2 tag in front of the file (FLAC), an APEv2 tag, then from FFmpeg's reading of the container."""
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError) as exc:
        audio, error = None, f"tags unreadable ({exc})"
    else:
        error = None if audio is not None else "not a format the tag library knows"
    fields: dict = {}
    duration, has_picture = 0.0, False
    if audio is not None:
        duration = float(getattr(audio.info, "length", 0.0) or 0.0)
        tags = audio.tags
        if isinstance(tags, ID3):
            fields = _id3_fields(tags)
        elif isinstance(tags, MP4Tags):
            fields = _mp4_fields(tags)
        elif tags is not None:
            fields = _vorbis_fields(tags)
        has_picture = _picture(audio) is not None if tags is not None else bool(_flac_pictures(audio))
    for fallback in (_prefixed_id3_fields, _ape_fields, _ffmpeg_fields):
        if all(fields.get(key) for key in _FIELDS):
            break
        for key, value in fallback(path).items():
            if value and not fields.get(key):
                fields[key] = value
    return TrackTags(path, duration=duration, has_picture=has_picture, error=error if not fields else None, **fields)


_FIELDS = ("title", "album", "artist", "album_artist", "genres", "year")


def _text_fields(text) -> dict:
    """The fields from a lookup ``text(*keys)`` of a key-value tag (APEv2, FFmpeg's metadata)."""
    return {
        "title": text("title"),
        "album": text("album"),
        "artist": text("artist"),
        "album_artist": text("album artist", "album_artist", "albumartist"),
        "genres": tuple(g for g in split_genres(text("genre") or "")),
        "year": _year(text("year", "date", "originaldate", "icrd")),
    }


def _prefixed_id3_fields(path: Path) -> dict:
    """An ID3v2 tag some taggers put in front of a file whose own format has other tags (FLAC): mutagen's FLAC
    reader and FFmpeg skip it, so it is read on its own."""
    try:
        with open(path, "rb") as file:
            if file.read(3) != b"ID3":
                return {}
        return _id3_fields(ID3(path))
    except (mutagen.MutagenError, OSError, ValueError):
        return {}


def _ape_fields(path: Path) -> dict:
    try:
        tags = APEv2(path)
    except (APENoHeaderError, mutagen.MutagenError, OSError, ValueError):
        return {}
    lower = {key.lower(): value for key, value in tags.items()}
    return _text_fields(lambda *keys: next((_first(list(lower[k])) for k in keys if k in lower), None))


def _ffmpeg_fields(path: Path) -> dict:
    try:
        tags = container_tags(path)
    except AudioError:
        return {}
    return _text_fields(lambda *keys: next((tags[k].strip() for k in keys if tags.get(k, "").strip()), None))


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
        return _first([_latin1_as_cp1252(frame.encoding, t) for t in frame.text]) if frame is not None else None

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


_C1_CONTROLS = re.compile("[\x80-\x9f]")


def _latin1_as_cp1252(encoding: int, text: object) -> object:
    """ID3 text declared Latin-1 (encoding 0) that holds C1 control characters was written in Windows-1252
    (``’``, ``€``, ``…`` are 0x80-0x9F there), as most Windows taggers did: read it so."""
    if encoding != 0 or not isinstance(text, str) or not _C1_CONTROLS.search(text):
        return text
    return text.encode("latin-1").decode("cp1252", "replace")


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
