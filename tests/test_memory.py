"""One copy of the weights: converted weights' original file pages are released, nothing else is touched."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from nopaingan_core.prepack import release_file_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")


def rss_file() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile")


def test_released_file_pages_leave_the_process_and_the_values_stay(tmp_path):
    weights = {"a": torch.randn(4096, 1024), "b": torch.randn(16)}  # 16 MiB
    save_file(weights, tmp_path / "w.safetensors")
    mapped = load_file(tmp_path / "w.safetensors")
    assert float(mapped["a"].sum()) == pytest.approx(float(weights["a"].sum()), rel=1e-4)  # pages now resident
    before = rss_file()
    released = release_file_pages([mapped["a"]])
    assert released >= 15 * 2**20
    assert before - rss_file() >= 8 * 2**20
    assert torch.equal(mapped["a"], weights["a"]) and torch.equal(mapped["b"], weights["b"])  # read back from the file


def test_ordinary_memory_is_left_alone():
    tensor = torch.randn(1024, 1024)
    copy = tensor.clone()
    assert release_file_pages([tensor, tensor.t()]) == 0
    assert torch.equal(tensor, copy)


def test_packed_and_channels_last_models_compute_the_same(tiny_models):
    from nopaingan_core.sampling import load_minisd

    plain = load_minisd(str(tiny_models["sd"]), dtype="fp32", channels_last=False)
    packed = load_minisd(str(tiny_models["sd"]), dtype="fp32", prepack=True)
    x, context = torch.randn(2, 4, 8, 8), torch.randn(2, 77, 768)
    with torch.inference_mode():
        for _ in range(2):  # the first call packs and releases, the second runs on what is left
            torch.testing.assert_close(
                packed.unet(x, 10, encoder_hidden_states=context).sample,
                plain.unet(x, 10, encoder_hidden_states=context).sample,
            )
        torch.testing.assert_close(packed.vae.decode(x[:1]).sample, plain.vae.decode(x[:1]).sample)
