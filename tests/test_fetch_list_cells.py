"""Album lists and manifests, cells found in a fourth user trial: a row with more cells than the header (a name
with an unquoted delimiter in it, ``Earth, Wind & Fire``) is one line naming the file and line, the cells expected
and found, in every delimiter the reader takes (comma, semicolon, tab; ``.csv`` and ``.tsv``; pandas' ``split``
JSON); empty cells past the header (a spreadsheet's padding) are taken; Excel's delimiter hint ``sep=;`` on the
first line is honoured, and that line is no row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fetch import _one_line

from training.cli import main
from training.errors import DatasetError
from training.fetch import read_album_list
from training.manifest import read_table

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# names without delimiters, quotes or line breaks of their own (a list's plain cells)
NAMES = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "Zs"), exclude_characters="\u2028\u2029\x85"),
    min_size=1,
    max_size=12,
).filter(lambda text: text.strip() and text.strip().casefold() not in {"nan", "none", "null", "n/a", "tba"})


def _write(folder: Path, delimiter: str, lines: list[str], suffix: str = ".csv") -> Path:
    path = folder / f"albums{suffix}"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _save(path: Path, capsys) -> tuple[int, str]:
    saved = path.parent / "saved.csv"
    saved.unlink(missing_ok=True)
    code = main(["dataset", "fetch", str(path), "--save-list", str(saved), "--cache-dir", str(path.parent / "c")])
    return code, (_one_line(capsys) if code else capsys.readouterr().out)


# (the header, a row, cells the header has, cells the row has): the user trial's rows and their kin
TOO_MANY = [
    ("artist,album", "Earth, Wind & Fire,I Am", 2, 3),
    ("artist,album,year,genre", "Daft Punk,Discovery,2001,house,EXTRA,EXTRA2", 4, 6),
    ("artist,album", "Crosby, Stills, Nash & Young,Déjà Vu", 2, 4),
    ("artist;album", "Earth; Wind & Fire;I Am", 2, 3),
    ("artist\talbum", "Earth\tWind & Fire\tI Am", 2, 3),
    ("artist,album", "Earth, Wind & Fire,I Am,,", 2, 5),  # padding after the cut name: still refused
    ("artist,album,", "Earth, Wind & Fire,I Am", 3, 3),  # an unnamed column takes the extra cell: no error
]


@pytest.mark.parametrize(("header", "row", "expected", "found"), TOO_MANY)
@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_row_with_more_cells_than_the_header_is_one_line(tmp_path, capsys, header, row, expected, found, suffix):
    if suffix == ".tsv" and "\t" not in header:  # a .tsv is read with tabs
        header, row = (text.replace(",", "\t").replace(";", "\t") for text in (header, row))
    path = _write(tmp_path, "", [header, row], suffix)
    code, said = _save(path, capsys)
    if expected == found:
        assert code == 0, said
        return
    assert code == 2
    delimiter = "tab" if "\t" in header else "semicolon" if ";" in header else "comma"
    assert said == (
        f"nopaingan dataset fetch: error: {path}:2: expected {expected} cells as the header has, found {found}: a "
        f'name with an unquoted {delimiter} in it? Put such a name in double quotes ("Earth, Wind & Fire")'
    )
    assert not (tmp_path / "saved.csv").exists()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(sorted(DELIMITERS)),
    st.lists(st.tuples(NAMES, NAMES), min_size=1, max_size=5),
    st.data(),
)
def test_any_row_with_an_unquoted_delimiter_is_named_by_its_line(tmp_path_factory, delimiter, albums, data):
    """Whatever the names and the delimiter, a delimiter put into one name of one row makes that row one cell
    too long, and the error names that file and line (the header is line 1); quoted, the name reads back whole."""
    folder = tmp_path_factory.mktemp("cells")
    cut = data.draw(st.integers(0, len(albums) - 1))
    artist, album = albums[cut]
    at = data.draw(st.integers(1, len(artist)))
    broken = f"{artist[:at]}{delimiter}{artist[at:]}"
    lines = [f"artist{delimiter}album"] + [f"{a}{delimiter}{b}" for a, b in albums]
    lines[cut + 1] = f"{broken}{delimiter}{album}"
    path = _write(folder, delimiter, lines)
    with pytest.raises(DatasetError) as error:
        read_album_list(path)
    assert str(error.value).startswith(f"{path}:{cut + 2}: expected 2 cells as the header has, found 3: ")
    assert f"unquoted {DELIMITERS[delimiter]}" in str(error.value)
    quoted = io.StringIO()
    writer = csv.writer(quoted, delimiter=delimiter, lineterminator="\n")
    writer.writerows([["artist", "album"], *([a, b] for a, b in albums[:cut]), [broken, album]])
    path.write_text(quoted.getvalue(), encoding="utf-8")
    assert read_album_list(path)[-1].artist == " ".join(broken.split()).strip(' "“”')


@pytest.mark.parametrize("delimiter", sorted(DELIMITERS))
@pytest.mark.parametrize("padding", [1, 2, 5])
def test_empty_cells_past_the_header_are_a_spreadsheets_padding(tmp_path, delimiter, padding):
    """Spreadsheets write empty cells up to the widest row (``a,b,,``): empty, even as spaces, they hold nothing
    that is lost, and the row is read."""
    lines = [f"artist{delimiter}album", f"Daft Punk{delimiter}Discovery" + delimiter * padding, "Björk" + delimiter]
    lines.append(f"Air{delimiter}Moon Safari{delimiter} {delimiter}")
    albums = read_album_list(_write(tmp_path, delimiter, lines))
    assert [(a.artist, a.album) for a in albums] == [("Daft Punk", "Discovery"), ("Björk", ""), ("Air", "Moon Safari")]


def test_a_row_with_fewer_cells_gives_the_rest_empty_and_the_fetch_skips_it_with_the_reason(tmp_path, capsys):
    """A row short of cells has those columns empty: a missing year is no year, a missing album skips the row in
    skipped.jsonl ("empty album"), as an empty cell does."""
    albums = read_album_list(_write(tmp_path, ",", ["artist,album,year", "Daft Punk,Discovery", "Earth Wind & Fire"]))
    expected = [("Daft Punk", "Discovery", None), ("Earth Wind & Fire", "", None)]
    assert [(a.artist, a.album, a.year) for a in albums] == expected


@pytest.mark.parametrize("kind", ["manifest", "album list"])
def test_a_manifest_row_with_more_cells_is_refused_alike(tmp_path, kind):
    """The reader is ``dataset import``'s too: a manifest's row is held to the same rule."""
    path = _write(tmp_path, ",", ["artist,album,preview,cover", "Earth, Wind & Fire,I Am,a.mp3,c.jpg"])
    with pytest.raises(DatasetError, match=rf"^{path}:2: expected 4 cells as the header has, found 5: "):
        read_table(path, ("artist", "album"), kind)


@pytest.mark.parametrize("extra", [1, 3])
def test_a_split_json_row_with_more_values_than_columns_is_refused(tmp_path, capsys, extra):
    """pandas' ``split`` orient (``{"columns": [...], "data": [[...]]}``) is a header and rows too."""
    path = tmp_path / "albums.json"
    data = [["Daft Punk", "Discovery"], ["Earth", "Wind & Fire", "I Am", *["x"] * (extra - 1)]]
    path.write_text(json.dumps({"columns": ["artist", "album"], "data": data}))
    code, said = _save(path, capsys)
    assert code == 2
    assert said == (
        f'nopaingan dataset fetch: error: {path}:row 2: expected 2 values as "columns" names, found {2 + extra} in '
        '"data"'
    )
    data[1] = ["Earth, Wind & Fire", "I Am"]
    path.write_text(json.dumps({"columns": ["artist", "album"], "data": data}))
    assert [a.artist for a in read_album_list(path)] == ["Daft Punk", "Earth, Wind & Fire"]


