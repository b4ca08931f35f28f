"""Runs of ``dataset import`` and ``dataset fetch`` into a folder an earlier run wrote: they add to it (earlier
albums they do not bring stay byte for byte, with their side of the split), ``--replace`` keeps only the run's
albums, and a folder no run wrote (a hand-made dataset, other files) is refused in one line, untouched."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from catalogue_server import FakeAlbum, FakeCatalogues, FakeTrack
from http_files import FileServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from music_library import image_bytes, make_track
from PIL import Image

from training import atomic
from training.atomic import STAGING_MARK, STAGING_PREFIX, StagedFiles, remove_stale_staging, staging_folders
from training.cache import cache_dataset
from training.catalogues import make_catalogues
from training.cleaning import artist_key
from training.cli import main
from training.dataset_import import import_dataset
from training.download import Downloader
from training.errors import DatasetError
from training.fetch import AlbumRequest, fetch_dataset
from training.split import EVAL, TRAIN, assign_splits

RED, BLUE = (220, 20, 20), (30, 40, 220)
EVAL_FRACTION = 0.4
# (artist, album): five artists, two of them with two albums
ALBUMS = [
    ("Ada", "One"),
    ("Ada", "Two"),
    ("Bo", "Three"),
    ("Cy", "Four"),
    ("Cy", "Five"),
    ("Dee", "Six"),
    ("Eve", "Ten"),
]
# an album's version in a run: its audio and cover, or "bad" (its cover file is missing: the run leaves it out)
VERSIONS = (0, 1, "bad")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions of a preview and of a cover, as local files manifests point at."""
    root = tmp_path_factory.mktemp("pool")
    make_track(root / "v0.mp3", 1.5, 330)
    make_track(root / "v1.mp3", 1.5, 550)
    (root / "v0.jpg").write_bytes(image_bytes(RED))
    (root / "v1.jpg").write_bytes(image_bytes(BLUE))
    return root


def run(
    pool: Path, out: Path, albums: dict[str, int | str], replace: bool = False, eval_fraction: float = EVAL_FRACTION
):
    """Import the albums named (by album title) in the versions given, from a manifest in the pool."""
    lines = ["artist,album,genre,preview,cover"]
    for artist, album in ALBUMS:
        if album in albums:
            version = albums[album]
            cover = pool / ("missing.jpg" if version == "bad" else f"v{version}.jpg")
            preview = pool / f"v{0 if version == 'bad' else version}.mp3"
            lines.append(f"{artist},{album},rock,{preview},{cover}")
    manifest = out.parent / "albums.csv"
    manifest.write_text("\n".join(lines) + "\n")
    downloader = Downloader(out.parent / "downloads", rate_limit=None)
    return import_dataset(
        [manifest], out, downloader=downloader, eval_fraction=eval_fraction, replace=replace, link=False
    )


def rows(out: Path) -> dict[str, dict]:
    return {r["album"]: r for r in map(json.loads, (out / "metadata.jsonl").read_text().splitlines())}


