"""`nopaingan dataset import --fill-genres-from-audio`: the CLAP tagger names the genre of albums that
have none, through the same import path as every other album."""

from __future__ import annotations

import json
from pathlib import Path

from music_library import image_bytes, make_track

from nopaingan_core.tagging import load_label_sets
from training.cli import main

RED = (200, 30, 30)


def test_cli_fills_missing_genres_from_the_audio(tmp_path: Path, tiny_models, capsys) -> None:
    make_track(tmp_path / "music/Solo/Only/1.ogg", 1.5, album="Only", artist="Solo", picture=image_bytes(RED))
    make_track(
        tmp_path / "music/Duo/Tagged/1.ogg", 1.5, album="Tagged", artist="Duo", genre="Folk", picture=image_bytes(RED)
    )
    out = tmp_path / "DATA"
    args = [
        "dataset",
        "import",
        str(tmp_path / "music"),
        "--out",
        str(out),
        "--quiet",
        "--fill-genres-from-audio",
        "--clap",
        str(tiny_models["clap"]),
        "--genre-min-score",
        "0",
    ]
    assert main(args) == 0
    assert "imported 2 albums" in capsys.readouterr().out
    rows = {r["album"]: r for r in map(json.loads, (out / "metadata.jsonl").read_text().splitlines())}
    genres = {label.lower() for s in load_label_sets() if s.category == "genre" for label in s.labels}
    assert rows["Only"]["genre_source"] == "audio" and rows["Only"]["genre"] in genres
    assert (rows["Tagged"]["genre"], rows["Tagged"]["genre_source"]) == ("folk", "source")


def test_missing_clap_fails_before_importing(tmp_path: Path, capsys) -> None:
    make_track(tmp_path / "music/Solo/Only/1.ogg", 1.5, album="Only", artist="Solo", picture=image_bytes(RED))
    args = [
        "dataset",
        "import",
        str(tmp_path / "music"),
        "--out",
        str(tmp_path / "DATA"),
        "--quiet",
        "--fill-genres-from-audio",
        "--clap",
        str(tmp_path / "no-clap"),
    ]
    assert main(args) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "DATA" / "metadata.jsonl").exists()
