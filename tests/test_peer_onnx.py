"""bench/peer_onnx.py: ONNX Runtime as a peer of bench/peers.py, on the tiny miniSD folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (bench/requirements-peers.txt)")
pytest.importorskip("onnx", reason="onnx is not installed (bench/requirements-peers.txt)")

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch, tmp_path):
    """bench/ on sys.path and the ONNX cache under tmp_path; yields (peers, peer_onnx)."""
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    import peer_onnx
    import peers

    return peers, peer_onnx


def test_onnxruntime_is_a_runnable_peer(bench):
    peers, _ = bench
    assert peers.skip_reason("onnxruntime", {}) is None


def test_exported_models_give_diffusers_image_and_are_reused(bench, tmp_path, monkeypatch):
    """The ONNX pipeline's image equals diffusers' StableDiffusionPipeline's on the same folder (same seed, same
    PNDM steps); a second load reads the export instead of exporting again."""

    from nopaingan_core.tiny import build_tiny_sd

    peers, peer_onnx = bench
    folder = str(build_tiny_sd(tmp_path / "sd"))
    image = peer_onnx.load(folder, str(tmp_path / "unused"))(2)

    expected = peers.load_diffusers(folder)(2)
    assert image.shape == expected.shape == (1, peers.SIZE, peers.SIZE, 3)
    assert image.dtype == torch.float32 and float(image.min()) >= 0 and float(image.max()) <= 1
    assert float((image - expected).abs().max()) < 1e-3

    exports = list((tmp_path / "cache" / "nopaingan" / "onnx").iterdir())
    assert [p.name for p in exports] == [peer_onnx.cache_key(folder)]  # nothing temporary left beside it
    unet = exports[0] / "unet" / "model.onnx"
    mtime = unet.stat().st_mtime_ns

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(peer_onnx, "_export_in_child", no_export)
    again = peer_onnx.load(folder, str(tmp_path / "unused"))(2)
    assert unet.stat().st_mtime_ns == mtime
    assert torch.equal(again, image)


def test_check_refuses_a_model_that_differs_from_torch(bench, tmp_path):
    _, peer_onnx = bench
    module = torch.nn.Linear(3, 4)
    example = (torch.randn(2, 3),)
    model = tmp_path / "linear.onnx"
    torch.onnx.export(module, example, str(model), input_names=["x"], output_names=["y"], dynamo=False)
    with torch.no_grad():
        expected = module(*example)
    assert peer_onnx.check("linear", model, example, (expected,))[0] < 1e-5
    with pytest.raises(peer_onnx.ExportMismatch, match="linear .*differs from torch's"):
        peer_onnx.check("linear", model, example, (expected + 0.01 * expected.abs().max(),))
