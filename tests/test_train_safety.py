"""``nopaingan train`` and ``nopaingan evaluate`` never keep or report what is not there: a diverging run saves no
non-finite weights and names the checkpoint that is intact, a finished run or an earlier report is never
overwritten, --resume without a checkpoint, an explicit warm-up longer than the run and --stop-if-inert without
eval albums are refused before any work, a resumed run's time counts every part and its inert check decides as the
uninterrupted run's, a run --stop-if-inert ended is not resumed, a checkpoint's report outlives its pruning,
evaluate refuses options for covers with --no-images, a run killed after its last checkpoint but before its
final save is finished by --resume as the uninterrupted run, no step repeats an album, --resume refuses a run whose
dataset now gives other albums, --stop-if-inert is refused on a run it could never stop early, and a refused
command prints its one error line alone."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import shutil
import types
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nopaingan_core.atomic import forget_written, written
from nopaingan_core.checkpoint import load_fusion, new_fusion, save_fusion
from nopaingan_core.encoders.base import EncoderInfo
from nopaingan_core.errors import CheckpointError, NoPainGanError
from training.cli import build_parser, main
from training.recipes import RECIPE_KEYS, RECIPES
from training.resume import checkpoints, prune_checkpoints, save_checkpoint
from training.train import (
    EVAL_EVERY,
    RUN_FILES,
    SAVE_EVERY,
    TrainConfig,
    TrainingDiverged,
    _check_new_run,
    steps_per_epoch,
    train,
)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and ": error: " in err[0] and "Traceback" not in err[0], err
    return err[0]


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def _config(data, out, **kw) -> TrainConfig:
    base = {"optimizer": "adamw", "lr": 1e-3, "warmup_steps": 1, "max_steps": 4, "save_every": 2, "progress": False}
    return TrainConfig(data=data, out=out, **(base | kw))


def _assert_checkpoints_finite(run: Path) -> None:
    for checkpoint in checkpoints(run):  # load_fusion refuses non-finite tensors
        load_fusion(checkpoint / "fusion.safetensors")


# --- 1. divergence --------------------------------------------------------------------------------------------


def test_the_trial_s_diverging_run_keeps_only_finite_checkpoints_and_names_the_intact_one(
    cached_data, tmp_path, capsys
):
    """The user trial's command: lr 10 makes the weights infinite at step 4; the run stops there with one line
    naming step 2's checkpoint, which loads, and every file the line lists exists. --resume from it continues
    the same run, which diverges again at the same step (the same options, the same arithmetic)."""
    run = tmp_path / "run"
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--lr", "10", "--gate-lr-scale", "1",
            "--batch-size", "1", "--max-steps", "8", "--eval-every", "2", "--save-every", "2", "--quiet"]  # fmt: skip
    assert main(argv) == 2
    line = _error_line(capsys)
    found = re.search(r"diverged at step (\d+) .*the last intact checkpoint is (\S+) \(step (\d+)\)", line)
    assert found, line
    step, named, named_step = int(found[1]), Path(found[2]), int(found[3])
    assert checkpoints(run)[-1] == named and named_step == (step - 1) // 2 * 2  # the last one saved before it
    assert not (run / "fusion.safetensors").exists() and not list(run.rglob(".tmp-*"))
    _assert_checkpoints_finite(run)
    kept = line.split("written before it: ")[1].split(" and ")[0].split(", ")
    assert kept and all(Path(p).is_file() for p in kept) and not any(".tmp" in p for p in kept), kept
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    out = capsys.readouterr()
    assert f"resuming {run} from step {named_step}" in out.out
    again = out.err.strip().splitlines()
    assert len(again) == 1 and f"diverged at step {step} " in again[0] and str(named) in again[0], again


class _Poisoned:
    """Makes step ``at`` diverge one way: a non-finite training loss, non-finite weights after the update, or a
    non-finite held-out evaluation."""

    def __init__(self, monkeypatch, kind: str, at: int, value: float) -> None:
        import training.train as train_module

        self.kind, self.at, self.value, self.steps = kind, at, value, 0
        loss, evaluate = train_module.diffusion_loss, train_module._eval_loss

        def diffusion_loss(*args, **kwargs):
            out = loss(*args, **kwargs)
            if kind == "loss" and torch.is_grad_enabled():
                self.steps += 1  # one training batch a step (no accumulation)
                return out * value if self.steps == at else out
            return out

        def eval_loss(items, unet, scheduler, accelerator, model, max_timestep, seed, music_of=None):
            out = evaluate(items, unet, scheduler, accelerator, model, max_timestep, seed, music_of)
            if kind == "eval" and model is not None and music_of is None:
                self.steps += 1  # evaluated every step (and with another album's music, not counted)
                return value if self.steps == at else out
            return out

        step = torch.optim.AdamW.step

        def optimizer_step(optimizer, *args, **kwargs):
            out = step(optimizer, *args, **kwargs)
            if kind == "weights":
                self.steps += 1
                if self.steps == at:
                    with torch.no_grad():
                        optimizer.param_groups[0]["params"][0].view(-1)[0] = value
            return out

        monkeypatch.setattr(train_module, "diffusion_loss", diffusion_loss)
        monkeypatch.setattr(train_module, "_eval_loss", eval_loss)
        monkeypatch.setattr(torch.optim.AdamW, "step", optimizer_step)


@pytest.mark.parametrize(
    ("kind", "at", "value", "intact"),
    [
        ("loss", 1, float("nan"), None),
        ("loss", 3, float("inf"), 2),
        ("weights", 2, float("nan"), None),  # the step that would be saved first
        ("weights", 4, float("-inf"), 2),
        ("eval", 2, float("nan"), None),
        ("eval", 4, float("inf"), 2),
        ("eval", 3, float("nan"), 2),
    ],
)
def test_a_diverging_step_is_never_saved_and_the_message_names_the_intact_checkpoint(
    cached_data, tmp_path, capsys, monkeypatch, kind, at, value, intact
):
    run = tmp_path / "run"
    _Poisoned(monkeypatch, kind, at, value)
    with pytest.raises(TrainingDiverged) as error:
        train(_config(cached_data, run, eval_every=1))
    message = str(error.value)
    assert f"training diverged at step {at} (" in message and "lower --lr (now 0.001)" in message
    assert [int(p.name.split("-")[1]) for p in checkpoints(run)] == ([intact] if intact else [])
    assert not (run / "fusion.safetensors").exists() and not list(run.rglob(".tmp-*"))
    _assert_checkpoints_finite(run)
    monkeypatch.undo()
    resume = ["train", "--data", str(cached_data), "--out", str(run), "--optimizer", "adamw", "--lr", "1e-3",
              "--warmup-steps", "1", "--max-steps", "4", "--save-every", "2", "--eval-every", "1", "--quiet",
              "--resume"]  # fmt: skip
    if intact:
        assert f"the last intact checkpoint is {run / 'checkpoints' / f'step-{intact:08d}'} (step {intact})" in message
        assert main(resume) == 0  # without the poison the run continues from it to its end
        assert "resuming" in capsys.readouterr().out and (run / "fusion.safetensors").is_file()
    else:
        assert "no checkpoint was saved before it (nothing to resume)" in message
        assert main(resume) == 2
        assert "nothing to resume (no checkpoint)" in _error_line(capsys)


@given(
    name=st.sampled_from(["adapter.proj.weight", "fusion.gate"]),
    value=st.sampled_from([float("nan"), float("inf"), float("-inf")]),
)
@settings(max_examples=6, deadline=None)
def test_non_finite_weights_are_never_written(tmp_path_factory, name, value):
    """save_fusion refuses them (nothing written, as load_fusion would refuse them), and so does a checkpoint,
    leaving no temporary folder and no entry in the record of written files."""
    folder = tmp_path_factory.mktemp("run")
    fusion = new_fusion(EncoderInfo("clap", "tiny", 0, 8, 10.0, 48000), tokens=2)
    with torch.no_grad():
        dict(fusion.named_parameters())[name].view(-1)[0] = value
    with pytest.raises(CheckpointError, match=f"not written: tensor '{re.escape(name)}' contains NaN or infinite"):
        save_fusion(fusion, folder / "fusion.safetensors")
    forget_written()
    optimizer = torch.optim.AdamW(fusion.parameters())
    with pytest.raises(CheckpointError):
        save_checkpoint(folder, 2, fusion, optimizer, {"step": 2})
    assert list(folder.rglob("*")) == [folder / "checkpoints"] and written() == []


@settings(max_examples=10, deadline=None)
@given(
    saves=st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1, max_size=6),
    keep=st.integers(0, 3),
)
def test_the_record_of_written_files_names_only_files_that_are_there(tmp_path_factory, saves, keep):
    """Checkpoints are written in a temporary folder, renamed, replaced (a step saved again) and pruned; some saves
    fail half way (non-finite weights). After each, every file the record lists exists, none is temporary, and
    each complete checkpoint's files are listed (once)."""
    run = tmp_path_factory.mktemp("run")
    fusion = new_fusion(EncoderInfo("clap", "tiny", 0, 8, 10.0, 48000), tokens=2)
    optimizer = torch.optim.AdamW(fusion.parameters())
    forget_written()
    for step, fails in saves:
        with torch.no_grad():
            fusion.fusion.gate.view(-1)[0] = float("nan") if fails else 0.5
        try:
            save_checkpoint(run, step, fusion, optimizer, {"step": step})
            prune_checkpoints(run, keep)
        except CheckpointError:
            assert fails
        record = written()
        assert len(record) == len(set(record)) and all(p.is_file() for p in record), record
        assert not any(".tmp" in str(p) for p in record)
        assert {p for c in checkpoints(run) for p in c.iterdir()} <= set(record)
    forget_written()


# --- 2. a finished run, --resume without a checkpoint --------------------------------------------------------------

FINISHED, OTHER = "holds a finished run's", "use another --out"


@pytest.mark.parametrize(
    ("files", "resume", "expected"),
    [
        (
            {"fusion.safetensors", "summary.json", "config.json", "loss.csv"},
            False,
            f"{FINISHED} fusion.safetensors; {OTHER}",
        ),
        ({"fusion.safetensors", "eval/eval.json"}, False, f"{FINISHED} fusion.safetensors; {OTHER}"),
        ({"summary.json", "loss.png"}, False, f"{FINISHED} summary.json; {OTHER}"),
        ({"config.json"}, True, "nothing to resume (no checkpoint); start the run without --resume"),
        (
            {"config.json", "loss.csv", "checkpoints/.tmp-step-00000002/trainer.json"},
            True,
            "nothing to resume (no checkpoint)",
        ),
        (set(), True, "nothing to resume (no config.json)"),
    ],
)
def test_a_finished_run_or_a_run_without_checkpoint_is_refused_untouched(
    cached_data, tmp_path, capsys, files, resume, expected
):
    run = tmp_path / "run"
    run.mkdir()
    for name in files:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(name.encode())
    before = _files(run)
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--max-steps", "1", "--quiet"]
    assert main([*argv, *(["--resume"] if resume else [])]) == 2
    assert expected in _error_line(capsys)
    assert _files(run) == before and {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()} == files


@pytest.mark.parametrize(
    ("names", "foreign"),
    [
        (["eval"], None),  # `nopaingan evaluate --fusion RUN`'s report
        (["eval", "eval-1", "eval-12", "loss.csv", "eval.csv", "loss.png", "logs", "config.json"], None),
        (["eval-x"], "eval-x"),
        (["evaluation"], "evaluation"),
        (["eval", "notes.txt"], "notes.txt"),
    ],
)
def test_an_evaluated_run_folder_is_not_foreign_to_train(tmp_path, names, foreign):
    for name in names:
        (tmp_path / name).mkdir()
    assert "eval" in RUN_FILES
    if foreign is None:
        _check_new_run(tmp_path, [])
    else:
        with pytest.raises(NoPainGanError, match=rf"found other files \({foreign}\)"):
            _check_new_run(tmp_path, [])


# --- 3. defaults ----------------------------------------------------------------------------------------------


def test_a_default_run_on_a_seed_sized_dataset_gets_several_evaluations_and_checkpoints():
    steps = steps_per_epoch(3429, 8, 1, 1)
    assert steps == 429 and steps // EVAL_EVERY >= 4 and steps // SAVE_EVERY >= 4
    config = TrainConfig(data=Path("d"), out=Path("o"))
    defaults = build_parser().parse_args(["train", "--data", ".", "--out", "o"])
    assert (config.eval_every, config.save_every) == (defaults.eval_every, defaults.save_every) == (100, 100)
    assert defaults.keep_checkpoints == config.keep_checkpoints == 2


