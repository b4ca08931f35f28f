"""``nopaingan dataset fetch`` and ``dataset import``, wording found in a third user trial: an album list or
manifest without albums names the file and what it was expected to hold; a list that is not UTF-8 (saved as
Windows-1252) is one line naming the file, the line and byte offset, and asking for UTF-8 (UTF-8, UTF-16 and
UTF-32 with a byte order mark are read); ``dataset fetch`` without arguments names each missing one, as argparse
does; the summary of a fetch says where the genres the list did not give came from (never "not in tags")."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import pytest
import test_fetch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_fetch import _one_line

from training.cli import main
from training.errors import DatasetError
from training.fetch import read_album_list
from training.manifest import read_manifest, read_table

audio, shop = test_fetch.audio, test_fetch.shop  # the fixtures: previews, and both fake catalogues


def _fetch_list(tmp_path: Path, path: Path, capsys) -> str:
    """The one line ``dataset fetch PATH --save-list`` fails with (nothing asked of any catalogue)."""
    saved = tmp_path / "saved.csv"
    assert main(["dataset", "fetch", str(path), "--save-list", str(saved), "--cache-dir", str(tmp_path / "c")]) == 2
    assert not saved.exists()
    return _one_line(capsys)


# --- a table without albums -----------------------------------------------------------------------------------

LIST = "expected a header row naming artist, album and at least one album row"
MANIFEST = "expected a header row naming artist, album, preview, cover and at least one album row"
# (file name, its text, what the one line says after the file's name: for an album list, for a manifest)
EMPTY_TABLES = [
    ("albums.csv", "artist,album\n", f"{LIST}, found the header row only", f"{MANIFEST}, found the header row only"),
    ("albums.csv", "artist,album\n\n\n", f"{LIST}, found the header row only",
     f"{MANIFEST}, found the header row only"),
    ("albums.csv", "", f"{LIST}, found an empty file", f"{MANIFEST}, found an empty file"),
    ("albums.csv", "\n \n", f"{LIST}, found an empty file", f"{MANIFEST}, found an empty file"),
    ("albums.tsv", "artist\talbum\n", f"{LIST}, found the header row only", f"{MANIFEST}, found the header row only"),
    ("albums.json", "[]", 'expected a list of album objects such as [{"artist": ..., "album": ...}], found an empty '
     "list", 'expected a list of album objects such as [{"artist": ..., "album": ..., "preview": ..., "cover": ...}], '
     "found an empty list"),
    ("albums.json", '{"albums": []}', "found an empty list", "found an empty list"),
    ("albums.jsonl", "", "expected one album object per line, found an empty file",
     "expected one album object per line, found an empty file"),
    ("albums.jsonl", "\n\n", "expected one album object per line, found an empty file",
     "expected one album object per line, found an empty file"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "as_list", "as_manifest"), EMPTY_TABLES)
def test_a_table_without_albums_names_the_file_and_what_it_should_hold(
    tmp_path: Path, capsys, name: str, text: str, as_list: str, as_manifest: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    line = _fetch_list(tmp_path, path, capsys)
    assert line.startswith(f"nopaingan dataset fetch: error: {path}: no albums (") and as_list in line, line
    assert line.endswith(")")
    with pytest.raises(DatasetError) as raised:
        read_album_list(path)
    assert str(raised.value) == line.removeprefix("nopaingan dataset fetch: error: ")
    # the import of a manifest says the same of its columns
    assert main(["dataset", "import", str(path), "--out", str(tmp_path / "DATA"), "--quiet"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"nopaingan dataset import: error: {path}: no albums (") and as_manifest in line, line
    with pytest.raises(DatasetError, match=re.escape(f"{path}: no albums (")):
        read_manifest(path)
    assert not (tmp_path / "DATA").exists()


# --- encodings ------------------------------------------------------------------------------------------------

SAVE = "save it as UTF-8 (in a spreadsheet: Save As, CSV UTF-8)"
# (the list's text, its encoding, the line, byte offset and byte the one line names, and the character it shows)
NOT_UTF8 = [
    ("artist,album\nBjörk,Homogenic\n", "cp1252", 2, 15, 0xF6, "ö"),
    ("artist,album\nSigur Rós,Ágætis byrjun\n", "cp1252", 2, 20, 0xF3, "ó"),
    ("artist,album\nDaft Punk,Discovery\nBeyoncé,Lemonade\n", "latin-1", 3, 39, 0xE9, "é"),
    ("artist,album\nMotörhead,Ace of Spades\n", "cp1252", 2, 16, 0xF6, "ö"),
    ("artist,album\nThe Artist,“Quoted”\n", "cp1252", 2, 24, 0x93, "“"),
    ("artist,album\nКино,Группа крови\n", "cp1251", 2, 13, 0xCA, "Ê"),  # shown as Windows-1252 reads it
    ("artist,album\nAerosmith,Pump\n\x81\n", "latin-1", 3, 28, 0x81, None),  # no character in Windows-1252
    ("artístà,album\nA,B\n", "cp1252", 1, 3, 0xED, "í"),  # in the header
]


@pytest.mark.parametrize(("text", "encoding", "line", "offset", "byte", "shown"), NOT_UTF8)
def test_a_list_in_another_encoding_is_one_line_naming_where(
    tmp_path: Path, capsys, text: str, encoding: str, line: int, offset: int, byte: int, shown: str | None
) -> None:
    path = tmp_path / "albums.csv"
    path.write_bytes(text.encode(encoding))
    assert path.read_bytes()[offset] == byte
    seen = f" ({shown!r} in Windows-1252)" if shown else ""
    assert _fetch_list(tmp_path, path, capsys) == (
        f"nopaingan dataset fetch: error: {path}:{line}: expected UTF-8 text, found byte 0x{byte:02X} at byte "
        f"offset {offset}{seen}: the album list is saved in another encoding; {SAVE}"
    )
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(text.encode(encoding))
    with pytest.raises(DatasetError, match=re.escape(f"the manifest is saved in another encoding; {SAVE}")):
        read_manifest(manifest)


# Code pages lists are saved in, and the letters names take in each: every character of a single-byte code page
# (a byte from 0x20 on), names of the scripts of the multi-byte ones, and ASCII letters and punctuation in all.
SINGLE_BYTE = ["cp1252", "latin-1", "cp1250", "cp1251", "cp1253", "cp1254", "mac_roman"]
MULTI_BYTE = {
    "shift_jis": "東京事変坂本龍一ーカタ",
    "gbk": "周杰倫王菲中文歌",
    "big5": "周杰倫五月天",
    "euc-kr": "방탄소년단아이유",
}
ASCII = "abcdefghijklmnopqrstuvwxyz ABC&'!.-"


def _letters(encoding: str) -> str:
    if encoding in MULTI_BYTE:
        return ASCII + MULTI_BYTE[encoding]
    return ASCII + "".join(
        char for byte in range(0x20, 0x100) for char in bytes([byte]).decode(encoding, "ignore") if char.isprintable()
    )


@st.composite
def legacy_lists(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    encoding = draw(st.sampled_from([*SINGLE_BYTE, *MULTI_BYTE]))
    names = st.text(st.sampled_from(_letters(encoding)), min_size=1, max_size=12)
    return encoding, draw(st.lists(st.tuples(names, names), min_size=1, max_size=4))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(legacy_lists())
def test_any_list_not_in_utf8_names_its_first_bad_byte(tmp_path: Path, capsys, drawn) -> None:
    """A list written in a legacy code page is either valid UTF-8 too (ASCII: read as such) or refused in one line
    naming the line and byte offset of the first byte that is not UTF-8."""
    encoding, albums = drawn
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("artist", "album"), *albums])
    raw = out.getvalue().encode(encoding)
    path = tmp_path / "albums.csv"
    path.write_bytes(raw)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
    else:
        assume(False)
    line = raw[:start].count(b"\n") + 1
    message = _fetch_list(tmp_path, path, capsys)
    assert message.startswith(
        f"nopaingan dataset fetch: error: {path}:{line}: expected UTF-8 text, found byte 0x{raw[start]:02X} at byte "
        f"offset {start}"
    )
    assert message.endswith(f"the album list is saved in another encoding; {SAVE}")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_nul_byte_in_the_header_is_utf16_without_a_byte_order_mark(tmp_path: Path, capsys, encoding: str) -> None:
    """UTF-16 has a NUL beside each ASCII character, so its header has NULs; a name may hold one (a saved list
    writes every name back, as ``test_fetch_lists`` tests), no header does."""
    path = tmp_path / "albums.csv"
    raw = "artist,album\nBjörk,Homogenic\n".encode(encoding)
    path.write_bytes(raw)
    line = _fetch_list(tmp_path, path, capsys)
    offset = raw.index(b"\0")
    assert line == (
        f"nopaingan dataset fetch: error: {path}:1: expected UTF-8 text, found a NUL byte at byte offset {offset}: "
        f"the album list is saved in another encoding (UTF-16 without a byte order mark?); {SAVE}"
    )


NAMES = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12)
# (the byte order mark, and the encoding after it)
MARKED = [
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(NAMES, NAMES, st.sampled_from(["", "1999", "2019-03-15"])), min_size=1, max_size=4))
def test_a_list_with_a_byte_order_mark_reads_as_its_utf8_copy(tmp_path: Path, albums) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("artist", "album", "year"), *albums])
    plain = tmp_path / "plain.csv"
    plain.write_bytes(out.getvalue().encode("utf-8"))
    expected = [(a.artist, a.album, a.year, a.source.rsplit(":", 1)[1]) for a in read_album_list(plain)]
    for bom, encoding in MARKED:
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes(bom + out.getvalue().encode(encoding))
        found = [(a.artist, a.album, a.year, a.source.rsplit(":", 1)[1]) for a in read_album_list(path)]
        assert found == expected, encoding


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(NAMES, NAMES, st.sampled_from(["", "1999"])), min_size=1, max_size=4),
    st.sampled_from([(codecs.BOM_UTF16_LE, "utf-16-le"), (b"", "utf-8"), (codecs.BOM_UTF8, "utf-8")]),
)
def test_excels_text_saves_read_as_the_csv(tmp_path: Path, albums, marked) -> None:
    """Excel's "Unicode Text" (tab-separated UTF-16 with a byte order mark) and "Text (Tab delimited)" save a
    table as .txt: read as the same list, and as the same manifest."""
    assume(all("\t" not in name and name.strip() for row in albums for name in row[:2]))
    bom, encoding = marked
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([("artist", "album", "year"), *albums])
    tabbed = io.StringIO()
    csv.writer(tabbed, delimiter="\t", lineterminator="\r\n").writerows([("artist", "album", "year"), *albums])
    plain, saved = tmp_path / "plain.csv", tmp_path / "saved.txt"
    plain.write_bytes(out.getvalue().encode("utf-8"))
    saved.write_bytes(bom + tabbed.getvalue().encode(encoding))
    assert [(a.artist, a.album, a.year) for a in read_album_list(saved)] == [
        (a.artist, a.album, a.year) for a in read_album_list(plain)
    ]
    rows, columns = read_table(saved, ("artist", "album"))
    assert [(row[columns["artist"]], row[columns["album"]]) for _, row in rows] == [(a, b) for a, b, _ in albums]


@pytest.mark.parametrize(
    ("bom", "encoding", "name"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
        (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
        (b"", "utf-8", "UTF-8"),
    ],
)
def test_a_list_cut_inside_a_character_says_so(tmp_path: Path, capsys, bom: bytes, encoding: str, name: str) -> None:
    path = tmp_path / "albums.csv"
    raw = bom + "artist,album\nA,B\nBé".encode(encoding)
    path.write_bytes(raw[:-1])  # the last character cut short
    start = len(raw) - len("é".encode(encoding))
    assert _fetch_list(tmp_path, path, capsys) == (
        f"nopaingan dataset fetch: error: {path}:3: expected {name} text, found the file ending inside a "
        f"character at byte offset {start}: the album list was cut short; save it again as UTF-8"
    )


# --- missing arguments ----------------------------------------------------------------------------------------

ALBUMS = "ALBUMS (an album list: .csv, .tsv, .txt, .json, .jsonl; or --from-wikipedia-list URL)"
OUT = "--out DATA (the dataset folder to write; or --save-list FILE for the list alone)"
# (arguments after `dataset fetch`, besides a list when {list} is there; what is missing)
MISSING = [
    ([], [ALBUMS, OUT]),
    (["--quiet"], [ALBUMS, OUT]),
    (["--catalogues", "itunes"], [ALBUMS, OUT]),
    (["--out", "{tmp}/DATA"], [ALBUMS]),
    (["--save-list", "{tmp}/saved.csv"], [ALBUMS]),
    (["{list}"], [OUT]),
    (["--from-wikipedia-list", "https://en.wikipedia.org/wiki/List_of_2019_albums"], [OUT]),
    (["{list}", "--catalogues", "deezer"], [OUT]),
]


@pytest.mark.parametrize(("argv", "missing"), MISSING)
def test_fetch_without_its_arguments_names_each_missing_one(tmp_path: Path, capsys, argv, missing) -> None:
    albums = tmp_path / "albums.csv"
    albums.write_text("artist,album\nA,B\n")
    argv = [a.format(tmp=tmp_path, list=albums) for a in argv]
    assert main(["dataset", "fetch", *argv, "--cache-dir", str(tmp_path / "c")]) == 2
    assert _one_line(capsys) == (
        f"nopaingan dataset fetch: error: the following arguments are required: {', '.join(missing)}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["albums.csv"]  # nothing written, nothing asked


TEXT = "expected text or a number"
BAD_VALUES = [
    ('[{"artist": ["Björk"], "album": "Homogenic"}]', f"row 1: column 'artist': {TEXT}, found [\"Björk\"]"),
    ('[{"artist": "A", "album": {"title": "B"}}]', f'row 1: column \'album\': {TEXT}, found {{"title": "B"}}'),
    ('[{"artist": "A", "album": true}]', f"row 1: column 'album': {TEXT}, found true"),
    (
        '[{"artist": "A", "album": "B", "genre": [1]}]',
        "row 1: column 'genre': expected text or a list of text, found [1]",
    ),
    ('[{"artist": "A", "album": "B"}, "junk"]', 'row 2: expected an album object ({...}), found "junk"'),
    ('[{"artist": "A", "album": "B"}, [1]]', "row 2: expected an album object ({...}), found [1]"),
]


@pytest.mark.parametrize(("rows", "expected"), BAD_VALUES)
def test_a_json_value_no_field_takes_is_one_line_naming_row_and_column(tmp_path, capsys, rows, expected) -> None:
    """A list-valued artist was stored as its Python text ("['Björk']") and a stray element named nowhere: each is
    refused naming the row, the column and the value, for fetch's album lists and import's manifests alike."""
    path = tmp_path / "albums.json"
    path.write_text(rows, encoding="utf-8")
    assert main(["dataset", "fetch", str(path), "--save-list", str(tmp_path / "saved.csv")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"nopaingan dataset fetch: error: {path}:{expected}"]
    with pytest.raises(DatasetError, match=re.escape(f"{path}:{expected}")):
        read_table(path, required=("artist", "album"))  # the reader of import's manifests too


def test_numbers_and_genre_lists_stay_values(tmp_path) -> None:
    path = tmp_path / "albums.json"
    path.write_text('[{"artist": "Adele", "album": 21, "year": 2011, "genre": ["pop", "soul"]}]', encoding="utf-8")
    [request] = read_album_list(path)
    assert (request.artist, request.album, request.year, request.genres) == ("Adele", "21", 2011, ("pop", "soul"))