def files(out: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the folder (cache/ too) with its bytes and modification time."""
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}


def color(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as image:
        return image.convert("RGB").getpixel((image.width // 2, image.height // 2))


def check_run(pool: Path, out: Path, albums: dict[str, int | str], replace: bool) -> None:
    """One run into ``out`` and everything the new rule says about the folder it leaves."""
    earlier = rows(out) if (out / "metadata.jsonl").exists() else {}
    before = files(out) if out.exists() else {}
    report = run(pool, out, albums, replace)
    brought = {a for a, v in albums.items() if v != "bad"}
    others = set(earlier) - brought
    after = rows(out)
    # the albums: this run's, and unless --replace the earlier ones it did not bring
    assert set(after) == (brought if replace else brought | set(earlier))
    assert {r["album"] for r in report.albums} == brought
    assert {r["album"] for r in report.kept} == (set() if replace else others)
    assert {r["album"] for r in report.removed} == (others if replace else set())
    # exactly the albums' files, kept albums' byte for byte (and not rewritten), this run's from its sources
    names = {r[f] for r in after.values() for f in ("audio", "file_name")}
    assert {n for n in files(out) if n.startswith(("audio/", "covers/"))} == names
    for album in set(after) - brought:
        assert after[album] == earlier[album]
        for field in ("audio", "file_name"):
            assert files(out)[after[album][field]] == before[after[album][field]]
    for album in brought:
        version = albums[album]
        assert (out / after[album]["audio"]).read_bytes() == (pool / f"v{version}.mp3").read_bytes()
        assert all(
            abs(a - b) <= 12 for a, b in zip(color(out / after[album]["file_name"]), (RED, BLUE)[version], strict=True)
        )
    # the split: each artist on one side; earlier artists keep theirs unless --replace, which splits afresh
    sides: dict[str, set[str]] = {}
    for row in after.values():
        sides.setdefault(artist_key(row["artist"]), set()).add(row["split"])
    assert all(len(s) == 1 for s in sides.values()), sides
    if replace:
        splits = [r["split"] for r in report.albums]
        assert splits == assign_splits([r["artist"] for r in report.albums], EVAL_FRACTION)
    else:
        earlier_sides = {artist_key(r["artist"]): r["split"] for r in earlier.values()}
        assert all(r["split"] == earlier_sides.get(artist_key(r["artist"]), r["split"]) for r in after.values())
    # what was left out: this run's bad albums, and unless --replace earlier ones this run did not mention
    left_out = {r["album"] for r in map(json.loads, (out / "skipped.jsonl").read_text().splitlines())}
    earlier_left_out = {a for a in before_skipped(before) if a not in albums}
    assert left_out == {a for a, v in albums.items() if v == "bad"} | (set() if replace else earlier_left_out)
    # the summary
    line = report.summary()
    kept = re.search(r"; kept (\d+) earlier albums? \((\d+) in all: train (\d+), eval (\d+)\)", line)
    removed = re.search(r"; removed (\d+) earlier albums? not in this run", line)
    assert (int(kept[1]) if kept else 0) == (0 if replace else len(others)), line
    assert (int(removed[1]) if removed else 0) == (len(others) if replace else 0), line
    if kept:
        splits = [r["split"] for r in after.values()]
        assert [int(n) for n in kept.groups()[1:]] == [len(after), splits.count(TRAIN), splits.count(EVAL)]


def before_skipped(before: dict[str, tuple[bytes, int]]) -> set[str]:
    text = before.get("skipped.jsonl", (b"", 0))[0].decode()
    return {r["album"] for r in map(json.loads, text.splitlines())}


# sequences of runs: (albums and their versions, --replace)
SEQUENCES = [
    # the trial's case: a second list into the folder of the first keeps the first's albums
    [({"One": 0, "Three": 0, "Four": 0, "Six": 0}, False), ({"Ten": 0}, False)],
    # a changed album replaces its earlier version, the others stay
    [({"One": 0, "Three": 0}, False), ({"One": 1}, False)],
    # a new album of an artist already there goes to that artist's side
    [({"One": 0, "Three": 0, "Four": 0, "Six": 0, "Ten": 0}, False), ({"Two": 0, "Five": 1}, False)],
    # --replace keeps only the run's albums
    [({"One": 0, "Three": 0, "Four": 0}, False), ({"Three": 1}, True)],
    [({"One": 0, "Two": 0}, False), ({"Ten": 0}, False), ({"One": 0, "Two": 0}, True)],
    # an album the run leaves out is kept from before, and listed as left out by this run
    [({"One": 0, "Three": 0}, False), ({"One": "bad", "Six": 0}, False)],
    # an album left out before and brought now leaves skipped.jsonl; one not mentioned stays there
    [({"One": "bad", "Three": "bad", "Six": 0}, False), ({"One": 0}, False)],
    [({"One": "bad", "Six": 0}, False), ({"Ten": 0}, True)],
]


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_runs_add_to_the_folder_and_replace_keeps_only_the_last(tmp_path: Path, pool: Path, sequence) -> None:
    out = tmp_path / "DATA"
    for albums, replace in sequence:
        check_run(pool, out, albums, replace)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.dictionaries(
                st.sampled_from([album for _, album in ALBUMS]), st.sampled_from(VERSIONS), min_size=1, max_size=4
            ),
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_any_sequence_of_runs_keeps_or_removes_exactly_the_others(tmp_path: Path, pool: Path, sequence) -> None:
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "DATA"
    for albums, replace in sequence:
        check_run(pool, out, albums, replace)


def test_a_repeated_run_changes_no_file_whatever_came_between(tmp_path: Path, pool: Path) -> None:
    out = tmp_path / "DATA"
    run(pool, out, {"One": 0, "Three": 0, "Six": 1})
    first = files(out)
    report = run(pool, out, {"One": 0, "Three": 0, "Six": 1})
    assert files(out) == first and report.summary() == "imported 3 albums (train 2, eval 1), skipped 0"
    run(pool, out, {"Ten": 0, "Two": 1})  # then the first list again: its rows stay where they were
    second = files(out)
    report = run(pool, out, {"One": 0, "Three": 0, "Six": 1})
    assert files(out) == second
    assert list(rows(out)) == ["One", "Three", "Six", "Two", "Ten"]  # the list order of the runs
    assert report.summary() == "imported 3 albums (train 2, eval 1), skipped 0; kept 2 earlier albums (5 in all: " + (
        f"train {[r['split'] for r in rows(out).values()].count(TRAIN)}, "
        f"eval {[r['split'] for r in rows(out).values()].count(EVAL)})"
    )


def test_a_run_that_changes_albums_says_the_cache_is_older(tmp_path: Path, pool: Path) -> None:
    out = tmp_path / "DATA"
    run(pool, out, {"One": 0, "Three": 0})
    (out / "cache").mkdir()
    (out / "cache/shard-1.safetensors").write_bytes(b"what dataset cache wrote")
    note = (
        f"; {out / 'cache'} predates the albums' changes: run `nopaingan dataset cache {out}` again with the "
        "options it was made with before training"
    )  # a shard that cannot be read: the options are unknown
    for albums, replace, says in [
        ({"One": 0, "Three": 0}, False, False),  # nothing changed
        ({"Six": 0}, False, True),  # an album added
        ({"One": 1}, False, True),  # an album's files changed
        ({"One": 1, "Three": 0, "Six": 0}, False, False),
        ({"One": 1, "Three": 0}, True, True),  # an album removed
    ]:
        summary = run(pool, out, albums, replace).summary()
        assert summary.endswith(note) == says, summary
    assert (out / "cache/shard-1.safetensors").read_bytes() == b"what dataset cache wrote"


def cache_shard(out: Path, spec, albums: list[str]) -> None:
    """A shard of ``out``'s cache with ``spec`` holding ``albums`` (titles) as they are now (no tensors read)."""
    import torch

    from training.cache import FORMAT, FORMAT_VERSION, METADATA_KEY, fingerprint
    from training.records import read_dataset

    entries = [
        {"id": a.id, "fingerprint": fingerprint(a, spec), "prompt": "", "offset": 0.0, "duration": 1.0}
        for a in read_dataset(out)
        if a.album in albums
    ]
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec.to_dict(), "albums": entries}
    (out / "cache").mkdir(exist_ok=True)
    name = f"shard-{time.time_ns()}-000-00000.safetensors"
    atomic.save_safetensors({"x": torch.zeros(1)}, out / "cache" / name, {METADATA_KEY: json.dumps(meta)})


