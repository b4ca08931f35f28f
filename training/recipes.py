"""Training recipes of ``nopaingan train``: named optimizer settings, and the checks that tell a run whose
music path stays inert.

``default`` learns within a few hundred steps on the learnability benchmark (BENCHMARKS.md); ``seed`` is the
seed's own hyperparameters (its write-up, "Training and Evaluation": SGD, lr 1e-4, cosine with 500 warm-up steps,
batch 1, maximum timesteps 150; its adapter is plain layers, so PyTorch's own initialisation), kept to reproduce
it. One difference from the seed cannot be set by a recipe: the seed's fusion output conditions the UNet
directly, while this project's fusion adds it to the text through a gate (so that an untrained fusion is the
exact identity); the seed recipe starts that gate closed. Any option given explicitly (``--optimizer``,
``--lr``, ``--max-timestep``, ...) overrides the recipe's value.

Why the seed's recipe starves the fusion: the fusion adds ``tanh(gate) * hidden`` to the text, and the gate
starts at zero, so the gradient of every parameter other than the gate is multiplied by ``tanh(gate)`` and is
exactly zero at the first step. Under SGD the gate itself moves by ``lr * dL/dgate`` a step (about 1e-4 times a
small gradient), and the other parameters' updates are that small number times their own gradient: the music
path's learning speed grows with the product of two small numbers. AdamW divides each update by the gradient's
running scale, so the gate moves by about ``lr`` a step from the second step on and the other parameters get
full-size updates as soon as the gate is non-zero. The default recipe starts the gate half open
(``gate_init`` 0.5, ``tanh`` 0.46), so every parameter has a gradient at step 0 and the fusion reaches a given
change of the conditioning with small weights. A nearly closed gate (0.05) makes the rest of the fusion grow ten
times larger for the same change, and what comes with those larger weights disturbs the UNet at low noise
levels (timesteps below 250), where the colour named in a prompt helps: on the learnability benchmark the 0.5
start ends 2.7 +/- 0.2 points of the text-only MSE below the 0.05 one (BENCHMARKS.md, "How open the gate
starts"). The gate keeps a larger learning rate (``gate_lr_scale``) without weight decay. The open gate makes an
update move the output about nine times as much as at 0.05, so the learning rate was halved to 7.5e-5 for
that gate (measured in the same section). The untrained-fusion identity of the product (gate 0) is untouched:
:func:`nopaingan_core.checkpoint.new_fusion` still starts closed outside training.

Why two noise draws per album (``noise_draws``): one album's diffusion loss at one random timestep and noise is a
very noisy estimate of its expected loss, and a default run of 300 steps was still gaining from more samples: on
the learnability benchmark (default encoder, two draws of its data) it reached 87 % and 84 % of what naming the
colour in the prompt gives, 95 % with 600 steps, 91 % with a batch of 16 albums, and 91 % and 91 % with the same 8
albums drawn twice (BENCHMARKS.md, "Two noise draws per album"). Drawing twice costs a second UNet pass per album
but no more albums, so a run over the same data learns more; with the gradient's noise halved, the learning rate
rises by the square root of two (Adam's square-root scaling with the batch): 1.1e-4, measured against 7.5e-5 and
1.5e-4 (95 % and 91 % against 91 / 91 % and 93 / 92 %).

Why stratified timesteps (``timesteps``): a step's 16 draws (8 albums, two draws each) each drew their own uniform
timestep, so some steps had several near 0 and none above 750, and the loss, whose size depends strongly on the
timestep, swung from step to step with the draw. The default recipe spreads a step's draws one to each sixteenth of
the range, turned by one random offset (the low-discrepancy sampler of Kingma et al., "Variational Diffusion
Models", 2021; :func:`training.train.stratified_timesteps`): each draw is still uniform on its own, so the
objective is the seed's, but the step's gradient varies less. Paired against independent timesteps on two draws of
the learnability benchmark at two training seeds each, it lowered the held-out MSE by 1.31, 0.03, 0.90 and 1.60
points of the text-only MSE (+/- 0.2 each; BENCHMARKS.md, "Stratified timesteps"), most of it at the lowest noise
levels, where the default run was still short of the colour prompt.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nopaingan_core.errors import NoPainGanError

from .errors import count_text

# A run whose music path changes the held-out diffusion MSE by less than INERT_GAP (relative to text only)
# while its gate has moved by less than INERT_GATE (mean |tanh|) since the start is inert: it learnt nothing; so is
# one whose albums' own music lowers the MSE by less than INERT_GAP against another album's (:func:`is_inert`).
INERT_GAP = 0.005
INERT_GATE = 0.02
# A run *stays* inert when INERT_EVALUATIONS evaluations in a row find it inert (or its last one does): a 300-step
# learnability run (codified-lm, 32 music tokens) was inert at its step-100 evaluation (MSE +0.3 %, gate moved
# 0.007) and learnt from there (-5.2 % at step 200; BENCHMARKS.md), so one inert evaluation must not stop a run.
INERT_EVALUATIONS = 2
# No run is judged before it could have learnt: a smoke run of a few steps has learnt nothing yet, and the default
# gate, starting at 0.5, has barely moved, so its evaluations would read as inert. With the default recipe the
# learnability benchmark's runs change the held-out MSE visibly by step 100 (BENCHMARKS.md, "change at steps
# 100 / 200 / 300": -3.1 to -17.1 % of text only at step 100 with each encoder; the current default with CLAP:
# -12.4 %), so the check starts there.
INERT_MIN_STEPS = 100


@dataclass(frozen=True)
class Recipe:
    """Optimizer settings of one recipe; ``warmup_steps`` None means a tenth of the run."""

    optimizer: str
    lr: float
    weight_decay: float
    warmup_steps: int | None
    batch_size: int
    noise_draws: int  # diffusion-loss draws (timestep, noise, latent) per album and step
    gate_init: float
    gate_lr_scale: float
    max_timestep: int | None  # timesteps drawn from [0, max_timestep); None: the whole schedule
    timesteps: str  # "uniform" (each draw its own) or "stratified" (training.train.stratified_timesteps)
    adapter_init: str  # "data" (whitened music features, training/adapter_init.py) or "random"


RECIPES = {
    "default": Recipe(
        optimizer="adamw",
        lr=1.1e-4,
        weight_decay=0.0,
        warmup_steps=None,
        batch_size=8,
        noise_draws=2,
        gate_init=0.5,
        gate_lr_scale=10.0,
        max_timestep=None,
        timesteps="stratified",
        adapter_init="data",
    ),
    "seed": Recipe(
        optimizer="sgd",
        lr=1e-4,
        weight_decay=0.0,
        warmup_steps=500,
        batch_size=1,
        noise_draws=1,
        gate_init=0.0,
        gate_lr_scale=1.0,
        max_timestep=150,
        timesteps="uniform",
        adapter_init="random",
    ),
}
RECIPE_KEYS = tuple(f.name for f in dataclasses.fields(Recipe))
# what a recipe's None means, in words (a resolved run config holds -1 for the warm-up's)
NONE_TEXT = {"warmup_steps": "a tenth of the run", "max_timestep": "the whole schedule"}


def recipes_default(key: str) -> str:
    """The help's note of an option each recipe sets, from :data:`RECIPES`: ``(default: 8; --recipe seed: 1)`` for
    ``batch_size``, the default recipe's value first."""
    values = {name: getattr(recipe, key) for name, recipe in RECIPES.items()}
    words = {
        name: NONE_TEXT[key] if v is None else f"{v:g}" if isinstance(v, float) else str(v)
        for name, v in values.items()
    }
    others = "".join(f"; --recipe {name}: {text}" for name, text in words.items() if name != "default")
    return f"(default: {words['default']}{others})"


