"""bench/peer_optimum.py: OpenVINO's own OVStableDiffusionPipeline (optimum-intel) as a peer of bench/peers.py.

optimum-intel needs transformers < 5.6, so its runner runs in a virtualenv of its own (bench/requirements-optimum.txt);
the tests that run it do so in a subprocess under ``$NOPAINGAN_OPTIMUM_PYTHON`` and are skipped without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402  (bench/ is not a package)

OPTIMUM_PYTHON = os.environ.get("NOPAINGAN_OPTIMUM_PYTHON")
STEPS = 2
# Both images are f32 from the same latents, weights and scheduler; measured max differences 4.4e-6 (tiny models,
# 3 steps) and 1.1e-5 (real miniSD size, 2 steps). A text encoder loaded with random weights, the failure this
# guards against, moved the tiny models' pixels by up to 0.76.
IMAGE_TOLERANCE = 1e-4

# The runner, as peers.py's worker calls it; with "forbid-export" the export's child process cannot start.
RUNNER = """
import sys, types, torch
sys.path.insert(0, {bench!r})
import peer_optimum
path, scratch, out, steps, mode = sys.argv[1:6]
if mode == "forbid-export":
    def refuse(*args, **kwargs):
        raise AssertionError("exported again")
    peer_optimum.subprocess = types.SimpleNamespace(run=refuse)
torch.set_num_threads(1)
torch.save(peer_optimum.load(path, scratch)(int(steps)), out)
"""

needs_optimum = pytest.mark.skipif(
    not OPTIMUM_PYTHON,
    reason="set NOPAINGAN_OPTIMUM_PYTHON to the python of a virtualenv built with bench/requirements-optimum.txt",
)


def run_peer(python: str, path: Path, tmp: Path, name: str, mode: str = "export") -> torch.Tensor:
    out = tmp / f"{name}.pt"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "xdg"), "OMP_NUM_THREADS": "1"}
    command = [python, "-c", RUNNER.format(bench=str(BENCH)), str(path), str(tmp / name), str(out), str(STEPS), mode]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out)


def test_skip_reason_here_names_the_separate_virtualenv():
    """The project's venv cannot import optimum.intel (transformers pin): the contender is skipped, saying how."""
    reason = peers.skip_reason("optimum", {})
    assert reason is not None
    assert "--peer-python optimum=" in reason and "bench/requirements-optimum.txt" in reason


@needs_optimum
def test_skip_reason_under_the_optimum_python_is_none():
    assert peers.skip_reason("optimum", {}, OPTIMUM_PYTHON) is None


@needs_optimum
def test_optimum_pipeline_matches_diffusers_and_exports_once(tiny_models, tmp_path):
    from transformers import CLIPTextModel, CLIPTokenizer

    path = tiny_models["sd"]
    image = run_peer(OPTIMUM_PYTHON, path, tmp_path, "first")
    assert image.shape == (1, peers.SIZE, peers.SIZE, 3) and image.dtype == torch.float32
    reference = peers.load_diffusers(str(path))(STEPS)
    assert float(reference.std()) > 0.05  # a real picture, not a flat one
    assert float((image - reference).abs().max()) < IMAGE_TOLERANCE

    entries = list((tmp_path / "xdg" / "nopaingan" / "optimum").iterdir())
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # one export, no half-written leftover
    report = json.loads((entries[0] / "export.json").read_text())
    tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
    assert report["prompt_ids"] == tokenizer(peers.PROMPT, padding="max_length", max_length=77).input_ids

    # The exported text encoder against the project's own torch one (other transformers, same file).
    ov = pytest.importorskip("openvino")
    ids = torch.tensor([report["prompt_ids"]])
    with torch.inference_mode():
        expected = CLIPTextModel.from_pretrained(path / "text_encoder")(ids)[0]
    xml = entries[0] / "text_encoder" / "openvino_model.xml"
    compiled = ov.Core().compile_model(xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = torch.from_numpy(compiled({"input_ids": ids.numpy()})[0])
    assert float((got - expected).abs().max()) < 1e-3 * float(expected.max() - expected.min())

    again = run_peer(OPTIMUM_PYTHON, path, tmp_path, "second", mode="forbid-export")
    assert torch.equal(again, image)
