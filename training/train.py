"""``nopaingan train``: learn the adapter and fusion on cached embeddings with the frozen miniSD UNet.

The objective is the seed's, diffusion MSE on the noise; the optimizer settings come from a recipe
(:mod:`training.recipes`): ``default`` (AdamW, a faster-opening gate, batch 8) or ``seed`` (the seed's SGD at
lr 1e-4, 500 warm-up steps, batch 1), one epoch either way. Accelerate runs it on a CPU, one GPU or several
GPUs and machines (``accelerate launch -m training train ...``) with the same code.

Every random draw of a step (its albums, latent sample, noise and timestep) comes from generators seeded by
the run's seed, the step and the process, never from a global generator, so a run resumed from a
checkpoint computes exactly what an uninterrupted run does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from nopaingan_core.atomic import dangling_link, link_text, made_path
from nopaingan_core.checkpoint import FusionModel, new_fusion, non_finite_tensors, save_fusion
from nopaingan_core.cli_args import MAX_SEED
from nopaingan_core.errors import CheckpointError, NoPainGanError
from nopaingan_core.hub import from_pretrained

from .adapter_init import STATS_ALBUMS, whiten_adapter_input
from .atomic import write_bytes, write_text
from .cache import CACHE_DIR, CachedAlbum, CacheReader
from .errors import DatasetError, change_text, count_text
from .json_text import (
    FLAG,
    DuplicateFieldError,
    Field,
    choice_field,
    field_problem,
    is_whole,
    number_field,
    or_null,
    parse_json,
    whole_field,
)
from .recipes import (
    NONE_TEXT,
    RECIPE_KEYS,
    RECIPES,
    check_can_stop_early,
    gate_change,
    gate_opening,
    inert_check_start,
    is_inert,
    non_gate_gradient_norm,
    other_music_partners,
    param_groups,
    resolve_recipe,
    stays_inert,
    warmup_steps,
)
from .records import EVAL, METADATA, TRAIN, Album, read_dataset
from .resume import STEP_DIR, checkpoints, load_checkpoint, prune_checkpoints, read_trainer, save_checkpoint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OPTIMIZERS = ("sgd", "adamw")
MAX_LR = 10.0  # a learning rate above this is a typo (AdamW moves each weight by about lr a step)
MAX_GATE_INIT = 10.0  # tanh(10) is 1 to eight digits: a larger start opens the gate no further
MAX_NOISE_DRAWS = 64  # each draw is one more UNet pass per album and step (and its activations in memory)
MAX_TOKENS = 256  # music tokens the adapter makes, beside the text's 77
ADAPTER_INITS = ("data", "random")
TIMESTEPS = ("uniform", "stratified")  # how a step's timesteps are drawn (stratified_timesteps)
MIXED_PRECISION = ("no", "bf16", "fp16")
FUSION_FILE = "fusion.safetensors"
CONFIG_FILE = "config.json"
ALBUMS_FILE = "albums.json"  # the albums a run trains and evaluates on: --resume refuses others
SUMMARY_FILE = "summary.json"
# What a run writes into its folder, and the reports `nopaingan evaluate` writes there (training.evaluate.
# report_folder): eval/, eval-1/... of --fusion RUN and eval-step-NNNNNNNN/, eval-step-NNNNNNNN-1/... of a
# checkpoint's fusion. A folder holding only these (a run stopped before its first checkpoint) is reused; any other
# file means the folder is someone else's (a dataset, notes) and is refused.
RUN_FILES = {
    FUSION_FILE,
    CONFIG_FILE,
    ALBUMS_FILE,
    SUMMARY_FILE,
    "loss.csv",
    "eval.csv",
    "loss.png",
    "logs",
    "checkpoints",
    "eval",
}
REPORT_DIR = re.compile(r"^eval(-step-\d{8})?(-\d+)?$")
# Checkpoints and held-out evaluations every 100 steps by default: a default-recipe epoch of a seed-sized dataset
# (3429 albums, batch 8) is 429 steps, so a default run gets four of each (and --stop-if-inert can act); a checkpoint
# is the fusion (12 M parameters) with AdamW's two moments, about 150 MB, and only --keep-checkpoints (2) are kept.
SAVE_EVERY = 100
EVAL_EVERY = 100
# Options that change what a run computes: resuming with different values would not continue the same run.
RESUME_KEYS = (
    "recipe",
    "gate_init",
    "gate_lr_scale",
    "optimizer",
    "lr",
    "weight_decay",
    "warmup_steps",
    "batch_size",
    "noise_draws",
    "grad_accum",
    "epochs",
    "max_steps",
    "max_timestep",
    "timesteps",
    "tokens",
    "adapter_init",
    "seed",
    "mixed_precision",
    "eval_every",  # the held-out evaluations decide what the run records (eval.csv, music_inert) and where
    "eval_albums",  # --stop-if-inert stops it
    "stop_if_inert",
)
# Options a resumed run may be given with other values than it started with: they change neither its weights nor
# what it records, only where it saves, what it prints and how it reads the cache. A longer --max-steps is not one
# of them: a run's learning-rate schedule (its cosine decay and a recipe's warm-up) is set by its length.
RESUME_FREE = ("save_every", "keep_checkpoints", "workers", "progress")
# Folders a resumed run may be given elsewhere, but only when the recorded one is gone (moved or renamed): a run
# is not pointed at other data while its own is still there.
RESUME_MOVABLE = {"data": "dataset folder", "cache": "cache folder", "sd": "Stable Diffusion model folder"}
# Options added after runs were first recorded, at the value the runs recorded without them used: such a run's
# config.json lacks the key, and it resumes as it started.
UNRECORDED = {"noise_draws": 1, "timesteps": "uniform"}
# Summary entries that time the run: in summary.json, not in fusion.safetensors's metadata, so that the same run
# (seed, options, data, threads) writes the same file byte for byte.
WALL_CLOCK_KEYS = ("train_seconds",)


def _folder_name(value: object) -> bool:
    return isinstance(value, str | Path) and str(value).strip() != ""


# What each option holds, in words and as a test: the ranges the command line's types check when parsing, for the
# Python API and for a run's config.json (checked as read, before its recipe fills anything: a null there is not the
# recipe's value). A recipe's warm-up is recorded as -1; max_timestep's upper end is the UNet scheduler's.
OPTION_FIELDS: dict[str, Field] = {
    "data": ("a dataset folder's path", _folder_name),
    "cache": or_null(("a cache folder's path", _folder_name), "DATA/cache"),
    "sd": or_null(("a miniSD repo id or folder", _folder_name), "the one the cache was made with"),
    "recipe": choice_field(RECIPES),
    "optimizer": choice_field(OPTIMIZERS),
    "lr": number_field(0.0, MAX_LR, low_open=True),
    "weight_decay": number_field(0.0),
    "warmup_steps": ("a whole number of at least 0, or -1 (a tenth of the run)", lambda v: is_whole(v) and v >= -1),
    "batch_size": whole_field(1),
    "noise_draws": whole_field(1, MAX_NOISE_DRAWS),
    "gate_init": number_field(0.0, MAX_GATE_INIT),
    "gate_lr_scale": number_field(0.0, low_open=True),
    "grad_accum": whole_field(1),
    "epochs": whole_field(1),
    "max_steps": or_null(whole_field(1), "as many as --epochs takes"),
    "max_timestep": or_null(whole_field(1), "the whole schedule"),
    "timesteps": choice_field(TIMESTEPS),
    "tokens": whole_field(1, MAX_TOKENS),
    "adapter_init": choice_field(ADAPTER_INITS),
    "mixed_precision": choice_field(MIXED_PRECISION),
    "save_every": whole_field(1),
    "keep_checkpoints": whole_field(0),
    "eval_every": whole_field(0),
    "eval_albums": whole_field(1),
    "stop_if_inert": FLAG,
    "seed": whole_field(0, MAX_SEED),
    "workers": whole_field(0),
}
# config.json also records the number of processes the run had (--resume needs the same)
RECORDED_FIELDS = OPTION_FIELDS | {"processes": whole_field(1)}


class TrainingDiverged(NoPainGanError):
    """The training loss, the weights after an update or a held-out evaluation became NaN or infinite (a learning
    rate far too high)."""


@dataclass
class TrainConfig:
    """Options of ``nopaingan train``. Those left at None come from the recipe (:data:`training.recipes.RECIPES`);
    ``warmup_steps`` -1 means a tenth of the run."""

    data: Path
    out: Path
    cache: Path | None = None  # default: data/cache
    sd: str | None = None  # default: the SD model the cache was made with
    recipe: str = "default"
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_steps: int | None = None
    batch_size: int | None = None
    noise_draws: int | None = None  # diffusion-loss draws (timestep, noise, latent) per album and step
    gate_init: float | None = None  # the fusion gate's starting value (0: closed, the untrained identity)
    gate_lr_scale: float | None = None  # the gate's learning rate is lr times this
    grad_accum: int = 1
    epochs: int = 1
    max_steps: int | None = None  # stop after this many optimizer steps (overrides epochs)
    max_timestep: int | None = None  # timesteps drawn from [0, max_timestep); recipe: the whole schedule (seed: 150)
    timesteps: str | None = None  # "uniform" (each draw its own) or "stratified" (stratified_timesteps)
    tokens: int = 16
    adapter_init: str | None = None  # recipe: "data", the adapter on whitened music features (seed: "random")
    mixed_precision: str = "no"
    save_every: int = SAVE_EVERY
    keep_checkpoints: int = 2
    eval_every: int = EVAL_EVERY  # held-out MSE against text only every N steps and at the end (0: never)
    eval_albums: int = 64
    stop_if_inert: bool = False  # stop when the music path stays inert (two evaluations in a row)
    seed: int = 0
    workers: int = 0
    resume: bool = False
    progress: bool = True

    def to_dict(self) -> dict:
        """The options as JSON values, folders as absolute paths (``config.json``: ``--resume RUN`` reads them from
        any working folder)."""
        return {k: str(v.absolute()) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class TrainResult:
    fusion: Path
    steps: int
    final_loss: float
    summary: dict = field(default_factory=dict)
    main_process: bool = True  # under `accelerate launch`, only the main process reports


class Conditioning(nn.Module):
    """The trainable part as one module (what DDP wraps): text + music features -> UNet conditioning."""

    def __init__(self, fusion: FusionModel) -> None:
        super().__init__()
        self.fusion = fusion

    def forward(self, text: torch.Tensor, music: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        if isinstance(music, list):  # clips of different lengths: the adapter pools each to its tokens
            tokens = torch.cat([self.fusion.adapter(m[None]) for m in music])
        else:
            tokens = self.fusion.adapter(music)
        return self.fusion.fusion(text, tokens)


def derived_seed(*parts: object) -> int:
    """A 63-bit seed from the run seed and a position (step, process, micro-batch, album...)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def draw_generators(seed: int, step: int, rank: int, micro: int, ids: list[str], draws: int) -> list[torch.Generator]:
    """The generators of one micro-batch's diffusion-loss draws, ``draws`` per album: all the albums' first draws,
    then all their second draws, ... (the order of ``cond.repeat(draws, 1, 1)``). An album's first draw is seeded
    as in a run of one draw, so ``draws`` 1 repeats such a run bit for bit."""
    return [
        torch.Generator().manual_seed(derived_seed(seed, step, rank, micro, i, *([d] if d else [])))
        for d in range(draws)
        for i in ids
    ]