# --- Excel's delimiter hint --------------------------------------------------------------------------------------

# (the hint line as written, the delimiter it names)
HINTS = [
    ("sep=,", ","),
    ("sep=;", ";"),
    ("sep=\t", "\t"),
    ("sep=|", "|"),
    ("SEP=;", ";"),
    ('"sep=;"', ";"),
    ("sep=,,,", ","),
    ("sep=;\r", ";"),
    ("sep=; ", ";"),
]


@pytest.mark.parametrize(("hint", "delimiter"), HINTS)
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_excels_delimiter_hint_names_the_delimiter_and_is_no_row(tmp_path, hint, delimiter, bom):
    """``sep=;`` (Excel's, not RFC 4180's) says the delimiter, even one that the header would not suggest (a
    semicolon list whose names hold commas), and the lines after it keep their numbers."""
    rows = io.StringIO()
    csv.writer(rows, delimiter=delimiter, lineterminator="\n").writerows(
        [["artist", "album", "year"], ["Earth, Wind & Fire", "I Am", "1979"], ["Simon, Paul", "Graceland", "1986"]]
    )
    lines = [bom + hint, *rows.getvalue().splitlines()]
    path = tmp_path / "albums.csv"
    path.write_bytes("\n".join(lines).encode("utf-8") + b"\n")
    albums = read_album_list(path)
    assert [(a.artist, a.album, a.year, a.source) for a in albums] == [
        ("Earth, Wind & Fire", "I Am", 1979, f"{path}:3"),
        ("Simon, Paul", "Graceland", 1986, f"{path}:4"),
    ]
    path.write_text(f"{hint}\nartist{delimiter}album\nA{delimiter}B{delimiter}C\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"^{path}:3: expected 2 cells as the header has, found 3"):
        read_album_list(path)


@pytest.mark.parametrize("first", ["sep=", "sep=ab", "separator=;", "sep:;"])
def test_a_first_line_that_is_no_hint_is_the_header(tmp_path, first):
    """Only ``sep=`` and one character (repeated as padding) is the hint; anything else is the header, and a
    header without artist and album columns says what it found."""
    path = tmp_path / "albums.csv"
    path.write_text(f"{first}\nartist;album\nA;B\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no column for artist, album"):
        read_album_list(path)


def test_an_unclosed_quote_after_the_hint_is_named_by_its_line_in_the_file(tmp_path):
    path = tmp_path / "albums.csv"
    path.write_text('sep=;\nartist;album\n"Daft Punk;Discovery\nAir;Moon Safari\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"^{path}:3: a quote opens a value here"):
        read_album_list(path)
