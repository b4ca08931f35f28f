"""Tags are never silently lost at import: every tag format the containers carry is read (ID3v2.2/2.3/2.4 in
every text encoding, stacked ID3v2, ID3v1, APEv2, RIFF INFO in Windows-1252 or UTF-8, Vorbis comments, MP4
atoms), and names that no tag gave are said to come from a folder name, never from a generic folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_corpus import Spec, id3v1, id3v22, riff_info, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from music_library import image_bytes
from mutagen.apev2 import APEv2
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TALB, TCON, TDRC, TPE1
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from nopaingan_core import audio
from training.dataset_import import import_dataset
from training.music_folders import scan_music_folder
from training.tags import read_tags

FORMATS = ["id3v24", "id3v23", "id3v22", "id3-stacked", "id3v1", "apev2", "riff-cp1252", "riff-utf8", "flac", "ogg"]
FORMATS += ["opus", "m4a"]
# Letters every tag format can hold (ID3v1 is Latin-1, RIFF INFO here Windows-1252), accents included, in words
# as Western European languages write them: a word of two letters or more holds an unaccented one. 8-bit text of
# accented letters only ("ÉÉ") is byte for byte Windows-1251 Cyrillic ("ЙЙ"): tests/test_legacy_encodings.py.
WORD = st.text(alphabet="abcxyzABCÉéñÑüÜøåçß", min_size=1, max_size=8).filter(
    lambda word: len(word) == 1 or any(c in "abcxyzABC" for c in word)
)
NAME = st.lists(WORD, min_size=1, max_size=3).map(" ".join)
BASES = {
    "mp3": Spec("mp3", "libmp3lame", "fltp", 22050, "mono", 0.6),
    "wav": Spec("wav", "pcm_s16le", "s16", 8000, "mono", 0.6),
    "flac": Spec("flac", "flac", "s16", 8000, "mono", 0.6),
    "ogg": Spec("ogg", "vorbis", "fltp", 22050, "stereo", 0.6),
    "opus": Spec("opus", "libopus", "s16", 8000, "mono", 0.6),
    "m4a": Spec("m4a", "aac", "fltp", 8000, "mono", 0.6),
}


class Encodes(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<untagged {', '.join(self)}>"


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Encodes:
    """Untagged encodes, one per container, written once."""
    folder = tmp_path_factory.mktemp("plain")
    return Encodes({ext: write(folder / f"plain.{ext}", spec).read_bytes() for ext, spec in BASES.items()})


def tagged(path: Path, fmt: str, plain: dict[str, bytes], artist: str, album: str, year: int, encoding: int) -> Path:
    """A file of ``fmt`` at ``path`` (extension set here) carrying artist, album, genre Jazz and year."""
    ext = {"riff-cp1252": "wav", "riff-utf8": "wav", "flac": "flac", "ogg": "ogg", "opus": "opus", "m4a": "m4a"}
    path = path.with_suffix("." + ext.get(fmt, "mp3"))
    raw = plain[path.suffix[1:]]
    mp3 = raw[raw.index(b"\xff") :] if fmt != "id3v24" else raw  # without PyAV's own small ID3v2 tag
    if fmt in ("id3v24", "id3v23"):
        path.write_bytes(mp3)
        tags = ID3()
        tags.add(TPE1(encoding=encoding, text=artist))
        tags.add(TALB(encoding=encoding, text=album))
        tags.add(TCON(encoding=encoding, text="Jazz"))
        tags.add(TDRC(encoding=encoding, text=str(year)))
        tags.save(path, v2_version=4 if fmt == "id3v24" else 3)
    elif fmt == "id3v22":
        path.write_bytes(id3v22({"TP1": artist, "TAL": album, "TCO": "Jazz", "TYE": str(year)}) + mp3)
    elif fmt == "id3-stacked":  # a tagger that prepended a tag instead of updating the one there
        path.write_bytes(id3v22({"TP1": artist}) + id3v22({"TAL": album, "TCO": "Jazz", "TYE": str(year)}) + mp3)
    elif fmt == "id3v1":
        path.write_bytes(mp3 + id3v1("Song", artist, album, str(year), genre=8))  # 8: Jazz
    elif fmt == "apev2":
        path.write_bytes(mp3)
        ape = APEv2()
        ape.update({"Artist": artist, "Album": album, "Genre": "Jazz", "Year": str(year)})
        ape.save(path)
    elif fmt.startswith("riff"):
        path.write_bytes(raw)
        fields = {"artist": artist, "album": album, "genre": "Jazz", "date": str(year)}
        riff_info(path, fields, "cp1252" if fmt == "riff-cp1252" else "utf-8")
    else:
        path.write_bytes(raw)
        if fmt == "m4a":
            tags = MP4(path)
            tags.update({"\xa9ART": artist, "\xa9alb": album, "\xa9gen": "Jazz", "\xa9day": str(year)})
        else:
            tags = {"flac": FLAC, "ogg": OggVorbis, "opus": OggOpus}[fmt](path)
            tags.update({"artist": artist, "album": album, "genre": "Jazz", "date": str(year)})
        tags.save()
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fmt=st.sampled_from(FORMATS),
    artist=NAME,
    album=NAME,
    year=st.integers(1950, 2030),
    encoding=st.integers(0, 3),
)
def test_every_tag_format_is_read(tmp_path_factory, plain, fmt, artist, album, year, encoding):
    if fmt == "id3v23" and encoding == 3:
        encoding = 1  # ID3v2.3 has no UTF-8
    path = tagged(tmp_path_factory.mktemp("tags") / "song", fmt, plain, artist, album, year, encoding)
    tags = read_tags(path)
    if fmt == "id3v1":  # 30 bytes of Latin-1 per field
        artist, album = artist.encode("latin-1")[:30].decode("latin-1"), album.encode("latin-1")[:30].decode("latin-1")
    assert (tags.artist, tags.album, tags.genres, tags.year) == (artist.strip(), album.strip(), ("Jazz",), year)


def test_riff_info_folder_imports_with_its_tags(tmp_path, plain):
    """The failing example: WAVs tagged with RIFF INFO (as ffmpeg and Windows write them) in a folder."""
    folder = tmp_path / "music" / "Rip"
    folder.mkdir(parents=True)
    for n in (1, 2):
        tagged(folder / f"0{n} Song", "riff-cp1252", plain, "Beyoncé", "Café Tacvba", 2001, 0)
    (folder / "cover.jpg").write_bytes(image_bytes((200, 20, 20), (128, 128)))
    (album,) = scan_music_folder(tmp_path / "music")
    assert (album.artist, album.album, album.genres, album.year) == ("Beyoncé", "Café Tacvba", ["jazz"], 2001)
    assert album.name_sources == {"artist": "tags", "album": "tags"}


def test_generic_folders_are_never_artists_and_guesses_are_reported(tmp_path, plain):
    for layout in ("music/albums/First", "Downloads/Second", "library/Music/Bob/Third"):
        folder = tmp_path / layout
        folder.mkdir(parents=True)
        (folder / "01 Song.wav").write_bytes(plain["wav"])
        (folder / "cover.png").write_bytes(image_bytes((20, 20, 200), (128, 128), "PNG"))
    albums = {a.album: a for a in scan_music_folder(tmp_path)}
    assert albums["First"].artist == "unknown" and albums["Second"].artist == "unknown"
    assert albums["Third"].artist == "Bob"
    assert albums["First"].name_sources == {"artist": "unknown", "album": "folder name"}
    report = import_dataset([tmp_path], tmp_path / "out" / "DATA", link=False)
    assert "artist from a folder name for 1, artist unknown for 2, album from a folder name for 3" in report.summary()


PLACEHOLDERS = ["Unknown Artist", "Unknown Album", "New folder", "New Folder (2)", "Untitled", "untitled folder 3",
                "Neuer Ordner", "Nouveau dossier (4)", "unknown"]  # fmt: skip


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    artist=st.sampled_from(PLACEHOLDERS), album=st.sampled_from(PLACEHOLDERS), case=st.sampled_from(["", "up", "lo"])
)
def test_placeholder_folder_names_are_never_artists_or_albums(tmp_path_factory, plain, artist, album, case):
    """Windows Media Player rips (``Unknown Artist/Unknown Album``), ``New folder (2)``, ``Untitled``: unknown."""
    change = {"": str, "up": str.upper, "lo": str.lower}[case]
    root = tmp_path_factory.mktemp("placeholders")
    for n, folder in enumerate([root / change(artist) / change(album), root / "Real Band" / change(album)]):
        folder.mkdir(parents=True)
        (folder / f"0{n} Song.wav").write_bytes(plain["wav"])
    albums = {a.source: a for a in scan_music_folder(root)}
    first, second = albums[str(root / change(artist) / change(album))], albums[str(root / "Real Band" / change(album))]
    assert (first.artist, first.album) == ("unknown", "unknown")
    assert first.name_sources == {"artist": "unknown", "album": "unknown"}
    assert (second.artist, second.album) == ("Real Band", "unknown")
    assert second.name_sources == {"artist": "folder name", "album": "unknown"}


def test_albums_without_names_are_imported_apart_and_reported(tmp_path, plain):
    for layout in ("Unknown Artist/Unknown Album", "Unknown Artist/Unknown Album (2)", "New folder"):
        folder = tmp_path / "music" / layout
        folder.mkdir(parents=True)
        (folder / "01 Song.wav").write_bytes(plain["wav"])
        (folder / "cover.png").write_bytes(image_bytes((20, 20, 200), (128, 128), "PNG"))
    report = import_dataset([tmp_path / "music"], tmp_path / "out" / "DATA", link=False)
    assert len(report.albums) == 3 and len({r["id"] for r in report.albums}) == 3
    assert "artist unknown for 3" in report.summary() and "album unknown for 3" in report.summary()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    version=st.sampled_from([3, 4]),
    artist=st.text(st.characters(codec="utf-8", exclude_categories=["C", "Z"]), min_size=1, max_size=12),
    vorbis=st.booleans(),
)
def test_id3v2_in_front_of_a_flac_file_is_read(tmp_path_factory, plain, version, artist, vorbis):
    """Some taggers put an ID3v2 tag before FLAC's ``fLaC``: mutagen's FLAC reader and FFmpeg skip it."""
    folder = tmp_path_factory.mktemp("id3flac")
    flac = folder / "plain.flac"
    flac.write_bytes(plain["flac"])
    if vorbis:  # the FLAC's own comments win; the ID3 tag fills what they leave out
        tags = FLAC(flac)
        tags["title"] = "Own Title"
        tags.save()
    tag_file = folder / "tag.id3"
    tag_file.write_bytes(b"")
    id3 = ID3()
    for frame in (TPE1(encoding=3, text=artist), TALB(encoding=3, text="Front Album"), TDRC(encoding=3, text="1987")):
        id3.add(frame)
    id3.save(tag_file, v2_version=version)
    path = folder / "tagged.flac"
    path.write_bytes(tag_file.read_bytes() + flac.read_bytes())
    tags = read_tags(path)
    assert (tags.artist, tags.album, tags.year) == (artist.strip(), "Front Album", 1987)
    assert tags.title == ("Own Title" if vorbis else None)
    assert audio.decode(path).duration > 0.5


# Windows-1252 text as typographers set it: quotes around words, apostrophes and ellipses after them, dashes, euro
# and trademark signs between them. Random runs of these marks and letters ("Šc™c") read as Shift-JIS (劃冂), as
# the Windows-1252 reading of Shift-JIS text does ("‰F‘½“c" for 宇多田): tests/test_legacy_encodings.py.
CP1252_WORD = st.text(st.sampled_from("AbcéÜœŠž"), min_size=1, max_size=6).filter(
    lambda word: len(word) == 1 or any(c in "Abc" for c in word)
)
CP1252_TOKEN = st.tuples(st.sampled_from(["", "‘", "“"]), CP1252_WORD, st.sampled_from(["", "’", "”", "’s", "…"]))
CP1252_TEXT = st.lists(CP1252_TOKEN.map("".join) | st.sampled_from("–—€™…"), min_size=1, max_size=4).map(" ".join)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=CP1252_TEXT)
def test_id3_latin1_frames_holding_windows_1252_are_read_as_it(tmp_path_factory, plain, text):
    """ID3v2.3 frames declared Latin-1 but written in Windows-1252 (curly quotes, euro sign) by Windows taggers."""
    path = tmp_path_factory.mktemp("cp1252") / "song.mp3"
    raw = plain["mp3"]
    path.write_bytes(raw[raw.index(b"\xff") :])
    id3 = ID3()
    id3.add(TPE1(encoding=0, text=text.encode("cp1252").decode("latin-1")))  # the bytes a Windows tagger wrote
    id3.add(TALB(encoding=0, text="Plain Album"))
    id3.save(path, v2_version=3)
    tags = read_tags(path)
    raw = text.encode("cp1252")
    if _is_utf8(raw):  # UTF-8 is read first: "AÜœ" (41 DC 9C) is "Aܜ"
        text = raw.decode("utf-8")
    assert (tags.artist, tags.album) == (text.strip(), "Plain Album")


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