def stratified_timesteps(
    seed: int,
    step: int,
    rank: int,
    micro: int,
    albums: int,
    draws: int,
    max_timestep: int,
    micro_batches: int = 1,
    processes: int = 1,
) -> torch.Tensor:
    """One micro-batch's timesteps ``[draws * albums]`` (int64, in the order of :func:`draw_generators`), the whole
    step's spread evenly over [0, ``max_timestep``): the low-discrepancy sampler of Kingma et al., "Variational
    Diffusion Models" (2021), section 4.4 and appendix I.2. A step has ``n = albums x micro_batches x processes``
    albums and ``k = n x draws`` draws; with one uniform offset ``u`` and a random permutation ``p`` of the step's
    albums (both seeded by the run's seed and the step, so every process agrees), the step's album ``a`` (process
    ``rank``'s micro-batch ``micro``, position ``i``: ``a = (rank x micro_batches + micro) x albums + i``) takes
    ``(u + (p[a] + d x n) / k) mod 1`` of the range for its draw ``d``. Each draw's timestep is uniform on its own,
    so the objective is the seed's, while the step's draws take one from each k-th of the range (across gradient
    accumulation and processes too) and an album's draws lie ``1 / draws`` of it apart."""
    gen = torch.Generator().manual_seed(derived_seed(seed, step, 0, 0, "timesteps"))
    step_albums = albums * micro_batches * processes
    offset = torch.rand((), generator=gen, dtype=torch.float64)
    order = torch.randperm(step_albums, generator=gen)
    first = (rank * micro_batches + micro) * albums
    strata = (order[first : first + albums][None] + step_albums * torch.arange(draws)[:, None]).reshape(-1)
    fraction = (offset + strata.double() / (step_albums * draws)) % 1.0
    return (fraction * max_timestep).long().clamp(max=max_timestep - 1)


def steps_per_epoch(albums: int, batch_size: int, grad_accum: int, processes: int) -> int:
    return math.ceil(albums / (batch_size * grad_accum * processes))


