"""Training checkpoints that continue a run exactly: fusion weights, optimizer and learning-rate schedule,
loss scaler, random number generators, step and loss history, in safetensors and JSON files (no pickle).

A checkpoint is written into a hidden temporary folder and renamed to ``step-NNNNNNNN`` when complete, so a
crash while saving leaves the previous checkpoints as they were and never a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from nopaingan_core.atomic import moved_written, removed_written
from nopaingan_core.checkpoint import FusionModel, load_fusion, save_fusion
from nopaingan_core.errors import CheckpointError

from .atomic import save_safetensors, write_text
from .errors import DatasetError
from .json_text import FLAG, Field, field_problem, is_number, is_whole, number_field, parse_json, shown, whole_field

CHECKPOINTS = "checkpoints"
STEP_DIR = re.compile(r"^step-(\d{8})$")
FUSION = "fusion.safetensors"
OPTIMIZER = "optimizer.safetensors"
TRAINER = "trainer.json"
RNG_FILE = re.compile(r"^rng-\d+\.safetensors$")


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """This process's generators: torch CPU and CUDA as tensors, Python and NumPy as JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(keys.astype(np.int64))
    meta = {"python": [version, list(words), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda/{i}"] for i in range(sum(k.startswith("cuda/") for k in tensors))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, words, gauss = meta["python"]
    random.setstate((version, tuple(words), gauss))
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """``optimizer.state_dict()`` as tensors (``"<param>/<name>"``) plus JSON for everything else."""
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}/{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run: Path,
    step: int,
    fusion: FusionModel,
    optimizer: torch.optim.Optimizer,
    trainer: dict,
    rank: int = 0,
    is_main: bool = True,
    barrier=lambda: None,
) -> Path:
    """Write ``run/checkpoints/step-<step>``; every process writes its generators, the main one the rest.

    ``trainer`` is the JSON-serialisable rest of the run: step, schedule and scaler states, loss history.
    ``barrier`` waits for all processes (``accelerator.wait_for_everyone``) before the rename.
    """
    root = run / CHECKPOINTS
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    try:  # a full disk or any other failure leaves no half-written .tmp-step folder behind
        rng_tensors, rng_meta = rng_state()
        save_safetensors(rng_tensors, tmp / f"rng-{rank}.safetensors", metadata={"state": json.dumps(rng_meta)})
        if is_main:
            save_fusion(fusion, tmp / FUSION)
            opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
            save_safetensors(opt_tensors, tmp / OPTIMIZER, metadata={"state": json.dumps(opt_meta)})
            write_text(tmp / TRAINER, json.dumps(trainer, indent=1))
    except BaseException:
        _remove(tmp)
        raise
    barrier()
    if is_main:
        if final.exists():
            _remove(final, ignore_errors=False)
        os.replace(tmp, final)
        moved_written(tmp, final)  # a failing command lists the checkpoint's files where they are now
    barrier()
    return final


def _remove(folder: Path, ignore_errors: bool = True) -> None:
    """Remove ``folder`` and drop its files from the record of written files (:func:`moved_written`)."""
    removed_written(folder)
    shutil.rmtree(folder, ignore_errors=ignore_errors)


def checkpoints(run: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders of an interrupted save are ignored)."""
    root = run / CHECKPOINTS
    found = [p for p in root.iterdir() if STEP_DIR.match(p.name) and (p / TRAINER).is_file()] if root.is_dir() else []
    return sorted(found)


def prune_checkpoints(run: Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints (all when ``keep`` is 0), and remove the ``.tmp-step-*`` folders a
    killed save left (a failing one removes its own). Called by the main process after a complete save.

    A pruned checkpoint loses only the files a checkpoint holds (:func:`checkpoint_file`), ``trainer.json``
    first so that a prune cut short leaves no checkpoint that looks complete; anything else in its folder (a
    report someone wrote there) stays, and so does the folder then."""
    root = run / CHECKPOINTS
    for leftover in root.glob(".tmp-step-*") if root.is_dir() else []:
        _remove(leftover)
    if keep > 0:
        for old in checkpoints(run)[:-keep]:
            own = sorted((p for p in old.iterdir() if checkpoint_file(p)), key=lambda p: p.name != TRAINER)
            for path in own:
                removed_written(path)
                path.unlink()
            with contextlib.suppress(OSError):  # not empty: it holds someone else's files
                old.rmdir()


def checkpoint_file(path: Path) -> bool:
    """Whether ``path`` is one of the files :func:`save_checkpoint` writes into a checkpoint's folder."""
    return path.is_file() and (path.name in (FUSION, OPTIMIZER, TRAINER) or RNG_FILE.match(path.name) is not None)


@contextlib.contextmanager
def damaged_checkpoint(path: Path):
    """Reading the checkpoint folder ``path``: a file of it that cannot be read (cut short, not JSON, not
    safetensors, missing metadata) is :class:`CheckpointError` in one line naming the checkpoint, not a traceback.
    Checkpoints are written whole (a staged folder renamed), so only a damaged disk or a hand edit does this."""
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise CheckpointError(
            f"{path}: expected a whole checkpoint, found a damaged one ({type(exc).__name__}: {exc}); "
            "delete this folder to resume from the checkpoint before it"
        ) from None


def _is_list(value: object) -> bool:
    return isinstance(value, list)


def _is_object(value: object) -> bool:
    return isinstance(value, dict)


# The rows of trainer.json's histories: a step, then numbers (loss.csv's and eval.csv's rows)
HISTORY_ROWS = {"history": ("step", "loss", "lr"), "eval_history": ("step", "eval MSE", "text-only MSE", "gate")}
OPTIONAL_HISTORY_ROWS = {"other_music_history": ("step", "other-music MSE")}  # later versions only
# What trainer.json holds (train's trainer_state). Train reads the fields after eval_history with a default (later
# versions added them; scaler is null without mixed precision), so only the first four are required.
TRAINER_FIELDS: dict[str, Field] = {
    "step": whole_field(1),
    "lr_schedule": ("the learning-rate schedule's state, an object", _is_object),
    **{name: (f"a list of [{', '.join(columns)}] rows", _is_list) for name, columns in HISTORY_ROWS.items()},
    "scaler": ("the loss scaler's state, an object, or null", lambda v: v is None or _is_object(v)),
    "first_step_gradient_norm": ("an object of numbers", lambda v: _is_object(v) and all(map(is_number, v.values()))),
    "train_seconds": number_field(0.0),
    "other_music_history": ("a list of [step, other-music MSE] rows", _is_list),
    "inert_streak": whole_field(0),
    "music_inert": FLAG,
    "stopped_early": FLAG,
}
REQUIRED_TRAINER_FIELDS = ("step", "lr_schedule", *HISTORY_ROWS)
# What the schedule's (a LambdaLR's) load_state_dict needs: without last_epoch it would start the schedule again
SCHEDULE_FIELDS: dict[str, Field] = {"last_epoch": whole_field(0), "lr_lambdas": ("a list", _is_list)}


def read_trainer(path: Path) -> dict:
    """The trainer state (step, schedule, histories, ...) of the checkpoint folder ``path``, checked field by field
    (:data:`TRAINER_FIELDS`): :class:`CheckpointError` in one line naming the file, the field, what it should hold
    and what it holds, for a file cut short, not JSON, or missing a field or holding one of another kind."""
    file = path / TRAINER
    hint = f"delete the checkpoint {path} to resume from the one before it"
    try:
        state = parse_json(file.read_bytes().decode("utf-8"), str(file))
    except UnicodeDecodeError:
        raise CheckpointError(f"{file}: expected JSON text, found bytes that are not UTF-8; {hint}") from None
    except DatasetError as exc:  # not JSON (cut short), or a field given twice
        raise CheckpointError(f"{exc}; {hint}") from None
    problem = _trainer_problem(state)
    if problem:
        raise CheckpointError(f"{file}: {problem}; {hint}")
    return state


def _trainer_problem(state: object) -> str | None:
    """What is wrong with ``state`` as a checkpoint's trainer state (:data:`TRAINER_FIELDS`), or None."""
    if not isinstance(state, dict):
        return f"expected the trainer state, a JSON object, found {shown(state)}"
    problem = field_problem(state, TRAINER_FIELDS, REQUIRED_TRAINER_FIELDS)
    if problem:
        return problem
    schedule = field_problem(state["lr_schedule"], SCHEDULE_FIELDS, tuple(SCHEDULE_FIELDS))
    if schedule:
        return f"in field 'lr_schedule', {schedule}"
    for name, columns in (HISTORY_ROWS | OPTIONAL_HISTORY_ROWS).items():
        for number, row in enumerate(state.get(name, []), 1):
            fits = isinstance(row, list) and len(row) == len(columns) and is_whole(row[0])
            if not (fits and all(map(is_number, row[1:]))):
                expected = f"expected each row of field {name!r} to be [{', '.join(columns)}]"
                return f"{expected}, found row {number}: {shown(row)}"
    return None


def load_checkpoint(path: Path, fusion: FusionModel, optimizer: torch.optim.Optimizer, rank: int = 0) -> dict:
    """Restore weights, optimizer state and this process's generators; returns the trainer state.
    :class:`CheckpointError` in one line for a damaged checkpoint (:func:`damaged_checkpoint`)."""
    with damaged_checkpoint(path):
        return _load_checkpoint(path, fusion, optimizer, rank)


def _load_checkpoint(path: Path, fusion: FusionModel, optimizer: torch.optim.Optimizer, rank: int) -> dict:
    saved = load_fusion(path / FUSION)
    saved.check_encoder(fusion.encoder)
    fusion.load_state_dict(saved.state_dict())
    opt_file = str(path / OPTIMIZER)
    from safetensors import safe_open

    with safe_open(opt_file, "pt") as f:
        opt_meta = json.loads(f.metadata()["state"])
    optimizer.load_state_dict(_unflatten_optimizer(load_file(opt_file), opt_meta))
    rng_file = path / f"rng-{rank}.safetensors"
    if not rng_file.is_file():
        raise CheckpointError(
            f"{path}: no generator state for process {rank}; resume with the number of processes the run had"
        )
    with safe_open(str(rng_file), "pt") as f:
        rng_meta = json.loads(f.metadata()["state"])
    set_rng_state(load_file(str(rng_file)), rng_meta)
    return read_trainer(path)