# --- 4. --stop-if-inert ----------------------------------------------------------------------------------------


def test_stop_if_inert_without_eval_albums_is_refused_before_any_work(cached_data, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(cached_data, data)
    rows = [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines()]
    (data / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["split"] == "train"))
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--stop-if-inert", "--quiet"]) == 2
    line = _error_line(capsys)
    assert f"--stop-if-inert needs the held-out evaluations, found no eval albums in {data / 'metadata.jsonl'}" in line
    assert not run.exists()


@pytest.mark.parametrize(
    ("max_steps", "eval_every", "stop", "stopped_at"),
    [
        (4, 4, False, None),  # inert at its only, last evaluation: the run reached its end
        (4, 2, False, None),  # inert twice in a row, the second time at the last step
        (6, 2, True, 4),  # inert twice in a row with steps left: stopped early
    ],
)
def test_stopped_early_is_recorded_only_when_steps_remain(
    cached_data, tmp_path, capsys, monkeypatch, max_steps, eval_every, stop, stopped_at
):
    """A run inert only at its last evaluation ends there, not early (with --stop-if-inert such a run is refused:
    see the next test)."""
    import training.recipes

    monkeypatch.setattr(training.recipes, "INERT_MIN_STEPS", 0)
    argv = ["train", "--data", str(cached_data), "--out", str(tmp_path / "run"), "--recipe", "seed", "--lr", "1e-9"]
    argv += ["--warmup-steps", "1", "--max-steps", str(max_steps), "--eval-every", str(eval_every), "--quiet"]
    # exit 1 when stopped (its fusion saved, but not one to use), 0 when the run reached its end
    assert main([*argv, *(["--stop-if-inert"] if stop else [])]) == (1 if stopped_at else 0)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    err = capsys.readouterr().err
    assert summary["music_inert"] is True and summary["steps"] == (stopped_at or max_steps)
    if stopped_at is None:
        assert "stopped_early" not in summary and "the run ends here" in err and "stopping" not in err
    else:
        assert summary["stopped_early"] == f"music path inert at step {stopped_at} of {max_steps} (--stop-if-inert)"
        assert "stopping (--stop-if-inert)" in err


NEVER_EARLY = "nothing could stop it early (expected a longer run or a smaller --eval-every)"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # the trial's: the seed recipe's 500 warm-up steps, cut to the run's 500: no evaluation is ever judged
        (["--recipe", "seed", "--max-steps", "500"], "--stop-if-inert: the inert check starts at step 500 (after the "
         "500 warm-up steps, the run's first fifth and step 100) and stops a run at 2 inert evaluations in a row "
         "before its last step; the run's 500 steps, evaluated every 100, have 0 such evaluations: nothing could stop "
         "it early (expected a longer run)"),  # no --eval-every judges the last step: only a longer run helps
        (["--recipe", "seed", "--max-steps", "300"], "starts at step 300 (after the 300 warm-up steps"),
        (["--recipe", "seed", "--max-steps", "600"], "evaluated every 100, have 1 such evaluation: nothing could"),
        (["--recipe", "seed", "--max-steps", "601"], None),  # judged at steps 500 and 600
        (["--recipe", "seed", "--max-steps", "300", "--eval-every", "10"], "starts at step 300"),
        (["--recipe", "seed", "--max-steps", "300", "--warmup-steps", "0", "--eval-every", "10"], None),
        # the default recipe: a tenth of the run's warm-up, so the minimum step or the first fifth decides
        (["--max-steps", "200"], "starts at step 100 (after the 20 warm-up steps, the run's first fifth and step "
         "100) and stops a run at 2 inert evaluations in a row before its last step; the run's 200 steps, evaluated "
         f"every 100, have 1 such evaluation: {NEVER_EARLY}"),
        (["--max-steps", "201"], None),  # judged at steps 100 and 200
        (["--max-steps", "1000", "--eval-every", "500"], "starts at step 200 (after the 100 warm-up steps"),
        (["--max-steps", "1001", "--eval-every", "500"], None),
        (["--max-steps", "12", "--eval-every", "1"], "starts at step 100 (after the 1 warm-up step,"),
        (["--max-steps", "12", "--eval-every", "1"], "nothing could stop it early (expected a longer run)"),  # no less
    ],
)  # fmt: skip
def test_stop_if_inert_on_a_run_it_could_never_stop_early_is_refused_before_any_work(
    cached_data, tmp_path, capsys, monkeypatch, options, expected
):
    """--stop-if-inert stops a run at two inert evaluations in a row, judged only after the warm-up, the run's
    first fifth and INERT_MIN_STEPS, and before its last step: a run with fewer such evaluations is one line, exit
    2, with nothing loaded or written; a run with two is accepted (it gets as far as loading the UNet)."""
    import training.train as train_module

    monkeypatch.setattr(train_module, "load_unet", lambda *args: _crash())
    run = tmp_path / "run"
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--stop-if-inert", "--quiet", *options]
    if expected is None:
        with pytest.raises(Crash):
            main(argv)
        return
    assert main(argv) == 2
    assert expected in _error_line(capsys)
    assert not run.exists() and capsys.readouterr().out == ""


# --- 5. time of a resumed run ------------------------------------------------------------------------------------


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", [None, 3, 4, 5])
def test_train_seconds_sum_every_part_of_a_resumed_run(cached_data, tmp_path, monkeypatch, crash_at):
    """A clock that advances 10 s a step: the summary says 60 s for 6 steps however the run was cut (the steps
    after the last checkpoint that a crash loses are run again and counted once)."""
    import training.train as train_module

    clock = {"now": 1000.0, "crashed": False}
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(monotonic=lambda: clock["now"]))

    def tick(step: int, loss: float) -> None:
        clock["now"] += 10
        if step == crash_at and not clock["crashed"]:
            clock["crashed"] = True
            raise Crash

    run = tmp_path / "run"
    config = _config(cached_data, run, max_steps=6, eval_every=0)
    if crash_at is not None:
        with pytest.raises(Crash):
            train(config, on_step=tick)
        clock["now"] += 500  # the time between the crash and the resume is not training
        config.resume = True
    result = train(config, on_step=tick)
    assert result.summary["train_seconds"] == 60.0
    assert json.loads((run / "checkpoints" / "step-00000006" / "trainer.json").read_text())["train_seconds"] == 60.0


# --- 6. --data that is not a dataset ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("where", ["empty", "cache only"])
def test_data_without_metadata_is_named_before_its_cache(cached_data, tmp_path, capsys, command, where):
    data = tmp_path / "data"
    if where == "cache only":
        shutil.copytree(cached_data / "cache", data / "cache")
    else:
        data.mkdir()
    out = tmp_path / "out"
    argv = [command, "--data", str(data), "--out", str(out), "--quiet"]
    if command == "evaluate":
        argv += [
            "--fusion",
            str(save_fusion(new_fusion(EncoderInfo("clap", "t", 0, 8, 10.0, 48000)), tmp_path / "f.safetensors")),
        ]
    before = _files(tmp_path)
    assert main(argv) == 2
    line = _error_line(capsys)
    assert f"--data {data} has no metadata.jsonl, expected a dataset folder" in line
    assert _files(tmp_path) == before and not out.exists()


# --- 7. warm-up longer than the run, 8. counts in words ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--warmup-steps", "99999", "--max-steps", "8"],
            "--warmup-steps must be at most the run's 8 steps, found 99999",
        ),
        (["--warmup-steps", "2", "--max-steps", "1"], "--warmup-steps must be at most the run's 1 step, found 2"),
        (["--recipe", "seed", "--warmup-steps", "501", "--max-steps", "500"], "at most the run's 500 steps, found 501"),
    ],
)
def test_an_explicit_warm_up_longer_than_the_run_is_refused_before_any_work(
    cached_data, tmp_path, capsys, options, expected
):
    run = tmp_path / "run"
    assert main(["train", "--data", str(cached_data), "--out", str(run), "--quiet", *options]) == 2
    assert expected in _error_line(capsys)
    assert not run.exists()


@pytest.mark.parametrize(
    ("options", "schedule", "steps"),
    [
        (
            ["--recipe", "seed", "--max-steps", "1"],
            "cosine, 1 warm-up step (the seed recipe's 500, cut to the run's 1 step)",
            "1 step",
        ),
        (["--warmup-steps", "2", "--max-steps", "2"], "cosine, 2 warm-up steps", "2 steps"),
    ],
)
def test_a_recipe_s_warm_up_is_cut_and_said_so_and_steps_are_counted_in_words(
    cached_data, tmp_path, capsys, options, schedule, steps
):
    run = tmp_path / "run"
    assert main(["train", "--data", str(cached_data), "--out", str(run), "--eval-every", "0", "--quiet", *options]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["lr_schedule"] == schedule
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"{run / 'fusion.safetensors'}: {steps}, final loss {summary['final_loss']:.5f}"


# --- 9. evaluate never overwrites an earlier report -------------------------------------------------------------


def test_evaluate_writes_a_new_report_folder_beside_the_checkpoint_and_refuses_an_explicit_one(
    cached_data, tmp_path, capsys
):
    from training.cache import CacheReader

    run = tmp_path / "run"
    run.mkdir()
    save_fusion(new_fusion(CacheReader(cached_data / "cache").spec.encoder, gate=0.5), run / "fusion.safetensors")
    argv = [
        "evaluate",
        "--data",
        str(cached_data),
        "--fusion",
        str(run),
        "--no-images",
        "--mse-samples",
        "1",
        "--quiet",
    ]
    folders = []
    for expected in ("eval", "eval-1", "eval-2"):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"wrote {run / expected / 'eval.json'}, {run / expected / 'eval.md'}" in out
        assert "on 2 eval albums" in (run / expected / "eval.md").read_text()
        folders.append(_files(run / expected))
    for expected, files in zip(("eval", "eval-1"), folders, strict=False):
        assert _files(run / expected) == files  # the earlier reports are as they were
    before = _files(tmp_path)
    for name in ("eval.json", "eval.md"):
        mine = tmp_path / f"mine-{name}"
        mine.mkdir()
        (mine / name).write_text("my earlier report")
        before = _files(tmp_path)
        assert main([*argv, "--out", str(mine)]) == 2
        assert f"--out {mine} holds an earlier evaluation's {name}; use another --out" in _error_line(capsys)
        assert _files(tmp_path) == before
    assert main(["train", "--data", str(cached_data), "--out", str(run), "--quiet"]) == 2  # a finished run, evaluated
    assert "holds a finished run's fusion.safetensors" in _error_line(capsys)


# --- 10. a resumed run decides what the uninterrupted one does (the inert check) -----------------------------------

# A run whose music path never learns (closed gate, a learning rate too small to move it): judged from step 5 on
# (INERT_MIN_STEPS patched), so its evaluations at steps 6 and 8 are inert in a row; --stop-if-inert stops it at 8
# of 12, and without it the warning comes at 8, 10 and 12.
INERT_RUN = {"recipe": "seed", "lr": 1e-9, "warmup_steps": 0, "max_steps": 12, "eval_every": 2, "save_every": 1}


def _inert_argv(data: Path, run: Path, stop: bool) -> list[str]:
    options = [f"--{key.replace('_', '-')}={value}" for key, value in INERT_RUN.items()]
    stopping = ["--stop-if-inert"] if stop else []
    return ["train", "--data", str(data), "--out", str(run), *options, "--quiet", *stopping]


def _warnings(err: str) -> list[int]:
    return [int(step) for step in re.findall(r"WARNING: the music path is inert at step (\d+)", err)]


@pytest.fixture(scope="module")
def uninterrupted_inert_runs(cached_data, tmp_path_factory) -> dict[bool, tuple[Path, list[int]]]:
    """The inert run without a kill, with and without --stop-if-inert: its folder and the steps it warned at."""
    import training.recipes

    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training.recipes, "INERT_MIN_STEPS", 5)
        for stop in (True, False):
            run = tmp_path_factory.mktemp("whole") / "run"
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                assert main(_inert_argv(cached_data, run, stop)) == (1 if stop else 0)  # 1: stopped inert
            runs[stop] = run, _warnings(err.getvalue())
    return runs


