"""bench/peer_comfyui.py, the runner of bench/peers.py's ``comfyui-fp32`` contender: ComfyUI's own loader,
KSampler and VAE on a diffusers folder.

Without ``COMFYUI_DIR`` only the skip reasons are tested. With it, the runner runs in a child process under
``COMFYUI_PYTHON`` (default: this interpreter), which needs ComfyUI's requirements:

    COMFYUI_DIR=~/ComfyUI COMFYUI_PYTHON=~/ComfyUI/venv/bin/python python -m pytest tests/test_peer_comfyui.py

ComfyUI cannot load the tiny models: it recognises an SD1.x UNet in diffusers layout only by its exact block
layout and channel counts, and builds CLIP-L and the SD VAE with fixed shapes. So the runner is tested on
``bench/real_models.build_sd``'s folder (miniSD's real architecture, random weights, 4.2 GB in tmp_path; the
byte-level tokenizer of the tiny models), with images made at 64x64 instead of 256x256 to keep the UNet calls
and the decode cheap (90-180 s in all on one thread at a load of 4-7, most of it writing and loading weights).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402  (bench/ is not a package)

SIZE = 64


def test_skip_reason_without_comfyui_dir(monkeypatch):
    monkeypatch.delenv("COMFYUI_DIR", raising=False)
    reason = peers.skip_reason("comfyui", {})
    assert reason is not None and "COMFYUI_DIR is not set" in reason and "--peer-python" in reason


def test_skip_reason_for_a_folder_that_is_not_comfyui(monkeypatch, tmp_path):
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path))
    assert peers.skip_reason("comfyui", {}) == (
        f"COMFYUI_DIR={tmp_path} is not a ComfyUI checkout: expected comfy/sample.py there"
    )


RUNNER = """
import sys
import torch
sys.path.insert(0, sys.argv[1])
import peer_comfyui
run = peer_comfyui.load(sys.argv[2], sys.argv[3], size=int(sys.argv[4]))
torch.save({"first": run(2), "again": run(2), "seed1": run(2, seed=1)}, sys.argv[5])
"""


@pytest.mark.skipif(
    not os.environ.get("COMFYUI_DIR"),
    reason="COMFYUI_DIR is not set: point it at a ComfyUI checkout to run ComfyUI's sampler as a bench peer",
)
def test_comfyui_runner_makes_seeded_images(tmp_path):
    import real_models

    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    folder = tmp_path / "sd"
    out = tmp_path / "images.pt"
    command = [python, "-c", RUNNER, str(BENCH), str(folder), str(tmp_path / "cache"), str(SIZE), str(out)]
    try:
        real_models.build_sd(folder)
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # 4.2 GB: not left among pytest's kept temporary folders
    assert done.returncode == 0, done.stderr[-3000:]
    images = torch.load(out)
    for image in images.values():
        assert image.shape == (1, SIZE, SIZE, 3) and image.dtype == torch.float32
        assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
        assert image.std() > 0.01  # not a constant picture
    assert torch.equal(images["first"], images["again"])  # the same seed, the same image
    assert (images["first"] - images["seed1"]).abs().mean() > 0.01  # the seed's noise reaches the image