def test_the_cache_reminder_names_its_options_and_stays_until_the_cache_is_run(tmp_path: Path, pool: Path) -> None:
    """The trial's findings: the reminder named `dataset cache DATA` alone, which refuses a cache made with other
    options, and said it only once: the next run, changing nothing, was silent about the stale cache."""
    from nopaingan_core.encoders import EncoderInfo
    from training.cache import CacheSpec

    out = tmp_path / "my data"
    encoder = EncoderInfo("mert", "m-a-p/MERT-v1-95M", 7, 768, 75.0, 24000)
    spec = CacheSpec("/models/mini sd", encoder, resolution=128, store_dtype="fp16")
    run(pool, out, {"One": 0, "Three": 0})
    cache_shard(out, spec, ["One", "Three"])
    note = (
        f"; {out / 'cache'} predates the albums' changes: run `nopaingan dataset cache '{out}' --sd '/models/mini sd' "
        "--mir m-a-p/MERT-v1-95M --kind mert --layer 7 --resolution 128 --store-dtype fp16` again before training"
    )
    for albums, says, cached in [
        ({"One": 0, "Three": 0}, False, []),  # the cache holds every album as it is
        ({"Six": 0}, True, []),  # an album added
        ({"Six": 0}, True, ["Six"]),  # nothing changed, the cache still lacks Six: said again
        ({"One": 0, "Six": 0}, False, []),  # once cached, nothing to say
        ({"One": 1}, True, []),  # an album's files changed
        ({"Three": 0}, True, ["One"]),  # still changed since it was cached
        ({"Three": 0}, False, []),
    ]:
        summary = run(pool, out, albums).summary()
        assert summary.endswith(note) == says and (note[2:] in summary) == says, summary
        if cached:
            cache_shard(out, spec, cached)


def test_the_eval_share_counts_the_earlier_albums(tmp_path: Path, pool: Path) -> None:
    """Fetching one album at a time still fills eval: the share is of the whole dataset."""
    out = tmp_path / "DATA"
    for _, album in ALBUMS:
        if album in ("Two", "Five"):
            continue  # one album per artist
        run(pool, out, {album: 0}, eval_fraction=0.5)
    splits = [r["split"] for r in rows(out).values()]
    assert splits.count(EVAL) == round(0.5 * len(splits)) == 2


# --- the split of albums added to a dataset ---------------------------------------------------------------

