"""``nopaingan train`` on tiny models: it learns, resumes exactly after a crash, and its checkpoint is what
the generation path loads."""

from __future__ import annotations

import csv
import functools
import json
import re
import shutil
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from nopaingan_core.checkpoint import load_fusion, new_fusion, read_metadata, save_fusion
from nopaingan_core.cli_args import leaf_parsers
from nopaingan_core.encoders import load_encoder
from nopaingan_core.encoders.base import EncoderInfo
from nopaingan_core.errors import NoPainGanError
from nopaingan_core.generate import SamplerSettings, generate_covers
from nopaingan_core.synth import synth_song
from nopaingan_core.tiny import build_tiny_musicgen, pretrain_tiny_musicgen
from training.adapter_init import whiten_adapter_input, within_song_whitening
from training.cache import CacheReader
from training.cli import build_parser, main
from training.evaluate import EvalConfig, evaluate
from training.recipes import (
    INERT_EVALUATIONS,
    INERT_GAP,
    INERT_GATE,
    INERT_MIN_STEPS,
    RECIPE_KEYS,
    RECIPES,
    inert_check_start,
    is_inert,
    other_music_partners,
    resolve_recipe,
    stays_inert,
    warmup_steps,
)
from training.records import read_dataset
from training.resume import checkpoints
from training.train import (
    RUN_FILES,
    TrainConfig,
    derived_seed,
    diffusion_loss,
    draw_generators,
    fitted_batch_size,
    load_unet,
    loss_figure,
    step_batches,
    steps_per_epoch,
    stratified_timesteps,
    train,
    write_loss_curve,
)


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


# A run's sizes: train albums, batch size, micro-batches a step (--grad-accum) and processes.
SIZES = {
    "albums": st.integers(1, 30),
    "batch": st.integers(1, 16),
    "accum": st.integers(1, 5),
    "processes": st.integers(1, 5),
}


@settings(max_examples=60, deadline=None)
@given(**SIZES, seed=st.integers(0, 2**32))
def test_a_step_repeats_an_album_exactly_when_it_takes_more_than_there_are(albums, batch, accum, processes, seed):
    """A step's micro-batches over every process: ``batch x accum x processes`` albums, all different while that is
    at most the album count, and with repeats beyond it (what fitted_batch_size keeps runs from)."""
    total = 2 * steps_per_epoch(albums, batch, accum, processes)
    per_rank = [list(step_batches(albums, batch, accum, processes, r, seed, 0, total)) for r in range(processes)]
    for step in range(total):
        taken = [i for rank in per_rank for batch_ids in rank[step * accum : (step + 1) * accum] for i in batch_ids]
        assert len(taken) == batch * accum * processes
        assert (len(set(taken)) == len(taken)) == (len(taken) <= albums)


@settings(max_examples=80, deadline=None)
@given(**SIZES, from_recipe=st.booleans())
def test_a_batch_that_would_repeat_albums_is_cut_when_the_recipe_s_and_refused_when_given(
    albums, batch, accum, processes, from_recipe
):
    """Any batch, accumulation, process and album count: the batch used never makes a step repeat an album; a
    recipe's batch is cut to the largest that fits, and one given explicitly (or one a batch of 1 cannot rescue)
    is refused in one line naming the options, the value, the albums and what would fit."""
    config = TrainConfig(data=Path("DATA"), out=Path("RUN"), batch_size=batch, grad_accum=accum)
    fits = albums // (accum * processes)
    if batch <= fits:
        assert fitted_batch_size(config, albums, processes, from_recipe) == (batch, None)
    elif from_recipe and fits >= 1:
        used, note = fitted_batch_size(config, albums, processes, from_recipe)
        assert used == fits and used * accum * processes <= albums < (used + 1) * accum * processes
        assert note.startswith(f"the default recipe's {batch} is cut to {fits}: a step of more than the {albums} ")
    else:
        with pytest.raises(NoPainGanError) as refused:
            fitted_batch_size(config, albums, processes, from_recipe)
        message = str(refused.value)
        assert message.startswith(f"--batch-size {batch}") and "\n" not in message
        assert f"more than the {albums} train album{'s' if albums > 1 else ''} of DATA" in message
        assert (f"--grad-accum {accum}" in message) == (accum > 1)
        assert (f"x {processes} processes = {batch * accum * processes} albums a step" in message) == (processes > 1)
        fix = f"expected --batch-size at most {fits}" if fits else f"expected --grad-accum x processes at most {albums}"
        assert message.endswith(fix)