def resolve_recipe(config):
    """``config`` (a :class:`training.train.TrainConfig`) with every recipe option it leaves at None filled
    from its recipe. Raises :class:`NoPainGanError` for an unknown recipe name."""
    if config.recipe not in RECIPES:
        raise NoPainGanError(f"unknown --recipe {config.recipe!r}; expected one of {', '.join(RECIPES)}")
    recipe = RECIPES[config.recipe]
    filled = {key: getattr(recipe, key) for key in RECIPE_KEYS if getattr(config, key) is None}
    if "warmup_steps" in filled:
        filled["warmup_steps"] = recipe.warmup_steps if recipe.warmup_steps is not None else -1
    return dataclasses.replace(config, **filled)


def warmup_steps(configured: int, total: int) -> int:
    """Warm-up steps of a run of ``total`` steps: ``configured``, at most ``total``; -1 means a tenth."""
    return max(1, total // 10) if configured < 0 else min(configured, total)


def param_groups(model: nn.Module, lr: float, weight_decay: float, gate_lr_scale: float) -> list[dict]:
    """Optimizer parameter groups: the fusion's gate at ``lr * gate_lr_scale`` without weight decay (decay
    would pull it back to the closed, inert state), everything else at ``lr`` with ``weight_decay``."""
    gates = [p for name, p in model.named_parameters() if name.split(".")[-1] == "gate"]
    others = [p for name, p in model.named_parameters() if name.split(".")[-1] != "gate"]
    return [
        {"params": others, "lr": lr, "weight_decay": weight_decay, "name": "fusion"},
        {"params": gates, "lr": lr * gate_lr_scale, "weight_decay": 0.0, "name": "gate"},
    ]


def gate_opening(fusion: nn.Module) -> float:
    """How open the fusion's gate is: mean ``|tanh(gate)|`` over its dimensions (0 closed, 1 fully open)."""
    return fusion.fusion.gate.detach().tanh().abs().mean().item()


def gate_change(fusion: nn.Module, gate_init: float) -> float:
    """How far the gate has moved from its start: mean ``|tanh(gate) - tanh(gate_init)|``."""
    return (fusion.fusion.gate.detach().tanh() - math.tanh(gate_init)).abs().mean().item()


def inert_check_start(warmup: int, total: int) -> int:
    """The first step whose evaluation the inert check judges in a run of ``total`` steps: after the ``warmup``,
    the first fifth of the run and :data:`INERT_MIN_STEPS` (a run shorter than that is never judged)."""
    return max(warmup, total // 5, INERT_MIN_STEPS)


def check_can_stop_early(warmup: int, total: int, eval_every: int) -> None:
    """Refuse ``--stop-if-inert`` on a run that it could never stop early (:class:`NoPainGanError`, one line):
    one with fewer than :data:`INERT_EVALUATIONS` evaluations (every ``eval_every`` steps) from
    :func:`inert_check_start` on and before its last step (an inert last evaluation ends the run anyway)."""
    first = inert_check_start(warmup, total)
    judged = (total - 1) // eval_every - (max(first, 1) - 1) // eval_every  # evaluations in [first, total)
    every_step = total - max(first, 1)  # what --eval-every 1 would judge: a smaller one helps only if enough
    if judged < INERT_EVALUATIONS:
        raise NoPainGanError(
            f"--stop-if-inert: the inert check starts at step {first} (after the {count_text(warmup, 'warm-up step')}"
            f", the run's first fifth and step {INERT_MIN_STEPS}) and stops a run at {INERT_EVALUATIONS} inert "
            f"evaluations in a row before its last step; the run's {count_text(total, 'step')}, evaluated every "
            f"{eval_every}, have {count_text(max(judged, 0), 'such evaluation')}: nothing could stop it early "
            f"(expected a longer run{' or a smaller --eval-every' if every_step >= INERT_EVALUATIONS else ''})"
        )


def stays_inert(streak: int, last: bool) -> bool:
    """Whether to warn (or stop, ``--stop-if-inert``): ``streak`` evaluations in a row found the music path inert
    (:func:`is_inert`), at least :data:`INERT_EVALUATIONS` of them, or at least the run's ``last`` one did."""
    return streak >= INERT_EVALUATIONS or (last and streak >= 1)


def is_inert(eval_loss: float, text_only_loss: float, gate_moved: float, other_music_loss: float | None = None) -> bool:
    """True when the music path changes the held-out diffusion MSE by less than :data:`INERT_GAP` (relative to
    text only) and its gate has moved by less than :data:`INERT_GATE` (:func:`gate_change`) since the start, or
    when each album's own music does no better than another album's (``other_music_loss``, the same draws) by
    :data:`INERT_GAP`: a fusion can lower the MSE against text only with any music, by a shift of every prompt
    it learnt (the same song on every album does), and that is not the music."""
    gap = (eval_loss - text_only_loss) / text_only_loss if text_only_loss > 0 else 0.0
    if abs(gap) < INERT_GAP and gate_moved < INERT_GATE:
        return True
    if other_music_loss is None or other_music_loss <= 0:
        return False
    return (other_music_loss - eval_loss) / other_music_loss < INERT_GAP


def other_music_partners(music: Sequence[torch.Tensor]) -> list[int] | None:
    """For each eval album ``i`` (``music[i]``: its music embedding, any shape), the album whose music is the
    other-music baseline of :func:`is_inert`: the first after ``i`` in the list (cyclically) whose music is not
    equal to ``i``'s, so two albums made from one song (a single on two releases, a list naming an album twice
    with different ids) never stand as each other's "other" music. With distinct music every album's partner is
    the next one (``i + 1``, the last album's the first). None when fewer than two albums or every album has the
    same music: then no album has another's music to compare with."""
    count = len(music)
    partners = []
    for index in range(count):
        later = ((index + shift) % count for shift in range(1, count))
        partner = next((other for other in later if not torch.equal(music[other], music[index])), None)
        if partner is None:  # every other album has this album's music, so every album has the same music
            return None
        partners.append(partner)
    return partners or None


def non_gate_gradient_norm(model: nn.Module) -> float:
    """L2 norm of the gradients of every parameter but the gate (0 for parameters without a gradient)."""
    norms = [p.grad.norm() for name, p in model.named_parameters() if p.grad is not None and "gate" not in name]
    return torch.stack(norms).norm().item() if norms else 0.0
