"""Real-looking music for the dataset tests: encoded tracks tagged with mutagen the way players and taggers
write them (ID3 for mp3, FLAC and Vorbis comments with pictures, MP4 atoms), and cover images."""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path

from audio_files import FORMATS, tone, write_audio
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TALB, TCON, TDRC, TIT2, TPE1, TPE2
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from PIL import Image


def image_bytes(
    color: tuple[int, ...], size: tuple[int, int] = (96, 96), fmt: str = "JPEG", mode: str = "RGB"
) -> bytes:
    out = BytesIO()
    Image.new(mode, size, color).save(out, fmt)
    return out.getvalue()


def make_track(path: Path, seconds: float = 2.0, freq: float = 440.0, **tags) -> Path:
    """An encoded tone at ``path`` (format from its extension), tagged with ``tags`` as :func:`tag_file`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = FORMATS[path.suffix.lstrip(".")][2]
    write_audio(path, tone(seconds, rate, freq), rate)
    if tags:
        tag_file(path, **tags)
    return path


def tag_file(
    path: Path,
    *,
    album: str | None = None,
    artist: str | None = None,
    album_artist: str | None = None,
    title: str | None = None,
    genre: str | None = None,
    year: int | None = None,
    picture: bytes | None = None,
    picture_type: int = 3,
) -> None:
    ext = path.suffix.lower()
    mime = "image/png" if picture and picture.startswith(b"\x89PNG") else "image/jpeg"
    if ext == ".mp3":
        id3 = ID3()
        for frame, value in (
            (TALB, album),
            (TPE1, artist),
            (TPE2, album_artist),
            (TIT2, title),
            (TCON, genre),
        ):
            if value:
                id3.add(frame(encoding=3, text=[value]))
        if year:
            id3.add(TDRC(encoding=3, text=[str(year)]))
        if picture:
            id3.add(APIC(encoding=3, mime=mime, type=picture_type, desc="cover", data=picture))
        id3.save(path)
        return
    if ext == ".m4a":
        mp4 = MP4(path)
        for key, value in (
            ("\xa9alb", album),
            ("\xa9ART", artist),
            ("aART", album_artist),
            ("\xa9nam", title),
        ):
            if value:
                mp4[key] = [value]
        if genre:
            mp4["\xa9gen"] = [genre]
        if year:
            mp4["\xa9day"] = [str(year)]
        if picture:
            kind = MP4Cover.FORMAT_PNG if mime == "image/png" else MP4Cover.FORMAT_JPEG
            mp4["covr"] = [MP4Cover(picture, imageformat=kind)]
        mp4.save()
        return
    audio = {".flac": FLAC, ".ogg": OggVorbis, ".opus": OggOpus}[ext](path)
    fields = {"album": album, "artist": artist, "albumartist": album_artist, "title": title, "genre": genre}
    for key, value in fields.items():
        if value:
            audio[key] = [value]
    if year:
        audio["date"] = [f"{year}-01-01"]
    if picture:
        pic = Picture()
        pic.type, pic.mime, pic.data = picture_type, mime, picture
        if ext == ".flac":
            audio.add_picture(pic)
        else:
            audio["metadata_block_picture"] = [base64.b64encode(pic.write()).decode("ascii")]
    audio.save()
