"""Tags and embedded cover pictures of music files, read with mutagen: ID3v2 (all versions, in mp3, wav and
aiff) and ID3v1, APEv2, FLAC and Vorbis comments (ogg, opus) and MP4 atoms (m4a). A field mutagen does not
find is taken from an ID3v2 tag in front of a FLAC file, an APEv2 tag, RIFF INFO in WAV files, then what FFmpeg
reads (a second, stacked ID3v2 tag...). Text of 8-bit fields (ID3 Latin-1 frames, ID3v1, RIFF INFO, APEv2
items that are not UTF-8) is read in the code page it was written in (:mod:`.text_encoding`)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, TCON
from mutagen.mp4 import MP4Tags

from nopaingan_core.audio import container_tags
from nopaingan_core.errors import AudioError

from .cleaning import split_genres
from .text_encoding import decode_8bit

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
    from an ID3v2 tag in front of the file (FLAC), an APEv2 tag, RIFF INFO (WAV), then from FFmpeg's reading of the
    container. Text in 8-bit fields is read in the code page it was written in (:func:`decode_8bit`)."""
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
    for fallback in (_prefixed_id3_fields, _ape_fields, _riff_info_fields, _ffmpeg_fields):
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
    """The fields of an APEv2 tag (mp3, ape, wv, mpc). Its text is UTF-8 by the format, but taggers wrote the
    system's code page too, and mutagen refuses the whole tag for one such item: text items are read here, the
    first of each one's values (NUL-separated), by :func:`decode_8bit` (UTF-8 where it is, the others in the code
    page they were written in, all together)."""
    first = {key: next((v for v in raw.split(b"\0") if v.strip()), b"") for key, raw in _ape_text_items(path).items()}
    return _dict_fields(dict(zip(first, decode_8bit(list(first.values())), strict=True)))


def _ape_text_items(path: Path) -> dict[str, bytes]:
    """The text items of the APEv2 tag of ``path`` by lower-case key, their values' bytes; {} without one. The
    tag is found by mutagen (``_APEv2Data``: a header or footer, before an ID3v1 or Lyrics3 tag; mutagen is
    pinned), its items read as the APEv2 specification lays them out: value size and flags (32-bit little
    endian), the key up to a NUL, the value; bits 1-2 of the flags are the kind, 0 text."""
    from mutagen.apev2 import _APEv2Data

    try:
        with open(path, "rb") as file:
            data = _APEv2Data(file)
    except (mutagen.MutagenError, OSError, ValueError):
        return {}
    tag, items = data.tag or b"", {}
    at = 0
    for _ in range(data.items or 0):
        if at + 8 > len(tag):
            break
        size, flags = struct.unpack_from("<II", tag, at)
        end = tag.find(b"\0", at + 8)
        if end < 0 or end + 1 + size > len(tag):
            break  # a broken tag: the items before stay
        key, value = tag[at + 8 : end], tag[end + 1 : end + 1 + size]
        if (flags >> 1) & 3 == 0 and key.isascii():
            items[key.decode("ascii").lower()] = value
        at = end + 1 + size
    return items


def _ffmpeg_fields(path: Path) -> dict:
    try:
        tags = container_tags(path, decode_8bit)
    except AudioError:
        return {}
    return _dict_fields(tags)


def _dict_fields(tags: dict[str, str]) -> dict:
    return _text_fields(lambda *keys: next((tags[k].strip() for k in keys if tags.get(k, "").strip()), None))


# RIFF INFO chunks, by the names FFmpeg gives them
_RIFF_INFO = {b"INAM": "title", b"IPRD": "album", b"IART": "artist", b"IGNR": "genre", b"ICRD": "date"}
_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _riff_info_fields(path: Path) -> dict:
    """The RIFF INFO chunks of a WAV file, read here rather than by FFmpeg, which stops UTF-16 text (some Windows
    taggers) at its first zero byte. Text with a byte-order mark is UTF-16, the rest 8-bit (:func:`decode_8bit`)."""
    info = _riff_info(path)
    texts = {key: _utf16(raw) for key, raw in info.items() if raw[:2] in _BOMS}
    legacy = [key for key in info if key not in texts]
    texts.update(zip(legacy, decode_8bit([info[key].split(b"\0")[0] for key in legacy]), strict=True))
    return _dict_fields(texts)