@pytest.mark.parametrize(
    ("stop", "kill_at"),
    [
        (True, 7),  # the user trial's case: resumed from the checkpoint of the first inert evaluation in a row
        (True, 8),  # killed at the stop, before its checkpoint
        (False, 7),
        (False, 10),  # resumed with two inert evaluations in a row behind it: it warns at the next one
    ],
)
def test_a_run_killed_and_resumed_decides_the_inert_check_as_the_uninterrupted_one(
    cached_data, tmp_path, capsys, monkeypatch, uninterrupted_inert_runs, stop, kill_at
):
    """Killed before its step ``kill_at`` was saved (the checkpoint of the step before is the newest) and resumed:
    the same steps, stopped_early, music_inert, warnings, weights to the bit, loss.csv, eval.csv and checkpoint
    state as without the kill (without the inert check's state in the checkpoint, the trial's run stopped one
    evaluation late)."""
    import training.recipes

    monkeypatch.setattr(training.recipes, "INERT_MIN_STEPS", 5)
    (whole, expected_warnings), run = uninterrupted_inert_runs[stop], tmp_path / "run"
    assert expected_warnings == ([8] if stop else [8, 10, 12])

    def kill(step: int, loss: float) -> None:
        if step == kill_at:
            raise Crash

    config = TrainConfig(data=cached_data, out=run, stop_if_inert=stop, progress=False, **INERT_RUN)
    with pytest.raises(Crash):
        train(config, on_step=kill)
    assert checkpoints(run)[-1].name == f"step-{kill_at - 1:08d}"
    capsys.readouterr()
    assert main([*_inert_argv(cached_data, run, stop), "--resume"]) == (1 if stop else 0)
    assert _warnings(capsys.readouterr().err) == [s for s in expected_warnings if s >= kill_at]

    summaries = [json.loads((r / "summary.json").read_text()) for r in (whole, run)]
    for summary in summaries:
        summary.pop("train_seconds")
    assert summaries[0] == summaries[1]
    assert summaries[1]["steps"] == (8 if stop else 12) and summaries[1]["music_inert"] is True
    assert summaries[1].get("stopped_early") == ("music path inert at step 8 of 12 (--stop-if-inert)" if stop else None)
    a, b = (load_fusion(r / "fusion.safetensors").state_dict() for r in (whole, run))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("loss.csv", "eval.csv"):
        assert (run / name).read_bytes() == (whole / name).read_bytes(), name
    states = [json.loads((checkpoints(r)[-1] / "trainer.json").read_text()) for r in (whole, run)]
    for state in states:
        state.pop("train_seconds")
    assert states[0] == states[1] and states[1]["stopped_early"] is stop


# --- 11. a run --stop-if-inert ended is not resumed ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["stopped", "checkpoint of an earlier version"])
def test_resume_on_a_run_stopped_early_is_refused_untouched(cached_data, tmp_path, capsys, monkeypatch, how):
    """The run stopped at step 8 of 12 has ended: --resume is one line, exit 2, and changes no file, whether its
    last checkpoint records the stop (and the summary too) or only the summary does (a checkpoint of a version
    that did not record it)."""
    import training.recipes

    monkeypatch.setattr(training.recipes, "INERT_MIN_STEPS", 5)
    run = tmp_path / "run"
    assert main(_inert_argv(cached_data, run, stop=True)) == 1  # stopped inert, its fusion saved
    last = checkpoints(run)[-1]
    assert last.name == "step-00000008"
    if how == "checkpoint of an earlier version":
        state = json.loads((last / "trainer.json").read_text())
        for key in ("inert_streak", "music_inert", "stopped_early"):
            del state[key]
        (last / "trainer.json").write_text(json.dumps(state))
    before = _files(run)
    capsys.readouterr()
    assert main([*_inert_argv(cached_data, run, stop=True), "--resume"]) == 2
    line = _error_line(capsys)
    assert line.endswith(
        f"{run}: stopped early at step 8 (--stop-if-inert); nothing to resume; start a new run in another --out"
    ), line
    assert _files(run) == before


@pytest.mark.parametrize("lost", [("fusion.safetensors", "summary.json"), ("summary.json",)])
def test_a_run_stopped_early_and_killed_before_its_final_save_is_finished(
    cached_data, tmp_path, capsys, monkeypatch, lost
):
    """Killed after the checkpoint of its stop (step 8 of 12), before fusion.safetensors and summary.json or
    between the two: --resume runs no step and writes them as the run did, the same weights and summary
    (stopped_early too); then it has ended, and a second --resume is refused."""
    import training.recipes

    monkeypatch.setattr(training.recipes, "INERT_MIN_STEPS", 5)
    run = tmp_path / "run"
    assert main(_inert_argv(cached_data, run, stop=True)) == 1  # stopped inert, its fusion saved
    weights = load_fusion(run / "fusion.safetensors").state_dict()
    summary = json.loads((run / "summary.json").read_text())
    for name in lost:
        (run / name).unlink()
    capsys.readouterr()
    assert main([*_inert_argv(cached_data, run, stop=True), "--resume"]) == 1  # finished as the stopped run it is
    out = capsys.readouterr().out
    assert f"finishing {run}: its last checkpoint (step-00000008) is its end; no step left" in out
    assert f"{run / 'fusion.safetensors'}: 8 steps" in out
    again = load_fusion(run / "fusion.safetensors").state_dict()
    assert again.keys() == weights.keys() and all(torch.equal(again[k], weights[k]) for k in weights)
    finished = json.loads((run / "summary.json").read_text())
    finished.pop("train_seconds"), summary.pop("train_seconds")  # timed by the real clock
    assert finished == summary
    assert finished["stopped_early"] == "music path inert at step 8 of 12 (--stop-if-inert)"
    assert [p.name for p in checkpoints(run)] == ["step-00000007", "step-00000008"]
    before = _files(run)
    assert main([*_inert_argv(cached_data, run, stop=True), "--resume"]) == 2
    assert "stopped early at step 8 (--stop-if-inert); nothing to resume" in _error_line(capsys)
    assert _files(run) == before


# --- 12. reports of a checkpoint live outside checkpoints/; pruning removes checkpoints only -------------------------


def test_a_checkpoint_s_report_survives_pruning_and_the_run_folder_stays_a_run_s(cached_data, tmp_path, capsys):
    """evaluate --fusion RUN/checkpoints/step-N(/fusion.safetensors) writes RUN/eval-step-N, then -1, -2; the run
    resumed afterwards prunes step N's checkpoint and keeps its reports (and a file someone put into the
    checkpoint's folder), and a new run is refused the folder only for its finished run, not for the reports."""
    run = tmp_path / "run"
    options = ["--max-steps", "4", "--save-every", "1", "--keep-checkpoints", "2", "--eval-every", "0", "--quiet"]
    argv = ["train", "--data", str(cached_data), "--out", str(run), *options]

    def kill(step: int, loss: float) -> None:
        if step == 4:
            raise Crash

    with pytest.raises(Crash):
        train(TrainConfig(data=cached_data, out=run, max_steps=4, save_every=1, eval_every=0, progress=False), kill)
    step2 = run / "checkpoints" / "step-00000002"
    assert [p.name for p in checkpoints(run)] == ["step-00000002", "step-00000003"]
    evaluate = ["evaluate", "--data", str(cached_data), "--no-images", "--mse-samples", "1", "--quiet"]
    for fusion, expected in [
        (step2, "eval-step-00000002"),
        (step2 / "fusion.safetensors", "eval-step-00000002-1"),
        (step2, "eval-step-00000002-2"),
    ]:
        assert main([*evaluate, "--fusion", str(fusion)]) == 0
        assert f"wrote {run / expected / 'eval.json'}" in capsys.readouterr().out
    (step2 / "notes.txt").write_text("mine")
    reports = _files(run / "eval-step-00000002") | _files(run / "eval-step-00000002-1")
    assert main([*argv, "--resume"]) == 0
    assert [p.name for p in checkpoints(run)] == ["step-00000003", "step-00000004"]
    assert [p.name for p in step2.iterdir()] == ["notes.txt"]  # only the checkpoint's files went
    assert _files(run / "eval-step-00000002") | _files(run / "eval-step-00000002-1") == reports
    names = {p.name for p in run.iterdir()}
    assert {"eval-step-00000002", "eval-step-00000002-1", "eval-step-00000002-2"} <= names
    (run / "fusion.safetensors").unlink()
    (run / "summary.json").unlink()
    shutil.rmtree(run / "checkpoints")
    _check_new_run(run, [])  # the reports are a run folder's own


@pytest.mark.parametrize(
    ("names", "foreign"),
    [
        (["eval-step-00000003", "eval-step-00000003-1", "eval-step-00000120-12"], None),
        (["eval-step-3"], "eval-step-3"),  # not a checkpoint's name
        (["eval-step-00000003-x"], "eval-step-00000003-x"),
        (["eval-steps-00000003"], "eval-steps-00000003"),
    ],
)
def test_a_checkpoint_s_report_folder_is_a_run_s(tmp_path, names, foreign):
    for name in names:
        (tmp_path / name).mkdir()
    if foreign is None:
        _check_new_run(tmp_path, [])
    else:
        with pytest.raises(NoPainGanError, match=rf"found other files \({foreign}\)"):
            _check_new_run(tmp_path, [])


@pytest.mark.parametrize(
    "others",
    [[], ["notes.txt"], ["eval/eval.json", "eval/eval.md"], ["rng-x.safetensors", "fusion.safetensors.bak"]],
)
def test_pruning_removes_only_a_checkpoint_s_files(tmp_path, others):
    fusion = new_fusion(EncoderInfo("clap", "tiny", 0, 8, 10.0, 48000), tokens=2)
    optimizer = torch.optim.AdamW(fusion.parameters())
    first = save_checkpoint(tmp_path, 1, fusion, optimizer, {"step": 1})
    for name in others:
        (first / name).parent.mkdir(parents=True, exist_ok=True)
        (first / name).write_text(name)
    save_checkpoint(tmp_path, 2, fusion, optimizer, {"step": 2})
    prune_checkpoints(tmp_path, 1)
    assert [p.name for p in checkpoints(tmp_path)] == ["step-00000002"]
    left = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file()) if first.exists() else []
    assert left == sorted(others) and first.exists() == bool(others)


# --- 13. evaluate: options that act on the generated covers need them ---------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--grid", "3"], "--grid needs the generated covers, found --no-images"),
        (["--clip", "openai/clip-vit-large-patch14"], "--clip needs the generated covers, found --no-images"),
        (["--inception-weights", "w.pth"], "--inception-weights needs the generated covers, found --no-images"),
        (["--scheduler", "ddim"], "--scheduler needs the generated covers, found --no-images"),
        (["--steps", "20"], "--steps needs the generated covers, found --no-images"),  # the default, typed
        (["--guidance", "1"], "--guidance needs the generated covers, found --no-images"),
        (["--negative", "blurry"], "--negative needs the generated covers, found --no-images"),
        (["--negative", ""], "--negative needs the generated covers, found --no-images"),
        (
            ["--guidance", "3", "--grid", "2", "--steps", "4"],  # every one named, in --help's order
            "--steps, --guidance, --grid need the generated covers, found --no-images",
        ),
        (["--steps", "4", "--grid", "0"], "--steps needs the generated covers, found --no-images"),
        (["--grid", "0"], None),  # no grid: what --no-images gives anyway
        ([], None),  # the sampler's defaults are not options given
    ],
)
def test_evaluate_refuses_cover_options_with_no_images(cached_data, tmp_path, capsys, options, expected):
    from training.cache import CacheReader

    fusion = save_fusion(new_fusion(CacheReader(cached_data / "cache").spec.encoder), tmp_path / "f.safetensors")
    argv = ["evaluate", "--data", str(cached_data), "--fusion", str(fusion), "--no-images", "--mse-samples", "1"]
    before = _files(tmp_path)
    if expected is None:
        assert main([*argv, *options, "--quiet"]) == 0
        assert (tmp_path / "eval" / "eval.json").is_file() and not (tmp_path / "eval" / "grid.png").exists()
        return
    assert main([*argv, *options, "--quiet"]) == 2
    assert expected in _error_line(capsys)
    assert _files(tmp_path) == before


def test_evaluate_help_keeps_the_sampler_defaults(capsys):
    assert main(["evaluate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: pndm)", "denoising steps (default: 20)", "off (default: 7.5)"):
        assert default in text


# --- 14. a run killed after its last checkpoint, before its final save, is finished by --resume -------------------


@pytest.fixture(scope="module")
def four_steps(cached_data, tmp_path_factory) -> Path:
    """The uninterrupted run of :func:`_four_steps` (its clock advancing 10 s a step only)."""
    run = tmp_path_factory.mktemp("whole") / "run"
    with pytest.MonkeyPatch.context() as patch:
        _four_steps(cached_data, run, patch)
    return run


def _four_steps(data: Path, run: Path, monkeypatch, resume: bool = False, on_step=None):
    """A 4-step run, checkpointed every step (two kept) and evaluated every 2, under a clock that advances 10 s
    a step only, so that its summary's train_seconds depends on the steps alone."""
    import training.train as train_module

    clock = {"now": 1000.0}

    def tick(step: int, loss: float) -> None:
        clock["now"] += 10
        if on_step is not None:
            on_step(step, loss)

    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(monotonic=lambda: clock["now"]))
    config = _config(data, run, save_every=1, eval_every=2, resume=resume)
    return train(config, on_step=tick)


