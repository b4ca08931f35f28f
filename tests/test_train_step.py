"""bench/train_step.py: its training step is ``nopaingan train``'s, with any batch and number of noise draws, and
both of its modes run end to end, on the tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import training.train as train_module
from nopaingan_core.checkpoint import new_fusion
from training.cache import CacheReader
from training.train import Conditioning, TrainConfig, collate, load_unet, train

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import train_step

    return train_step


def recorder(module, monkeypatch) -> list:
    """Record the training steps' diffusion losses of ``module``: (album ids, UNet batch rows, loss)."""
    calls, loss_fn = [], module.diffusion_loss

    def recording(unet, scheduler, cond, items, gens, max_timestep, *args, **kwargs):
        loss = loss_fn(unet, scheduler, cond, items, gens, max_timestep, *args, **kwargs)
        if cond.requires_grad:  # a training step (the held-out evaluations run without gradients)
            calls.append(([item.id for item in items], len(cond), loss.detach().clone()))
        return loss

    monkeypatch.setattr(module, "diffusion_loss", recording)
    return calls


@pytest.mark.parametrize("draws", [1, 2])
def test_the_bench_step_is_nopaingan_train_s_step(bench, cached_data, tmp_path, monkeypatch, draws):
    """The same albums, fusion and step number give the bench's step the loss of ``nopaingan train``'s first
    step, bit for bit, from a UNet batch of albums x draws."""
    product = recorder(train_module, monkeypatch)
    config = {"max_steps": 1, "batch_size": 2, "noise_draws": draws, "eval_every": 0, "adapter_init": "random"}
    train(TrainConfig(data=cached_data, out=tmp_path / "run", progress=False, **config))
    [(ids, rows, loss)] = product
    albums = ids[:2]
    assert rows == 2 * draws

    timed = recorder(bench, monkeypatch)
    reader = CacheReader(cached_data / "cache")
    unet, scheduler = load_unet(reader.spec.sd, torch.device("cpu"), torch.float32)
    model = Conditioning(new_fusion(reader.spec.encoder, seed=0, gate=0.5))  # the default recipe's fusion
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = bench.albums_batch([reader.load(i) for i in albums])
    assert bench.training_step(unet, scheduler, model, optimizer, batch, 0, draws) == loss
    assert timed == [(ids, rows, loss)]


def test_copies_of_an_album_draw_apart(bench, cached_data):
    reader = CacheReader(cached_data / "cache")
    item = reader.load(next(iter(reader.entries)))
    assert bench.albums_batch([item])["ids"] == [item.id]
    batch = bench.albums_batch([item] * 3)
    assert batch["ids"] == [f"{item.id}-{i}" for i in range(3)] and batch["text"].shape[0] == 3
    assert torch.equal(batch["music"], collate([item] * 3)["music"])


@pytest.mark.parametrize(
    "mode", [["--batch", "2", "--compare-draws", "1", "2"], ["--batch", "2", "--noise-draws", "2"], []]
)
def test_both_modes_run_and_write_their_results(bench, cached_data, tiny_models, tmp_path, mode):
    models = tmp_path / "models"
    models.mkdir()
    (models / "sd").symlink_to(tiny_models["sd"])
    (models / "codified-lm").symlink_to(tiny_models["codified-lm"])
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "data").symlink_to(cached_data)  # its cache is there: nothing is built or encoded
    out = tmp_path / "result.json"
    args = ["--out", str(out), "--work", str(tmp_path / "work"), "--models", str(models), "--rounds", "2"]
    assert bench.main([*args, *mode]) == 0
    result = json.loads(out.read_text())
    assert result["batch"] == (2 if mode else 1) and result["machine"]["cores"] >= 1
    assert len(result["load_avg_1min"]) == 2
    if "--compare-draws" in mode:
        assert set(result["times_s"]) == {"draws_1", "draws_2"} and all(len(t) == 2 for t in result["times_s"].values())
        assert result["ratio"] == result["step_s"]["draws_2"] / result["step_s"]["draws_1"]
        assert result["ratio_of"] == "draws_2 / draws_1" and set(result["peak_rss_gb"]) == {"draws_1", "draws_2"}
    else:
        assert result["noise_draws"] == (2 if mode else 1) and result["optimizer"] == "sgd"
        assert result["speedup"] > 0 and len(result["times_s"]["reencode"]) == 2