def step_batches(
    albums: int, batch_size: int, grad_accum: int, processes: int, rank: int, seed: int, start_step: int, total: int
) -> Iterator[list[int]]:
    """Album indices of this process's micro-batches from ``start_step`` to ``total``, ``grad_accum`` per step.

    Each epoch is a fresh permutation seeded by (seed, epoch), wrapped around to fill the last step, and
    dealt out step by step, process by process: a pure function of the step, so resuming needs no sampler
    state and every process agrees on the order.
    """
    per_step = batch_size * grad_accum * processes
    per_epoch = steps_per_epoch(albums, batch_size, grad_accum, processes)
    for step in range(start_step, total):
        epoch, within = divmod(step, per_epoch)
        order = torch.randperm(albums, generator=torch.Generator().manual_seed(derived_seed(seed, "epoch", epoch)))
        order = order.repeat(math.ceil(per_epoch * per_step / albums))
        chunk = order[within * per_step : (within + 1) * per_step]
        mine = chunk[rank * batch_size * grad_accum : (rank + 1) * batch_size * grad_accum]
        for j in range(grad_accum):
            yield mine[j * batch_size : (j + 1) * batch_size].tolist()


def fitted_batch_size(config: TrainConfig, albums: int, processes: int, from_recipe: bool) -> tuple[int, str | None]:
    """The batch size a run uses and, when it is not ``config.batch_size``, a note saying why.

    A step takes ``batch_size x grad_accum x processes`` albums from one permutation of the ``albums`` train albums
    (:func:`step_batches`), so a step of more than them repeats albums: within a micro-batch as exact copies (an
    album's draws are seeded by the step, process, micro-batch and album), counted twice in the loss. A recipe's
    batch is cut to fit, as its warm-up is cut to the run; a batch given explicitly, or a step that even a batch of
    1 would overfill, is refused (:class:`NoPainGanError`, naming the options, the value and the albums)."""
    batch, accum = config.batch_size, config.grad_accum
    fits = albums // (accum * processes)
    if batch <= fits:
        return batch, None
    albums_text = f"the {count_text(albums, 'train album')} of {config.data}"
    if from_recipe and fits >= 1:  # the note names no folder: it is recorded in the run's files, typed any way
        cut = f"the {config.recipe} recipe's {batch} is cut to {fits}"
        return fits, f"{cut}: a step of more than the {count_text(albums, 'train album')} repeats albums"
    factors = [f"--batch-size {batch}" + (f" (the {config.recipe} recipe's)" if from_recipe else "")]
    if accum > 1:
        factors.append(f"--grad-accum {accum}")
    if processes > 1:
        factors.append(f"{processes} processes")
    step = " x ".join(factors) + (f" = {batch * accum * processes} albums a step" if len(factors) > 1 else "")
    if fits >= 1:
        expected = f"expected --batch-size at most {fits}"
    else:
        expected = f"even --batch-size 1 repeats albums: expected --grad-accum x processes at most {albums}"
    raise NoPainGanError(f"{step}: more than {albums_text} (a step would repeat albums); {expected}")


class CachedDataset(torch.utils.data.Dataset):
    def __init__(self, reader: CacheReader, ids: list[str]) -> None:
        self.reader, self.ids = reader, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> CachedAlbum:
        return self.reader.load(self.ids[index])


def collate(items: list[CachedAlbum]) -> dict:
    """Stack a micro-batch; music clips of different lengths stay a list."""
    music = [item.music for item in items]
    same = all(m.shape == music[0].shape for m in music)
    return {
        "ids": [item.id for item in items],
        "items": items,
        "text": torch.stack([item.text for item in items]),
        "music": torch.stack(music) if same else music,
    }


def load_unet(source: str, device: torch.device, dtype: torch.dtype):
    """The frozen UNet and the repo's scheduler config (only what training needs of the SD model)."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    what, flag = "Stable Diffusion model", "--sd"
    unet = from_pretrained(UNet2DConditionModel, source, what, flag, subfolder="unet", torch_dtype=dtype)
    scheduler = from_pretrained(DDPMScheduler, source, what, flag, subfolder="scheduler")
    unet.to(device).eval().requires_grad_(False)
    return unet, scheduler


def diffusion_loss(
    unet,
    scheduler,
    conditioning: torch.Tensor,
    items: list[CachedAlbum],
    generators: list[torch.Generator],
    max_timestep: int,
    reduction: str = "mean",
    return_timesteps: bool = False,
    timesteps: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The seed's objective for a batch: noise a latent drawn from each cover's VAE distribution at a
    uniform timestep in [0, max_timestep) and compare the UNet's prediction with the noise (or velocity,
    for v-prediction models). Each album's draws come from its own generator (CPU, so any device agrees).
    With ``return_timesteps``, returns ``(loss, timesteps)``: the loss as without it and each album's drawn
    timestep (CPU, ``[len(items)]``), for measurements split by timestep. ``timesteps`` (``[len(items)]``, e.g.
    :func:`stratified_timesteps`) replaces the generators' timestep draws (the last of each album's draws, so the
    latents and noises are the same either way)."""
    latents, noise, drawn = [], [], []
    for item, gen in zip(items, generators, strict=True):
        latents.append(item.sample_latent(gen))
        noise.append(torch.randn(item.latent_mean.shape, generator=gen))
        if timesteps is None:
            drawn.append(torch.randint(0, max_timestep, (1,), generator=gen))
    device, dtype = conditioning.device, unet.dtype
    timesteps = torch.cat(drawn) if timesteps is None else timesteps
    latents, noise, steps = torch.stack(latents).to(device), torch.stack(noise).to(device), timesteps.to(device)
    noisy = scheduler.add_noise(latents, noise, steps)
    target = noise if scheduler.config.prediction_type == "epsilon" else scheduler.get_velocity(latents, noise, steps)
    pred = unet(noisy.to(dtype), steps, encoder_hidden_states=conditioning.to(dtype), return_dict=False)[0]
    loss = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    loss = loss.mean() if reduction == "mean" else loss
    return (loss, timesteps) if return_timesteps else loss