@pytest.mark.parametrize(
    "killed", ["before fusion.safetensors", "between fusion.safetensors and summary.json", "before pruning"]
)
def test_a_run_killed_after_its_last_checkpoint_is_finished_as_the_uninterrupted_one(
    cached_data, tmp_path, capsys, monkeypatch, four_steps, killed
):
    """Killed once the checkpoint of its last step is saved (before the final fusion.safetensors and summary.json,
    between the two, or even before the older checkpoints are pruned and loss.csv, eval.csv and loss.png
    rewritten): --resume runs no step and leaves the folder as the uninterrupted run did, fusion.safetensors to
    the byte; then the run has ended and a second --resume is refused untouched."""
    import training.train as train_module

    run = tmp_path / "run"
    last = run / "checkpoints" / "step-00000004"
    with monkeypatch.context() as patch:
        if killed == "before fusion.safetensors":
            patch.setattr(train_module, "save_fusion", lambda *args: _crash())
        elif killed.startswith("between"):
            write = train_module.write_text
            patch.setattr(
                train_module,
                "write_text",
                lambda path, text: _crash() if path.name == "summary.json" else write(path, text),
            )
        else:
            prune = train_module.prune_checkpoints
            patch.setattr(
                train_module, "prune_checkpoints", lambda r, k: prune(r, k) if not last.exists() else _crash()
            )
        with pytest.raises(Crash):
            _four_steps(cached_data, run, patch)
    assert last.is_dir() and (run / "fusion.safetensors").exists() == killed.startswith("between")
    assert not (run / "summary.json").exists()
    kept = ["step-00000002", "step-00000003", "step-00000004"] if killed.startswith("before pruning") else None
    assert [p.name for p in checkpoints(run)] == (kept or ["step-00000003", "step-00000004"])

    steps = []
    with monkeypatch.context() as patch:
        result = _four_steps(cached_data, run, patch, resume=True, on_step=lambda step, loss: steps.append(step))
    assert steps == [] and result.steps == 4
    assert f"finishing {run}: its last checkpoint (step-00000004) is its end; no step left" in capsys.readouterr().out
    names = ("fusion.safetensors", "summary.json", "loss.csv", "eval.csv")
    for name in names:
        assert (run / name).read_bytes() == (four_steps / name).read_bytes(), name
    assert (run / "loss.png").is_file() and result.summary == json.loads((four_steps / "summary.json").read_text())
    assert [p.name for p in checkpoints(run)] == [p.name for p in checkpoints(four_steps)]

    before = _files(run)
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--optimizer", "adamw", "--lr", "1e-3",
            "--warmup-steps", "1", "--max-steps", "4", "--save-every", "1", "--eval-every", "2", "--quiet"]  # fmt: skip
    assert main([*argv, "--resume"]) == 2
    assert f"{run}: already finished at step 4 of 4 (summary.json); nothing to resume" in _error_line(capsys)
    assert _files(run) == before


def _crash() -> None:
    raise Crash


# --- 15. a step never repeats an album ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--batch-size", "5"], "--batch-size 5: more than the 4 train albums of {data} (a step would repeat albums); "
         "expected --batch-size at most 4"),
        (["--batch-size", "64", "--recipe", "seed"], "--batch-size 64: more than the 4 train albums"),
        (["--batch-size", "3", "--grad-accum", "2"], "--batch-size 3 x --grad-accum 2 = 6 albums a step: more than the "
         "4 train albums of {data} (a step would repeat albums); expected --batch-size at most 2"),
        (["--batch-size", "1", "--grad-accum", "5"], "--batch-size 1 x --grad-accum 5 = 5 albums a step: more than the "
         "4 train albums of {data} (a step would repeat albums); even --batch-size 1 repeats albums: expected "
         "--grad-accum x processes at most 4"),
        (["--grad-accum", "8"], "--batch-size 8 (the default recipe's) x --grad-accum 8 = 64 albums a step"),
        (["--recipe", "seed", "--grad-accum", "5"], "--batch-size 1 (the seed recipe's) x --grad-accum 5"),
    ],
)  # fmt: skip
def test_a_batch_that_would_repeat_albums_is_refused_before_any_work(
    cached_data, tmp_path, capsys, monkeypatch, options, expected
):
    """The tiny dataset has 4 train albums: a step of more is one line, exit 2, before the UNet loads and with
    nothing written."""
    import training.train as train_module

    monkeypatch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
    run = tmp_path / "run"
    assert main(["train", "--data", str(cached_data), "--out", str(run), "--quiet", *options]) == 2
    assert expected.format(data=cached_data) in _error_line(capsys)
    assert not run.exists()


@pytest.mark.parametrize(("options", "used"), [([], 4), (["--grad-accum", "2"], 2), (["--batch-size", "4"], 4)])
def test_a_recipe_s_batch_is_cut_to_the_train_albums_and_said_so(cached_data, tmp_path, capsys, options, used):
    """The default recipe's batch of 8 is cut to what 4 train albums fill (config.json keeps the recipe's 8, as it
    keeps its warm-up, so --resume compares the same options and cuts again); a batch that fits is kept."""
    run = tmp_path / "run"
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--max-steps", "1", "--eval-every", "0", "--quiet"]
    assert main([*argv, *options]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["batch_size"], summary["effective_batch"]) == (used, 4)
    note = f"the default recipe's 8 is cut to {used}: a step of more than the 4 train albums repeats albums"
    explicit = "--batch-size" in options
    assert summary.get("batch_size_cut", "").startswith(note) != explicit
    assert (f"--batch-size: {note}" in capsys.readouterr().out) != explicit
    assert json.loads((run / "config.json").read_text())["batch_size"] == (4 if explicit else 8)


def test_a_run_s_file_does_not_depend_on_how_its_folders_are_typed(cached_data, tmp_path, monkeypatch):
    """The same run with --data given relative or absolute (its recipe batch cut, which a note records) writes the
    same fusion.safetensors byte for byte."""
    argv = ["--max-steps", "1", "--eval-every", "0", "--quiet"]
    assert main(["train", "--data", str(cached_data), "--out", str(tmp_path / "a"), *argv]) == 0
    monkeypatch.chdir(cached_data.parent)
    assert main(["train", "--data", cached_data.name, "--out", str(tmp_path / "b"), *argv]) == 0
    assert (tmp_path / "a" / "fusion.safetensors").read_bytes() == (tmp_path / "b" / "fusion.safetensors").read_bytes()


# --- 16. --resume RUN alone continues the run with the options it started with -------------------------------------


@pytest.mark.parametrize(
    ("options", "again"),
    [
        # the default recipe's batch of 8, cut to the 4 train albums again; nothing but --resume RUN
        (["--seed", "3", "--tokens", "8"], []),
        # the seed recipe's 500 warm-up steps, cut to the run's 4 again; options that may change, or that are the same
        (["--recipe", "seed", "--lr", "1e-3"],
         ["--save-every", "1", "--keep-checkpoints", "0", "--quiet", "--lr=1e-3", "--data", "DATA"]),
        # the warm-up given as the run said it (the recipe's 500 cut to 4), which was refused as "recorded 500"
        (["--recipe", "seed"], ["--warmup-steps", "4"]),
    ],
)  # fmt: skip
def test_resume_run_alone_continues_the_run_as_the_uninterrupted_one(
    cached_data, tmp_path, capsys, monkeypatch, options, again
):
    """A run started from relative paths with options off their defaults and killed after its step-2 checkpoint is
    continued by `nopaingan train --resume RUN` from another working folder: the same weights to the bit, loss.csv,
    eval.csv and summary (but for its time) as the uninterrupted run's."""
    monkeypatch.chdir(cached_data.parent)
    argv = ["train", "--data", cached_data.name, "--max-steps", "4", "--save-every", "2", "--eval-every", "2", *options]
    whole, run = tmp_path / "whole", tmp_path / "run"
    assert main([*argv, "--out", str(whole), "--quiet"]) == 0
    _run_killed_after([*argv, "--out", str(run), "--quiet"], 2, monkeypatch)
    assert [p.name for p in checkpoints(run)] == ["step-00000002"]
    monkeypatch.chdir(tmp_path)
    data = os.path.relpath(cached_data, tmp_path)  # the same folder, named from here
    again = [str(data) if a == "DATA" else a for a in again]
    capsys.readouterr()
    assert main(["train", "--resume", "run", *again]) == 0
    assert "resuming run from step 2 (step-00000002)" in capsys.readouterr().out
    a, b = (load_fusion(r / "fusion.safetensors").state_dict() for r in (whole, run))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("loss.csv", "eval.csv"):
        assert (run / name).read_bytes() == (whole / name).read_bytes(), name
    summaries = [json.loads((r / "summary.json").read_text()) for r in (whole, run)]
    assert [s.pop("train_seconds") > 0 for s in summaries] == [True, True]
    for summary in summaries:  # the cut's note names the dataset as the run was given it: relative, then recorded
        summary["batch_size_cut"] = summary.get("batch_size_cut", "").replace(str(cached_data), cached_data.name)
    assert summaries[0] == summaries[1]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--lr", "2e-3"], "--lr: recorded 0.001, given 0.002"),
        (["--max-steps", "8"], "--max-steps: recorded 4, given 8"),
        (["--eval-every", "0", "--seed", "1"], "--eval-every: recorded 2, given 0; --seed: recorded 0, given 1"),
        (["--stop-if-inert", "--save-every", "3"], "--stop-if-inert: recorded off, given on (only"),
        (["--sd", "other/model"], "--sd: recorded none, given other/model"),
        (["--data", "{other}"], "--data: recorded {data}, given {other}"),
        (["--out", "{other}"], "--out {other} and --resume {run}: expected one run folder, found two"),
    ],
)
def test_resume_refuses_options_other_than_the_run_s_untouched(
    cached_data, tmp_path, capsys, monkeypatch, four_steps, options, expected
):
    """Options given again with other values than the run started with are one line naming each, with the
    recorded and the given value, before any work and with no file changed; only where and how often it saves,
    --workers and --quiet may change."""
    import training.train as train_module

    monkeypatch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
    other = tmp_path / "other"
    other.mkdir()
    before = _files(four_steps)
    fill = {"other": other, "data": cached_data, "run": four_steps}
    assert main(["train", "--resume", str(four_steps), *(o.format(**fill) for o in options)]) == 2
    line = _error_line(capsys)
    assert expected.format(**fill) in line
    if options[0] != "--out":
        assert line.startswith(
            f"nopaingan train: error: {four_steps}: --resume continues the run with the options it started with "
            f"({four_steps / 'config.json'}); "
        )
        assert line.endswith(
            "(only --save-every, --keep-checkpoints, --workers and --quiet may change; --data, --cache and --sd only "
            "where the recorded folder is gone)"
        )
    assert _files(four_steps) == before


@pytest.mark.parametrize(
    ("key", "recorded", "other"),
    [("noise_draws", 1, 2), ("timesteps", "uniform", "stratified")],
    ids=["draws", "steps"],
)
def test_a_run_recorded_before_an_option_existed_resumes_as_it_started(
    cached_data, tmp_path, capsys, monkeypatch, key, recorded, other
):
    """A config.json written before --noise-draws (or --timesteps) existed has no such key: that run drew once per
    album and step (each timestep on its own), and --resume continues it so, to the weights of the uninterrupted
    run (not with the recipe's value); the recipe's value given to it is refused as another than the recorded."""
    from training.train import resumed_config

    option = "--" + key.replace("_", "-")
    argv = ["train", "--data", str(cached_data), "--max-steps", "2", "--save-every", "1", "--eval-every", "0"]
    argv += [option, str(recorded), "--quiet"]
    whole, run = tmp_path / "whole", tmp_path / "run"
    assert main([*argv, "--out", str(whole)]) == 0
    _run_killed_after([*argv, "--out", str(run)], 1, monkeypatch)
    saved = json.loads((run / "config.json").read_text())
    assert saved[key] == recorded != getattr(RECIPES["default"], key) == other
    (run / "config.json").write_text(json.dumps({k: v for k, v in saved.items() if k != key}))
    assert getattr(resumed_config(run, {}), key) == recorded
    assert main(["train", "--resume", str(run), option, str(other)]) == 2
    assert f"{option}: recorded {recorded}, given {other}" in _error_line(capsys)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    a, b = (load_fusion(r / "fusion.safetensors").state_dict() for r in (whole, run))
    assert all(torch.equal(a[k], b[k]) for k in a)


