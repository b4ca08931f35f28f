"""``nopaingan dataset fetch``'s album lists: a list named twice (under any spelling of its path) is read once,
with a note, as an album listed twice is fetched once."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import test_fetch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fetch import rows

from training.cli import main
from training.fetch import distinct_files, read_album_list

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
        f"note: album list {Path(spellings[first][1])} given again as {Path(spellings[again][1])}: read once",
        f"wrote 2 albums to {saved}",
    ]
    assert _save([spellings[first][1], spellings[again][1]], tmp_path / "quiet.csv", "--quiet") == 0
    assert capsys.readouterr().out == f"wrote 2 albums to {tmp_path / 'quiet.csv'}\n"  # no note


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
