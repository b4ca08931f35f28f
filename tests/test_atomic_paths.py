"""Output paths as :mod:`nopaingan_core.atomic` checks them: a file named ``a/x/../f`` with no ``a/x`` is checked
and written at ``a/f`` (where making its folder puts it, as for folders), so an existing ``a/f`` is never replaced
through another spelling and no ``a/x`` is left behind; and a symbolic link to a missing target on an output's way
is one line naming the link, for files and folders alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nopaingan_core.atomic import (
    check_output_file,
    check_output_folder,
    dangling_link,
    made_path,
    write_new,
)
from nopaingan_core.errors import OutputError

PARTS = st.lists(st.sampled_from(["a", "b", "x", "..", "."]), max_size=6)
FOLDERS = st.sets(st.sampled_from(["a", "b", "a/a", "a/b", "b/a"]), max_size=5)
FILES = st.sets(st.sampled_from(["f.txt", "a/f.txt", "b/f.txt", "a/a/f.txt", "a/b/f.txt", "b/a/f.txt"]), max_size=3)


def _tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def _folders(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_dir()}


def _above_the_start(parts: list[str]) -> bool:
    """Whether ``parts`` climbs above the two folders every path starts in (``top/mid``)."""
    depth = 0
    for part in parts:
        depth += {"..": -1, ".": 0}.get(part, 1)
        if depth < -2:
            return True
    return False


def _make(root: Path, folders: set[str], files: set[str]) -> None:
    for folder in folders:
        (root / "top" / "mid" / folder).mkdir(parents=True, exist_ok=True)
    for file in files:
        if (root / "top" / "mid" / file).parent.is_dir():
            (root / "top" / "mid" / file).write_bytes(b"earlier")


@settings(max_examples=200, deadline=None)
@given(parts=PARTS, folders=FOLDERS, files=FILES)
def test_a_file_is_checked_and_written_where_making_its_folder_puts_it(tmp_path_factory, parts, folders, files):
    """For any spelling of an output file: ``check_output_file`` refuses it exactly when the file the system would
    write (``mkdir -p`` of its folder, then the file in it) exists, and otherwise returns that same file; writing
    the returned name makes only that file's missing folders (no ``a/x`` of ``a/x/../f.txt``) and replaces no file.
    """
    if _above_the_start(parts):
        return
    checked, system = tmp_path_factory.mktemp("checked"), tmp_path_factory.mktemp("system")
    for root in (checked, system):
        _make(root, folders, files)
    rest = Path(*parts, "f.txt")
    as_given = system / "top" / "mid" / rest
    os.makedirs(as_given.parent, exist_ok=True)  # mkdir -p, then the file: where the system puts it
    wanted = Path(os.path.realpath(as_given)).relative_to(system.resolve())
    before_files, before_folders = _tree(checked), _folders(checked)
    path = checked / "top" / "mid" / rest
    if (checked / wanted).exists():
        with pytest.raises(OutputError, match=r": file exists; choose another name or pass --overwrite$"):
            check_output_file(path, "--out")
        assert _tree(checked) == before_files
        return
    made = check_output_file(path, "--out")
    assert _tree(checked) == before_files  # checking makes nothing
    assert Path(os.path.realpath(made)).relative_to(checked.resolve()) == wanted
    write_new(made, b"new")
    assert (checked / wanted).read_bytes() == b"new"
    assert _folders(checked) - before_folders == {p for p in wanted.parents if p != Path(".")} - before_folders
    assert {p for p in _tree(checked) - before_files if p not in _folders(checked)} == {wanted}


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.sampled_from(["a", "b", "x", "..", "."]), min_size=1, max_size=6), folders=FOLDERS)
def test_a_folder_is_checked_where_mkdir_makes_it(tmp_path_factory, parts, folders):
    """``check_output_folder`` returns the folder ``mkdir -p`` of the path as given makes, for every spelling."""
    if _above_the_start(parts):
        return
    checked, system = tmp_path_factory.mktemp("checked"), tmp_path_factory.mktemp("system")
    for root in (checked, system):
        _make(root, folders, set())
    as_given = system / "top" / "mid" / Path(*parts)
    os.makedirs(as_given, exist_ok=True)
    wanted = Path(os.path.realpath(as_given)).relative_to(system.resolve())
    before = _tree(checked)
    made = check_output_folder(checked / "top" / "mid" / Path(*parts), "--out")
    assert _tree(checked) == before
    assert Path(os.path.realpath(made)).relative_to(checked.resolve()) == wanted


@pytest.mark.parametrize(
    ("given_path", "expected"),
    [
        ("a/x/../f.txt", "a/f.txt"),
        ("a/x/w/../../f.txt", "a/f.txt"),
        ("x/../a/f.txt", "a/f.txt"),
        ("a/x/../y/z/../f.txt", "a/y/f.txt"),
        ("a/./x/.././f.txt", "a/f.txt"),
        ("a/f.txt", "a/f.txt"),
        ("a/../a/f.txt", "a/../a/f.txt"),  # every '..' after an existing folder: as given, the same file
    ],
)
def test_an_existing_file_is_refused_however_spelled(tmp_path, monkeypatch, given_path, expected):
    """The file the spelling names, as made, exists: refused in one line naming the spelling and that file, and
    nothing is made; without it, the spelling is that file."""
    monkeypatch.chdir(tmp_path)
    Path("a").mkdir()
    Path(expected).parent.mkdir(parents=True, exist_ok=True)
    Path(expected).write_bytes(b"earlier")
    before = _tree(tmp_path)
    with pytest.raises(OutputError) as refused:
        check_output_file(given_path, "--out")
    named = Path(given_path) if Path(given_path) == Path(expected) else f"{Path(given_path)} (that is {expected})"
    assert str(refused.value) == f"--out {named}: file exists; choose another name or pass --overwrite"
    assert _tree(tmp_path) == before
    Path(expected).unlink()
    assert check_output_file(given_path, "--out") == Path(expected)
    assert check_output_file(given_path, "--out", overwrite=True) == Path(expected)
    Path(expected).write_bytes(b"earlier")
    assert check_output_file(given_path, "--out", overwrite=True) == Path(expected)


def test_a_file_s_folder_and_suffix_are_checked_as_made(tmp_path, monkeypatch):
    """A folder where the file would go, or another extension, is named with the spelling and the file as made."""
    monkeypatch.chdir(tmp_path)
    Path("a/f.safetensors").mkdir(parents=True)
    with pytest.raises(OutputError, match=r"^--out a/x/\.\./f\.safetensors \(that is a/f\.safetensors\): expected a "):
        check_output_file("a/x/../f.safetensors", "--out", suffix=".safetensors")
    with pytest.raises(OutputError, match=r"^--out a/x/\.\./f\.bin \(that is a/f\.bin\): expected a \.safetensors "):
        check_output_file("a/x/../f.bin", "--out", suffix=".safetensors")
    assert _tree(tmp_path) == {Path("a"), Path("a/f.safetensors")}


# --- symbolic links to a missing target ---------------------------------------------------------------------------

# spelling -> the dangling link named, and whether it is the output itself (else: on its way)
DANGLING = {
    "gone": ("gone", True),
    "gone/out": ("gone", False),
    "gone/deeper/out": ("gone", False),
    "gone/../out": ("gone", False),  # mkdir -p stops at the link too
    "a/gone2": ("a/gone2", True),
    "a/x/../gone2": ("a/gone2", True),  # made, a/x/../gone2 is a/gone2
    "a/x/../gone2/out": ("a/gone2", False),
    "./a/gone2/./out": ("a/gone2", False),
    "loop": ("loop", True),
    "loop/out": ("loop", False),
}


@pytest.fixture
def links(tmp_path, monkeypatch) -> Path:
    """``gone`` -> ``missing``, ``a/gone2`` -> ``../nowhere/deep`` (relative), ``loop`` -> ``loop``."""
    monkeypatch.chdir(tmp_path)
    Path("a").mkdir()
    Path("gone").symlink_to("missing")
    Path("a/gone2").symlink_to(Path("..", "nowhere", "deep"))
    Path("loop").symlink_to("loop")
    return tmp_path


@pytest.mark.parametrize("spelling", DANGLING)
@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_dangling_link_on_an_output_s_way_is_one_line_naming_it(links, spelling, kind):
    """An output that is, or goes through, a symbolic link to a missing target (or one that loops): one line naming
    the option, the output as given, what was expected and the link with its target; nothing is made."""
    link, itself = DANGLING[spelling]
    target = os.readlink(link)
    what = "that loops" if link == "loop" else "to a missing target"
    expected = {"folder": "a folder", "file": "a file name"}[kind]
    line = f"--out {Path(spelling)}: expected {expected}, found a symbolic link {what} ({link} -> {target})" + (
        "" if itself else " on its path"
    )
    before = _tree(links)
    check = check_output_folder if kind == "folder" else check_output_file
    with pytest.raises(OutputError) as refused:
        check(spelling, "--out")
    assert str(refused.value) == line
    assert _tree(links) == before and not Path("missing").exists() and not Path("nowhere").exists()


def test_a_dangling_link_in_an_absolute_path_is_named_absolute(links):
    with pytest.raises(OutputError, match=rf"found a symbolic link to a missing target \({links / 'gone'} -> missing"):
        check_output_file(links / "gone" / "f.csv", "--save-list")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("gone", "gone"),
        ("gone/x/y", "gone"),
        ("a/gone2", "a/gone2"),
        ("a/gone2/x", "a/gone2"),
        ("loop/x", "loop"),
        ("a", None),
        ("a/x/y", None),
        ("a/x/../gone2", None),  # as spelled, a/x/.. names nothing: made_path first (check_output_* do)
        ("good", None),  # a link to an existing folder
        ("good/x", None),
        ("nothing/at/all", None),
    ],
)
def test_dangling_link_finds_the_first_link_that_leads_nowhere(links, path, expected):
    Path("real").mkdir()
    Path("good").symlink_to("real")
    assert dangling_link(Path(path)) == (None if expected is None else Path(expected))
    assert dangling_link(made_path(Path("a/x/../gone2"))) == Path("a/gone2")


def test_a_link_to_an_existing_folder_is_an_output_folder(links):
    """Only a link that leads nowhere is refused: one to a folder is that folder."""
    Path("real").mkdir()
    Path("good").symlink_to("real")
    assert check_output_folder("good/run", "--out") == Path("good/run")
    assert check_output_file("good/f.csv", "--save-list") == Path("good/f.csv")