# what a run's config.json holds for each option, in words (training.train.OPTION_FIELDS), and values a hand edit may
# put there that none of them takes: null where null means nothing (the recipe's value is recorded, not null), another
# JSON kind, or the right kind out of the option's range
CONFIG_WORDS = {
    "data": ("a dataset folder's path", [None, 3, "", " ", ["DATA"]]),
    "cache": ("a cache folder's path, or null (DATA/cache)", [3, "", True]),
    "sd": ("a miniSD repo id or folder, or null (the one the cache was made with)", [3, "", []]),
    "recipe": ("one of default, seed", [None, "fast", 1, ["default"]]),
    "optimizer": ("one of sgd, adamw", [None, "adam", "AdamW", 0]),
    "lr": ("a number above 0 and at most 10", [None, 0, -1e-4, 11, "1e-4", True]),
    "weight_decay": ("a number of at least 0", [None, -0.1, "0", False]),
    "warmup_steps": ("a whole number of at least 0, or -1 (a tenth of the run)", [None, -2, 1.5, "10"]),
    "batch_size": ("a whole number of at least 1", [None, 0, 4.0, "8", True]),
    "noise_draws": ("a whole number from 1 to 64", [None, 0, 65, "2", 2.5]),
    "gate_init": ("a number from 0 to 10", [None, -0.5, 11, 1e39, "0.5"]),
    "gate_lr_scale": ("a number above 0", [None, 0, -1, "10"]),
    "grad_accum": ("a whole number of at least 1", [None, 0, 1.0, True]),
    "epochs": ("a whole number of at least 1", [None, 0, "1"]),
    "max_steps": ("a whole number of at least 1, or null (as many as --epochs takes)", [0, 4.0, "4", True]),
    "max_timestep": ("a whole number of at least 1, or null (the whole schedule)", [0, 150.0, "150"]),
    "timesteps": ("one of uniform, stratified", [None, "bogus", "Uniform", 1]),
    "tokens": ("a whole number from 1 to 256", [None, 0, 257, 16.0]),
    "adapter_init": ("one of data, random", [None, "zeros", True]),
    "mixed_precision": ("one of no, bf16, fp16", [None, "fp32", False]),
    "save_every": ("a whole number of at least 1", [None, 0, "1"]),
    "keep_checkpoints": ("a whole number of at least 0", [None, -1, 2.0]),
    "eval_every": ("a whole number of at least 0", [None, -1, "0"]),
    "eval_albums": ("a whole number of at least 1", [None, 0, 64.0]),
    "stop_if_inert": ("true or false", [None, 0, 1, "false"]),
    "seed": (f"a whole number from 0 to {2**63 - 1}", [None, -1, 2**64, True, "0", 1.0]),
    "workers": ("a whole number of at least 0", [None, -1, "0"]),
    "processes": ("a whole number of at least 1", [None, 0, "1", 1.0]),
}
HAND_EDITS = [(key, value) for key, (_, values) in CONFIG_WORDS.items() for value in values]


@pytest.fixture(scope="module")
def killed_at_step_1_of_2(cached_data, tmp_path_factory) -> Path:
    """A 2-step run checkpointed every step, not evaluated, killed after step 1. Tests copy it before they edit it."""
    run = tmp_path_factory.mktemp("hand-edited") / "run"
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--max-steps", "2", "--save-every", "1"]
    with pytest.MonkeyPatch.context() as patch:
        _run_killed_after([*argv, "--eval-every", "0", "--quiet"], 1, patch)
    return run


def test_every_option_a_run_records_is_checked_when_resumed():
    from training.train import RECORDED_FIELDS, TrainConfig

    recorded = {f.name for f in dataclasses.fields(TrainConfig)} - {"out", "resume", "progress"} | {"processes"}
    assert recorded == set(CONFIG_WORDS) == set(RECORDED_FIELDS)


@pytest.mark.parametrize(("key", "value"), HAND_EDITS, ids=[f"{k}={json.dumps(v)}" for k, v in HAND_EDITS])
def test_a_hand_edited_config_is_one_line_naming_the_key(
    killed_at_step_1_of_2, tmp_path, capsys, monkeypatch, key, value
):
    """A run's config.json edited by hand to a value no option gives (null where the run records a value, another
    JSON kind, out of range): --resume is one line naming the file, the key, what it takes and what it holds, before
    any model loads, with no file changed (a null recipe key was taken for the recipe's value and refused as
    'recorded none, given stratified'; null counts and seeds were tracebacks)."""
    import training.train as train_module

    run = tmp_path / "run"
    shutil.copytree(killed_at_step_1_of_2, run)
    path = run / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {key: value}, indent=1))
    monkeypatch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
    before = _files(run)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    assert _error_line(capsys) == (
        f"nopaingan train: error: {path}: expected field {key!r} to be {CONFIG_WORDS[key][0]}, "
        f"found {json.dumps(value)}"
    )
    assert capsys.readouterr().out == "" and _files(run) == before


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [(key, value, f"--{key.replace('_', '-')} must be {CONFIG_WORDS[key][0]}, found {value!r}")
     for key, value in HAND_EDITS
     if key not in ("processes", "recipe") and not (value is None and key in RECIPE_KEYS)],
)  # fmt: skip
def test_the_python_api_refuses_what_a_config_json_may_not_hold(cached_data, tmp_path, field, value, expected):
    """``train(TrainConfig(...))`` refuses the same values in one line naming the option, before any work (None is
    the recipe's value there; an unknown recipe is refused by name first)."""
    with pytest.raises(NoPainGanError) as raised:
        train(dataclasses.replace(_config(cached_data, tmp_path / "run"), **{field: value}))
    assert str(raised.value) == expected and not (tmp_path / "run").exists()


