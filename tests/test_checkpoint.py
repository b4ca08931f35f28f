"""Fusion checkpoints: safetensors with metadata, validated on load with errors that explain."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_fusion import INFO

from nopaingan_core.atomic import umask
from nopaingan_core.checkpoint import METADATA_KEY, load_fusion, new_fusion, read_metadata, save_fusion
from nopaingan_core.errors import CheckpointError


@pytest.fixture
def saved(tmp_path):
    model = new_fusion(INFO, tokens=8, gate=0.7)
    model.training_summary = {"steps": 10, "loss": 0.12}
    return model, save_fusion(model, tmp_path / "fusion.safetensors")


def test_round_trip_keeps_weights_and_metadata(saved):
    model, path = saved
    loaded = load_fusion(path)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)
    meta = read_metadata(path)
    assert meta["format_version"] == 1
    assert meta["encoder"] == INFO.to_dict()
    assert meta["adapter"]["tokens"] == 8 and meta["fusion"]["dim"] == 768
    assert meta["training"] == {"steps": 10, "loss": 0.12}
    assert "codified-lm" in loaded.describe() and "steps=10" in loaded.describe()


def test_save_is_atomic(saved, monkeypatch):
    """A failure while writing leaves the previous checkpoint intact and no temp file behind."""
    model, path = saved
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("nopaingan_core.atomic.write_all", broken)
    model.training_summary = {"steps": 11}  # other bytes: an unchanged file would not be written at all
    with pytest.raises(OSError, match="No space left") as failure:
        save_fusion(model, path)
    assert failure.value.filename == str(path)  # the file the user asked for, not the temporary one
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask()  # as the umask says, not -rw------- (mkstemp)


def rewrite(path, tensors=None, meta=None):
    tensors = tensors if tensors is not None else load_file(str(path))
    meta = meta if meta is not None else read_metadata(path)
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(meta)})


def test_missing_and_misshapen_tensors(saved):
    _, path = saved
    tensors = load_file(str(path))
    tensors.pop("fusion.gate")
    rewrite(path, tensors)
    with pytest.raises(CheckpointError, match=r"missing \['fusion.gate'\]"):
        load_fusion(path)
    tensors["fusion.gate"] = torch.zeros(5)
    rewrite(path, tensors)
    with pytest.raises(CheckpointError, match=r"'fusion.gate' has shape \[5\], expected \[768\]"):
        load_fusion(path)


def test_nan_weights_are_refused(saved):
    _, path = saved
    tensors = load_file(str(path))
    tensors["fusion.gate"][0] = float("nan")
    rewrite(path, tensors)
    with pytest.raises(CheckpointError, match="'fusion.gate' contains NaN"):
        load_fusion(path)


def test_metadata_problems(saved, tmp_path):
    _, path = saved
    meta = read_metadata(path)
    rewrite(path, meta=meta | {"format_version": 99})
    with pytest.raises(CheckpointError, match="format version 99 is not supported"):
        load_fusion(path)
    rewrite(path, meta={k: v for k, v in meta.items() if k != "adapter"})
    with pytest.raises(CheckpointError, match="metadata is incomplete"):
        load_fusion(path)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, str(plain))
    with pytest.raises(CheckpointError, match="no 'nopaingan' metadata"):
        load_fusion(plain)


def test_pickle_and_garbage_are_refused(tmp_path):
    pt = tmp_path / "fusion.pt"
    torch.save({"x": torch.zeros(1)}, pt)
    with pytest.raises(CheckpointError, match="are .safetensors files, found '.pt'"):
        load_fusion(pt)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_fusion(junk)
    with pytest.raises(CheckpointError, match="no such fusion checkpoint"):
        load_fusion(tmp_path / "absent.safetensors")
