"""The command line: demo, generate and encode as a user runs them, offline errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from nopaingan_core.audio import load_audio, save_wav
from nopaingan_core.checkpoint import new_fusion, save_fusion
from nopaingan_core.encoders import load_encoder
from nopaingan_core.generate import SamplerSettings, generate_covers
from nopaingan_core.sampling import to_pil
from training.cli import main


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        timeout=600,
    )


@pytest.fixture(scope="module")
def song_file(tmp_path_factory, song):
    return save_wav(song, tmp_path_factory.mktemp("audio") / "song.wav")


@pytest.fixture(scope="module")
def fusion_file(tmp_path_factory, tiny_models):
    encoder = load_encoder("codified-lm", str(tiny_models["codified-lm"]))
    fusion = new_fusion(encoder.info, gate=1.0)
    return save_fusion(fusion, tmp_path_factory.mktemp("fusion") / "f.safetensors")


def test_generate_with_fusion_matches_the_library_bit_for_bit(
    tmp_path, tiny_models, tiny_sd, song_file, fusion_file, capsys
):
    args = [
        "generate",
        "--audio",
        str(song_file),
        "--album",
        "Blue Train",
        "--genre",
        "jazz",
        "--sd",
        str(tiny_models["sd"]),
        "--mir",
        str(tiny_models["codified-lm"]),
        "--fusion",
        str(fusion_file),
        "--steps",
        "3",
        "--num",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--seed",
        "5",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Create an album cover for the album Blue Train. The genre is jazz." in printed
    files = sorted(tmp_path.glob("blue-train_5_*.png"))
    assert len(files) == 2
    info = json.loads(Image.open(files[0]).text["nopaingan"])
    assert info["seed"] == 5 and info["fusion"] == str(fusion_file)

    from nopaingan_core.checkpoint import load_fusion

    fusion = load_fusion(fusion_file)
    encoder = load_encoder("codified-lm", str(tiny_models["codified-lm"]))
    music = encoder.encode(load_audio(song_file))
    expected = generate_covers(
        tiny_sd,
        "Create an album cover for the album Blue Train. The genre is jazz.",
        music=music,
        fusion=fusion,
        settings=SamplerSettings(steps=3, num=2, width=64, height=64, seed=5),
    )
    for file, image in zip(files, to_pil(expected), strict=True):
        assert np.array_equal(np.asarray(Image.open(file)), np.asarray(image))


def test_generate_without_fusion_says_text_only(tmp_path, tiny_models, capsys):
    args = [
        "generate",
        "--album",
        "A",
        "--genre",
        "pop",
        "--sd",
        str(tiny_models["sd"]),
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert "generating from the album prompt alone" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.png"))) == 1


def test_fusion_needs_audio(tmp_path, fusion_file, capsys):
    assert main(["generate", "--album", "A", "--genre", "pop", "--fusion", str(fusion_file)]) == 2
    assert "--fusion needs --audio FILE" in capsys.readouterr().err


def test_encode_writes_embedding_and_metadata(tmp_path, tiny_models, song_file):
    out = tmp_path / "emb.safetensors"
    assert main(["encode", "--audio", str(song_file), "--mir", str(tiny_models["clap"]), "--out", str(out)]) == 0
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
        emb = f.get_tensor("embedding")
    assert meta["encoder_kind"] == "clap" and meta["encoder_layer"] == "2"
    assert float(meta["encoder_frame_rate"]) == pytest.approx(12.8)
    assert meta["clip_offset"] == "0.000" and meta["clip_duration"] == "8.000"
    assert emb.shape == (1, round(8 * 12.8), 32)


@pytest.mark.parametrize("overwrite", [False, True])
def test_encode_never_replaces_a_file_written_while_it_encoded(
    tmp_path, tiny_models, song_file, monkeypatch, capsys, overwrite
):
    """--out is checked before the encoder loads; a file another process writes there meanwhile was replaced
    without --overwrite. It is kept, and the command says so in one line (exit 2); --overwrite replaces it."""
    import nopaingan_core.encoders as encoders

    out = tmp_path / "emb.safetensors"
    load = encoders.load_encoder

    def load_and_race(*args, **kwargs):
        out.write_bytes(b"another process's file")
        return load(*args, **kwargs)

    monkeypatch.setattr(encoders, "load_encoder", load_and_race)
    argv = ["encode", "--audio", str(song_file), "--mir", str(tiny_models["clap"]), "--out", str(out)]
    code = main([*argv, *(["--overwrite"] if overwrite else [])])
    if overwrite:
        assert code == 0 and out.read_bytes() != b"another process's file"
    else:
        assert code == 2 and out.read_bytes() == b"another process's file"
        assert capsys.readouterr().err.splitlines() == [
            f"nopaingan encode: error: --out {out}: file exists (written while this encoded); choose another name or "
            "pass --overwrite"
        ]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_missing_model_is_one_line_not_a_traceback():
    result = run_cli("generate", "--album", "A", "--genre", "pop", "--sd", "nobody/no-such-model")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "nopaingan generate: error: Stable Diffusion model 'nobody/no-such-model' is not in the Hugging Face cache "
        "(HF_HUB_OFFLINE is set). Get it on a machine with internet with `hf download nobody/no-such-model` (it "
        "lands in the Hugging Face cache; copy that cache or point HF_HOME at it), or pass a local folder with "
        "--sd DIR"
    ]


def test_bad_audio_is_one_line(tmp_path, tiny_models, fusion_file):
    bad = tmp_path / "song.mp3"
    bad.write_bytes(b"not audio" * 50)
    result = run_cli(
        "generate",
        "--audio",
        str(bad),
        "--album",
        "A",
        "--genre",
        "pop",
        "--fusion",
        str(fusion_file),
        "--mir",
        str(tiny_models["codified-lm"]),
        "--sd",
        str(tiny_models["sd"]),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"nopaingan generate: error: {bad}: not a readable audio file (" + result.stderr.split("(", 1)[1].strip()
    ]
    assert "Traceback" not in result.stderr


def test_demo_runs_offline_and_leaves_usable_models(tmp_path):
    models = tmp_path / "models"
    result = run_cli("demo", "--out", str(tmp_path / "out"), "--models-dir", str(models))
    assert result.returncode == 0, result.stderr
    assert "randomly initialised" in result.stdout
    for name in ("text_only_0.png", "text_only_1.png", "music_fusion_0.png", "music_fusion_1.png", "demo_song.wav"):
        assert (tmp_path / "out" / name).is_file()
    assert (models / "sd" / "unet" / "config.json").is_file()
    for kind in ("codified-lm", "mert", "clap"):
        assert (models / "mir" / kind / "config.json").is_file()
    # the saved tiny models serve the other commands exactly like real model folders
    out = tmp_path / "gen"
    result = run_cli(
        "generate",
        "--sd",
        str(models / "sd"),
        "--fusion",
        str(models / "fusion" / "demo-random.safetensors"),
        "--audio",
        str(tmp_path / "out" / "demo_song.wav"),
        "--album",
        "X",
        "--genre",
        "y",
        "--steps",
        "2",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("*.png"))) == 1