def test_a_config_that_names_an_option_twice_is_refused(cached_data, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--max-steps", "2", "--save-every", "1"]
    _run_killed_after([*argv, "--eval-every", "0", "--quiet"], 1, monkeypatch)
    text = (run / "config.json").read_text().rstrip().rstrip("}") + ', "timesteps": "uniform"}'
    (run / "config.json").write_text(text)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    says = f"{run / 'config.json'}: expected each field once in an object, found 'timesteps' twice"
    assert _error_line(capsys).endswith(says)


def test_resume_of_a_missing_folder_or_of_a_file_says_which(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert _error_line(capsys).endswith(f"--resume {tmp_path / 'nope'}: no such run folder; start the run without "
                                        "--resume")  # fmt: skip
    (tmp_path / "config.json").write_text("{}")
    assert main(["train", "--resume", str(tmp_path / "config.json")]) == 2
    says = f"--resume {tmp_path / 'config.json'}: expected a run folder (its folder {tmp_path}), found a file"
    assert _error_line(capsys).endswith(says)


def test_a_seed_beyond_64_bits_is_refused_before_any_work(cached_data, tmp_path, capsys):
    argv = ["train", "--data", str(cached_data), "--out", str(tmp_path / "run"), "--seed", str(2**64)]
    assert main(argv) == 2
    says = f"--seed: got '{2**64}', expected a whole number from 0 to {2**63 - 1}"
    assert _error_line(capsys).endswith(says) and not (tmp_path / "run").exists()


def test_a_resume_message_says_the_recipe_s_warm_up_in_words(cached_data, tmp_path, capsys, monkeypatch):
    """The default recipe's warm-up is recorded as -1 (a tenth of the run); refusing another --warmup-steps on
    --resume says so in words, not as the -1 the user never typed."""
    run = tmp_path / "run"
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--max-steps", "2", "--save-every", "1"]
    _run_killed_after([*argv, "--eval-every", "0", "--quiet"], 1, monkeypatch)
    assert main(["train", "--resume", str(run), "--warmup-steps", "2"]) == 2  # 1, the tenth's steps, is the run's
    assert "--warmup-steps: recorded a tenth of the run (1 step), given 2" in _error_line(capsys)


def test_resume_finds_a_moved_dataset_only_where_the_recorded_one_is_gone(cached_data, tmp_path, capsys, monkeypatch):
    """A dataset moved after the run started: --resume RUN --data NEW continues it (the same weights as the
    uninterrupted run); while the recorded folder still exists, another --data is refused."""
    data, moved = tmp_path / "data", tmp_path / "moved"
    shutil.copytree(cached_data, data)
    argv = ["train", "--data", str(data), "--max-steps", "2", "--save-every", "1", "--eval-every", "0", "--quiet"]
    whole, run = tmp_path / "whole", tmp_path / "run"
    assert main([*argv, "--out", str(whole)]) == 0
    _run_killed_after([*argv, "--out", str(run)], 1, monkeypatch)
    shutil.copytree(data, moved)
    assert main(["train", "--resume", str(run), "--data", str(moved)]) == 2
    assert f"--data: recorded {data}, given {moved}" in _error_line(capsys)
    shutil.rmtree(data)  # now moved
    assert main(["train", "--resume", str(run), "--data", str(moved), "--quiet"]) == 0
    a, b = (load_fusion(r / "fusion.safetensors").state_dict() for r in (whole, run))
    assert all(torch.equal(a[k], b[k]) for k in a)


MOVABLE_WORDS = {"data": "dataset folder", "cache": "cache folder", "sd": "Stable Diffusion model folder"}


@pytest.mark.parametrize(
    ("given", "moved"),
    [
        ([], ["data"]),  # its cache (DATA/cache) moves with it
        (["cache"], ["data", "cache"]),  # --cache DATA/cache given explicitly
        (["cache"], ["cache"]),  # a cache folder elsewhere
        (["sd"], ["sd"]),
        (["cache", "sd"], ["data", "sd"]),
        (["cache", "sd"], ["data", "cache", "sd"]),
    ],
    ids=["data", "data and its cache", "cache", "sd", "data and sd", "all"],
)
def test_resume_after_its_folders_moved_names_each_and_takes_them_from_their_new_place(
    cached_data, tiny_models, tmp_path, capsys, monkeypatch, given, moved
):
    """A run whose dataset, cache or model folder was moved after it started: --resume RUN is one line naming each
    folder that is gone and the option that may name its new place (it was the dataset check's 'has no
    metadata.jsonl'), before any work, no file changed; given the new places, the run continues."""
    import training.train as train_module

    folders = {"data": tmp_path / "data", "sd": tmp_path / "sd"}
    shutil.copytree(cached_data, folders["data"])
    shutil.copytree(tiny_models["sd"], folders["sd"])
    folders["cache"] = folders["data"] / "cache" if "data" in moved and "cache" in moved else tmp_path / "cache"
    if folders["cache"] == tmp_path / "cache" and "cache" in given:
        shutil.copytree(cached_data / "cache", folders["cache"])
    run = tmp_path / "run"
    options = [f"--{name}={folders[name]}" for name in ("data", *given)]
    argv = ["train", *options, "--out", str(run), "--max-steps", "2", "--save-every", "1", "--eval-every", "0"]
    _run_killed_after([*argv, "--quiet"], 1, monkeypatch)
    new = {name: tmp_path / "moved" / name for name in moved}
    for name in moved:
        if not folders[name].exists():  # the cache went with the dataset
            continue
        new[name].parent.mkdir(exist_ok=True)
        shutil.move(folders[name], new[name])
    if "data" in moved and "cache" in moved:
        new["cache"] = new["data"] / "cache"
    before = _files(run)
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
        assert main(["train", "--resume", str(run)]) == 2
    gone = [
        f"the {MOVABLE_WORDS[name]} the run started with, {folders[name]}, is gone; pass --{name} NEW to name its "
        "new place"
        for name in ("data", "cache", "sd")
        if name in moved
    ]
    assert _error_line(capsys) == f"nopaingan train: error: {run}: {'; '.join(gone)}"
    assert capsys.readouterr().out == "" and _files(run) == before
    assert main(["train", "--resume", str(run), *(f"--{name}={new[name]}" for name in moved), "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "expected --data DATA and --out RUN to start a run (or --resume RUN to continue one), found no --data "
         "and no --out"),
        (["--out", "{tmp}/run"], "found no --data"),
        (["--resume"], "--resume: expected the run folder (--resume RUN, or --out RUN), found neither"),
        (["--resume", "{tmp}/run"], "--resume {tmp}/run: no such run folder; start the run without --resume"),
    ],
)  # fmt: skip
def test_train_without_a_run_folder_is_one_line(tmp_path, capsys, argv, expected):
    assert main(["train", *(a.format(tmp=tmp_path) for a in argv)]) == 2
    assert _error_line(capsys).endswith(expected.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def batch_cut_runs(cached_data, tmp_path_factory) -> dict[tuple[str, ...], tuple[Path, Path]]:
    """For each set of options, a 3-step run whose default recipe's batch of 8 is cut to the 4 train albums (to 2
    under --grad-accum 2), uninterrupted and killed after its step-1 checkpoint."""
    runs = {}
    for options in ((), ("--grad-accum", "2")):
        folder = tmp_path_factory.mktemp("cut")
        argv = ["train", "--data", str(cached_data), "--max-steps", "3", "--save-every", "1", "--eval-every", "0"]
        argv += [*options, "--quiet"]
        whole, run = folder / "whole", folder / "run"
        assert main([*argv, "--out", str(whole)]) == 0
        with pytest.MonkeyPatch.context() as patch:
            _run_killed_after([*argv, "--out", str(run)], 1, patch)
        runs[options] = whole, run
    return runs


# (the run's options, the batch it trains with, its recorded (the recipe's) batch)
BATCH_CUTS = [((), 4, 8), (("--grad-accum", "2"), 2, 8)]


@pytest.mark.parametrize(("options", "used", "recorded"), BATCH_CUTS, ids=["cut", "cut under --grad-accum 2"])
@pytest.mark.parametrize("given", ["used", "recorded"])
def test_resume_takes_the_batch_a_cut_run_trains_with_or_records_as_its_own(
    batch_cut_runs, tmp_path, capsys, options, used, recorded, given
):
    """A run whose recipe's batch was cut to its train albums (config.json keeps the recipe's 8; the run says and
    summary.json records the batch it trains with): --resume RUN --batch-size with either is the same option, and the
    run ends with the uninterrupted run's weights (both were refused: the one it trains with as another than the
    recorded, the recorded one as an explicit batch more than the train albums)."""
    whole, killed = batch_cut_runs[options]
    run = tmp_path / "run"
    shutil.copytree(killed, run)
    batch = {"used": used, "recorded": recorded}[given]
    assert main(["train", "--resume", str(run), "--batch-size", str(batch), *options, "--quiet"]) == 0
    a, b = (load_fusion(r / "fusion.safetensors").state_dict() for r in (whole, run))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((run / "summary.json").read_text())["batch_size"] == used


@pytest.mark.parametrize(
    ("options", "used", "recorded", "batch"),
    [(*cut, batch) for cut in BATCH_CUTS for batch in (1, 2, 3, 4, 5, 7, 9, 16, 64) if batch not in cut[1:]],
)
def test_resume_refuses_another_batch_than_a_cut_run_s_untouched(
    batch_cut_runs, capsys, monkeypatch, options, used, recorded, batch
):
    """Any other --batch-size is refused in one line giving the recorded batch and the one it was cut to."""
    import training.train as train_module

    _, run = batch_cut_runs[options]
    monkeypatch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
    before = _files(run)
    assert main(["train", "--resume", str(run), "--batch-size", str(batch), *options]) == 2
    assert f"--batch-size: recorded {recorded} (cut to {used}), given {batch} (only" in _error_line(capsys)
    assert _files(run) == before


@pytest.mark.parametrize(("warmup", "accepted"), [(1, True), (0, False), (2, False), (3, False)])
def test_resume_takes_the_warm_up_a_run_says_or_records(batch_cut_runs, tmp_path, capsys, warmup, accepted):
    """The default recipe's warm-up is a tenth of the run (config.json: -1), 1 step of a 3-step run, as the run
    says: --resume RUN --warmup-steps with either is the run's own and ends with the uninterrupted run's weights;
    another is refused in one line giving both."""
    whole, killed = batch_cut_runs[()]
    run = tmp_path / "run"
    shutil.copytree(killed, run)
    before = _files(run)
    code = main(["train", "--resume", str(run), "--warmup-steps", str(warmup), "--quiet"])
    if accepted:
        assert code == 0
        a, b = (load_fusion(r / "fusion.safetensors").state_dict() for r in (whole, run))
        assert all(torch.equal(a[k], b[k]) for k in a)
    else:
        assert code == 2 and _files(run) == before
        assert f"--warmup-steps: recorded a tenth of the run (1 step), given {warmup} (only" in _error_line(capsys)


def test_resume_of_a_run_without_albums_json_takes_only_the_recorded_batch(batch_cut_runs, tmp_path, capsys):
    """A run an earlier version started records no albums: the batch it trains with is not known before its dataset
    is read, so only the recorded batch is its own there."""
    _, killed = batch_cut_runs[()]
    run = tmp_path / "run"
    shutil.copytree(killed, run)
    (run / "albums.json").unlink()
    before = _files(run)
    assert main(["train", "--resume", str(run), "--batch-size", "4"]) == 2
    assert "--batch-size: recorded 8, given 4 (only" in _error_line(capsys) and _files(run) == before
    assert main(["train", "--resume", str(run), "--batch-size", "8", "--quiet"]) == 0


def _model_weights(folder: Path, data: Path) -> None:
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights")


def _dataset_folder(folder: Path, data: Path) -> None:  # the dataset (its cache is a subfolder)
    shutil.copytree(data, folder, dirs_exist_ok=True)


def _shards_one_level_down(folder: Path, data: Path) -> None:
    shutil.copytree(data / "cache", folder / "cache")


def _other_safetensors(folder: Path, data: Path) -> None:
    for name in ("a.safetensors", "b.safetensors", "shard.safetensors", "shards-0.json", "z"):
        (folder / name).write_bytes(b"x")


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (lambda folder, data: None, "an empty folder"),
        (_model_weights, "2 files or folders but no shard (config.json, model.safetensors)"),
        (_dataset_folder, "4 files or folders but no shard (audio, cache, covers, ...)"),
        (_shards_one_level_down, "1 file or folder but no shard (cache)"),
        (_other_safetensors, "5 files or folders but no shard (a.safetensors, b.safetensors, shard.safetensors, ...)"),
    ],
    ids=["empty", "model weights", "a dataset", "shards a level down", "other safetensors"],
)
@pytest.mark.parametrize("command", ["train", "train --resume", "evaluate"])
def test_cache_that_is_not_a_cache_folder_is_one_line_naming_the_option(
    cached_data, four_steps, tmp_path, capsys, monkeypatch, make, found, command
):
    """--cache naming a folder that `nopaingan dataset cache` did not make (model weights, the dataset itself, the
    shards' parent, other safetensors files, nothing): one line naming --cache, what it takes and what the folder
    holds, at parsing, before any model is looked for and with nothing written (it said 'DIR: no cache shards'
    without naming the option)."""
    import training.train as train_module

    folder = tmp_path / "models"
    folder.mkdir()
    make(folder, cached_data)
    monkeypatch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
    argv = {
        "train": ["train", "--data", str(cached_data), "--out", str(tmp_path / "run")],
        "train --resume": ["train", "--resume", str(four_steps)],
        "evaluate": ["evaluate", "--data", str(cached_data), "--fusion", str(four_steps), "--no-images"],
    }[command]
    before = _files(tmp_path) | _files(four_steps)
    assert main([*argv, "--cache", str(folder)]) == 2
    assert _error_line(capsys).endswith(
        f"error: argument --cache: {folder}: expected a cache folder of shards (shard-*.safetensors, made by "
        f"nopaingan dataset cache DATA), found {found}"
    )
    assert _files(tmp_path) | _files(four_steps) == before and not (tmp_path / "run").exists()


