"""The dataset reader and ``nopaingan dataset cache``: contents, resume after a kill, re-encoding of changed
albums, refusal to mix settings."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from training_data import make_dataset

from nopaingan_core.audio import AudioClip, load_audio
from nopaingan_core.encoders import load_encoder
from training import cache as cache_module
from training.cache import CacheReader, CacheReport, cache_dataset, cover_pixels
from training.cli import main
from training.errors import DatasetError
from training.records import read_dataset


def _cache(data, tiny_models, **kw):
    kw = {"resolution": 64, "shard_size": 2, "batch_size": 2, "progress": False} | kw
    return cache_dataset(data, str(tiny_models["sd"]), str(tiny_models["codified-lm"]), **kw)


def test_read_dataset_schema_and_errors(tmp_path):
    data = make_dataset(tmp_path / "data", train=2, eval=1, seconds=1.0)
    albums = read_dataset(data)
    assert [a.split for a in albums] == ["train", "train", "eval"]
    assert (
        read_dataset(data, "eval")[0].prompt() == "Create an album cover for the album Album 2. The genre is synthwave."
    )
    assert albums[0].cover == data / "covers" / "artist-0-album-0.png"

    lines = (data / "metadata.jsonl").read_text().splitlines()
    bad = {
        "not valid JSON": "{oops",
        "missing or empty: audio": json.dumps({k: v for k, v in json.loads(lines[0]).items() if k != "audio"}),
        "appears twice": lines[0],
        "split must be one of": json.dumps(json.loads(lines[0]) | {"id": "x", "split": "test"}),
        "does not exist": json.dumps(json.loads(lines[0]) | {"id": "y", "file_name": "covers/none.png"}),
    }
    for message, line in bad.items():
        (data / "metadata.jsonl").write_text("\n".join([lines[0], line]) + "\n")
        with pytest.raises(DatasetError, match=re.escape(message)) as info:
            read_dataset(data)
        assert "metadata.jsonl:2" in str(info.value)
    with pytest.raises(DatasetError, match="no metadata.jsonl"):
        read_dataset(tmp_path)


ROW = {"id": "a", "file_name": "covers/a.png", "audio": "audio/a.mp3", "album": "A", "split": "train"}


@pytest.mark.parametrize(
    ("row", "found"),
    [
        ({k: v for k, v in ROW.items() if k != "audio"}, "1 field missing or empty: audio"),
        (ROW | {"album": ""}, "1 field missing or empty: album"),
        ({"album": "A", "split": "eval"}, "3 fields missing or empty: id, file_name, audio"),
        ({}, "5 fields missing or empty: id, file_name, audio, album, split"),
    ],
)
def test_a_row_without_required_fields_names_them(tmp_path: Path, row: dict, found: str) -> None:
    (tmp_path / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    expected = f"{tmp_path / 'metadata.jsonl'}:1: expected the fields id, file_name, audio, album, split, found {found}"
    with pytest.raises(DatasetError, match=f"^{re.escape(expected)}$"):
        read_dataset(tmp_path)


def test_cache_holds_what_the_frozen_models_give(cached_data, tiny_models, tiny_sd_fp32):
    reader = CacheReader(cached_data / "cache")
    albums = read_dataset(cached_data)
    assert reader.missing(albums) == []
    assert reader.spec.resolution == 64 and reader.spec.store_dtype == "bf16"
    album = albums[0]
    item = reader.load(album.id)
    assert item.latent_mean.shape == item.latent_std.shape == (4, 8, 8)
    assert item.text.shape == (77, 768)
    encoder = load_encoder("codified-lm", str(tiny_models["codified-lm"]))
    clips = [load_audio(a.audio, None, 25.0) for a in albums]  # encoded as the cache does: one batch
    batch = AudioClip(torch.cat([c.waveform for c in clips]), clips[0].sample_rate)
    music = encoder.encode(batch).features[0]
    assert item.music.shape == music.shape and music.shape[1] == encoder.info.dim
    torch.testing.assert_close(item.music, music, atol=0.02 * music.abs().max().item(), rtol=0.01)  # bf16 storage
    text = tiny_sd_fp32.encode_prompt([album.prompt()])[0]  # `dataset cache` computes in fp32 by default
    torch.testing.assert_close(item.text, text, atol=0.02, rtol=0.01)
    pixels = cover_pixels(album.cover, 64)[None].permute(0, 3, 1, 2) * 2 - 1
    with torch.no_grad():
        mean = tiny_sd_fp32.vae.encode(pixels).latent_dist.mean[0] * tiny_sd_fp32.vae.config.scaling_factor
    torch.testing.assert_close(item.latent_mean, mean, atol=0.02, rtol=0.01)
    assert item.prompt == album.prompt()


def test_killed_cache_resumes_and_changed_albums_are_reencoded(tmp_path, tiny_models, monkeypatch):
    data = make_dataset(tmp_path / "data", train=4, eval=2, seconds=1.0)
    calls = []
    real_load = cache_module.load_audio

    def dying_load(path, offset, duration):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt  # the user's Ctrl-C (or a crash) while the third batch is read
        return real_load(path, offset, duration)

    monkeypatch.setattr(cache_module, "load_audio", dying_load)
    with pytest.raises(KeyboardInterrupt):
        _cache(data, tiny_models, store_dtype="fp32")
    done = CacheReader(data / "cache")
    assert len(done.entries) == 4  # two complete batches were written as shards, nothing half-written
    assert not [p for p in (data / "cache").iterdir() if p.name.endswith(".tmp")]

    monkeypatch.setattr(cache_module, "load_audio", real_load)
    report = _cache(data, tiny_models, store_dtype="fp32")
    assert (report.encoded, report.reused) == (2, 4)
    resumed = CacheReader(data / "cache")

    fresh_data = tmp_path / "fresh"
    shutil.copytree(data, fresh_data, ignore=shutil.ignore_patterns("cache"))
    _cache(fresh_data, tiny_models, store_dtype="fp32")
    fresh = CacheReader(fresh_data / "cache")
    for album_id in fresh.entries:
        a, b = resumed.load(album_id), fresh.load(album_id)
        for name in ("latent_mean", "latent_std", "text", "music"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6)

    # A new cover for one album: only that album is encoded again, and the newest shard wins.
    album = read_dataset(data)[1]
    old = resumed.load(album.id).latent_mean
    shutil.copy(read_dataset(data)[0].cover, album.cover)
    os.utime(album.cover, ns=(1, 1))
    report = _cache(data, tiny_models, store_dtype="fp32")
    assert (report.encoded, report.reused) == (1, 5)
    new = CacheReader(data / "cache").load(album.id).latent_mean
    assert not torch.equal(old, new)
    torch.testing.assert_close(
        new, CacheReader(data / "cache").load(read_dataset(data)[0].id).latent_mean, atol=1e-4, rtol=1e-3
    )


def test_cache_refuses_to_mix_settings(tmp_path, tiny_models, capsys):
    data = make_dataset(tmp_path / "data", train=1, eval=1, seconds=1.0)
    _cache(data, tiny_models)
    cli = ["dataset", "cache", str(data), "--sd", str(tiny_models["sd"]), "--mir", str(tiny_models["codified-lm"])]
    assert main([*cli, "--resolution", "32", "--quiet"]) == 2
    assert "resolution: 64 vs 32" in capsys.readouterr().err
    assert main([*cli, "--resolution", "64", "--quiet"]) == 0  # same settings: nothing left to do
    assert "2 albums (0 encoded now, 2 already cached)" in capsys.readouterr().out
    with pytest.raises(DatasetError, match="other settings.*encoder"):
        cache_dataset(data, str(tiny_models["sd"]), str(tiny_models["mert"]), resolution=64, progress=False)
    with pytest.raises(DatasetError, match="nowhere: no such folder, expected a cache folder"):
        CacheReader(tmp_path / "nowhere")


FOREIGN_ENTRIES = {  # what a folder holds -> the name the refusal gives
    "notes.txt": "notes.txt",
    "skipped.jsonl": "skipped.jsonl",  # a user's, or `dataset fetch`'s: not in a cache run's format
    "sub/": "sub/",
    "shard-x.safetensors.bak": "shard-x.safetensors.bak",
}


@pytest.mark.parametrize("entry", sorted(FOREIGN_ENTRIES))
@pytest.mark.parametrize("with_shard", [False, True])
def test_cache_refuses_a_folder_holding_other_files_before_loading_a_model(tmp_path, capsys, entry, with_shard):
    """`dataset cache --out` into a folder with files no cache run wrote (a dataset folder, a user's folder) would
    rewrite its skipped.jsonl and add shards: refused in one line, before any model loads, nothing touched."""
    data = make_dataset(tmp_path / "data", train=1, eval=1, seconds=1.0)
    out = tmp_path / "out"
    out.mkdir()
    if entry.endswith("/"):
        (out / entry).mkdir()
    else:
        (out / entry).write_text(json.dumps({"source": "a.csv", "artist": "A", "album": "B", "reason": "x"}) + "\n")
    if with_shard:
        (out / "shard-1-000-00000.safetensors").write_bytes(b"")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    cli = ["dataset", "cache", str(data), "--sd", "no/such-model", "--mir", "no/such-mir", "--out", str(out)]
    assert main(cli) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{out}: expected a new, empty or cache folder" in err and f"found also {FOREIGN_ENTRIES[entry]}" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_cache_refuses_the_dataset_folder_itself_and_keeps_its_skipped_list(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", train=1, eval=1, seconds=1.0)
    (data / "skipped.jsonl").write_text('{"source": "a.csv", "artist": "A", "album": "B", "reason": "not found"}\n')
    before = (data / "skipped.jsonl").read_bytes()
    assert main(["dataset", "cache", str(data), "--sd", "x/y", "--mir", "x/z", "--out", str(data)]) == 2
    assert "(a dataset folder: its cache goes in cache/ by default)" in capsys.readouterr().err
    assert (data / "skipped.jsonl").read_bytes() == before and not list(data.glob("shard-*"))


@given(
    names=st.lists(
        st.sampled_from(
            [
                "shard-1764756000-000-00000.safetensors",
                "shard-1764756000-001-00003.safetensors",
                "skipped.jsonl",
                "skipped-001.jsonl",
                ".shard-1764756000-000-00001.safetensors.k2j3h4.tmp",
                ".skipped.jsonl.abc123.tmp",
            ]
        ),
        unique=True,
    ),
    skipped=st.lists(st.fixed_dictionaries({"id": st.text(max_size=8), "reason": st.text(max_size=20)}), max_size=3),
)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_folder_of_what_cache_runs_write_is_a_cache_folder(tmp_path, names, skipped):
    folder = tmp_path / f"cache-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for name in names:
        text = "".join(json.dumps(row) + "\n" for row in skipped) if "jsonl" in name else ""
        (folder / name).write_text(text)
    cache_module.check_cache_folder(folder)  # accepted: nothing raised
    cache_module.check_cache_folder(tmp_path / "new" / "cache")


@pytest.mark.parametrize(
    ("albums", "skipped", "line"),
    [
        (1, 0, "cache DATA: 1 album (1 encoded now, 0 already cached)"),
        (2, 0, "cache DATA: 2 albums (2 encoded now, 0 already cached)"),
        (0, 1, "cache DATA: 0 albums (0 encoded now, 0 already cached), skipped 1 unreadable (see DATA/skipped.jsonl)"),
    ],
)
def test_the_summary_counts_in_words(albums: int, skipped: int, line: str) -> None:
    report = CacheReport(Path("DATA"), albums, albums, 0, skipped=({"id": "x", "reason": "y"},) * skipped)
    assert report.summary() == line


MIR_SPELLINGS = ["codified-lm", "codified-lm/", "./codified-lm", "./codified-lm/", "ABSOLUTE", "../mirs/codified-lm"]


@pytest.mark.parametrize("old", [False, True], ids=["recorded-absolute", "recorded-relative-by-an-earlier-version"])
def test_a_music_model_folder_is_the_same_however_it_is_named(tmp_path, tiny_models, monkeypatch, old):
    """``--mir`` is recorded as an absolute folder, as ``--sd``: any spelling of the folder (relative, absolute,
    ``./``, a trailing slash) gives the same spec and reuses the cache, and so does a cache an earlier version made
    with a relative path (when it names the folder from the working one)."""
    folder = tmp_path / "mirs" / "codified-lm"
    shutil.copytree(tiny_models["codified-lm"], folder)
    data = make_dataset(tmp_path / "data", train=1, eval=1, seconds=1.0)
    monkeypatch.chdir(folder.parent)
    if old:  # as before: the --mir given was recorded as it was spelt
        monkeypatch.setattr(cache_module, "_source", lambda source: source)
    _cache_with(data, tiny_models, "codified-lm")
    monkeypatch.undo()
    monkeypatch.chdir(folder.parent)
    assert CacheReader(data / "cache").spec.encoder.model == str(folder)  # what a fusion trained from it records
    for spelling in MIR_SPELLINGS:
        report = _cache_with(data, tiny_models, str(folder) if spelling == "ABSOLUTE" else spelling)
        assert (spelling, report.encoded, report.reused) == (spelling, 0, 2)
    recorded = {cache_module.read_shard_header(p)[0].encoder.model for p in (data / "cache").glob("shard-*")}
    assert recorded == {"codified-lm" if old else str(folder)}  # nothing was encoded again


def _cache_with(data: Path, tiny_models, mir: str) -> CacheReport:
    return cache_dataset(data, str(tiny_models["sd"]), mir, resolution=64, progress=False)


# How a dataset's files can change after it was cached; `touched` ones keep their bytes, the others do not.
def _touch(path: Path) -> None:
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))


def _rewrite(path: Path) -> None:  # the same bytes written again (a copy, an editor's save): new modification time
    path.write_bytes(path.read_bytes())


def _flip_a_byte(path: Path) -> None:  # same size; the modification time restored would hide it, so it is not
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _append(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0")


CHANGES = {
    "touch": (_touch, False),
    "rewrite": (_rewrite, False),
    "flip": (_flip_a_byte, True),
    "append": (_append, True),
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    preserve_times=st.booleans(),
    changes=st.dictionaries(
        st.integers(0, 5), st.tuples(st.sampled_from(sorted(CHANGES)), st.sampled_from(["cover", "audio"])), max_size=4
    ),
)
def test_a_copied_dataset_stays_cached_and_only_changed_bytes_make_an_album_stale(
    cached_data, tmp_path_factory, preserve_times, changes
):
    """A dataset copied with `cp -r` (new modification times) or `cp -rp` keeps its cache; an album is stale
    exactly when its cover's or audio's bytes changed, whatever happened to the files' times."""
    copy = tmp_path_factory.mktemp("copy") / "data"
    shutil.copytree(cached_data, copy, copy_function=shutil.copy2 if preserve_times else shutil.copy)
    albums = read_dataset(copy)
    for index, (change, which) in changes.items():
        CHANGES[change][0](getattr(albums[index], which))
    expected = sorted(albums[i].id for i, (change, _) in changes.items() if CHANGES[change][1])
    reader = CacheReader(copy / "cache")
    assert sorted(reader.stale(albums)) == expected
    if not expected:
        assert reader.require(albums) == albums
    shutil.rmtree(copy.parent)


def test_untouched_files_are_not_read_and_an_edited_prompt_is_stale(cached_data, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(cached_data, data)  # copy2: the recorded sizes and times still hold
    monkeypatch.setattr(cache_module, "_file_digest", lambda path: pytest.fail(f"{path} was read"))
    albums = read_dataset(data)
    assert CacheReader(data / "cache").stale(albums) == []
    rows = [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines()]
    rows[2]["album"] = "Another Title"
    (data / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.undo()
    assert CacheReader(data / "cache").stale(read_dataset(data)) == [rows[2]["id"]]


def test_a_cache_from_before_content_fingerprints_stays_usable_until_its_files_change(cached_data, tmp_path):
    """Shards written by earlier versions hold a fingerprint of sizes and modification times and no stats."""
    data = tmp_path / "data"
    shutil.copytree(cached_data, data)
    reader = CacheReader(data / "cache")
    albums = read_dataset(data)
    for album in albums:
        entry = reader.entries[album.id][1]
        del entry["stats"]
        entry["fingerprint"] = cache_module._stat_fingerprint(album, reader.spec)
    assert reader.stale(albums) == []
    _touch(albums[0].audio)  # the old fingerprint cannot tell a new time from new bytes: encoded again
    assert reader.stale(albums) == [albums[0].id]