def _utf16(raw: bytes) -> str:
    """UTF-16 text with a byte-order mark, up to its NUL (a stray odd byte after it is dropped)."""
    return raw[: len(raw) // 2 * 2].decode("utf-16", "replace").split("\0")[0]


def _riff_info(path: Path) -> dict[str, bytes]:
    """The text chunks of the LIST/INFO chunks of a RIFF/WAVE file (the Resource Interchange File Format of
    Microsoft and IBM, 1991), by :data:`_RIFF_INFO` name, as stored; {} for any other file. A chunk cut short by
    the file's end is left out."""
    fields: dict[str, bytes] = {}
    try:
        with open(path, "rb") as file:
            header = file.read(12)
            if header[:4] != b"RIFF" or header[8:] != b"WAVE":
                return {}
            while len(header := file.read(8)) == 8:
                size = int.from_bytes(header[4:], "little")
                if header[:4] != b"LIST":
                    file.seek(size + size % 2, os.SEEK_CUR)
                    continue
                body = file.read(size + size % 2)
                if body[:4] == b"INFO":
                    fields.update(_info_texts(body[4:size]))
    except OSError:
        return {}
    return fields


def _info_texts(body: bytes) -> dict[str, bytes]:
    texts, offset = {}, 0
    while offset + 8 <= len(body):
        chunk_id, size = body[offset : offset + 4], int.from_bytes(body[offset + 4 : offset + 8], "little")
        value = body[offset + 8 : offset + 8 + size]
        if len(value) < size:
            break
        if chunk_id in _RIFF_INFO:
            texts[_RIFF_INFO[chunk_id]] = value
        offset += 8 + size + size % 2
    return texts


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
    texts = _id3_texts(tags, ("TIT2", "TALB", "TPE1", "TPE2", "TCON", "TDRC", "TYER", "TDOR"))

    def text(frame_id: str) -> str | None:
        return _first(texts.get(frame_id))

    return {
        "title": text("TIT2"),
        "album": text("TALB"),
        "artist": text("TPE1"),
        "album_artist": text("TPE2"),
        # TCON.genres resolves ID3v1 numbers such as "(17)" to names
        "genres": tuple(g for v in TCON(text=texts.get("TCON", [])).genres for g in split_genres(v)),
        "year": _year(text("TDRC") or text("TYER") or text("TDOR")),
    }


def _id3_texts(tags: ID3, frame_ids: Sequence[str]) -> dict[str, list[str]]:
    """The texts of the frames ``frame_ids`` that ``tags`` holds. Frames declared Latin-1 (encoding 0, and every
    ID3v1 field) hold whatever 8-bit text the tagger wrote: their bytes (mutagen decoded them as Latin-1) are
    read by :func:`decode_8bit`, all together."""
    texts = {key: [str(t) for t in tags[key].text] for key in frame_ids if key in tags}
    legacy = [(key, i) for key in texts if tags[key].encoding == 0 for i in range(len(texts[key]))]
    decoded = decode_8bit([texts[key][i].encode("latin-1") for key, i in legacy])
    for (key, i), value in zip(legacy, decoded, strict=True):
        texts[key][i] = value
    return texts


def _vorbis_fields(tags) -> dict:
    """Vorbis comments are UTF-8; mutagen turns bytes that are not into U+FFFD, so a value holding one is left
    out here and taken, bytes intact, from FFmpeg's reading (:func:`_ffmpeg_fields`)."""

    def values(key: str) -> list[str]:
        return [value for value in tags.get(key, []) if "\ufffd" not in value]

    def text(*keys: str) -> str | None:
        for key in keys:
            value = _first(values(key))
            if value:
                return value
        return None

    return {
        "title": text("title"),
        "album": text("album"),
        "artist": text("artist"),
        "album_artist": text("albumartist", "album artist", "album_artist"),
        "genres": tuple(g for v in values("genre") for g in split_genres(v)),
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