def test_cache_that_cannot_be_read_is_one_line_naming_the_option(cached_data, tmp_path, capsys, monkeypatch):
    """A --cache folder this user may not list (as root, simulated): one line, not a traceback from the parser."""
    import errno

    listing = Path.iterdir

    def iterdir(folder: Path):
        if folder == tmp_path / "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(folder))
        return listing(folder)

    (tmp_path / "locked").mkdir()
    monkeypatch.setattr(Path, "iterdir", iterdir)
    argv = ["train", "--data", str(cached_data), "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "locked")]
    assert main(argv) == 2
    expected = f"error: argument --cache: {tmp_path / 'locked'}: cannot read it (permission denied)"
    assert _error_line(capsys).endswith(expected) and not (tmp_path / "run").exists()


# --- 17. --resume continues a run on the albums it started with --------------------------------------------------


def _rows(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines()]


def _write_rows(data: Path, rows: list[dict]) -> None:
    (data / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def _add_train_album(data: Path) -> None:
    rows = _rows(data)
    _write_rows(data, [*rows, rows[0] | {"id": "artist-9-album-9", "album": "Album 9"}])


def _remove_first(split: str):
    def remove(data: Path) -> None:
        rows = _rows(data)
        first = next(i for i, row in enumerate(rows) if row["split"] == split)
        _write_rows(data, rows[:first] + rows[first + 1 :])

    return remove


def _change_a_cover(data: Path) -> None:  # new bytes: a new time alone is no change (the cache compares content)
    rows = _rows(data)
    (data / rows[1]["file_name"]).write_bytes((data / rows[0]["file_name"]).read_bytes())


def _reorder(data: Path) -> None:
    train_rows = [row for row in _rows(data) if row["split"] == "train"]
    _write_rows(data, train_rows[::-1] + [row for row in _rows(data) if row["split"] == "eval"])


def _add_and_remove(data: Path) -> None:
    _add_train_album(data)
    _remove_first("eval")(data)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_add_train_album, "train albums: 1 added"),
        (_remove_first("train"), "train albums: 1 removed"),
        (_remove_first("eval"), "eval albums: 1 removed"),
        (_change_a_cover, "train albums: 1 changed"),
        (_reorder, "train albums: the same albums in another order"),
        (_add_and_remove, "train albums: 1 added; eval albums: 1 removed"),
    ],
    ids=["added", "removed", "eval removed", "changed", "reordered", "added and eval removed"],
)
def test_resume_refuses_a_run_whose_dataset_now_gives_other_albums_untouched(
    cached_data, tiny_models, tmp_path, capsys, monkeypatch, change, expected
):
    """The trial's: a run killed after a checkpoint, albums fetched into its dataset and cached, then --resume RUN:
    one line saying how the albums differ, exit 2, before any work and with no file of the run changed (the
    run's albums.json records the train and eval albums it uses, with their cache fingerprints)."""
    import training.train as train_module
    from training.cache import cache_dataset

    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(cached_data, data)
    _killed_after_step_1(data, run, monkeypatch)
    change(data)
    cache_dataset(data, str(tiny_models["sd"]), str(tiny_models["codified-lm"]), resolution=64, progress=False)
    monkeypatch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
    before = _files(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    assert _error_line(capsys) == (
        f"nopaingan train: error: {run}: --resume continues the run on the albums it started with "
        f"({run / 'albums.json'}), but the dataset and its cache now give others ({expected}); the run would not "
        "reach the same weights: start a new run in another --out"
    )
    assert capsys.readouterr().out == "" and _files(run) == before


def test_a_run_recorded_without_its_albums_resumes_as_before(cached_data, tiny_models, tmp_path, monkeypatch):
    """A run an earlier version started (no albums.json) resumes on whatever its dataset gives now."""
    from training.cache import cache_dataset

    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(cached_data, data)
    _killed_after_step_1(data, run, monkeypatch)
    (run / "albums.json").unlink()
    _add_train_album(data)
    cache_dataset(data, str(tiny_models["sd"]), str(tiny_models["codified-lm"]), resolution=64, progress=False)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["train_albums"] == 5


def _add_eval_album(data: Path) -> None:
    rows = _rows(data)
    _write_rows(data, [*rows, rows[-1] | {"id": "artist-8-album-8", "album": "Album 8"}])


def _change_an_eval_cover(data: Path) -> None:
    eval_row = next(row for row in _rows(data) if row["split"] == "eval")
    os.utime(data / eval_row["file_name"], ns=(1, 1))


@pytest.mark.parametrize(
    ("change", "cache"),
    [
        (_remove_first("eval"), True),
        (_add_eval_album, True),
        (_add_eval_album, False),  # not cached: a run that evaluates nothing never reads it
        (_change_an_eval_cover, True),
    ],
    ids=["eval removed", "eval added", "eval added, not cached", "eval changed"],
)
def test_a_run_without_evaluations_resumes_whatever_the_eval_albums_now_are(
    cached_data, tiny_models, tmp_path, capsys, monkeypatch, change, cache
):
    """A run started with --eval-every 0 uses no eval album: its albums.json records none, and --resume after the
    eval split changed continues it to the weights, loss.csv and summary of the uninterrupted run, which it does
    not depend on (a run that evaluates is refused, see above: its eval.csv would not be the same); its train
    albums are still held to what albums.json records."""
    from training.cache import cache_dataset

    data, whole, run = tmp_path / "data", tmp_path / "whole", tmp_path / "run"
    shutil.copytree(cached_data, data)
    argv = ["train", "--data", str(data), "--max-steps", "2", "--save-every", "1", "--eval-every", "0", "--quiet"]
    assert main([*argv, "--out", str(whole)]) == 0
    _run_killed_after([*argv, "--out", str(run)], 1, monkeypatch)
    assert json.loads((run / "albums.json").read_text())["eval"] == []
    change(data)
    if cache:
        cache_dataset(data, str(tiny_models["sd"]), str(tiny_models["codified-lm"]), resolution=64, progress=False)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    for name in ("fusion.safetensors", "loss.csv", "albums.json"):
        assert (run / name).read_bytes() == (whole / name).read_bytes(), name
    summaries = [json.loads((r / "summary.json").read_text()) for r in (whole, run)]
    assert [s.pop("train_seconds") > 0 for s in summaries] == [True, True] and summaries[0] == summaries[1]
    _add_train_album(data)  # the train albums it uses still count
    cache_dataset(data, str(tiny_models["sd"]), str(tiny_models["codified-lm"]), resolution=64, progress=False)
    (run / "summary.json").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    assert "(train albums: 1 added); the run would not reach the same weights" in _error_line(capsys)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("fusion.safetensors", lambda b: b[:100]),
        ("optimizer.safetensors", lambda b: b[: len(b) // 2]),
        ("rng-0.safetensors", lambda b: b"not safetensors"),
    ],
)
def test_resume_from_a_damaged_checkpoint_is_one_line_naming_it(
    cached_data, tmp_path, capsys, monkeypatch, name, damage
):
    """A checkpoint whose files were damaged after it was written (a failing disk, a hand edit): --resume says which
    checkpoint and what to do in one line, and changes no file (trainer.json: section 19)."""
    run = tmp_path / "run"
    argv = ["train", "--data", str(cached_data), "--out", str(run), "--max-steps", "3", "--save-every", "1"]
    _run_killed_after([*argv, "--eval-every", "0", "--quiet"], 2, monkeypatch)
    last = checkpoints(run)[-1]
    (last / name).write_bytes(damage((last / name).read_bytes()))
    before = _files(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    line = _error_line(capsys)
    if name == "fusion.safetensors":  # load_fusion's own line for a fusion file that is not safetensors
        assert f"{last / name}: not a readable safetensors file (" in line
    else:
        assert f"{last}: expected a whole checkpoint, found a damaged one (" in line
        assert line.endswith("delete this folder to resume from the checkpoint before it")
    assert _files(run) == before


def _run_killed_after(argv: list[str], step: int, monkeypatch) -> None:
    """``main(argv)``, the run killed right after it writes its loss curve at ``step`` (with its checkpoint of that
    step, when it saves every step or at that one)."""
    import training.train as train_module

    write = train_module.write_loss_curve

    def killed(folder: Path, history: list, *evaluations: list) -> None:
        write(folder, history, *evaluations)
        if len(history) == step:
            raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "write_loss_curve", killed)
        with pytest.raises(Crash):
            main(argv)


def _killed_after_step_1(data: Path, run: Path, monkeypatch) -> None:
    """A 2-step run on ``data``, checkpointed and evaluated every step, killed after its step-1 checkpoint."""
    argv = ["train", "--data", str(data), "--out", str(run), "--max-steps", "2", "--save-every", "1", "--quiet"]
    _run_killed_after([*argv, "--eval-every", "1"], 1, monkeypatch)
    assert [p.name for p in checkpoints(run)] == ["step-00000001"] and (run / "albums.json").is_file()


# --- 18. a refused command prints its one error line alone -------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # the trial's: the default recipe's batch of 8 is cut to the 4 train albums, but the run is refused
        (["--warmup-steps", "100", "--max-steps", "5"], "--warmup-steps must be at most the run's 5 steps, found 100"),
        (["--stop-if-inert", "--max-steps", "5"], "--stop-if-inert: the inert check starts at step 100"),
        (["--resume", "FINISHED"], "FINISHED: already finished at step 4 of 4 (summary.json); nothing to resume"),
    ],
)
def test_a_refused_run_prints_no_note_before_its_error(cached_data, tmp_path, capsys, four_steps, options, expected):
    """The note that the recipe's batch is cut to the train albums comes only once the run starts: a refused
    command prints its one error line and nothing else."""
    options = [str(four_steps) if o == "FINISHED" else o for o in options]
    out = [] if "--resume" in options else ["--data", str(cached_data), "--out", str(tmp_path / "run")]
    before = _files(four_steps)
    assert main(["train", *out, *options]) == 2
    assert expected.replace("FINISHED", str(four_steps)) in _error_line(capsys)
    assert capsys.readouterr().out == "" and _files(four_steps) == before


# --- 19. a checkpoint's trainer.json that is not the state train wrote is one line naming the file and the field ----


@pytest.fixture(scope="module")
def killed_at_step_1(cached_data, tmp_path_factory) -> Path:
    """A 2-step run checkpointed and evaluated every step, killed after its step-1 checkpoint (its trainer.json holds
    one row of each history). Tests copy it before they change it."""
    run = tmp_path_factory.mktemp("killed") / "run"
    with pytest.MonkeyPatch.context() as patch:
        _killed_after_step_1(cached_data, run, patch)
    return run


def _trainer_file(run: Path) -> Path:
    return checkpoints(run)[-1] / "trainer.json"


def _without(name: str):
    return lambda state: {k: v for k, v in state.items() if k != name}


def _with(name: str, value: object):
    return lambda state: state | {name: value}


def _in_schedule(name: str, value: object = None):
    """The schedule's state without ``name`` (``value`` None) or with ``name`` set to ``value``."""

    def edit(state: dict) -> dict:
        schedule = {k: v for k, v in state["lr_schedule"].items() if k != name}
        return state | {"lr_schedule": schedule | ({} if value is None else {name: value})}

    return edit


def _row(name: str, row: object):
    return lambda state: state | {name: [*state[name], row]}


TRAINER_FIELD_WORDS = {
    "step": "a whole number of at least 1",
    "lr_schedule": "the learning-rate schedule's state, an object",
    "history": "a list of [step, loss, lr] rows",
    "eval_history": "a list of [step, eval MSE, text-only MSE, gate] rows",
    "scaler": "the loss scaler's state, an object, or null",
    "first_step_gradient_norm": "an object of numbers",
    "train_seconds": "a number of at least 0",
    "inert_streak": "a whole number of at least 0",
    "music_inert": "true or false",
    "stopped_early": "true or false",
}
# each field's wrong values besides "x", which none takes: of another JSON kind, or of the right kind but out of range
WRONG_VALUES = {
    "step": [0, -3, True, "1", 1.0, 1.5, ["x"]],
    "lr_schedule": [[], None, 1.5, ["x"]],
    "history": [{}, None, 1.5],
    "eval_history": [{}, 3],
    "scaler": [[], 0, 1.5, ["x"]],  # null is the scaler's without mixed precision
    "first_step_gradient_norm": [{"gate": "big"}, {"gate": True}, [], 1.5],
    "train_seconds": [-1, -0.5, True, None, ["x"]],
    "inert_streak": [-1, 1.5, True, None, ["x"]],
    "music_inert": [0, None, "false", ["x"]],
    "stopped_early": [1, None, "true", ["x"]],
}
TRAINER_DAMAGE = [
    *[(f"no {name}", _without(name), f"expected field {name!r} ({TRAINER_FIELD_WORDS[name]}), found none")
      for name in ("step", "lr_schedule", "history", "eval_history")],
    *[(f"{name} {json.dumps(value)}", _with(name, value),
       f"expected field {name!r} to be {TRAINER_FIELD_WORDS[name]}, found {json.dumps(value)}")
      for name, values in WRONG_VALUES.items() for value in ["x", *values]],
    ("schedule without last_epoch", _in_schedule("last_epoch"),
     "in field 'lr_schedule', expected field 'last_epoch' (a whole number of at least 0), found none"),
    ("schedule without lr_lambdas", _in_schedule("lr_lambdas"),
     "in field 'lr_schedule', expected field 'lr_lambdas' (a list), found none"),
    ("schedule's last_epoch a text", _in_schedule("last_epoch", "2"),
     "in field 'lr_schedule', expected field 'last_epoch' to be a whole number of at least 0, found \"2\""),
    ("short history row", _row("history", [2, 0.5]),
     "expected each row of field 'history' to be [step, loss, lr], found row 2: [2, 0.5]"),
    ("history row of texts", _row("history", ["2", "0.5", "0"]),
     "expected each row of field 'history' to be [step, loss, lr], found row 2: [\"2\", \"0.5\", \"0\"]"),
    ("history of texts", _with("history", ["x"]),
     "expected each row of field 'history' to be [step, loss, lr], found row 1: \"x\""),
    ("history row not a list", _row("history", {"step": 2}),
     "expected each row of field 'history' to be [step, loss, lr], found row 2: {\"step\": 2}"),
    ("eval row of an earlier version", _row("eval_history", [2, 0.5]),
     "expected each row of field 'eval_history' to be [step, eval MSE, text-only MSE, gate], found row 2: [2, 0.5]"),
    ("eval row with a null", _row("eval_history", [2, 0.5, None, 0.1]),
     "found row 2: [2, 0.5, null, 0.1]"),
    ("a list", lambda state: [state], "expected the trainer state, a JSON object, found [{"),
    ("null", lambda state: None, "expected the trainer state, a JSON object, found null"),
]  # fmt: skip


def _damage_trainer(run: Path, edit) -> None:
    """Rewrite the last checkpoint's trainer.json with the state ``edit`` makes of it."""
    file = _trainer_file(run)
    file.write_text(json.dumps(edit(json.loads(file.read_text())), indent=1))


@pytest.mark.parametrize(
    ("edit", "expected"), [case[1:] for case in TRAINER_DAMAGE], ids=[c[0] for c in TRAINER_DAMAGE]
)
def test_resume_from_a_trainer_json_train_did_not_write_is_one_line_naming_it_and_its_field(
    killed_at_step_1, tmp_path, capsys, monkeypatch, edit, expected
):
    """A checkpoint's trainer.json with a field missing, of another kind or out of range, or a history row of
    another shape (a hand edit, an earlier version's): --resume is one line naming the file, the field, what it
    should hold and what it holds, and the checkpoint to delete; before any model loads, no file changed."""
    import training.train as train_module

    run = tmp_path / "run"
    shutil.copytree(killed_at_step_1, run)
    _damage_trainer(run, edit)
    monkeypatch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
    before = _files(run)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    last = checkpoints(run)[-1]
    line = _error_line(capsys)
    assert line.startswith(f"nopaingan train: error: {last / 'trainer.json'}: "), line
    assert expected in line and line.endswith(f"; delete the checkpoint {last} to resume from the one before it")
    assert capsys.readouterr().out == "" and _files(run) == before


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda b: b[: len(b) // 2], "not valid JSON ("),
        (lambda b: b"", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        (lambda b: b"step: 1", "not valid JSON ("),
        (lambda b: b"\xff\xfe" + b, "expected JSON text, found bytes that are not UTF-8"),
        (lambda b: b[:-1] + b', "step": 1}', "expected each field once in an object, found 'step' twice"),
    ],
    ids=["cut short", "empty", "not JSON", "not UTF-8", "a field twice"],
)
def test_resume_from_a_trainer_json_that_is_not_json_is_one_line_naming_it(
    killed_at_step_1, tmp_path, capsys, damage, expected
):
    run = tmp_path / "run"
    shutil.copytree(killed_at_step_1, run)
    file = _trainer_file(run)
    file.write_bytes(damage(file.read_bytes()))
    before = _files(run)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"nopaingan train: error: {file}: {expected}"), line
    assert line.endswith(f"; delete the checkpoint {file.parent} to resume from the one before it")
    assert _files(run) == before


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_field_of_any_json_value_is_read_or_refused_in_one_line(killed_at_step_1, tmp_path_factory, data):
    """Any field of trainer.json (or of its schedule, or a history row) set to any JSON value, or removed, or the
    file cut anywhere: reading it gives the state, or CheckpointError in one line naming the file; never another
    error. What it gives holds every field train reads, of the kind train uses."""
    from training.resume import read_trainer

    folder = tmp_path_factory.mktemp("checkpoint")
    text = _trainer_file(killed_at_step_1).read_text()
    state = json.loads(text)
    where = data.draw(st.sampled_from(["top", "lr_schedule", "history", "eval_history", "cut"]))
    if where == "cut":
        (folder / "trainer.json").write_text(text[: data.draw(st.integers(0, len(text) - 1))])
    else:
        target = state if where == "top" else state[where] if where == "lr_schedule" else state[where][0]
        key = data.draw(st.sampled_from(sorted(target) if isinstance(target, dict) else range(len(target))))
        if data.draw(st.booleans()) and isinstance(target, dict):
            del target[key]
        else:
            target[key] = data.draw(JSON_VALUES)
        (folder / "trainer.json").write_text(json.dumps(state))
    try:
        read = read_trainer(folder)
    except CheckpointError as exc:
        assert str(exc).startswith(f"{folder / 'trainer.json'}: ") and "\n" not in str(exc)
        return
    assert isinstance(read["step"], int) and isinstance(read["lr_schedule"]["last_epoch"], int)
    for name, width in (("history", 3), ("eval_history", 4)):
        assert all(len(row) == width and all(math.isfinite(x) for x in row) for row in read[name])