def test_adapter_starts_on_whitened_music_features(cached_data):
    reader = CacheReader(cached_data / "cache")
    ids = [album.id for album in read_dataset(cached_data, "train")]
    songs = [reader.load(i).music for i in ids]
    plain, fitted = new_fusion(reader.spec.encoder), new_fusion(reader.spec.encoder)
    stats = whiten_adapter_input(fitted, songs)
    frames = torch.cat(songs)
    torch.testing.assert_close(stats["mean"], frames.mean(dim=0), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        expected = plain.adapter.proj((frames - stats["mean"]) @ stats["transform"].T)
        torch.testing.assert_close(fitted.adapter.proj(frames), expected, rtol=1e-4, atol=1e-4)
        assert fitted.fuse(torch.ones(1, 77, 768), fitted.adapter(frames[None])).eq(1).all()  # still the identity
    whitened = (frames.double() - stats["mean"].double()) @ stats["transform"].double().T
    assert whitened.var(dim=0, correction=0).mean().item() == pytest.approx(1.0, rel=1e-4)


def _songs(draw_seed: int, songs: int, frames: int, dim: int, mixed: bool = True) -> list[torch.Tensor]:
    """Songs whose frames vary strongly over time in some directions and whose song means differ in others,
    then mixed by a random matrix (``mixed``) or only given random units per feature."""
    gen = torch.Generator().manual_seed(draw_seed)
    if mixed:
        mixing = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    else:
        mixing = torch.diag(10 ** (2 * torch.rand(dim, generator=gen, dtype=torch.float64) - 1))
    out = []
    signs = torch.randint(0, 2, (dim // 2,), generator=gen).double() * 2 - 1
    for index in range(songs):
        centre = torch.zeros(dim, dtype=torch.float64)
        centre[: dim // 2] = signs * (1 if index % 2 else -1)  # the songs' means spread by exactly 1
        wiggle = torch.zeros(frames, dim, dtype=torch.float64)
        wiggle[:, dim // 2 :] = 10 * torch.randn(frames, dim - dim // 2, generator=gen, dtype=torch.float64)
        wiggle[:, : dim // 2] = 0.1 * torch.randn(frames, dim // 2, generator=gen, dtype=torch.float64)
        out.append((centre + wiggle) @ mixing.T)
    return out


def _song_share(songs: list[torch.Tensor]) -> float:
    """Share of the frames' variance that is the songs' means varying."""
    means = torch.stack([s.mean(dim=0) for s in songs])
    return (means.var(dim=0, correction=0).sum() / torch.cat(songs).var(dim=0, correction=0).sum()).item()


@given(seed=st.integers(0, 2**31), songs=st.integers(8, 24), frames=st.integers(8, 40), dim=st.integers(2, 12))
def test_whitening_puts_the_differences_between_songs_first(seed, songs, frames, dim):
    """Frames that change a lot within a song and little between songs: after the whitening the songs' means
    carry most of the variance whatever the features' units, the mean variance per dimension is 1, and without
    the ridge the within-song covariance is white whatever matrix mixed the features."""
    data = _songs(seed, songs, frames, dim, mixed=False)
    mean, transform = within_song_whitening(data)
    white = [(s - mean) @ transform.T for s in data]
    assert torch.cat(white).var(dim=0, correction=0).mean().item() == pytest.approx(1.0, rel=1e-6)
    assert _song_share(white) > 0.8  # whatever the features' units (raw shares range from ~0.01 to ~0.97)
    mixed = _songs(seed, songs, frames, dim)
    mean, transform = within_song_whitening(mixed, ridge=0.0)
    white = [(s - mean) @ transform.T for s in mixed]
    within = torch.cat([w - w.mean(dim=0) for w in white])
    eigen = torch.linalg.eigvalsh(within.T @ within / len(within))
    assert eigen.max() / eigen.min() < 1 + 1e-3  # white up to float64 rounding through a random mixing matrix
    assert _song_share(white) > 0.8


@given(seed=st.integers(0, 2**31), dim=st.integers(1, 8), scale=st.floats(0.1, 10), shift=st.floats(-1e3, 1e3))
def test_whitening_ignores_the_features_units_and_offsets(seed, dim, scale, shift):
    """Rescaling or shifting one feature (an encoder's unnormalised residual stream) gives the same whitened
    frames up to a rotation (the same lengths and angles, which a randomly initialised layer cannot tell apart);
    one frame per song (no within-song spread) is per-dimension standardisation."""
    data = _songs(seed, 10, 6, dim)
    mean, transform = within_song_whitening(data)
    moved = [s.clone() for s in data]
    for s in moved:
        s[:, 0] = s[:, 0] * scale + shift
    mean2, transform2 = within_song_whitening(moved)
    white, white2 = (torch.cat(data) - mean) @ transform.T, (torch.cat(moved) - mean2) @ transform2.T
    torch.testing.assert_close(white @ white.T, white2 @ white2.T, rtol=1e-5, atol=1e-6)  # equal up to a rotation
    single = [s[:1] for s in data]
    mean1, transform1 = within_song_whitening(single)
    frames = torch.cat(single)
    standardised = (frames - frames.mean(dim=0)) / frames.std(dim=0, correction=0).clamp_min(1e-300)
    torch.testing.assert_close((frames - mean1) @ transform1.T, standardised, rtol=1e-5, atol=1e-6)


def test_whitening_without_frames_is_an_error():
    with pytest.raises(ValueError, match="no music frames"):
        within_song_whitening([])


@given(
    ids=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True),
    draws=st.integers(1, 4),
    seed=st.integers(0, 2**32),
    step=st.integers(0, 10**6),
    micro=st.integers(0, 3),
)
def test_noise_draws_extend_a_one_draw_run_s_generators(ids, draws, seed, step, micro):
    """--noise-draws N: N generators per album, all the albums' first draws first (the order of
    ``cond.repeat(N, 1, 1)``), the first seeded as a one-draw run seeds its albums (so N = 1 repeats such a run
    bit for bit), every draw apart from the others."""
    seeds = [g.initial_seed() for g in draw_generators(seed, step, 0, micro, ids, draws)]
    assert len(seeds) == draws * len(ids) and len(set(seeds)) == len(seeds)
    assert seeds[: len(ids)] == [derived_seed(seed, step, 0, micro, i) for i in ids]


@settings(max_examples=200, deadline=None)
@given(
    albums=st.integers(1, 12),
    draws=st.integers(1, 4),
    micro_batches=st.integers(1, 3),
    processes=st.integers(1, 3),
    max_timestep=st.integers(1, 1000),
    seed=st.integers(0, 2**32),
    step=st.integers(0, 10**6),
)
def test_stratified_timesteps_cover_the_range_evenly(albums, draws, micro_batches, processes, max_timestep, seed, step):
    """A step's draws, over its micro-batches and processes, take one timestep from each k-th of [0, max_timestep)
    (k = albums x micro-batches x processes x draws), an album's draws 1/draws of the range apart; the same position
    gives the same timesteps."""
    shape = (albums, draws, max_timestep, micro_batches, processes)
    parts = [
        stratified_timesteps(seed, step, rank, micro, *shape[:2], max_timestep, micro_batches, processes)
        for rank in range(processes)
        for micro in range(micro_batches)
    ]
    for drawn in parts:
        assert drawn.dtype == torch.int64 and drawn.shape == (albums * draws,)
        assert int(drawn.min()) >= 0 and int(drawn.max()) < max_timestep
        by_album = drawn.view(draws, albums).double() / max_timestep  # draw d of album i at [d, i]
        apart = (by_album - by_album[:1]) % 1
        close = (apart - torch.arange(draws, dtype=torch.float64)[:, None] / draws).abs()
        assert bool(((close <= 1 / max_timestep + 1e-9) | (close >= 1 - 1 / max_timestep - 1e-9)).all())
    assert torch.equal(parts[-1], stratified_timesteps(seed, step, processes - 1, micro_batches - 1, *shape[:2],
                                                       max_timestep, micro_batches, processes))  # fmt: skip
    # each stratum [j/k, (j+1)/k) of the range (turned by the step's offset) holds one of the step's draws: sorted,
    # the draws' gaps are a k-th of the range up to the rounding to whole timesteps
    k = albums * draws * micro_batches * processes
    ordered = torch.cat(parts).sort().values.double() / max_timestep
    gaps = torch.cat([ordered.diff(), (ordered[:1] + 1 - ordered[-1:])])
    assert torch.allclose(gaps, torch.full_like(gaps, 1 / k), atol=1 / max_timestep + 1e-9)


def test_each_stratified_timestep_is_uniform_on_its_own():
    """Over steps, every position's timestep is uniform on [0, 1000) (a chi-square test of 10 bins at the 1e-4
    level), so the objective is the seed's: stratifying changes only how a step's draws lie together."""
    drawn = torch.stack([stratified_timesteps(0, step, 0, 0, 8, 2, 1000) for step in range(4000)])
    for column in drawn.T:
        counts = torch.bincount(column // 100, minlength=10).double()
        chi2 = (((counts - 400) ** 2) / 400).sum().item()
        assert chi2 < 33.7, chi2  # the 1e-4 quantile of chi-square with 9 degrees of freedom is 33.72


@pytest.mark.parametrize(("draws", "timesteps"), [(1, "uniform"), (3, "uniform"), (3, "stratified")])
def test_each_album_is_drawn_noise_draws_times_a_step(cached_data, tmp_path, monkeypatch, draws, timesteps):
    """A training step computes each album's conditioning once and its diffusion loss at --noise-draws
    (timestep, noise, latent) draws, from :func:`draw_generators`; the summary records the draws."""
    import training.train as train_module

    calls = []

    def uniform_timestep(item, state: torch.Tensor, max_timestep: int) -> int:
        """The timestep a generator in ``state`` gives when drawn as without --timesteps: after the latent and
        the noise, its last number."""
        gen = torch.Generator()
        gen.set_state(state)
        item.sample_latent(gen), torch.randn(item.latent_mean.shape, generator=gen)
        return int(torch.randint(0, max_timestep, (1,), generator=gen))

    def recording_loss(unet, scheduler, cond, items, gens, max_timestep, *args, **kwargs):
        states = [g.get_state() for g in gens]
        loss, drawn = diffusion_loss(unet, scheduler, cond, items, gens, max_timestep, *args, **kwargs,
                                     return_timesteps=True)  # fmt: skip
        if cond.requires_grad:  # a training step (the held-out evaluations run without gradients)
            uniform = [uniform_timestep(item, state, max_timestep) for item, state in zip(items, states, strict=True)]
            seeds = [g.initial_seed() for g in gens]
            calls.append((cond.detach().clone(), [item.id for item in items], seeds, drawn, uniform))
        return loss

    monkeypatch.setattr(train_module, "diffusion_loss", recording_loss)
    run = tmp_path / "run"
    train(_config(cached_data, run, max_steps=2, batch_size=2, noise_draws=draws, eval_every=0, timesteps=timesteps))
    assert len(calls) == 2
    for step, (cond, ids, seeds, drawn, uniform) in enumerate(calls):
        albums = ids[:2]
        assert ids == albums * draws and len(cond) == 2 * draws
        assert all(torch.equal(cond[d * 2 : d * 2 + 2], cond[:2]) for d in range(draws))
        assert seeds == [g.initial_seed() for g in draw_generators(0, step, 0, 0, albums, draws)]
        if timesteps == "stratified":
            assert torch.equal(drawn, stratified_timesteps(0, step, 0, 0, 2, draws, 1000))
        else:  # each draw's last number from its own generator, as before --timesteps existed
            assert drawn.tolist() == uniform
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["noise_draws"], summary["timesteps"]) == (draws, timesteps)


def test_training_lowers_the_loss_and_writes_a_run(cached_data, tmp_path):
    run = tmp_path / "run"
    result = train(_config(cached_data, run, max_steps=12, save_every=4, batch_size=2, eval_every=6))
    for name in ("fusion.safetensors", "loss.png", "loss.csv", "summary.json", "config.json"):
        assert (run / name).is_file(), name
    assert list((run / "logs").rglob("events.out.tfevents.*"))
    assert [p.name for p in checkpoints(run)] == ["step-00000008", "step-00000012"]  # the newest two kept
    assert len((run / "loss.csv").read_text().splitlines()) == 1 + 12
    trainer = json.loads((run / "checkpoints" / "step-00000012" / "trainer.json").read_text())
    evals = (run / "eval.csv").read_text().splitlines()
    assert evals[0] == (
        "step,eval_mse,text_only_mse,relative_change,gate,other_music_mse,relative_change_vs_other_music"
    )
    others = [o[0] for o in trainer["other_music_history"]]
    assert others == [6, 12] and all(len(row.split(",")) == 7 and row.split(",")[5] for row in evals[1:])
    assert [int(row.split(",")[0]) for row in evals[1:]] == [e[0] for e in trainer["eval_history"]] == [6, 12]
    assert {p.name for p in run.iterdir()} <= RUN_FILES  # what a run writes is what a reused --out may hold
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
    options = {"batch_size": 1, "grad_accum": 2, "max_steps": 4, "save_every": 2, "eval_every": 1}
    whole = train(_config(cached_data, tmp_path / "whole", **options))

    def crash_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise Crash

    run = tmp_path / "crashed"
    with pytest.raises(Crash):
        train(_config(cached_data, run, **options), on_step=crash_at_3)
    assert [p.name for p in checkpoints(run)] == ["step-00000002"]
    assert not (run / "fusion.safetensors").exists()
    assert [row.split(",")[0] for row in (run / "eval.csv").read_text().splitlines()[1:]] == ["1", "2"]
    (run / "checkpoints" / ".tmp-step-00000004").mkdir()  # a save cut short by the crash is ignored
    (run / "checkpoints" / ".tmp-step-00000003").mkdir()  # one of a killed save that no later save replaces
    torch.manual_seed(1234)  # whatever the global generators hold now must not matter

    with pytest.raises(NoPainGanError, match="--resume"):
        train(_config(cached_data, run, **options))
    with pytest.raises(NoPainGanError, match="--lr: recorded 0.001, given 0.002"):
        train(_config(cached_data, run, **options, lr=2e-3, resume=True))
    resumed = train(_config(cached_data, run, **options, resume=True))
    assert not list((run / "checkpoints").glob(".tmp-step-*"))  # the next complete save removed the leftovers

    a, b = load_file(str(whole.fusion)), load_file(str(resumed.fusion))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert whole.fusion.read_bytes() == resumed.fusion.read_bytes()  # metadata too: no wall-clock time in it
    assert "train_seconds" in resumed.summary and "train_seconds" not in read_metadata(resumed.fusion)["training"]
    assert not torch.equal(a["fusion.gate"], torch.zeros_like(a["fusion.gate"]))  # it did train
    history = [
        json.loads((r / "checkpoints" / "step-00000004" / "trainer.json").read_text())["history"]
        for r in (tmp_path / "whole", run)
    ]
    assert history[0] == history[1]
    for name in ("loss.csv", "eval.csv"):  # continued from the checkpoint: no row repeated or lost
        assert (run / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert len((run / "eval.csv").read_text().splitlines()) == 1 + 4
    summaries = [json.loads((r / "summary.json").read_text()) for r in (tmp_path / "whole", run)]
    assert summaries[1]["first_step_gradient_norm"] == summaries[0]["first_step_gradient_norm"]
    with pytest.raises(NoPainGanError, match="already finished at step 4 of 4"):
        train(_config(cached_data, run, **options, resume=True))


@settings(max_examples=15, deadline=None)
@given(
    evals=st.lists(
        st.tuples(st.floats(1e-4, 10.0), st.floats(-0.5, 0.5), st.floats(0.0, 1.0), st.booleans()),
        min_size=0,
        max_size=6,
    ),
    text_only=st.floats(1e-4, 10.0),
)
def test_eval_csv_holds_every_evaluation_and_loss_png_draws_the_text_only_mse(evals, text_only, tmp_path_factory):
    """eval.csv: one row per evaluation (step, eval MSE with music, text-only MSE, relative change, gate, and the
    MSE with another album's music and the change against it, empty where it was not measured: a run of one
    eval album, the evaluations of an earlier version), none without evaluations; loss.png draws the text-only
    MSE as its own line beside the music's."""
    run = tmp_path_factory.mktemp("run")
    history = [[step, 1.0 / step, 1e-4] for step in range(1, 3 * len(evals) + 2)]
    eval_history = [
        [3 * (i + 1), text_only * (1 + change), text_only, gate] for i, (_, change, gate, _) in enumerate(evals)
    ]
    other_history = [[3 * (i + 1), other] for i, (other, _, _, measured) in enumerate(evals) if measured]
    write_loss_curve(run, history, eval_history, other_history)
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((run / "loss.csv").read_text().splitlines()) == 1 + len(history)
    if not evals:
        assert not (run / "eval.csv").exists()
        return
    rows = list(csv.DictReader((run / "eval.csv").open()))
    assert list(rows[0]) == [
        "step", "eval_mse", "text_only_mse", "relative_change", "gate", "other_music_mse",
        "relative_change_vs_other_music",
    ]  # fmt: skip
    others = dict(map(tuple, other_history))
    for row, (step, music, text, gate) in zip(rows, eval_history, strict=True):
        assert int(row["step"]) == step
        for key, value in [("eval_mse", music), ("text_only_mse", text), ("gate", gate)]:
            assert float(row[key]) == pytest.approx(value, rel=1e-5, abs=1e-12), key
        assert float(row["relative_change"]) == pytest.approx((music - text) / text, rel=1e-5, abs=1e-9)
        if step in others:
            assert float(row["other_music_mse"]) == pytest.approx(others[step], rel=1e-5, abs=1e-12)
            change = (music - others[step]) / others[step]
            assert float(row["relative_change_vs_other_music"]) == pytest.approx(change, rel=1e-4, abs=1e-9)
        else:
            assert row["other_music_mse"] == row["relative_change_vs_other_music"] == ""
    figure = loss_figure(history, eval_history, other_history)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    if other_history:
        assert list(lines["eval MSE, another's music"].get_ydata()) == [o[1] for o in other_history]
    assert list(lines["eval MSE, music"].get_ydata()) == [e[1] for e in eval_history]
    assert list(lines["eval MSE, text only"].get_ydata()) == [e[2] for e in eval_history]
    assert list(lines["eval MSE, text only"].get_xdata()) == [e[0] for e in eval_history]


@pytest.fixture(scope="module")
def unet_and_albums(cached_data):
    reader = CacheReader(cached_data / "cache")
    unet, scheduler = load_unet(reader.spec.sd, torch.device("cpu"), torch.float32)
    return unet, scheduler, [reader.load(album.id) for album in read_dataset(cached_data, "train")]


@pytest.mark.parametrize(
    ("seed", "max_timestep", "reduction", "albums"),
    [(0, 1000, "mean", 4), (1, 1000, "none", 4), (2, 150, "none", 3), (3, 1, "mean", 1), (4, 7, "none", 2)],
)
def test_diffusion_loss_returns_the_timesteps_it_drew_and_the_same_loss(
    unet_and_albums, seed, max_timestep, reduction, albums
):
    """return_timesteps gives the loss to the bit as without it, and as the objective written out from the draws
    (per album: latent sample, noise, timestep, in that order, from its own generator), with the timesteps drawn."""
    unet, scheduler, items = unet_and_albums
    assert scheduler.config.prediction_type == "epsilon"  # the written-out objective's target is the noise
    items = items[:albums]
    cond = torch.stack([item.text for item in items])

    def gens() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(derived_seed(seed, i)) for i in range(len(items))]

    with torch.no_grad():
        plain = diffusion_loss(unet, scheduler, cond, items, gens(), max_timestep, reduction)
        loss, timesteps = diffusion_loss(
            unet, scheduler, cond, items, gens(), max_timestep, reduction, return_timesteps=True
        )
        latents, noise, steps = [], [], []
        for item, gen in zip(items, gens(), strict=True):  # the draws replayed, as bench/fusion_mse.py once did
            latents.append(item.sample_latent(gen))
            noise.append(torch.randn(item.latent_mean.shape, generator=gen))
            steps.append(torch.randint(0, max_timestep, (1,), generator=gen))
        latents, noise, steps = torch.stack(latents), torch.stack(noise), torch.cat(steps)
        pred = unet(scheduler.add_noise(latents, noise, steps), steps, encoder_hidden_states=cond, return_dict=False)[0]
        expected = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
    expected = expected.mean() if reduction == "mean" else expected
    assert torch.equal(timesteps, steps) and timesteps.shape == (len(items),) and timesteps.device.type == "cpu"
    assert torch.equal(loss, plain) and torch.equal(loss, expected)


def test_a_diverging_run_stops_with_one_line_and_keeps_its_last_checkpoint(cached_data, tmp_path, monkeypatch):
    import training.train as train_module

    calls = {"n": 0}
    loss = train_module.diffusion_loss

    def nan_at_third_step(*args, **kwargs):
        calls["n"] += 1
        value = loss(*args, **kwargs)
        return value * float("nan") if calls["n"] == 3 else value

    monkeypatch.setattr(train_module, "diffusion_loss", nan_at_third_step)
    run = tmp_path / "run"
    with pytest.raises(train_module.TrainingDiverged, match="diverged at step 3 .*lower --lr"):
        train(_config(cached_data, run, max_steps=6, save_every=2, eval_every=0))
    assert [p.name for p in checkpoints(run)] == ["step-00000002"]
    assert not (run / "fusion.safetensors").exists()


@pytest.mark.parametrize("foreign", ["metadata.jsonl", "notes.txt", "audio"])
def test_train_refuses_an_out_folder_holding_other_files(cached_data, tmp_path, capsys, foreign):
    run = tmp_path / "run"
    run.mkdir()
    (run / foreign).mkdir() if foreign == "audio" else (run / foreign).write_text("mine")
    before = sorted(p.name for p in run.iterdir())
    assert main(["train", "--data", str(cached_data), "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"found other files ({foreign})" in err[0], err
    assert sorted(p.name for p in run.iterdir()) == before
    assert main(["train", "--data", str(cached_data), "--out", str(cached_data), "--quiet"]) == 2  # the dataset
    assert "expected a new or empty folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--eval-every", "0", "--stop-if-inert"], "--stop-if-inert needs the held-out evaluations"),
        (["--lr", "1e30"], "argument --lr: got '1e30', expected a number above 0 and at most 10"),
        (["--gate-lr-scale", "1e308"], "--lr x --gate-lr-scale (the gate's learning rate) must be at most 10"),
        (["--lr", "1", "--gate-lr-scale", "11"], "found 1 x 11"),
    ],
)
def test_training_options_out_of_range_are_one_line_before_any_work(cached_data, tmp_path, capsys, options, expected):
    run = tmp_path / "run"
    assert main(["train", "--data", str(cached_data), "--out", str(run), "--quiet", *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not run.exists()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("noise_draws", 65, "--noise-draws must be a whole number from 1 to 64, found 65"),
        ("noise_draws", 0, "--noise-draws must be a whole number from 1 to 64, found 0"),
        ("gate_init", 1e39, "--gate-init must be a number from 0 to 10, found 1e+39"),
        ("gate_init", float("nan"), "--gate-init must be a number from 0 to 10, found nan"),
        ("gate_init", -0.5, "--gate-init must be a number from 0 to 10, found -0.5"),
    ],
)
def test_the_python_api_refuses_what_the_command_line_refuses(cached_data, tmp_path, field, value, expected):
    """``train(TrainConfig(...))`` checks the ranges the command line checks, in one line, before any work (a
    gate of 1e39 overflowed in ``new_fusion`` and 1e20 draws filled the memory)."""
    with pytest.raises(NoPainGanError, match=re.escape(expected)):
        train(_config(cached_data, tmp_path / "run", **{field: value}))
    assert not (tmp_path / "run").exists()


def test_loss_csv_gives_the_learning_rate_each_step_ran_at(cached_data, tmp_path):
    """loss.csv's lr is the rate of that step's update: the warm-up's first step runs at 0, the last step of the
    cosine decay above 0 (it recorded the next step's rate, so the first row said the second step's)."""
    from transformers import get_cosine_schedule_with_warmup

    run = tmp_path / "run"
    train(_config(cached_data, run, max_steps=4, warmup_steps=2, lr=1e-3, batch_size=2, eval_every=0))
    rows = list(csv.reader((run / "loss.csv").read_text().splitlines()))[1:]
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    schedule = get_cosine_schedule_with_warmup(optimizer, 2, 4)
    expected = []
    for _ in range(4):
        expected.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert [float(row[2]) for row in rows] == pytest.approx(expected) and expected[0] == 0 and expected[-1] > 0


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
    with pytest.raises(NoPainGanError, match="cache: no such folder"):
        train(_config(data, tmp_path / "run"))
    shutil.copytree(cached_data / "cache", data / "cache")
    (data / "covers" / "artist-1-album-1.png").write_bytes((data / "covers" / "artist-0-album-0.png").read_bytes())
    with pytest.raises(NoPainGanError, match="1 of 4 albums changed since they were cached"):
        train(_config(data, tmp_path / "run"))


@pytest.mark.parametrize(
    ("command", "where", "expected"),
    [
        ("train", "missing", "argument --cache: {cache}: no such folder, expected a cache folder"),
        ("train", "file", "argument --cache: {cache} is a file, expected a cache folder"),
        ("train", "empty", "argument --cache: {cache}: expected a cache folder of shards (shard-*.safetensors, made "
         "by nopaingan dataset cache DATA), found an empty folder"),
        ("train", "default missing", "{cache}: no such folder, expected a cache folder; run `nopaingan dataset cache"),
        ("train", "default empty", "{cache}: no cache shards; run `nopaingan dataset cache DATA"),
        ("evaluate", "missing", "argument --cache: {cache}: no such folder, expected a cache folder"),
        ("evaluate", "empty", "argument --cache: {cache}: expected a cache folder of shards"),
        ("evaluate", "default missing", "{cache}: no such folder, expected a cache folder; run `nopaingan dataset"),
    ],
)  # fmt: skip
def test_a_missing_cache_folder_is_not_an_empty_one(cached_data, tmp_path, capsys, command, where, expected):
    """--cache (or DATA/cache) that does not exist says so, naming the folder; an existing folder without shards
    says it has none. One line, exit status 2, nothing written."""
    data = tmp_path / "data"
    shutil.copytree(cached_data, data, ignore=shutil.ignore_patterns("cache"))
    cache = data / "cache" if where.startswith("default") else tmp_path / "mine"
    if where.endswith("empty"):
        cache.mkdir()
    elif where == "file":
        cache.write_text("not a folder")
    out = tmp_path / "out"
    argv = ["--data", str(data), "--out", str(out), "--quiet"]
    if command == "evaluate":
        fusion = save_fusion(new_fusion(CacheReader(cached_data / "cache").spec.encoder), tmp_path / "f.safetensors")
        argv += ["--fusion", str(fusion), "--no-images"]
    if not where.startswith("default"):
        argv += ["--cache", str(cache)]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main([command, *argv]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"nopaingan {command}: error: "), err
    assert expected.format(cache=cache) in err[0], err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


# each recipe option's help: what the default recipe sets, then the seed recipe
RECIPE_HELP = [
    ("--optimizer", "(default: adamw; --recipe seed: sgd)"),
    ("--lr", "(default: 0.00011; --recipe seed: 0.0001)"),
    ("--weight-decay", "(default: 0; --recipe seed: 0)"),
    ("--warmup-steps", "(default: a tenth of the run; --recipe seed: 500)"),
    ("--batch-size", "(default: 8; --recipe seed: 1)"),
    ("--noise-draws", "(default: 2; --recipe seed: 1)"),
    ("--gate-init", "(default: 0.5; --recipe seed: 0)"),
    ("--gate-lr-scale", "(default: 10; --recipe seed: 1)"),
    ("--max-timestep", "(default: the whole schedule; --recipe seed: 150)"),
    ("--timesteps", "(default: stratified; --recipe seed: uniform)"),
    ("--adapter-init", "(default: data; --recipe seed: random)"),
]


def test_the_help_of_every_recipe_option_says_each_recipe_s_value_once():
    assert {option[2:].replace("-", "_") for option, _ in RECIPE_HELP} == set(RECIPE_KEYS)
    train = leaf_parsers(build_parser())[("train",)]
    helps = {o: train._get_formatter()._get_help_string(a) for a in train._actions for o in a.option_strings}
    for option, note in RECIPE_HELP:
        assert helps[option].endswith(" " + note) and helps[option].count("default") == 1, option


def test_recipes_fill_only_the_options_left_unset():
    seed = resolve_recipe(TrainConfig(data=Path("d"), out=Path("o"), recipe="seed"))
    assert (seed.optimizer, seed.lr, seed.warmup_steps, seed.batch_size, seed.noise_draws) == ("sgd", 1e-4, 500, 1, 1)
    assert (seed.weight_decay, seed.gate_init, seed.gate_lr_scale) == (0.0, 0.0, 1.0)
    assert (seed.max_timestep, seed.adapter_init) == (150, "random")  # the write-up: "Maximum Timesteps: 150"
    assert seed.timesteps == "uniform"  # each draw's own, as the seed (and diffusers' training examples) drew them
    default = resolve_recipe(TrainConfig(data=Path("d"), out=Path("o")))
    assert default.optimizer == "adamw" and default.gate_init > 0 and default.gate_lr_scale > 1
    assert (default.max_timestep, default.adapter_init) == (None, "data")  # None: the whole schedule
    assert warmup_steps(default.warmup_steps, 300) == 30 and warmup_steps(seed.warmup_steps, 300) == 300
    with pytest.raises(NoPainGanError, match="--recipe 'fast'"):
        resolve_recipe(TrainConfig(data=Path("d"), out=Path("o"), recipe="fast"))


@given(
    recipe=st.sampled_from(sorted(RECIPES)),
    explicit=st.fixed_dictionaries(
        {},
        optional={
            "optimizer": st.sampled_from(["sgd", "adamw"]),
            "lr": st.floats(1e-6, 1.0),
            "weight_decay": st.floats(0.0, 0.1),
            "warmup_steps": st.integers(0, 1000),
            "batch_size": st.integers(1, 64),
            "noise_draws": st.integers(1, 8),
            "gate_init": st.floats(-1.0, 1.0),
            "gate_lr_scale": st.floats(0.1, 100.0),
            "max_timestep": st.integers(1, 1000),
            "adapter_init": st.sampled_from(["data", "random"]),
        },
    ),
)
def test_explicit_options_override_any_recipe(recipe, explicit):
    config = resolve_recipe(TrainConfig(data=Path("d"), out=Path("o"), recipe=recipe, **explicit))
    for key in RECIPE_KEYS:
        expected = explicit.get(key, getattr(RECIPES[recipe], key))
        if key == "warmup_steps" and expected is None:
            expected = -1  # a tenth of the run
        assert getattr(config, key) == expected, key


def _fusion_gradients(gate: float) -> dict[str, torch.Tensor]:
    fusion = new_fusion(EncoderInfo("clap", "tiny", 0, 32, 10.0, 48000), gate=gate)
    text, music = torch.randn(2, 77, 768), torch.randn(2, 40, 32)
    out = fusion.fuse(text, fusion.adapter(music))
    (out - torch.randn_like(out)).pow(2).mean().backward()
    return {name: p.grad for name, p in fusion.named_parameters()}


def test_a_closed_gate_starves_every_other_parameter_and_the_default_init_does_not():
    closed = _fusion_gradients(gate=0.0)
    assert closed["fusion.gate"].abs().sum() > 0  # only the gate learns at the first step
    assert all(grad is None or not grad.any() for name, grad in closed.items() if name != "fusion.gate")
    opened = _fusion_gradients(gate=RECIPES["default"].gate_init)
    assert all(grad is not None and grad.abs().sum() > 0 for grad in opened.values())


def test_default_recipe_gives_the_fusion_gradient_at_step_0_and_reports_eval_against_text_only(
    cached_data, tmp_path, capsys
):
    run = tmp_path / "run"
    result = train(TrainConfig(data=cached_data, out=run, max_steps=4, eval_every=2, batch_size=2, progress=False))
    summary = result.summary
    assert summary["recipe"] == "default" and summary["optimizer"] == "adamw" and summary["gate_init"] > 0
    assert summary["first_step_gradient_norm"]["rest"] > 0 and summary["first_step_gradient_norm"]["gate"] > 0
    out = capsys.readouterr().out
    assert "eval MSE with text only" in out and "step 2: eval MSE" in out and "step 4: eval MSE" in out
    trainer = json.loads((run / "checkpoints" / "step-00000004" / "trainer.json").read_text())
    assert [e[0] for e in trainer["eval_history"]] == [2, 4]
    text_only = {e[2] for e in trainer["eval_history"]}  # the baseline is the same fixed draws each time
    assert text_only == {summary["eval_loss_text_only"]} or len(text_only) == 1
    gap = (summary["eval_loss"] - summary["eval_loss_text_only"]) / summary["eval_loss_text_only"]
    assert summary["eval_vs_text_only"] == pytest.approx(gap, abs=1e-5)
    # With the seed's closed gate nothing but the gate has a gradient at step 0.
    seed = train(
        TrainConfig(data=cached_data, out=tmp_path / "seed", recipe="seed", max_steps=1, eval_every=0, progress=False)
    )
    assert seed.summary["first_step_gradient_norm"]["rest"] == 0 and "eval_loss" not in seed.summary


def test_an_inert_music_path_warns_loudly_and_stops_early_when_asked(cached_data, tmp_path, capsys, monkeypatch):
    import training.recipes

    monkeypatch.setattr(training.recipes, "INERT_MIN_STEPS", 0)  # the streak rule, on short runs
    inert = {"recipe": "seed", "lr": 1e-9, "warmup_steps": 1, "max_steps": 10, "eval_every": 2, "progress": False}
    # The check starts at step 2 (a fifth of the run); the path stays inert from the second evaluation in a row.
    warned = train(TrainConfig(data=cached_data, out=tmp_path / "warned", **inert))
    assert warned.steps == 10 and warned.summary["music_inert"] is True
    err = capsys.readouterr().err
    assert "inert at step 2" not in err and "WARNING: the music path is inert at step 4" in err
    stopped = train(TrainConfig(data=cached_data, out=tmp_path / "stopped", stop_if_inert=True, **inert))
    assert stopped.steps == 4 and "inert at step 4 of 10" in stopped.summary["stopped_early"]
    assert read_metadata(stopped.fusion)["training"]["steps"] == 4
    assert "stopping (--stop-if-inert)" in capsys.readouterr().err
    # A run evaluated only at its end is judged on that one evaluation.
    once = train(TrainConfig(data=cached_data, out=tmp_path / "once", **(inert | {"eval_every": 10})))
    assert once.summary["music_inert"] is True and "inert at step 10" in capsys.readouterr().err
    # A run that lowers the MSE against text only as much with another album's music learnt a shift of every prompt,
    # not the music: flagged, though its gate moved (it was not: the check compared with text only alone).
    shifted = train(
        TrainConfig(data=cached_data, out=tmp_path / "shifted", max_steps=10, eval_every=10, lr=1e-2, progress=False)
    )
    summary = shifted.summary
    assert summary["eval_vs_text_only"] < -INERT_GAP and abs(summary["eval_vs_other_music"]) < INERT_GAP
    assert summary["music_inert"] is True and "vs another album's music" in capsys.readouterr().err


def test_an_inert_run_is_judged_only_from_the_minimum_step_on(cached_data, tmp_path, capsys, monkeypatch):
    """The seed-like inert run (closed gate, a learning rate too small to move anything): its evaluation at step
    5 is past the warm-up and a fifth of the run but before INERT_MIN_STEPS (10 here, to keep the run short; the
    table below checks the real start), so it is not judged; from step 10 on two inert evaluations in a row stop it."""
    import training.recipes

    monkeypatch.setattr(training.recipes, "INERT_MIN_STEPS", 10)
    inert = {"recipe": "seed", "lr": 1e-9, "warmup_steps": 1, "progress": False, "stop_if_inert": True}
    stopped = train(TrainConfig(data=cached_data, out=tmp_path / "run", max_steps=16, eval_every=5, **inert))
    err = capsys.readouterr().err
    assert stopped.steps == 15 and "inert at step 15 of 16" in stopped.summary["stopped_early"]
    assert err.count("WARNING") == 1 and "WARNING: the music path is inert at step 15" in err, err
    assert stopped.summary["music_inert"] is True


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_a_smoke_run_of_a_few_steps_is_not_judged_inert(cached_data, tmp_path, capsys, recipe):
    run = tmp_path / "run"
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--recipe", recipe, "--max-steps", "3"]
    assert main([*argv, "--eval-every", "1", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "inert" not in err and "WARNING" not in err, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["music_inert"] is None  # not judged, rather than judged learning
    assert len((run / "eval.csv").read_text().splitlines()) == 1 + 3


@pytest.mark.parametrize(
    ("warmup", "total", "start"),
    [
        (0, 3, INERT_MIN_STEPS),  # a smoke run: never judged (its last step is below the start)
        (1, 10, INERT_MIN_STEPS),
        (30, 300, INERT_MIN_STEPS),  # the default recipe's 300-step benchmark run
        (500, 3429, 685),  # the seed's: a fifth of the run
        (900, 1000, 900),  # a long warm-up
        (50, 100_000, 20_000),
    ],
)
def test_the_inert_check_starts_after_the_warm_up_a_fifth_of_the_run_and_the_minimum(warmup, total, start):
    assert inert_check_start(warmup, total) == start


@pytest.mark.parametrize(
    ("streak", "last", "flagged"),
    [(0, False, False), (1, False, False), (2, False, True), (5, False, True), (0, True, False), (1, True, True)],
)
def test_a_music_path_stays_inert_after_two_inert_evaluations_in_a_row_or_at_the_last(streak, last, flagged):
    assert INERT_EVALUATIONS == 2
    assert stays_inert(streak, last) is flagged


@given(
    text_only=st.floats(1e-3, 10.0),
    change=st.floats(-0.5, 0.5),
    moved=st.floats(0.0, 1.0),
)
def test_inert_means_both_the_mse_gap_and_the_gate_movement_are_small(text_only, change, moved):
    assume(abs(abs(change) - INERT_GAP) > 1e-9)  # not on the threshold itself, where rounding decides
    assert is_inert(text_only * (1 + change), text_only, moved) == (abs(change) < INERT_GAP and moved < INERT_GATE)


@given(
    text_only=st.floats(1e-3, 10.0),
    change=st.floats(-0.5, 0.5),
    moved=st.floats(0.0, 1.0),
    own=st.floats(-0.5, 0.5),
)
def test_inert_also_when_the_albums_music_does_no_better_than_another_albums(text_only, change, moved, own):
    """With the MSE of another album's music (same draws), a run is inert too when each album's own music lowers
    the MSE by less than INERT_GAP against it, however far the MSE moved from text only and the gate opened."""
    assume(abs(own - INERT_GAP) > 1e-9 and abs(abs(change) - INERT_GAP) > 1e-9)
    music = text_only * (1 + change)
    other = music / (1 - own)  # the music's MSE is `own` below the other music's
    expected = (abs(change) < INERT_GAP and moved < INERT_GATE) or own < INERT_GAP
    assert is_inert(music, text_only, moved, other) == expected


@given(songs=st.lists(st.integers(0, 3), max_size=9), shape=st.sampled_from([(3,), (2, 4)]))
def test_the_other_music_of_each_eval_album_is_the_next_album_of_another_song(songs, shape):
    """Album i's other music comes from the first album after it (cyclically) whose music differs: never its own
    song under another album's id; the next album whenever songs are distinct; none at all with a single song."""
    music = [torch.full(shape, float(song)) for song in songs]
    partners = other_music_partners(music)
    if len(set(songs)) < 2:
        assert partners is None
        return
    assert len(partners) == len(songs)
    for index, partner in enumerate(partners):
        assert songs[partner] != songs[index]
        between = [(index + shift) % len(songs) for shift in range(1, (partner - index) % len(songs))]
        assert all(songs[other] == songs[index] for other in between)  # the first such album after it
    if len(set(songs)) == len(songs):
        assert partners == [(index + 1) % len(songs) for index in range(len(songs))]


def test_eval_albums_of_one_song_have_no_other_music_baseline(cached_data, tiny_models, tmp_path, capsys):
    """Eval albums that all hold the same song give no other-music MSE (comparing the music with itself would read
    as "the music adds nothing"): the run says so once and measures the rest."""
    from training.cache import cache_dataset

    data = tmp_path / "data"
    shutil.copytree(cached_data, data, ignore=shutil.ignore_patterns("cache"))
    evals = [album.audio for album in read_dataset(data, "eval")]
    for song in evals[1:]:
        shutil.copy(evals[0], song)
    cache_dataset(data, str(tiny_models["sd"]), str(tiny_models["codified-lm"]), resolution=64, progress=False)
    result = train(_config(data, tmp_path / "run", max_steps=2, eval_every=1))
    trainer = json.loads((tmp_path / "run" / "checkpoints" / "step-00000002" / "trainer.json").read_text())
    assert trainer["other_music_history"] == [] and len(trainer["eval_history"]) == 2
    assert "eval_loss_other_music" not in result.summary
    said = capsys.readouterr().out
    assert "every eval album has the same music, so no held-out MSE with another album's music" in said


def test_cli_recipe_seed_with_an_explicit_lr(cached_data, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", str(cached_data), "--out", str(run), "--recipe", "seed", "--lr", "1e-3",
                 "--max-steps", "1", "--eval-every", "0", "--quiet"]) == 0  # fmt: skip
    saved = json.loads((run / "config.json").read_text())
    assert (saved["recipe"], saved["optimizer"], saved["lr"], saved["batch_size"]) == ("seed", "sgd", 1e-3, 1)
    assert (saved["warmup_steps"], saved["gate_init"]) == (500, 0.0)
    assert main(["train", "--data", str(cached_data), "--out", str(tmp_path / "bad"), "--gate-lr-scale", "0"]) == 2


def test_pretraining_the_tiny_musicgen_lowers_its_code_loss(tmp_path, song):
    path = build_tiny_musicgen(tmp_path / "mg")
    clips = [synth_song(1.0, 32000, 120.0, root, seed=i) for i, root in enumerate((110.0, 440.0))]
    result = pretrain_tiny_musicgen(path, clips, steps=20, seed=0)
    assert result["last_loss"] < result["first_loss"]
    encoder = load_encoder("codified-lm", str(path))  # still a complete checkpoint for the encoder
    assert encoder.encode(song).features.shape[-1] == 32


def test_pretraining_the_tiny_musicgen_is_deterministic(tmp_path):
    """The same seed gives the same weights bit for bit, although the decoder's dropout draws from torch's global
    generator (whatever its state: the call seeds its own and leaves the caller's as it was); another seed other
    weights. The learnability benchmark's codified-lm results depend on these weights."""
    clips = [synth_song(0.5, 32000, 120.0, root, seed=i) for i, root in enumerate((110.0, 440.0))]
    weights = {}
    for name, seed, global_seed in (("a", 0, 1), ("b", 0, 2), ("c", 1, 1)):
        path = build_tiny_musicgen(tmp_path / name)
        torch.manual_seed(global_seed)
        pretrain_tiny_musicgen(path, clips, steps=3, seed=seed)
        after = torch.rand(1)
        torch.manual_seed(global_seed)
        assert torch.equal(after, torch.rand(1))  # the caller's generator is where it was
        weights[name] = load_file(path / "model.safetensors")
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"])


@functools.cache
def _learnability_bench():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "learnability.py"
    spec = importlib.util.spec_from_file_location("learnability_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_learnability_bench_refuses_a_work_folder_made_with_other_songs(tmp_path, capsys):
    """bench/learnability.py reuses --work's data only when it was made with the same songs (length, counts,
    seed); otherwise it stops (exit status 2, one line naming each option that differs with both values) instead
    of silently measuring other data."""
    import argparse

    bench = _learnability_bench()
    args = argparse.Namespace(seed=0, train_songs=2, eval_songs=1, song_seconds=0.25)
    rows = bench.build_dataset(tmp_path / "data", args)
    assert [r["split"] for r in rows] == ["train", "train", "eval"]
    assert json.loads((tmp_path / "data" / "settings.json").read_text())["song_seconds"] == 0.25
    assert bench.build_dataset(tmp_path / "data", args) == rows  # same settings: reused as they are
    with pytest.raises(SystemExit) as stop:
        bench.build_dataset(tmp_path / "data", argparse.Namespace(**(vars(args) | {"song_seconds": 0.5})))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--song-seconds 0.25, this run asks for --song-seconds 0.5; use another --work" in err
    assert len(err.splitlines()) == 1


def test_learnability_bench_refuses_models_made_with_other_settings(tmp_path, capsys):
    """The reported mistake: models built with --web-images 256 --vae-steps 100 --unet-steps 200 in a --work were
    reused by a run asking for 2048/400/1200, whose result then named settings that were not used. Now a reused
    folder (the models, the LM-trained tiny MusicGen) must have been made with the run's settings: otherwise the
    run stops before any slow work, exit status 2, one line naming each option that differs with both values."""
    import argparse

    bench = _learnability_bench()
    work = tmp_path / "w"
    (work / "models").mkdir(parents=True)
    made = {"seed": 0, "web_images": 256, "vae_steps": 100, "unet_steps": 200}
    (work / "models" / ".complete").write_text(json.dumps({"vae_steps": 100, "settings": made}))
    same = argparse.Namespace(**made)
    assert bench.build_models(work, same)["sd"] == work / "models" / "sd"  # the same settings: reused

    out = tmp_path / "R.json"
    argv = ["--out", str(out), "--work", str(work), "--web-images", "2048", "--vae-steps", "400"]
    argv += ["--unet-steps", "1200", "--fusion-steps", "2", "--train-songs", "2", "--eval-songs", "1"]
    with pytest.raises(SystemExit) as stop:
        bench.main([*argv, "--song-seconds", "0.25", "--no-probe"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith(
        "was made with --web-images 256, --vae-steps 100, --unet-steps 200, this run asks for --web-images 2048, "
        "--vae-steps 400, --unet-steps 1200; use another --work (or the same options)"
    )
    assert not out.exists() and not list(work.glob("run-*"))

    # models from before their settings were recorded cannot be compared: refused too
    (work / "models" / ".complete").write_text(json.dumps({"vae_steps": 100}))
    with pytest.raises(SystemExit) as stop:
        bench.build_models(work, same)
    assert stop.value.code == 2
    assert "made before its settings were recorded; use another --work" in capsys.readouterr().err

    # the LM-trained tiny MusicGen: made per --musicgen-pretrain-steps, checked for the rest of its settings
    folder = work / "models" / "codified-lm-lm5"
    folder.mkdir()
    lm = {"seed": 0, "song_seconds": 0.25, "musicgen_pretrain_steps": 5, "musicgen_layers": 4}
    (folder / ".complete").write_text(json.dumps({"settings": lm}))
    models = {"codified-lm": work / "models" / "codified-lm"}
    assert bench.encoder_folder(models, argparse.Namespace(encoder="codified-lm", **lm)) == folder
    with pytest.raises(SystemExit) as stop:
        bench.encoder_folder(models, argparse.Namespace(encoder="codified-lm", **(lm | {"seed": 1})))
    assert stop.value.code == 2
    assert "was made with --seed 0, this run asks for --seed 1" in capsys.readouterr().err


@pytest.mark.parametrize("earlier", ["R.json", "R_grid.png", "R_loss.png"])
def test_learnability_bench_never_replaces_an_earlier_result(tmp_path, capsys, earlier):
    """An --out whose result files (R.json, R_grid.png, R_loss.png) exist is refused before any work (nothing
    made in --work), exit status 2, one line naming the file and asking for another --out; the earlier file is
    left as it was."""
    bench = _learnability_bench()
    (tmp_path / earlier).write_text("earlier")
    work = tmp_path / "w"
    with pytest.raises(SystemExit) as stop:
        bench.main(["--out", str(tmp_path / "R.json"), "--work", str(work), "--fusion-steps", "2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(tmp_path / earlier) in err or earlier == "R.json"
    assert f"--out {tmp_path / 'R.json'}:" in err and err.endswith("choose another --out")
    assert (tmp_path / earlier).read_text() == "earlier" and not work.exists()


def test_bench_results_are_new_files(tmp_path, capsys):
    """bench/timing.py, shared by the benchmarks: check_new_outputs refuses an existing --out (exit status 2,
    one line) and accepts a new one; write_json never replaces a file (one that appeared during the run is kept
    and the result goes to a new name) unless a run updates its own file (replace=True)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_timing", Path(__file__).resolve().parents[1] / "bench" / "timing.py"
    )
    timing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timing)
    out = tmp_path / "r.json"
    timing.check_new_outputs("--out", out)  # new: fine
    timing.check_new_outputs("--out", None)  # no --out given: nothing to check
    assert timing.write_json(out, {"a": 1}) == out
    with pytest.raises(SystemExit) as stop:
        timing.check_new_outputs("--out", out)
    assert stop.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"--out {out}: expected a new result, found an earlier result; choose another --out")
    )
    assert timing.write_json(out, {"a": 2}) == tmp_path / "r-1.json"  # appeared meanwhile: kept
    assert json.loads(out.read_text()) == {"a": 1}
    assert timing.write_json(out, {"a": 3}, replace=True) == out
    assert json.loads(out.read_text()) == {"a": 3}
    with pytest.raises(SystemExit) as stop:
        timing.check_new_outputs("--out", tmp_path)  # a folder
    assert stop.value.code == 2
    assert "expected a file name, found a folder" in capsys.readouterr().err


@given(
    st.lists(st.tuples(st.floats(-1, 1), st.floats(0.1, 1)), min_size=3, max_size=40),
    st.floats(0.01, 100),
)
@settings(max_examples=50, deadline=None)
def test_learnability_ratio_stderr(pairs, scale):
    """The benchmark's oracle recovery: the ratio of the albums' summed gains to their summed ceilings, whose
    standard error is zero when every album recovers the same share, does not change when both are rescaled,
    and matches the delta method's formula."""
    bench = _learnability_bench()
    gains, ceilings = [g for g, _ in pairs], [c for _, c in pairs]
    ratio, stderr = bench.ratio_stderr(gains, ceilings)
    assert ratio == pytest.approx(sum(gains) / sum(ceilings))
    assert bench.ratio_stderr([0.7 * c for c in ceilings], ceilings) == (pytest.approx(0.7), pytest.approx(0, abs=1e-6))
    scaled = bench.ratio_stderr([scale * g for g in gains], [scale * c for c in ceilings])
    assert scaled == (pytest.approx(ratio, rel=1e-4, abs=1e-6), pytest.approx(stderr, rel=1e-3, abs=1e-6))
    n, mean_c = len(gains), sum(ceilings) / len(ceilings)
    residuals = torch.tensor([g - ratio * c for g, c in pairs], dtype=torch.float64)
    assert stderr == pytest.approx(residuals.std().item() / n**0.5 / mean_c, rel=1e-4, abs=1e-6)


class _ColourVAE:
    """A stand-in VAE whose round trip returns its input, except that it turns ``swap`` covers into
    ``into`` covers (the failure seen on a real tiny VAE: blue decoded as green)."""

    def __init__(self, swap: tuple[float, ...] | None, into: tuple[float, ...] | None):
        self.swap, self.into = swap, into

    def encode(self, pixels):
        return types.SimpleNamespace(latent_dist=types.SimpleNamespace(mean=pixels))

    def decode(self, latents):
        out = latents.clone()
        if self.swap is not None:
            unit = (out + 1) / 2
            hit = (unit - torch.tensor(self.swap)[:, None, None]).abs().amax(dim=1) < 0.1
            out.permute(0, 2, 3, 1)[hit] = torch.tensor(self.into) * 2 - 1
        return types.SimpleNamespace(sample=out)


def test_learnability_bench_trains_the_vae_until_it_keeps_every_colour(monkeypatch):
    """The benchmark's tiny VAE must decode every cover colour as itself (otherwise no conditioning can draw that
    colour and the colour aim cannot be judged): a VAE that decodes blue as green is trained again from the start
    with twice the steps, and one that never learns stops the benchmark with a message."""
    import random

    bench = _learnability_bench()
    images, colours, _ = bench.web_images(64, random.Random(0))
    blue, green = bench.COLOURS["blue"], bench.COLOURS["green"]
    assert bench.round_trip_colours(_ColourVAE(None, None), images, colours) == 1.0
    confused = bench.round_trip_colours(_ColourVAE(blue, green), images, colours)
    assert confused == pytest.approx(1 - colours.count("blue") / len(colours))

    trained = []

    def train_vae(images, steps, seed):
        trained.append(steps)
        return _ColourVAE(None, None) if steps >= 400 else _ColourVAE(blue, green)

    monkeypatch.setattr(bench, "train_vae", train_vae)
    vae, steps = bench.trained_vae(images, colours, 200, seed=0)
    assert (trained, steps) == ([200, 400], 400)
    assert bench.round_trip_colours(vae, images, colours) == 1.0
    trained.clear()
    with pytest.raises(SystemExit, match="still confuses colours after 100 steps"):
        bench.trained_vae(images, colours, 25, seed=0)
    assert trained == [25, 50, 100]