ARTISTS = st.lists(st.sampled_from(["Ada", "ada", "Bo", "Cy", "Dee", "Eve", "Fox", "Gil", "Hal"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(ARTISTS, ARTISTS, ARTISTS, st.sampled_from([0.0, 0.3, 0.5, 0.9]), st.integers(0, 3))
def test_added_albums_keep_artists_on_their_side_and_fill_eval_to_the_share(
    before: list[str], replaced: list[str], added: list[str], fraction: float, seed: int
) -> None:
    kept = list(zip(before, assign_splits(before, fraction, seed), strict=True))
    earlier = [(a, EVAL if i % 2 else TRAIN) for i, a in enumerate(replaced)]
    splits = assign_splits(added, fraction, seed, kept=kept, earlier=earlier)
    assert splits == assign_splits(added[::-1], fraction, seed, kept=kept, earlier=earlier)[::-1]  # any order
    fixed: dict[str, str] = {}
    for artist, side in [*kept, *earlier]:
        fixed.setdefault(artist_key(artist), side)
    every = [*kept, *zip(added, splits, strict=True)]
    sides: dict[str, set[str]] = {}
    for artist, side in every:
        sides.setdefault(artist_key(artist), set()).add(side)
    assert all(len(s) == 1 for s in sides.values())
    assert all(side == fixed.get(artist_key(a), side) for a, side in zip(added, splits, strict=True))
    forced = sum(side == EVAL for _, side in kept) + sum(fixed.get(artist_key(a)) == EVAL for a in added)
    evals = sum(side == EVAL for _, side in every)
    assert evals <= max(forced, round(fraction * len(every)))
    if not kept and not earlier:
        assert splits == assign_splits(added, fraction, seed)  # a new dataset's split


# --- folders no run wrote ---------------------------------------------------------------------------------

CARD = "---\nconfigs: []\n---\nWritten by `nopaingan dataset import`: ...\n"
ROW = {"id": "ada-one-1", "file_name": "covers/ada-one-1.jpg", "audio": "audio/ada-one-1.mp3", "artist": "Ada"}
ROW |= {"album": "One", "split": "train", "source": "albums.csv:2"}


def hand_made(out: Path) -> None:
    """A dataset folder made by hand (or by the seed's scripts): metadata, audio, covers and a cache, no card."""
    (out / "audio").mkdir(parents=True)
    (out / "covers").mkdir()
    (out / "cache").mkdir()
    for n in range(3):
        (out / f"audio/{n}.wav").write_bytes(b"RIFF" + bytes([n]) * 40)
        (out / f"covers/{n}.jpg").write_bytes(image_bytes(RED))
    (out / "cache/shard-0.safetensors").write_bytes(b"tensors")
    (out / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": f"covers/{n}.jpg", "audio": f"audio/{n}.wav"}) + "\n" for n in range(3))
    )


def ours(out: Path, row: dict | str = ROW, card: str = CARD) -> None:
    """A folder with our card and one metadata row (with its files)."""
    (out / "audio").mkdir(parents=True)
    (out / "covers").mkdir()
    (out / "audio/ada-one-1.mp3").write_bytes(b"mp3")
    (out / "covers/ada-one-1.jpg").write_bytes(b"jpg")
    (out / "README.md").write_text(card)
    (out / "metadata.jsonl").write_text((row if isinstance(row, str) else json.dumps(row)) + "\n")


# (how the folder is made, --replace, what the one line says after "OUT: ")
REFUSED = [
    (
        hand_made,
        False,
        "expected a new, empty or dataset folder written by `nopaingan dataset import` or `fetch` (with its "
        "README.md dataset card), found audio/, cache/, covers/, metadata.jsonl but no README.md; choose another "
        "--out (a run replaces and removes files in its folder)",
    ),
    (hand_made, True, "found audio/, cache/, covers/, metadata.jsonl but no README.md; choose another --out"),
    (lambda out: (out / "cache").mkdir(parents=True), False, "found cache/ but no README.md"),
    (lambda out: ours(out, card="# My albums\n"), False, "found a README.md that is not its dataset card"),
    (
        lambda out: (ours(out), (out / "notes.txt").write_text("mine"), (out / "Extra").mkdir()),
        True,
        "(metadata.jsonl, skipped.jsonl, README.md, audio/, covers/, cache/), found also Extra/, notes.txt; "
        "choose another --out",
    ),
    (
        lambda out: ours(out, row="not json"),
        True,
        "metadata.jsonl line 1: expected a JSON object with id, file_name, audio, artist, album, split, source as "
        "`dataset import` writes, found 'not json'; repair the line or choose another --out",
    ),
    (
        lambda out: ours(out, row=json.dumps(ROW)[:-1] + ', "album": "Other"}'),
        True,
        "metadata.jsonl line 1: expected each field once in an object, found 'album' twice; repair the line or "
        "choose another --out",
    ),
    (
        lambda out: ours(out, row=ROW | {"split": "test"}),
        False,
        "metadata.jsonl line 1: expected split 'train' or 'eval', found 'test'",
    ),
    (
        lambda out: ours(out, row=ROW | {"audio": "../elsewhere.mp3"}),
        True,
        "metadata.jsonl line 1: expected audio to name a file in audio/ as `dataset import` writes, found "
        "'../elsewhere.mp3'; choose another --out",
    ),
    (
        lambda out: (ours(out), (out / "audio/ada-one-1.mp3").unlink()),
        False,
        "metadata.jsonl line 1: expected the files of every album in {out}, found audio/ada-one-1.mp3 of "
        "ada-one-1 missing; put it back, or run with --replace to keep only this run's albums",
    ),
]


@pytest.mark.parametrize("command", ["import", "fetch"])
@pytest.mark.parametrize(("make", "replace", "says"), REFUSED)
def test_a_folder_no_run_wrote_is_refused_and_left_alone(
    tmp_path: Path, pool: Path, capsys, command: str, make, replace: bool, says: str
) -> None:
    out = tmp_path / "data"
    make(out)
    before = files(out)
    source = tmp_path / "albums.csv"
    source.write_text(f"artist,album,preview,cover\nAda,One,{pool / 'v0.mp3'},{pool / 'v0.jpg'}\n")
    argv = ["dataset", command, str(source), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    assert main(argv + ["--replace"] * replace) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and captured.out == "" and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith(f"nopaingan dataset {command}: error: {out}")
    assert says.format(out=out) in lines[0]
    assert files(out) == before and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_folders_runs_write_into(tmp_path: Path, pool: Path) -> None:
    """New, empty, our own (also with a leftover temporary file of an interrupted write), and our own with a
    missing album file under --replace."""
    (tmp_path / "empty").mkdir()
    ours(tmp_path / "own")
    (tmp_path / "own/.metadata.jsonl.x1y2.tmp").write_text("half")
    ours(tmp_path / "gone")
    (tmp_path / "gone/covers/ada-one-1.jpg").unlink()
    for name, replace, kept in [("new", False, 0), ("empty", False, 0), ("own", False, 1), ("gone", True, 0)]:
        report = run(pool, tmp_path / name, {"Three": 0}, replace)
        assert [r["album"] for r in report.kept] == ["One"] * kept
        assert set(rows(tmp_path / name)) == ({"Three", "One"} if kept else {"Three"})
        assert not (tmp_path / name / ".metadata.jsonl.x1y2.tmp").exists()


def test_a_run_stages_inside_its_folder(tmp_path: Path, pool: Path) -> None:
    """Staged files wait in the output folder itself (one file system with it, and its parent need not be
    writable): the genre hook sees the album's audio there."""
    out, seen = tmp_path / "data", []
    manifest = tmp_path / "albums.csv"
    manifest.write_text(f"artist,album,preview,cover\nAda,One,{pool / 'v0.mp3'},{pool / 'v0.jpg'}\n")
    downloader = Downloader(tmp_path / "downloads", rate_limit=None)
    import_dataset([manifest], out, downloader=downloader, genre_from_audio=lambda path: seen.append(path))
    assert len(seen) == 1 and seen[0].parents[2] == out and seen[0].parents[1].name.startswith(".nopaingan-staging-")
    assert not seen[0].exists() and list(out.glob(".nopaingan-*")) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_parent_of_a_dataset_folder_does_not_stop_a_run(tmp_path: Path, pool: Path, capsys) -> None:
    out = tmp_path / "locked" / "data"
    ours(out)
    manifest = tmp_path / "albums.csv"
    manifest.write_text(f"artist,album,preview,cover\nBo,Three,{pool / 'v0.mp3'},{pool / 'v0.jpg'}\n")
    (tmp_path / "locked").chmod(0o555)
    try:
        argv = ["dataset", "import", str(manifest), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
        assert main(argv) == 0, capsys.readouterr().err
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert set(rows(out)) == {"One", "Three"} and sorted(p.name for p in out.parent.iterdir()) == ["data"]


# In a mount namespace of its own: the folder argv[1] mounted read-only, the dataset folder argv[2] in it a mount
# point of its own (a container's volume); one import per manifest of argv[4:] into it (cache argv[3]), the folder
# it is in writable again after the first. Exit status 77 where this system allows no such mounts.
MOUNTED_RUNS = """
import subprocess, sys
from training.cli import main
from training.errors import DatasetError
locked, out, cache, *manifests = sys.argv[1:]
def mount(*args):
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0
mounts = [("--make-rprivate", "/"), ("--bind", locked, locked), ("-o", "remount,bind,ro", locked)]
mounts += [("--bind", out, out), ("-o", "remount,bind,rw", out)]
if not all(mount(*m) for m in mounts):
    sys.exit(77)
for manifest in manifests:
    if main(["dataset", "import", manifest, "--out", out, "--cache-dir", cache, "--quiet"]):
        sys.exit(1)
    mount("-o", "remount,bind,rw", locked)
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare to mount folders with")
def test_a_dataset_folder_that_is_a_mount_point_in_a_read_only_folder(tmp_path: Path, pool: Path) -> None:
    """A container's volume: staging beside the folder failed where the folder it is in is read-only (read-only
    file system), and where that is writable, moving the staged files in across the mount point failed (EXDEV,
    a traceback)."""
    out = tmp_path / "locked" / "data"
    (tmp_path / "locked").mkdir()
    run(pool, out, {"One": 0})
    manifests = [tmp_path / "three.csv", tmp_path / "four.csv"]
    for manifest, album in zip(manifests, ["Three", "Four"], strict=True):
        manifest.write_text(f"artist,album,preview,cover\nBo,{album},{pool / 'v0.mp3'},{pool / 'v0.jpg'}\n")
    mounted = subprocess.run(
        ["unshare", "-m", sys.executable, "-c", MOUNTED_RUNS, str(out.parent), str(out), str(tmp_path / "c")]
        + [str(m) for m in manifests],
        cwd=Path(__file__).parents[1],
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])},
        capture_output=True,
        text=True,
    )
    if mounted.returncode == 77:
        pytest.skip("no mount namespace here")
    assert mounted.returncode == 0 and mounted.stderr == "", mounted.stderr
    assert set(rows(out)) == {"One", "Three", "Four"} and list(tmp_path.rglob(".nopaingan-*")) == []


@pytest.mark.parametrize("earlier", [True, False], ids=["into a dataset", "into a new folder"])
def test_a_staging_folder_that_cannot_be_made_is_one_line_naming_the_output_folder(
    tmp_path: Path, pool: Path, capsys, monkeypatch: pytest.MonkeyPatch, earlier: bool
) -> None:
    """As root (where permissions do not stop a write) too: making the staging folder fails as in a folder this
    user may not write in."""
    out = tmp_path / "data"
    if earlier:
        ours(out)
    before = files(out) if earlier else {}
    make_folder = tempfile.mkdtemp

    def refused(suffix=None, prefix=None, dir=None):  # noqa: A002 - mkdtemp's own name
        if prefix == STAGING_PREFIX:
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix + "x1y2"))
        return make_folder(suffix, prefix, dir)

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    manifest = tmp_path / "albums.csv"
    manifest.write_text(f"artist,album,preview,cover\nBo,Three,{pool / 'v0.mp3'},{pool / 'v0.jpg'}\n")
    argv = ["dataset", "import", str(manifest), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == f"nopaingan dataset import: error: {out}: permission denied\n" and captured.out == ""
    assert files(out) == before and out.exists() is earlier  # a new folder made for the staging is gone again


# --- staging folders runs that were killed left ---------------------------------------------------------


def leftover(out: Path, mark: Callable[[dict], dict | str | None] = lambda owner: owner) -> Path:
    """The staging folder of a run into ``out`` that stopped without cleaning up (its StagedFiles is dropped
    undiscarded), its marker rewritten by ``mark`` (a new owner, raw text, or None: no marker)."""
    staged = StagedFiles(out)
    staged.write("covers/x.jpg", b"half a run")
    staging = staged.path("covers/x.jpg").parents[1]
    marker = staging / STAGING_MARK
    new = mark(json.loads(marker.read_text()))
    if new is None:
        marker.unlink()
    else:
        marker.write_text(new if isinstance(new, str) else json.dumps(new))
    return staging


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that ended (and was waited for)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


# (case, the marker a leftover carries, whether the next run removes it); "dead" is a pid no process has
LEFTOVERS = [
    ("this test's process: still running", lambda owner: owner, False),
    ("a process that ended", lambda owner: owner | {"pid": "dead"}, True),
    ("its pid now another process's", lambda owner: owner | {"started": owner["started"] + "0"}, True),
    ("a start time that is no text", lambda owner: owner | {"pid": "dead", "started": 12.5}, False),
    ("another host's process", lambda owner: owner | {"pid": "dead", "host": "elsewhere"}, False),
    ("a pid that is no number", lambda owner: owner | {"pid": "12"}, False),
    ("no start time", lambda owner: {k: v for k, v in owner.items() if k != "started"} | {"pid": "dead"}, False),
    ("a marker that is not JSON", lambda owner: '{"pid": ', False),
    ("a marker that is no object", lambda owner: "[1, 2]", False),
    ("no marker", lambda owner: None, False),
]


@pytest.mark.parametrize("system", ["linux", "other"])
@pytest.mark.parametrize(("case", "mark", "removed"), LEFTOVERS, ids=[c for c, _, _ in LEFTOVERS])
def test_only_provably_stale_staging_folders_are_removed(
    tmp_path: Path, dead_pid: int, monkeypatch: pytest.MonkeyPatch, system: str, case: str, mark, removed: bool
) -> None:
    """On Linux a process's start is read from /proc; elsewhere from psutil (tried here on Linux too)."""
    if system == "linux" and not sys.platform.startswith("linux"):
        pytest.skip("no /proc here")
    monkeypatch.setattr(atomic, "sys", SimpleNamespace(platform=sys.platform if system == "linux" else "other"))
    out = tmp_path / "data"

    def marked(owner: dict) -> dict | str | None:
        new = mark(owner)
        return new | {"pid": dead_pid} if isinstance(new, dict) and new.get("pid") == "dead" else new

    staging = leftover(out, marked)
    assert remove_stale_staging(out) == ([staging] if removed else [])
    assert staging.exists() is not removed


def test_what_only_looks_like_a_staging_folder_is_left_alone(tmp_path: Path, dead_pid: int) -> None:
    """A link to a stale staging folder, a file with a staging folder's name, and a killed run's staging folder
    beside the folder (where runs staged before) are no staging folders of runs into the folder."""
    out = tmp_path / "data"
    elsewhere = leftover(tmp_path / "elsewhere", lambda owner: owner | {"pid": dead_pid})
    out.mkdir()
    link = out / (elsewhere.name + "-link")
    link.symlink_to(elsewhere, target_is_directory=True)
    (out / (elsewhere.name + "-file")).write_text("{}")
    (tmp_path / ".nopaingan-data-x1y2").mkdir()
    (tmp_path / ".nopaingan-data-x1y2" / STAGING_MARK).write_text(json.dumps({"pid": dead_pid}))
    assert remove_stale_staging(out) == []
    assert link.is_symlink() and (elsewhere / STAGING_MARK).is_file()
    assert (tmp_path / ".nopaingan-data-x1y2" / STAGING_MARK).is_file()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL on this system")
def test_a_killed_run_its_parent_did_not_wait_for_left_a_stale_staging_folder(tmp_path: Path) -> None:
    """A zombie (a run killed while the process that started it still runs) writes nothing any more."""
    out = tmp_path / "data"
    root = Path(__file__).parents[1]
    env = os.environ | {"PYTHONPATH": str(root)}
    with subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(out)], cwd=root, env=env) as child:
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.01)
        stale = staging_folders(out)
        assert len(stale) == 1 and remove_stale_staging(out) == stale and not stale[0].exists()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL on this system")
@pytest.mark.parametrize("earlier", [True, False], ids=["into a dataset", "into a new folder"])
def test_the_next_run_removes_what_a_killed_run_left_and_says_so(
    tmp_path: Path, pool: Path, caplog: pytest.LogCaptureFixture, earlier: bool
) -> None:
    out = tmp_path / "data"
    if earlier:
        run(pool, out, {"One": 0})
    before = files(out) if earlier else {}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(out)],
        cwd=Path(__file__).parents[1],
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    stale = [p for p in out.iterdir() if p.name.startswith(".nopaingan-")]
    assert len(stale) == 1 and (stale[0] / "covers/x.jpg").read_bytes() == b"half a run"
    running = leftover(out)  # this process's: a run still in progress
    with caplog.at_level(logging.WARNING, logger="training.notes"):
        report = run(pool, out, {"One": 0})
    assert not stale[0].exists() and (running / STAGING_MARK).is_file()
    assert [r.getMessage() for r in caplog.records] == [
        f"removed 1 staging folder that a run into {out} left when it was killed: {stale[0]}"
    ]
    assert [r["album"] for r in report.albums] == ["One"]
    shutil.rmtree(running)
    if earlier:
        assert files(out) == before  # a repeated run: nothing else changed