def test_a_trainer_json_of_an_earlier_version_without_the_later_fields_is_read(killed_at_step_1, tmp_path):
    """The fields train reads with a default (train_seconds, the inert check's, ...) may be missing: earlier
    versions did not write them."""
    from training.resume import REQUIRED_TRAINER_FIELDS, read_trainer

    state = json.loads(_trainer_file(killed_at_step_1).read_text())
    earlier = {k: v for k, v in state.items() if k in REQUIRED_TRAINER_FIELDS}
    assert len(earlier) == 4 < len(state)
    (tmp_path / "trainer.json").write_text(json.dumps(earlier))
    assert read_trainer(tmp_path) == earlier


# --- 20. --out with '..' after a folder that does not exist is the folder making it names --------------------------


def _folders(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_dir()}


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.sampled_from(["a", "b", "..", "."]), min_size=1, max_size=6),
    existing=st.sets(st.sampled_from(["a", "b", "a/a", "a/b", "b/a"]), max_size=5),
)
def test_a_folder_is_made_where_mkdir_makes_it_and_nothing_beside_it(tmp_path_factory, parts, existing):
    """``made_path`` names the folder ``mkdir -p`` of the path as given makes (the same folder, found by its real
    path), and making it makes only that folder and its missing parents: no ``a/x`` of ``a/x/../y``."""
    from nopaingan_core.atomic import made_path

    depth = 0
    for part in parts:  # stay below the two folders the path starts in
        depth += {"..": -1, ".": 0}.get(part, 1)
        if depth < -2:
            return
    as_given, made = tmp_path_factory.mktemp("given"), tmp_path_factory.mktemp("made")
    for root in (as_given, made):
        for folder in existing:
            (root / "top" / "mid" / folder).mkdir(parents=True, exist_ok=True)
    before = _folders(made)
    (as_given / "top" / "mid" / Path(*parts)).mkdir(parents=True, exist_ok=True)
    target = made_path(made / "top" / "mid" / Path(*parts))
    target.mkdir(parents=True, exist_ok=True)
    wanted = Path(os.path.realpath(as_given / "top" / "mid" / Path(*parts))).relative_to(as_given.resolve())
    assert Path(os.path.realpath(target)).relative_to(made.resolve()) == wanted
    new = _folders(made) - before
    assert new == {p for p in (wanted, *wanted.parents) if p != Path(".")} - before


@pytest.mark.parametrize(
    "out",
    ["a/x/../y", "a/x/w/../../y", "a/x/../../a/y", "a/x/../y/z/../w", "x/../a/y", "a/y/x/..", "new/x/../y"],
)
def test_out_with_dots_after_a_missing_folder_makes_the_run_there_and_nothing_else(
    cached_data, tmp_path, capsys, monkeypatch, out
):
    """--out a/x/../y with no a/x: the run is made in a/y, as mkdir -p would name it, and no a/x is left beside it
    (it was, and the checks of the folder looked at a/x/../y, which names nothing until a/x exists)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    before = _folders(tmp_path)
    argv = ["train", "--data", str(cached_data), "--out", out, "--max-steps", "1", "--eval-every", "0", "--quiet"]
    assert main(argv) == 0
    run = Path(os.path.normpath(out))  # no symbolic links here
    fusion = (tmp_path / run / "fusion.safetensors").resolve()
    said = capsys.readouterr().out.splitlines()[-1].split(": 1 step")[0]  # the folder as made, a/../a/y for one
    assert Path(said).resolve() == fusion and fusion.is_file()
    new = {p for p in _folders(tmp_path) - before if run not in (p, *p.parents)}
    assert new == {p for p in run.parents if p != Path(".")} - before
    assert Path(json.loads((run / "config.json").read_text())["out"]).resolve() == fusion.parent


def _foreign(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")


def _finished(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text("{}")


@pytest.mark.parametrize(
    ("out", "make", "expected"),
    [
        ("a/x/../y", _foreign, "--out {run}: expected a new or empty folder for the run, found other files "
         "(notes.txt)"),
        ("a/x/w/../../y", _foreign, "found other files (notes.txt)"),
        ("a/x/../y", _finished, "--out {run} holds a finished run's summary.json; use another --out"),
        ("a/x/../y", lambda folder: None, "--warmup-steps must be at most the run's 1 step, found 9"),
        ("a/x/../x2/../y", lambda folder: None, "--warmup-steps must be at most the run's 1 step, found 9"),
    ],
)  # fmt: skip
def test_out_with_dots_after_a_missing_folder_is_checked_where_it_would_be_made(
    cached_data, tmp_path, capsys, monkeypatch, out, make, expected
):
    """The checks of --out a/x/../y look at a/y, where the run would be made: a folder holding other files or a
    finished run is refused (it was taken for a new folder and written into), and a refused run makes no folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    run = Path(os.path.normpath(out))
    make(run)
    before = _files(tmp_path), _folders(tmp_path)
    argv = ["train", "--data", str(cached_data), "--out", out, "--max-steps", "1", "--eval-every", "0"]
    assert main([*argv, "--warmup-steps", "9" if "warmup" in expected else "0", "--quiet"]) == 2
    assert _error_line(capsys).endswith(expected.format(run=run))
    assert (_files(tmp_path), _folders(tmp_path)) == before


@pytest.mark.parametrize(
    "damage",
    [b"", b'{"steps": 2, "final_lo', b"\xff\xfe\x00garbage", b"[1, 2]", b"null", b'"a string"'],
    ids=["empty", "cut short", "not utf-8", "a list", "null", "a string"],
)
def test_a_damaged_summary_is_one_line_and_removing_it_finishes_the_run_again(
    killed_at_step_1_of_2, tmp_path, capsys, damage
):
    """A finished run's summary.json cut short (a full disk) or overwritten: --resume was a JSON traceback. It is one
    line naming the file and what to do, nothing changed; doing it writes the summary again, fusion to the byte."""
    run = tmp_path / "run"
    shutil.copytree(killed_at_step_1_of_2, run)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    capsys.readouterr()
    summary, fusion = (run / "summary.json").read_bytes(), (run / "fusion.safetensors").read_bytes()
    (run / "summary.json").write_bytes(damage)
    before = _files(run)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    assert _error_line(capsys) == (
        f"nopaingan train: error: {run / 'summary.json'}: expected the summary a finished run writes (a JSON "
        "object), found other text; remove it and run --resume again to write it anew"
    )
    assert _files(run) == before
    (run / "summary.json").unlink()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "fusion.safetensors").read_bytes() == fusion
    written, expected = json.loads((run / "summary.json").read_bytes()), json.loads(summary)
    assert written.keys() == expected.keys() and written["final_loss"] == expected["final_loss"]


# --- 21. --resume names the run folder as --out made it, and --out and --resume one folder however spelled -------

# (--resume, --out): spellings of the run folder "run" (a link to a finished run), from the test's folder, where
# "q" does not exist, "up" is a link to a folder elsewhere, "gone" a link to a missing target
ONE_RUN = [
    ("run", None),
    ("./run", None),
    ("q/../run", None),  # the trial's k2/q/../killed: the run was made at k2/killed
    ("q/w/../../run", None),
    ("q/./w/../../run", None),
    ("ABS", None),
    (None, "q/../run"),  # --resume alone: the run of --out
    ("run", "./run"),
    ("run", "q/../run"),
    ("q/../run", "run"),
    ("q/../run", "q/w/../../run"),
    ("run", "ABS"),
    ("ABS", "q/../run"),
    ("run", "REAL"),  # the folder the link leads to
]
TWO_RUNS = [
    ("run", "other"),
    ("run", "q/../other"),
    ("q/../run", "run/../other"),
    ("run", "up/../run"),  # up/.. is the folder up leads out of, not this one
]


@pytest.fixture
def spelled(four_steps, tmp_path, monkeypatch) -> Path:
    """The test's folder, the working one: ``run`` (a link to the finished run :func:`four_steps`), ``other`` (an
    empty folder), ``up`` (a link to ``elsewhere/sub``), ``gone`` (a link to a missing target)."""
    monkeypatch.chdir(tmp_path)
    Path("run").symlink_to(four_steps)
    Path("other").mkdir()
    Path("elsewhere/sub").mkdir(parents=True)
    Path("up").symlink_to(tmp_path / "elsewhere" / "sub")
    Path("gone").symlink_to("missing")
    return tmp_path


def _spelling(text: str | None, root: Path, four_steps: Path) -> list[str]:
    return [] if text is None else [{"ABS": str(root / "run"), "REAL": str(four_steps)}.get(text, text)]


@pytest.mark.parametrize(("resume", "out"), ONE_RUN)
def test_resume_and_out_name_one_run_however_spelled(spelled, four_steps, capsys, monkeypatch, resume, out):
    """Every spelling of the run folder reaches the run (here a finished one: said so, exit 2, no file changed), and
    --out and --resume spelled two ways for it are one folder; q/../run with no q is run, where --out q/../run
    made it (it was "no such run folder", and two spellings of one folder were "found two")."""
    import training.train as train_module

    monkeypatch.setattr(train_module, "load_unet", lambda *args: pytest.fail("loaded the UNet"))
    before = _files(four_steps)
    argv = ["train", "--resume", *_spelling(resume, spelled, four_steps)]
    if out is not None:
        argv += ["--out", *_spelling(out, spelled, four_steps)]
    assert main(argv) == 2
    line = _error_line(capsys)
    named, _, said = line.removeprefix("nopaingan train: error: ").partition(": ")
    assert said == "already finished at step 4 of 4 (summary.json); nothing to resume", line
    assert Path(named).resolve() == four_steps.resolve() and ".." not in Path(named).parts
    assert _files(four_steps) == before and not Path("q").exists()


@pytest.mark.parametrize(("resume", "out"), TWO_RUNS)
def test_resume_and_out_naming_two_folders_are_refused(spelled, four_steps, capsys, resume, out):
    before = _files(four_steps)
    assert main(["train", "--resume", resume, "--out", out]) == 2
    assert _error_line(capsys).endswith(
        f"--out {Path(out)} and --resume {Path(resume)}: expected one run folder, found two"
    )
    assert _files(four_steps) == before and not Path("q").exists()


@pytest.mark.parametrize(
    ("resume", "expected"),
    [
        ("gone", "--resume gone: expected a run folder, found a symbolic link to a missing target (gone -> missing)"),
        ("gone/../run", "--resume gone/../run: expected a run folder, found a symbolic link to a missing target "
         "(gone -> missing) on its path"),
        ("gone/run", "--resume gone/run: expected a run folder, found a symbolic link to a missing target "
         "(gone -> missing) on its path"),
        ("up/../run", "--resume up/../run: no such run folder; start the run without --resume"),
        ("q/../nothing", "--resume nothing: no such run folder; start the run without --resume"),
    ],
)  # fmt: skip
def test_resume_through_a_dangling_link_is_one_line_naming_it(spelled, capsys, resume, expected):
    """A --resume folder named through a link to a missing target says so (it was "no such run folder"); a run
    folder that is not there is named as --out would have made it."""
    assert main(["train", "--resume", resume]) == 2
    assert _error_line(capsys) == f"nopaingan train: error: {expected}"
    assert not Path("missing").exists() and not Path("q").exists()
