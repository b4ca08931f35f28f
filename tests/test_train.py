"""``nopaingan train`` on tiny models: it learns, resumes exactly after a crash, and its checkpoint is what
the generation path loads."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from nopaingan_core.checkpoint import load_fusion, new_fusion, read_metadata
from nopaingan_core.encoders import load_encoder
from nopaingan_core.errors import NoPainGanError
from nopaingan_core.generate import SamplerSettings, generate_covers
from training.cache import CacheReader
from training.cli import main
from training.evaluate import EvalConfig, evaluate
from training.records import read_dataset
from training.resume import checkpoints
from training.train import TrainConfig, standardise_adapter_input, step_batches, train


def _config(data, out, **kw) -> TrainConfig:
    base = {"optimizer": "adamw", "lr": 1e-3, "warmup_steps": 2, "max_steps": 6, "save_every": 2, "progress": False}
    return TrainConfig(data=data, out=out, **(base | kw))


class Crash(Exception):
    pass


def test_step_batches_deal_each_epoch_once_and_resume_mid_way():
    full = list(step_batches(10, 2, 1, 1, 0, seed=3, start_step=0, total=10))
    assert sorted(sum(full[:5], [])) == list(range(10)) and sorted(sum(full[5:], [])) == list(range(10))
    assert full[:5] != full[5:]  # a new order each epoch
    assert list(step_batches(10, 2, 1, 1, 0, seed=3, start_step=7, total=10)) == full[7:]
    # Two processes with 2 micro-batches each per step: disjoint shares that together cover the epoch.
    ranks = [list(step_batches(8, 1, 2, 2, r, seed=0, start_step=0, total=2)) for r in (0, 1)]
    assert sorted(sum(ranks[0] + ranks[1], [])) == list(range(8))
    # An album count that does not fill the last step wraps around instead of leaving a short step.
    assert all(len(b) == 3 for b in step_batches(7, 3, 1, 1, 0, seed=0, start_step=0, total=3))


def test_adapter_starts_by_standardising_the_music_features(cached_data):
    reader = CacheReader(cached_data / "cache")
    ids = [album.id for album in read_dataset(cached_data, "train")]
    plain, fitted = new_fusion(reader.spec.encoder), new_fusion(reader.spec.encoder)
    stats = standardise_adapter_input(fitted, reader, ids, seed=0)
    frames = torch.cat([reader.load(i).music for i in ids])
    torch.testing.assert_close(stats["mean"], frames.mean(dim=0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(stats["std"], frames.std(dim=0, correction=0), rtol=1e-3, atol=1e-5)
    with torch.no_grad():
        expected = plain.adapter.proj((frames - stats["mean"]) / stats["std"])
        torch.testing.assert_close(fitted.adapter.proj(frames), expected, rtol=1e-4, atol=1e-4)
        assert fitted.fuse(torch.ones(1, 77, 768), fitted.adapter(frames[None])).eq(1).all()  # still the identity


def test_training_lowers_the_loss_and_writes_a_run(cached_data, tmp_path):
    run = tmp_path / "run"
    result = train(_config(cached_data, run, max_steps=12, save_every=4, batch_size=2, eval_every=6))
    for name in ("fusion.safetensors", "loss.png", "loss.csv", "summary.json", "config.json"):
        assert (run / name).is_file(), name
    assert list((run / "logs").rglob("events.out.tfevents.*"))
    assert [p.name for p in checkpoints(run)] == ["step-00000008", "step-00000012"]  # the newest two kept
    assert len((run / "loss.csv").read_text().splitlines()) == 1 + 12
    meta = read_metadata(run / "fusion.safetensors")["training"]
    assert meta["steps"] == 12 and meta["optimizer"] == "adamw" and meta["train_albums"] == 4
    assert meta["final_loss"] == pytest.approx(result.final_loss)
    # On the training albums, with fixed noise and timesteps, the trained fusion beats the text conditioning
    # it started from (strength 0 is exactly the untrained fusion's output).
    report = evaluate(
        EvalConfig(
            cached_data, run / "fusion.safetensors", tmp_path / "eval", split="train", images=False, progress=False
        )
    ).report
    assert report["metrics"]["music"]["diffusion_mse"] < report["metrics"]["text_only"]["diffusion_mse"]


def test_resume_after_a_crash_gives_the_uninterrupted_weights(cached_data, tmp_path):
    options = {"batch_size": 1, "grad_accum": 2, "max_steps": 4, "save_every": 2}
    whole = train(_config(cached_data, tmp_path / "whole", **options))

    def crash_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise Crash

    run = tmp_path / "crashed"
    with pytest.raises(Crash):
        train(_config(cached_data, run, **options), on_step=crash_at_3)
    assert [p.name for p in checkpoints(run)] == ["step-00000002"]
    assert not (run / "fusion.safetensors").exists()
    (run / "checkpoints" / ".tmp-step-00000004").mkdir()  # a save cut short by the crash is ignored
    torch.manual_seed(1234)  # whatever the global generators hold now must not matter

    with pytest.raises(NoPainGanError, match="--resume"):
        train(_config(cached_data, run, **options))
    with pytest.raises(NoPainGanError, match="lr: 0.001 -> 0.002"):
        train(_config(cached_data, run, **options, lr=2e-3, resume=True))
    resumed = train(_config(cached_data, run, **options, resume=True))

    a, b = load_file(str(whole.fusion)), load_file(str(resumed.fusion))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert not torch.equal(a["fusion.gate"], torch.zeros_like(a["fusion.gate"]))  # it did train
    history = [
        json.loads((r / "checkpoints" / "step-00000004" / "trainer.json").read_text())["history"]
        for r in (tmp_path / "whole", run)
    ]
    assert history[0] == history[1]


def test_checkpoint_loads_in_the_generation_path(cached_data, tmp_path, tiny_models, tiny_sd, song):
    run = tmp_path / "run"
    assert main(["train", "--data", str(cached_data), "--out", str(run), "--max-steps", "2", "--optimizer", "adamw",
                 "--lr", "1e-2", "--warmup-steps", "1", "--quiet"]) == 0  # fmt: skip
    fusion = load_fusion(run / "fusion.safetensors")
    assert fusion.trained and "steps=2" in fusion.describe()
    encoder = load_encoder("codified-lm", str(tiny_models["codified-lm"]))
    fusion.check_encoder(encoder.info)
    settings = SamplerSettings(steps=2, width=64, height=64)
    music = encoder.encode(song)
    fused = generate_covers(tiny_sd, "Create an album cover", music=music, fusion=fusion, settings=settings)
    plain = generate_covers(tiny_sd, "Create an album cover", settings=settings)
    assert fused.shape == plain.shape == (1, 64, 64, 3)
    assert not torch.equal(fused, plain)  # the trained gate lets the music change the cover


def test_train_refuses_an_uncached_or_stale_dataset(cached_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(cached_data, data, ignore=shutil.ignore_patterns("cache"))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    with pytest.raises(NoPainGanError, match="no cache shards"):
        train(_config(data, tmp_path / "run"))
    shutil.copytree(cached_data / "cache", data / "cache")
    (data / "covers" / "artist-1-album-1.png").write_bytes((data / "covers" / "artist-0-album-0.png").read_bytes())
    with pytest.raises(NoPainGanError, match="1 of 4 albums changed since they were cached"):
        train(_config(data, tmp_path / "run"))