def test_quiet_hides_the_note_that_a_killed_run_s_staging_folder_was_removed(
    tmp_path: Path, pool: Path, dead_pid: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The line saying so is a note: `dataset import --quiet` removes a killed run's staging folder without it, and
    the next command without --quiet says so again (--quiet holds for its own command only)."""
    out = tmp_path / "data"
    artist, album = ALBUMS[0]
    manifest = tmp_path / "albums.csv"
    manifest.write_text(
        f"artist,album,genre,preview,cover\n{artist},{album},rock,{pool / 'v0.mp3'},{pool / 'v0.jpg'}\n"
    )
    argv = ["dataset", "import", str(manifest), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--copy"]
    for quiet in (True, False, True):
        stale = leftover(out, lambda owner: owner | {"pid": dead_pid})
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert main([*argv, *(["--quiet"] if quiet else [])]) == 0
        assert not stale.exists()
        notes = [r.getMessage() for r in caplog.records if r.name == "training.notes"]
        note = f"removed 1 staging folder that a run into {out} left when it was killed: {stale}"
        assert notes == ([] if quiet else [note])


# a run that stages a file into the folder sys.argv[1], then is killed
KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from training.atomic import StagedFiles
staged = StagedFiles(Path(sys.argv[1]))
staged.write("covers/x.jpg", b"half a run")
os.kill(os.getpid(), signal.SIGKILL)
"""


# --- dataset fetch ----------------------------------------------------------------------------------------


@pytest.fixture()
def catalogue(pool: Path):
    """A Deezer catalogue on a local server with three albums (built as test_fetch's shop)."""
    with FileServer() as server:
        fake = FakeCatalogues(server)
        preview = (pool / "v0.mp3").read_bytes()
        for artist, album, rgb in [("Ada", "One", RED), ("Bo", "Three", BLUE), ("Eve", "Ten", RED)]:
            fake.add_deezer(FakeAlbum(artist, album, image_bytes(rgb), [FakeTrack("a", preview)]))
        yield server, fake


def test_fetch_one_list_after_another_keeps_the_earlier_albums(tmp_path: Path, catalogue, capsys) -> None:
    """The trial's finding: fetching one list at a time into one folder kept only the last list's albums."""
    server, fake = catalogue
    out = tmp_path / "DATA"
    fast = ["--deezer-rate", "0", "--rate-limit", "0", "--backoff", "0", "--quiet", "--catalogues", "deezer"]
    fast += ["--eval-fraction", "0"]
    fast += ["--deezer-api", fake.deezer_url, "--cache-dir", str(tmp_path / "c"), "--out", str(out)]

    def fetch(albums: str, *options: str) -> str:
        (tmp_path / "albums.csv").write_text("artist,album\n" + albums)
        assert main(["dataset", "fetch", str(tmp_path / "albums.csv"), *fast, *options]) == 0
        return capsys.readouterr().out

    genres = "genre not in the list: from the catalogue for {} (genre_source in metadata.jsonl)"
    assert fetch("Ada,One\nBo,Three\n") == f"fetched 2 albums (train 2, eval 0), skipped 0; {genres.format(2)}\n"
    first, earlier = files(out), rows(out)
    assert fetch("Eve,Ten\n") == (
        "fetched 1 album (train 1, eval 0), skipped 0; kept 2 earlier albums (3 in all: train 3, eval 0); "
        f"{genres.format(1)}\n"
    )
    assert {k: v for k, v in rows(out).items() if k != "Ten"} == earlier
    assert all(files(out)[n] == first[n] for r in earlier.values() for n in (r["audio"], r["file_name"]))
    assert fetch("Bo,Three\n", "--replace") == (
        f"fetched 1 album (train 1, eval 0), skipped 0; removed 2 earlier albums not in this run; {genres.format(1)}\n"
    )
    assert set(rows(out)) == {"Three"} and len(list((out / "audio").iterdir())) == 1


def test_the_python_api_adds_too(tmp_path: Path, catalogue) -> None:
    server, fake = catalogue
    catalogues = make_catalogues(
        ["deezer"], lambda rate, statuses: Downloader(tmp_path / "api", rate_limit=None), deezer_api=fake.deezer_url
    )
    media = Downloader(tmp_path / "c", rate_limit=None)
    fetch_dataset([AlbumRequest("Ada", "One", "l:2")], tmp_path / "DATA", catalogues=catalogues, downloader=media)
    report = fetch_dataset(
        [AlbumRequest("Eve", "Ten", "l:2")], tmp_path / "DATA", catalogues=catalogues, downloader=media
    )
    assert [r["album"] for r in report.kept] == ["One"] and set(rows(tmp_path / "DATA")) == {"One", "Ten"}


# --- two runs into one folder -------------------------------------------------------------------------------

# Holds the lock of the folder argv[1] as a run does, says so on stdout, and waits until stdin closes (or it is
# killed).
HOLDER = """
import sys
from pathlib import Path
from training.atomic import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def holder(out: Path) -> subprocess.Popen:
    """Another process holding ``out``'s lock, as a run into it in progress does."""
    root = Path(__file__).parents[1]
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        cwd=root,
        env=os.environ | {"PYTHONPATH": str(root)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline() == "held\n"
    return child


@pytest.mark.parametrize("command", ["import", "fetch"])
@pytest.mark.parametrize("earlier", [True, False], ids=["into a dataset", "into a new folder"])
def test_a_run_into_a_folder_another_live_run_writes_is_refused_in_one_line(
    tmp_path: Path, pool: Path, catalogue, capsys, command: str, earlier: bool
) -> None:
    """The trial's finding: two runs into one folder at once both reported success, one's albums lost."""
    server, fake = catalogue
    out = tmp_path / "data"
    if earlier:
        run(pool, out, {"One": 0})
    before = files(out) if earlier else {}
    if command == "import":
        source = tmp_path / "albums.csv"
        source.write_text(f"artist,album,preview,cover\nBo,Three,{pool / 'v0.mp3'},{pool / 'v0.jpg'}\n")
    else:
        source = tmp_path / "list.csv"
        source.write_text("artist,album\nBo,Three\n")
    argv = ["dataset", command, str(source), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    if command == "fetch":
        argv += ["--catalogues", "deezer", "--deezer-api", fake.deezer_url, "--deezer-rate", "0"]
    with holder(out) as other:
        assert main(argv) == 2
        captured = capsys.readouterr()
        lock = tmp_path / ".data.nopaingan-lock"
        assert captured.err == (
            f"nopaingan dataset {command}: error: --out: expected a folder no other run is writing, found {out} "
            f"being written by another run (pid {other.pid} on {socket.gethostname()}, lock {lock}); wait for it "
            "to end, or choose another --out\n"
        )
        assert captured.out == "" and files(out) == before and out.exists() is earlier
        other.stdin.close()
    assert main(argv) == 0, capsys.readouterr().err  # once it ended, the folder is free
    assert "Three" in rows(out) and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_caching_a_dataset_an_import_still_writes_is_refused_in_one_line(tmp_path: Path, pool: Path, capsys) -> None:
    """``dataset cache DATA`` during an import into DATA would cache the albums imported so far and no more."""
    out = tmp_path / "data"
    run(pool, out, {"One": 0})
    argv = ["dataset", "cache", str(out), "--sd", str(tmp_path / "no-sd"), "--mir", str(tmp_path / "no-mir")]
    with holder(out) as other:
        assert main(argv) == 2
        lock = tmp_path / ".data.nopaingan-lock"
        assert capsys.readouterr().err == (
            f"nopaingan dataset cache: error: DATA: expected a folder no run is writing, found {out} being written "
            f"by another run (pid {other.pid} on {socket.gethostname()}, lock {lock}); wait for it to end\n"
        )
        assert not (out / "cache").exists()
        with pytest.raises(DatasetError, match="DATA: expected a folder no run is writing"):
            cache_dataset(out, str(tmp_path / "no-sd"))  # the library refuses too, before any model loads
        other.kill()
        other.wait()
    assert lock.is_file()  # a killed run's: held by no one, so the folder is free
    assert main(argv) == 2
    assert "no-mir' does not exist" in capsys.readouterr().err  # past the check: on to the models
    assert lock.is_file()  # only tried, never taken or removed


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL on this system")
def test_the_lock_of_a_killed_run_is_taken_over(tmp_path: Path, pool: Path) -> None:
    out = tmp_path / "data"
    with holder(out) as other:
        other.kill()
        other.wait()
    assert (tmp_path / ".data.nopaingan-lock").is_file()  # left behind, held by no one
    assert [r["album"] for r in run(pool, out, {"One": 0}).albums] == ["One"]
    assert not (tmp_path / ".data.nopaingan-lock").exists()


# Imports the manifest argv[2] into argv[1] (downloads cache argv[3]); exit status as the command's.
IMPORT = """
import sys
from training.cli import main
from training.errors import DatasetError
sys.exit(main(["dataset", "import", sys.argv[2], "--out", sys.argv[1], "--cache-dir", sys.argv[3], "--quiet"]))
"""


def test_two_runs_at_once_never_both_succeed_with_albums_lost(tmp_path: Path, pool: Path) -> None:
    """Two real processes into one new folder: each that says it succeeded has its albums there."""
    out = tmp_path / "data"
    root = Path(__file__).parents[1]
    albums = {"a.csv": ["One", "Two"], "b.csv": ["Three", "Four"]}
    for name, titles in albums.items():
        lines = [f"{artist},{album},{pool / 'v0.mp3'},{pool / 'v0.jpg'}" for artist, album in ALBUMS if album in titles]
        (tmp_path / name).write_text("artist,album,preview,cover\n" + "\n".join(lines) + "\n")
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-c", IMPORT, str(out), str(tmp_path / name), str(tmp_path / f"c-{name}")],
            cwd=root,
            env=os.environ | {"PYTHONPATH": str(root)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in albums
    }
    results = {name: (child.wait(), child.stderr.read()) for name, child in runs.items()}
    for child in runs.values():
        child.stderr.close()
    succeeded = [name for name, (status, _) in results.items() if status == 0]
    assert succeeded, results
    for status, err in results.values():
        assert status in (0, 2), err
        assert status == 0 or "no other run is writing" in err, err
    assert set(rows(out)) == {album for name in succeeded for album in albums[name]}


def test_the_dataset_card_names_the_command_that_wrote_it_and_the_copyright(
    tmp_path: Path, pool: Path, catalogue
) -> None:
    """The trial's finding: a fetched folder's card said `dataset import` wrote it, and nothing of copyright."""
    server, fake = catalogue
    out = tmp_path / "data"
    catalogues = make_catalogues(
        ["deezer"], lambda rate, statuses: Downloader(tmp_path / "api", rate_limit=None), deezer_api=fake.deezer_url
    )
    media = Downloader(tmp_path / "c", rate_limit=None)

    def fetch(artist: str, album: str) -> None:
        fetch_dataset([AlbumRequest(artist, album, "l:2")], out, catalogues=catalogues, downloader=media)

    steps = [
        ("fetch", lambda: fetch("Ada", "One")),
        ("import", lambda: run(pool, out, {"Three": 0})),
        ("fetch", lambda: fetch("Eve", "Ten")),
    ]
    for command, step in steps:
        step()  # each accepts the folder the other wrote
        card = (out / "README.md").read_text()
        assert card.startswith("---\nconfigs:") and f"Written by `nopaingan dataset {command}`:" in card
        assert "copyrighted by their owners" in card and "private research use, not for redistribution" in card
        assert ("catalogues' terms" in card) is (command == "fetch")
    assert set(rows(out)) == {"One", "Three", "Ten"}