def train(config: TrainConfig, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Run (or with ``config.resume`` continue) a training run; returns the final fusion checkpoint.

    ``on_step(step, loss)`` is called after each optimizer step (tests use it to simulate a crash).
    """
    from accelerate import Accelerator
    from tqdm import tqdm
    from transformers import get_cosine_schedule_with_warmup

    recipe_warmup = config.warmup_steps is None  # a recipe's warm-up is cut to a shorter run, an explicit one refused
    recipe_batch = config.batch_size is None  # the same for a recipe's batch larger than the train albums
    config = resolve_recipe(config)
    _check_config(config)
    run = made_path(Path(config.out))  # a/x/../y is a/y, not a/x made and left beside it
    config = replace(config, out=run)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision, log_with="tensorboard", project_dir=str(run / "logs")
    )
    rank, processes = accelerator.process_index, accelerator.num_processes
    previous = checkpoints(run)
    reached = 0  # the step of a resumed run's last checkpoint
    if config.resume:
        reached = _check_resume(run, config, processes, previous)
    else:
        _check_new_run(run, previous)

    albums = read_dataset(config.data, TRAIN)
    if not albums:
        raise NoPainGanError(f"{config.data}: no albums in the train split")
    if config.stop_if_inert and not read_dataset(config.data, EVAL):
        raise NoPainGanError(
            f"--stop-if-inert needs the held-out evaluations, found no eval albums in {Path(config.data) / METADATA}"
        )
    reader = CacheReader(config.cache or Path(config.data) / CACHE_DIR)
    albums = reader.require(albums)
    evaluated = reader.require(read_dataset(config.data, EVAL)[: config.eval_albums]) if config.eval_every else []
    used = album_record(reader, albums, evaluated)
    if config.resume:
        _check_same_albums(run, used)
    ids = [album.id for album in albums]
    spec = reader.spec
    sd_source = config.sd or spec.sd
    # config.json keeps the recipe's batch, as its warm-up: --resume recomputes the cut from the same albums
    batch_size, batch_cut = fitted_batch_size(config, len(ids), processes, recipe_batch)
    per_epoch = steps_per_epoch(len(ids), batch_size, config.grad_accum, processes)
    total = config.max_steps or config.epochs * per_epoch
    if config.resume and _finished(run):
        raise NoPainGanError(
            f"{run}: already finished at step {reached} of {total} ({SUMMARY_FILE}); nothing to resume"
        )
    warm = warmup_steps(config.warmup_steps, total)
    schedule_text = f"cosine, {count_text(warm, 'warm-up step')}"
    if config.warmup_steps > total:
        if not recipe_warmup:
            raise NoPainGanError(
                f"--warmup-steps must be at most the run's {count_text(total, 'step')}, found {config.warmup_steps}"
            )
        schedule_text += (
            f" (the {config.recipe} recipe's {config.warmup_steps}, cut to the run's {count_text(total, 'step')})"
        )
    if config.stop_if_inert and not config.resume:  # a run recorded before this check resumes as it started
        check_can_stop_early(warm, total, config.eval_every)

    weight_dtype = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[config.mixed_precision]
    unet, scheduler = load_unet(sd_source, accelerator.device, weight_dtype)
    if unet.config.cross_attention_dim != 768:
        raise CheckpointError(f"{sd_source}: UNet cross-attention is {unet.config.cross_attention_dim}-d, expected 768")
    max_timestep = config.max_timestep or scheduler.config.num_train_timesteps
    if not 1 <= max_timestep <= scheduler.config.num_train_timesteps:
        raise NoPainGanError(
            f"--max-timestep must be between 1 and {scheduler.config.num_train_timesteps}, found {max_timestep}"
        )

    fusion = new_fusion(spec.encoder, tokens=config.tokens, seed=config.seed, gate=config.gate_init)
    if config.adapter_init == "data" and not config.resume:  # a checkpoint brings its weights
        order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(derived_seed(config.seed, "stats")))
        whiten_adapter_input(fusion, (reader.load(ids[i]).music for i in order[:STATS_ALBUMS].tolist()))
    model = Conditioning(fusion).to(accelerator.device)
    groups = param_groups(model, config.lr, config.weight_decay, config.gate_lr_scale)
    optimizer = (torch.optim.SGD if config.optimizer == "sgd" else torch.optim.AdamW)(groups, lr=config.lr)
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, warm, total)
    model, optimizer = accelerator.prepare(model, optimizer)

    start, history, eval_history, first_gradient, earlier_seconds = 0, [], [], {}, 0.0
    other_history = []  # [step, eval MSE with another album's music] of each evaluation (eval albums of two songs+)
    inert = stopped = False
    streak = 0  # evaluations in a row that found the music path inert
    if config.resume:
        trainer = load_checkpoint(previous[-1], fusion, optimizer, rank)
        lr_schedule.load_state_dict(trainer["lr_schedule"])
        if accelerator.scaler is not None and trainer.get("scaler"):
            accelerator.scaler.load_state_dict(trainer["scaler"])
        start, history, eval_history = trainer["step"], trainer["history"], trainer["eval_history"]
        other_history = trainer.get("other_music_history", [])  # a run of an earlier version measured none
        first_gradient = trainer.get("first_step_gradient_norm", {})
        earlier_seconds = trainer.get("train_seconds", 0.0)  # the parts of the run before this one
        streak, inert = trainer.get("inert_streak", 0), trainer.get("music_inert", False)  # the inert check's
        stopped = trainer.get("stopped_early", False)
        if stopped or start >= total:  # killed after its last checkpoint, before fusion.safetensors was written
            accelerator.print(f"finishing {run}: its last checkpoint ({previous[-1].name}) is its end; no step left")
        else:
            accelerator.print(f"resuming {run} from step {start} ({previous[-1].name})")
    elif accelerator.is_main_process:
        run.mkdir(parents=True, exist_ok=True)
        write_text(run / ALBUMS_FILE, json.dumps(used, indent=1))  # before config.json: a run with one has the other
        write_text(run / CONFIG_FILE, json.dumps(config.to_dict() | {"processes": processes}, indent=1))

    if batch_cut:  # only now that nothing refuses the run: a refused command prints its one error line alone
        accelerator.print(f"--batch-size: {batch_cut}")
    accelerator.init_trackers("train", config={k: v for k, v in config.to_dict().items() if v is not None})
    evaluation = [reader.load(album.id) for album in evaluated] if config.eval_every else None
    partners = other_music_partners([item.music for item in evaluation]) if evaluation else None
    text_only_loss = None
    if evaluation:
        text_only_loss = _eval_loss(evaluation, unet, scheduler, accelerator, None, max_timestep, config.seed)
        accelerator.print(f"eval MSE with text only (the baseline the music must beat): {text_only_loss:.5f}")
        if partners is None:
            accelerator.print(
                f"{config.data}: {'every eval album has the same music' if len(evaluation) > 1 else 'one eval album'}"
                ", so no held-out MSE with another album's music (the baseline that tells music from a shift)"
            )
    elif config.eval_every:
        accelerator.print(f"{config.data}: no eval albums, so no held-out MSE while training (--eval-every)")
    inert_from = inert_check_start(warm, total)
    end = start if stopped else total  # a run --stop-if-inert stopped, killed before its final save, has no step left
    batches = step_batches(len(ids), batch_size, config.grad_accum, processes, rank, config.seed, start, end)
    loader = torch.utils.data.DataLoader(
        CachedDataset(reader, ids), batch_sampler=list(batches), num_workers=config.workers, collate_fn=collate
    )
    micro = iter(loader)

    def trainer_state(step: int) -> dict:
        return {
            "step": step,
            "lr_schedule": lr_schedule.state_dict(),
            "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
            "history": history,
            "eval_history": eval_history,
            "other_music_history": other_history,
            "first_step_gradient_norm": first_gradient,
            "train_seconds": earlier_seconds + time.monotonic() - began,
            "inert_streak": streak,
            "music_inert": inert,
            "stopped_early": stopped,  # a run stopped by --stop-if-inert has ended: --resume refuses it
        }

    def checkpoint(step: int) -> None:
        fusion.training_summary = {"checkpoint_step": step, "total_steps": total, "optimizer": config.optimizer}
        save_checkpoint(
            run, step, fusion, optimizer, trainer_state(step), rank, accelerator.is_main_process,
            accelerator.wait_for_everyone,
        )  # fmt: skip
        if accelerator.is_main_process:
            prune_checkpoints(run, config.keep_checkpoints)
            write_loss_curve(run, history, eval_history, other_history)

    began = time.monotonic()
    bar = tqdm(
        total=total,
        initial=start,
        desc="training",
        unit="step",
        disable=not (config.progress and accelerator.is_main_process),
    )
    model.train()
    done = start
    if done == end and accelerator.is_main_process:  # what the last checkpoint's save did not get to
        prune_checkpoints(run, config.keep_checkpoints)
        write_loss_curve(run, history, eval_history, other_history)
    for step in range(start, end):
        step_loss = torch.zeros((), device=accelerator.device)
        for j in range(config.grad_accum):
            batch = next(micro)
            gens = draw_generators(config.seed, step, rank, j, batch["ids"], config.noise_draws)
            drawn = None
            if config.timesteps == "stratified":
                count = len(batch["ids"])
                drawn = stratified_timesteps(
                    config.seed, step, rank, j, count, config.noise_draws, max_timestep, config.grad_accum, processes
                )
            last = j == config.grad_accum - 1
            with contextlib.nullcontext() if last else accelerator.no_sync(model):  # sync gradients once a step
                with accelerator.autocast():
                    cond = model(batch["text"].to(accelerator.device), _to(batch["music"], accelerator.device))
                    cond, items = cond.repeat(config.noise_draws, 1, 1), batch["items"] * config.noise_draws
                    loss = diffusion_loss(unet, scheduler, cond, items, gens, max_timestep, timesteps=drawn)
                accelerator.backward(loss / config.grad_accum)
            step_loss += loss.detach() / config.grad_accum
        if step == 0:  # what the gate lets through at the start (docs/training.md, "Recipes")
            gate_grad = accelerator.unwrap_model(model).fusion.fusion.gate.grad
            first_gradient = {
                "gate": gate_grad.norm().item() if gate_grad is not None else 0.0,
                "rest": non_gate_gradient_norm(model),
            }
        lr = lr_schedule.get_last_lr()[0]  # the rate of this step's update (the schedule then moves on)
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad(set_to_none=True)
        value = accelerator.reduce(step_loss, "mean").item()
        if not math.isfinite(value):
            raise _diverged(run, config, step + 1, f"loss {value}")
        if bad := non_finite_tensors(fusion):
            raise _diverged(run, config, step + 1, f"weight {bad[0]} not finite after the update")
        history.append([step + 1, value, lr])
        accelerator.log({"train/loss": value, "train/lr": lr}, step=step + 1)
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")
        done = step + 1
        if evaluation and (done % config.eval_every == 0 or done == total):
            eval_loss = _eval_loss(evaluation, unet, scheduler, accelerator, model, max_timestep, config.seed)
            if not math.isfinite(eval_loss):
                raise _diverged(run, config, done, f"eval MSE {eval_loss}")
            gate = gate_opening(fusion)
            gap = (eval_loss - text_only_loss) / text_only_loss
            eval_history.append([done, eval_loss, text_only_loss, gate])
            other_loss = other_gap = None
            if partners:  # each album with another album's music: what no album's own music gives
                other_loss = _eval_loss(
                    evaluation, unet, scheduler, accelerator, model, max_timestep, config.seed, partners
                )
                other_gap = (eval_loss - other_loss) / other_loss
                other_history.append([done, other_loss])
            logged = {"eval/loss": eval_loss, "eval/vs_text_only": gap, "train/gate": gate}
            if other_gap is not None:
                logged["eval/vs_other_music"] = other_gap
            accelerator.log(logged, step=done)
            report = f"step {done}: eval MSE {eval_loss:.5f}, text only {text_only_loss:.5f} ({change_text(gap)})"
            if other_loss is not None:
                report += f", another album's music {other_loss:.5f} ({change_text(other_gap)})"
            if accelerator.is_main_process:
                tqdm.write(f"{report}, gate {gate:.4f}")
            moved = gate_change(fusion, config.gate_init)
            found_inert = is_inert(eval_loss, text_only_loss, moved, other_loss)
            streak = streak + 1 if done >= inert_from and found_inert else 0
            inert = stays_inert(streak, done == total)
            if inert:  # a run inert at its last step ends there anyway: it did not stop early
                stopped = config.stop_if_inert and done < total
                _warn_inert(accelerator, done, gap, other_gap, gate, stopped, done == total)
        if on_step is not None:
            on_step(done, value)
        if done % config.save_every == 0 or done == total or stopped:
            checkpoint(done)
        if stopped:
            break
    bar.close()

    recent = [loss for _, loss, _ in history[-min(50, len(history)) :]]
    summary = {
        "steps": done,
        "epochs": round(done / per_epoch, 3),
        "recipe": config.recipe,
        "optimizer": config.optimizer,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "lr_schedule": schedule_text,
        "gate_init": config.gate_init,
        "gate_lr_scale": config.gate_lr_scale,
        "gate": round(gate_opening(fusion), 6),
        "batch_size": batch_size,
        "noise_draws": config.noise_draws,
        "grad_accum": config.grad_accum,
        "processes": processes,
        "effective_batch": batch_size * config.grad_accum * processes,
        "max_timestep": max_timestep,
        "timesteps": config.timesteps,
        "adapter_init": config.adapter_init,
        "mixed_precision": config.mixed_precision,
        "seed": config.seed,
        "train_albums": len(ids),
        "final_loss": round(sum(recent) / len(recent), 6),
        "sd": sd_source,
        "train_seconds": round(earlier_seconds + time.monotonic() - began, 1),  # every part of a resumed run
    }
    if batch_cut:
        summary["batch_size_cut"] = batch_cut
    if first_gradient:
        summary["first_step_gradient_norm"] = first_gradient
    if eval_history:
        summary["eval_loss"] = round(eval_history[-1][1], 6)
        summary["eval_loss_text_only"] = round(text_only_loss, 6)
        summary["eval_vs_text_only"] = round((eval_history[-1][1] - text_only_loss) / text_only_loss, 6)
        if other_history and other_history[-1][0] == eval_history[-1][0]:
            summary["eval_loss_other_music"] = round(other_history[-1][1], 6)
            summary["eval_vs_other_music"] = round(
                (eval_history[-1][1] - other_history[-1][1]) / other_history[-1][1], 6
            )
        summary["music_inert"] = inert if done >= inert_from else None  # None: too short to judge
    if stopped:
        summary["stopped_early"] = f"music path inert at step {done} of {total} (--stop-if-inert)"
    path = run / FUSION_FILE
    if accelerator.is_main_process:
        # the weight file holds what the run is, not how long it took: the same run gives the same bytes
        fusion.training_summary = {k: v for k, v in summary.items() if k not in WALL_CLOCK_KEYS}
        save_fusion(fusion, path)
        write_text(run / SUMMARY_FILE, json.dumps(summary, indent=1))
    accelerator.end_training()
    return TrainResult(path, done, summary["final_loss"], summary, accelerator.is_main_process)


def _to(music: torch.Tensor | list[torch.Tensor], device: torch.device) -> torch.Tensor | list[torch.Tensor]:
    return [m.to(device) for m in music] if isinstance(music, list) else music.to(device)


def _check_config(config: TrainConfig) -> None:
    """Refuse options no command line gives (the Python API's; a hand-edited config.json's, which
    :func:`resumed_config` names first) in one line: each against :data:`OPTION_FIELDS`, then together."""
    for name, (what, test) in OPTION_FIELDS.items():
        if not test(value := getattr(config, name)):
            raise NoPainGanError(f"--{name.replace('_', '-')} must be {what}, found {value!r}")
    if not math.isfinite(config.lr * config.gate_lr_scale) or config.lr * config.gate_lr_scale > MAX_LR:
        raise NoPainGanError(
            f"--lr x --gate-lr-scale (the gate's learning rate) must be at most {MAX_LR:g}, "
            f"found {config.lr:g} x {config.gate_lr_scale:g}"
        )
    if config.stop_if_inert and not config.eval_every:
        raise NoPainGanError("--stop-if-inert needs the held-out evaluations, found --eval-every 0")


def _check_new_run(run: Path, previous: list[Path]) -> None:
    """Refuse an ``--out`` that holds a finished run's product, an earlier run's checkpoints or files a run does
    not write (:data:`RUN_FILES`): a new run would replace or mix with them."""
    for name in (FUSION_FILE, SUMMARY_FILE):
        if (run / name).exists():
            raise NoPainGanError(f"--out {run} holds a finished run's {name}; use another --out")
    if previous:
        raise NoPainGanError(
            f"{run}: has checkpoints of an earlier run; pass --resume to continue it or use another --out"
        )
    names = sorted(p.name for p in run.iterdir()) if run.is_dir() else []
    foreign = [name for name in names if name not in RUN_FILES and not REPORT_DIR.match(name)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise NoPainGanError(f"--out {run}: expected a new or empty folder for the run, found other files ({shown})")


def _finished(run: Path) -> bool:
    """Whether ``run`` has finished: ``summary.json`` is the last file a run writes, after ``fusion.safetensors``,
    so a run killed after its last checkpoint and before it (even between the two) has not, and ``--resume``
    finishes it, writing ``fusion.safetensors`` again (the same bytes) and then ``summary.json``."""
    return (run / SUMMARY_FILE).exists()


def _read_summary(run: Path) -> dict:
    """The run's :data:`SUMMARY_FILE` ({} when it has none); :class:`NoPainGanError` naming it when it is not the JSON
    object a run writes (cut short by a full disk, edited by hand)."""
    path = run / SUMMARY_FILE
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        summary = None
    if not isinstance(summary, dict):
        raise NoPainGanError(
            f"{path}: expected the summary a finished run writes (a JSON object), found other text; "
            "remove it and run --resume again to write it anew"
        )
    return summary


def _check_resume(run: Path, config: TrainConfig, processes: int, previous: list[Path]) -> int:
    """Refuse to continue a run that has no checkpoint, one that ``--stop-if-inert`` ended (and saved), or with
    options that would make it a different run; returns the step of its last checkpoint."""
    _check_resumable(run, previous)
    path = run / CONFIG_FILE
    last = read_trainer(previous[-1])
    # checkpoints of earlier versions do not record it; the run's summary does
    stopped = last.get("stopped_early") or "stopped_early" in _read_summary(run)
    if stopped and _finished(run):  # killed before its final save, it is finished by --resume (no step left)
        raise NoPainGanError(
            f"{run}: stopped early at step {last['step']} (--stop-if-inert); nothing to resume; "
            "start a new run in another --out"
        )
    saved = UNRECORDED | json.loads(path.read_text())
    current = config.to_dict() | {"processes": processes}
    changed = [
        f"--{k.replace('_', '-')}: recorded {_option_text(saved.get(k), k)}, given {_option_text(current[k], k)}"
        for k in (*RESUME_KEYS, "processes")
        if saved.get(k) != current[k]
    ]
    if changed:
        raise NoPainGanError(f"{run}: --resume needs the run's options; changed: {'; '.join(changed)}")
    return last["step"]


def _check_resumable(run: Path, previous: list[Path]) -> None:
    """Refuse ``--resume`` of a folder with no run's options (:data:`CONFIG_FILE`) or no checkpoint (``previous``)."""
    _check_run_link(run)
    if run.is_file():
        folder = f" (its folder {run.parent})" if run.name in RUN_FILES else ""
        raise NoPainGanError(f"--resume {run}: expected a run folder{folder}, found a file")
    if not run.exists():
        raise NoPainGanError(f"--resume {run}: no such run folder; start the run without --resume")
    if not (run / CONFIG_FILE).is_file():
        raise NoPainGanError(f"{run}: nothing to resume (no {CONFIG_FILE}); start the run without --resume")
    if not previous:
        raise NoPainGanError(f"{run}: nothing to resume (no checkpoint); start the run without --resume")


def _check_run_link(run: Path) -> None:
    """Refuse ``--resume`` of a run folder named through a symbolic link to a missing target, in one line naming
    the link (it would otherwise be "no such run folder", or a traceback where the run's files are made)."""
    link = dangling_link(run)
    if link is not None:
        where = "" if link == run else " on its path"
        raise NoPainGanError(f"--resume {run}: expected a run folder, found {link_text(link)}{where}")


def album_record(reader: CacheReader, train: list[Album], evaluated: list[Album]) -> dict[str, list[list[str]]]:
    """What a run trains and evaluates on (:data:`ALBUMS_FILE`): each split's albums in the order the run uses them,
    as ``[id, cache fingerprint]`` pairs (the fingerprint changes with an album's prompt, cover or audio file)."""
    return {
        split: [[album.id, reader.entries[album.id][1]["fingerprint"]] for album in albums]
        for split, albums in (("train", train), ("eval", evaluated))
    }


def _recorded_albums(run: Path) -> dict[str, list[tuple[str, str]]] | None:
    """The albums the run in ``run`` trains and evaluates on (its :data:`ALBUMS_FILE`: each split's ``(id,
    fingerprint)`` pairs), None for a run recorded before that file; :class:`NoPainGanError` for a file that does not
    hold them."""
    path = run / ALBUMS_FILE
    if not path.is_file():
        return None
    try:
        recorded = json.loads(path.read_text())
        return {split: [(str(i), str(f)) for i, f in recorded[split]] for split in (TRAIN, EVAL)}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        raise NoPainGanError(
            f"{path}: expected the albums the run started with (JSON: train and eval lists), found other text"
        ) from None


def _check_same_albums(run: Path, used: dict[str, list[list[str]]]) -> None:
    """Refuse to continue a run on other albums than it started with (its :data:`ALBUMS_FILE`), in one line saying
    how many of each split were added, removed or changed; a run recorded before that file resumes as before."""
    recorded = _recorded_albums(run)
    if recorded is None:
        return
    path = run / ALBUMS_FILE
    changes = []
    for split, pairs in used.items():
        before, now = dict(recorded[split]), {i: f for i, f in pairs}
        counts = {
            "added": len(now.keys() - before.keys()),
            "removed": len(before.keys() - now.keys()),
            "changed": sum(before[i] != now[i] for i in before.keys() & now.keys()),
        }
        text = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
        if not text and list(before) != list(now):
            text = "the same albums in another order"
        if text:
            changes.append(f"{split} albums: {text}")
    if changes:
        raise NoPainGanError(
            f"{run}: --resume continues the run on the albums it started with ({path}), but the dataset and its "
            f"cache now give others ({'; '.join(changes)}); the run would not reach the same weights: start a new "
            "run in another --out"
        )


def resumed_config(run: Path, given: dict[str, object]) -> TrainConfig:
    """The options to continue the run in ``run`` with (``--resume RUN``): those its ``config.json`` recorded, with
    ``given`` (the :class:`TrainConfig` fields a command line gave, even at their default values) checked against
    them. Only the :data:`RESUME_FREE` ones may differ, and the :data:`RESUME_MOVABLE` folders where the recorded
    one is gone; any other with another value is refused in one line naming each such option, the recorded value
    and the given one (:class:`NoPainGanError`), and so is a recorded folder that is gone and not given anew.

    An option given at the run's own value (the recorded one, or the batch or warm-up its recipe's was cut to,
    :func:`_trained_schedule`) is taken as not given, and a recorded recipe option equal to its recipe's value counts
    as the recipe's again, so that the run cuts a recipe's warm-up or batch to its length and albums as it did
    (:func:`fitted_batch_size`). ``run`` is named as the run's ``--out`` was (:func:`made_path`: ``a/x/../y`` with no
    ``a/x`` is ``a/y``, where the run wrote)."""
    _check_run_link(Path(run))  # before made_path, which would go past a dangling link in link/../y
    run = made_path(Path(run))
    _check_resumable(run, checkpoints(run))
    path = run / CONFIG_FILE
    try:
        saved = parse_json(path.read_text(), str(path))  # a field written twice (hand-edited) is refused
    except DuplicateFieldError:
        raise
    except (DatasetError, UnicodeDecodeError):
        saved = None
    if not isinstance(saved, dict) or "data" not in saved:
        raise NoPainGanError(f"{path}: expected the options the run started with (a JSON object), found other text")
    problem = field_problem(saved, RECORDED_FIELDS)  # a key an earlier version did not record is not there
    if problem:
        raise NoPainGanError(f"{path}: {problem}")
    names = [f.name for f in fields(TrainConfig) if f.name not in ("out", "resume")]
    recorded = UNRECORDED | {k: v for k, v in saved.items() if k in names}
    for name in ("data", "cache"):
        recorded[name] = None if recorded.get(name) is None else Path(recorded[name])
    # the run's own values: the recorded ones, and the batch and warm-up it trains with where its recipe's was cut
    trained = {}
    if {"batch_size", "warmup_steps"} & given.keys():
        trained = _trained_schedule(run, recorded, saved.get("processes", 1))
    trained = {name: value for name, value in trained.items() if value != recorded.get(name)}
    cut = {  # a tenth of the run is that many steps, not a cut
        name: f" ({count_text(value, 'step')})" if recorded.get(name) == -1 else f" (cut to {value})"
        for name, value in trained.items()
    }
    given = {
        name: value
        for name, value in given.items()
        if not (_same_option(recorded.get(name), value) or (name in trained and value == trained[name]))
    }
    changed = [
        f"--{name.replace('_', '-')}: recorded {_option_text(recorded.get(name), name)}{cut.get(name, '')}, "
        f"given {_option_text(given[name], name)}"
        for name in names  # in the options' order, whatever the command line's
        if name in given and name not in RESUME_FREE and not (name in RESUME_MOVABLE and _gone(recorded.get(name)))
    ]
    if changed:
        free = ", ".join(f"--{name.replace('_', '-')}" for name in RESUME_FREE if name != "progress")
        raise NoPainGanError(
            f"{run}: --resume continues the run with the options it started with ({path}); "
            f"{'; '.join(changed)} (only {free} and --quiet may change; --data, --cache and --sd only where the "
            "recorded folder is gone)"
        )
    gone = [
        f"the {what} the run started with, {recorded[name]}, is gone; pass --{name} NEW to name its new place"
        for name, what in RESUME_MOVABLE.items()
        if name not in given and _gone(recorded.get(name))
    ]
    if gone:
        raise NoPainGanError(f"{run}: {'; '.join(gone)}")
    config = TrainConfig(**(recorded | given | {"out": run, "resume": True}))
    filled = resolve_recipe(replace(config, **dict.fromkeys(RECIPE_KEYS)))
    unset = [k for k in RECIPE_KEYS if getattr(filled, k) == getattr(config, k)]
    return replace(config, **dict.fromkeys(unset))


def _trained_schedule(run: Path, recorded: dict[str, object], processes: int) -> dict[str, int]:
    """The batch and warm-up steps the run in ``run`` trains with: its recorded (its recipe's) batch cut to the
    train albums its :data:`ALBUMS_FILE` holds (:func:`fitted_batch_size`) and its recorded warm-up cut to its steps,
    or a tenth of them (:func:`warmup_steps`), as the run says and summary.json records while config.json keeps the
    recipe's; {} for a run recorded before that file (its albums, and so its steps, are not known before its
    dataset is read)."""
    albums = _recorded_albums(run)
    if albums is None:
        return {}
    config = resolve_recipe(TrainConfig(**(recorded | {"out": run})))  # an option not recorded is the recipe's
    count = len(albums[TRAIN])
    batch = fitted_batch_size(config, count, processes, from_recipe=True)[0]
    total = config.max_steps or config.epochs * steps_per_epoch(count, batch, config.grad_accum, processes)
    return {"batch_size": batch, "warmup_steps": warmup_steps(config.warmup_steps, total)}


def _same_option(recorded: object, given: object) -> bool:
    """Whether an option's value is the one recorded: folders the same wherever they were named from."""
    if isinstance(given, Path) and recorded is not None:
        return Path(recorded).resolve() == given.resolve()
    return recorded == given


def _gone(recorded: object) -> bool:
    """Whether a recorded folder option is an absolute path that no longer exists (a hub id never is gone)."""
    return isinstance(recorded, (str, Path)) and Path(recorded).is_absolute() and not Path(recorded).exists()


def _option_text(value: object, name: str = "") -> str:
    """Option ``name``'s value in a message: on and off for a flag, none when unset, the warm-up's -1 in words."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if name == "warmup_steps" and value == -1:
        return NONE_TEXT["warmup_steps"]
    return "none" if value is None else str(value)


@torch.no_grad()
def _eval_loss(
    items, unet, scheduler, accelerator, model, max_timestep: int, seed: int, music_of: list[int] | None = None
) -> float:
    """Mean diffusion MSE on fixed eval albums, noise and timesteps (the same at every evaluation); with
    ``model`` None, of the text conditioning alone (the text-only baseline, on the same draws). With
    ``music_of`` (:func:`~training.recipes.other_music_partners`), album ``i`` gets album ``music_of[i]``'s music,
    on the same draws: the baseline of music that is not the album's own."""
    if model is not None:
        model.eval()
    total = 0.0
    for index, item in enumerate(items):
        gen = torch.Generator().manual_seed(derived_seed(seed, "eval", item.id))
        text = item.text[None].to(accelerator.device)
        music = items[index if music_of is None else music_of[index]].music
        with accelerator.autocast():
            cond = text if model is None else model(text, music[None].to(accelerator.device))
            total += diffusion_loss(unet, scheduler, cond, [item], [gen], max_timestep).item()
    if model is not None:
        model.train()
    return total / max(1, len(items))


def _diverged(run: Path, config: TrainConfig, step: int, what: str) -> TrainingDiverged:
    """The one-line error of a run that diverged at ``step`` (``what``: the value that was not finite), naming the
    last checkpoint, which is intact since only finite weights are ever saved, or saying there is none."""
    intact = checkpoints(run)
    if intact:
        kept = f"the last intact checkpoint is {intact[-1]} (step {int(STEP_DIR.match(intact[-1].name)[1])})"
    else:
        kept = "no checkpoint was saved before it (nothing to resume)"
    return TrainingDiverged(
        f"training diverged at step {step} ({what}); nothing of this step was saved and {kept}; "
        f"start again in another --out with a lower --lr (now {config.lr:g}) or --gate-lr-scale "
        f"(now {config.gate_lr_scale:g})"
    )


def _warn_inert(
    accelerator, step: int, gap: float, other_gap: float | None, gate: float, stopping: bool, last: bool
) -> None:
    """A loud warning (stderr, every process's main one) that the music path has learnt nothing so far: neither
    against text only nor against another album's music (``other_gap``, None without eval albums of two songs)."""
    from tqdm import tqdm

    if not accelerator.is_main_process:
        return
    if last:
        what = "the run ends here"
    else:
        what = "stopping (--stop-if-inert)" if stopping else "continuing; --stop-if-inert stops such runs"
    changes = f"held-out MSE {change_text(gap, 2)} vs text only"
    if other_gap is not None:
        changes += f", {change_text(other_gap, 2)} vs another album's music"
    tqdm.write(  # on its own line below the progress bar, not glued to its end
        f"WARNING: the music path is inert at step {step}: {changes}, gate {gate:.4f}; the fusion is not learning "
        f"from the music (see docs/training.md, 'Inert runs'); {what}",
        file=sys.stderr,
    )


def write_loss_curve(run: Path, history: list, eval_history: list, other_history: list = ()) -> None:
    """``loss.csv`` (training loss and learning rate per step), ``eval.csv`` once there is a held-out evaluation
    (``--eval-every``; each one's eval MSE with the music, with text only, the relative change, the gate's
    opening, and with another album's music (``other_history``; empty for a run of one eval album, or the steps an
    earlier version evaluated) and the change against it) and ``loss.png`` drawing both. Rewritten whole from the
    histories, which a checkpoint holds, so a resumed run's files continue the interrupted run's without repeating
    or losing a row."""
    lines = ["step,loss,lr"] + [f"{s},{loss:.6g},{lr:.6g}" for s, loss, lr in history]
    write_text(run / "loss.csv", "\n".join(lines) + "\n")
    if eval_history:
        other = dict(map(tuple, other_history))
        rows = []
        for s, music, text, gate in eval_history:
            row = f"{s},{music:.6g},{text:.6g},{(music - text) / text:.6g},{gate:.6g}"
            rows.append(row + (f",{other[s]:.6g},{(music - other[s]) / other[s]:.6g}" if s in other else ",,"))
        header = "step,eval_mse,text_only_mse,relative_change,gate,other_music_mse,relative_change_vs_other_music"
        write_text(run / "eval.csv", "\n".join([header, *rows]) + "\n")
    fig = loss_figure(history, eval_history, other_history)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    write_bytes(run / "loss.png", buffer.getvalue())


def loss_figure(history: list, eval_history: list, other_history: list = ()) -> Figure:
    """The figure of ``loss.png``: training loss per step and its running mean, and with ``--eval-every`` the
    held-out MSE with the music beside the text-only MSE and the MSE with another album's music it must beat. A
    bare Figure, outside pyplot's state."""
    from matplotlib.figure import Figure

    steps = [h[0] for h in history]
    losses = [h[1] for h in history]
    window = max(1, len(losses) // 50)
    sums = [0.0, *itertools.accumulate(losses)]
    smooth = [(sums[i + 1] - sums[max(0, i + 1 - window)]) / min(i + 1, window) for i in range(len(losses))]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(steps, losses, alpha=0.3, label="train loss")
    ax.plot(steps, smooth, label=f"train loss (mean of {window})")
    if eval_history:
        evaluated = [e[0] for e in eval_history]
        ax.plot(evaluated, [e[1] for e in eval_history], "o-", label="eval MSE, music")
        ax.plot(evaluated, [e[2] for e in eval_history], "s--", label="eval MSE, text only")
    if other_history:
        ax.plot([o[0] for o in other_history], [o[1] for o in other_history], "^:", label="eval MSE, another's music")
    ax.set_xlabel("step")
    ax.set_ylabel("diffusion MSE")
    ax.legend()
    fig.tight_layout()
    return fig
