"""The ``nopaingan`` command line. Each subcommand parses its options and calls one library function;
errors a user can cause are printed as one line and exit with status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nopaingan_core.errors import NoPainGanError


def quiet_libraries() -> None:
    """Keep the output to what the user asked for: no weight-loading bars or deprecation chatter."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nopaingan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from nopaingan_core import cli as core_cli

    core_cli.add_commands(sub)
    add_dataset_commands(sub)
    add_training_commands(sub)
    return parser


def add_dataset_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """``nopaingan dataset ACTION``; returns the action subparsers, so more actions register beside import."""
    parser = sub.add_parser("dataset", help="build and prepare training datasets", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_dataset_import(actions)
    _add_dataset_cache(actions)
    return actions


def _add_dataset_import(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "import",
        help="build a dataset folder from music folders and CSV/JSON manifests",
        description="Build a dataset folder (metadata.jsonl, audio/, covers/, skipped.jsonl) from music "
        "folders and CSV/JSON manifests. Genres are normalised and filled, duplicates dropped, and albums "
        "split into train and eval with each artist on one side. See docs/dataset.md.",
    )
    add = parser.add_argument
    add("sources", nargs="+", metavar="SRC", help="music folder or manifest (.csv, .tsv, .json, .jsonl)")
    add("--out", required=True, type=Path, metavar="DATA", help="dataset folder to write")
    add(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="downloads cache (default: ~/.cache/nopaingan/downloads)",
    )
    add("--eval-fraction", type=float, default=0.3, metavar="F", help="share of albums in eval (default: 0.3)")
    add("--seed", type=int, default=0, metavar="N", help="seed of the artist split (default: 0)")
    add(
        "--rate-limit",
        type=float,
        default=2.0,
        metavar="PER_S",
        help="downloads per second, 0: any (default: 2)",
    )
    add("--retries", type=int, default=3, metavar="N", help="retries of a failed download (default: 3)")
    add("--timeout", type=float, default=30.0, metavar="S", help="seconds to wait for a server (default: 30)")
    add("--min-cover-size", type=int, default=64, metavar="PX", help="smallest cover side kept (default: 64)")
    add("--copy", action="store_true", help="copy audio files instead of hard-linking them")
    add(
        "--fill-genres-from-audio",
        action="store_true",
        help="tag albums that have no genre (and no other album of the artist with one) with a music CLAP",
    )
    add("--clap", default=None, metavar="ID_OR_DIR", help="CLAP model for --fill-genres-from-audio")
    add(
        "--genre-min-score",
        type=float,
        default=None,
        metavar="P",
        help="least CLAP genre probability to accept; below it the genre stays unknown (default: 0.3)",
    )
    add("--device", default="cpu", help="device for the CLAP model (default: cpu)")
    add("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_dataset_import)


def _run_dataset_import(args: argparse.Namespace) -> int:
    from .dataset_import import import_dataset
    from .download import Downloader, default_cache_dir

    downloader = Downloader(
        args.cache_dir or default_cache_dir(),
        retries=args.retries,
        rate_limit=args.rate_limit,
        timeout=args.timeout,
    )
    genre_from_audio = None
    if args.fill_genres_from_audio:
        from functools import partial

        from nopaingan_core.tagging import DEFAULT_CLAP, genre_from_audio, get_tagger

        clap = args.clap or DEFAULT_CLAP
        get_tagger(clap, device=args.device)  # load now: a missing model fails before the import starts
        options = {} if args.genre_min_score is None else {"min_score": args.genre_min_score}
        genre_from_audio = partial(genre_from_audio, clap=clap, device=args.device, **options)
    report = import_dataset(
        args.sources,
        args.out,
        downloader=downloader,
        eval_fraction=args.eval_fraction,
        seed=args.seed,
        link=not args.copy,
        min_cover_size=args.min_cover_size,
        genre_from_audio=genre_from_audio,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0


def _add_dataset_cache(actions: argparse._SubParsersAction) -> None:
    from nopaingan_core.audio import CLIP_SECONDS
    from nopaingan_core.cli import DTYPES
    from nopaingan_core.encoders import DEFAULT_MODELS, ENCODER_KINDS
    from nopaingan_core.sampling import DEFAULT_SD

    from .cache import RESOLUTION, STORE_DTYPES

    parser = actions.add_parser(
        "cache",
        help="precompute VAE latents, CLIP text and music embeddings for training",
        description="Run the frozen models once over a dataset folder: VAE latents of the covers, CLIP text "
        "embeddings of the prompts and music embeddings of the 25 s clips, into safetensors shards "
        "(DATA/cache). Resumable: a killed run continues where it stopped. Spread over GPUs with "
        "`accelerate launch -m training dataset cache ...`. See docs/training.md.",
    )
    add = parser.add_argument
    add("data", type=Path, metavar="DATA", help="dataset folder (metadata.jsonl from `nopaingan dataset import`)")
    add("--sd", default=DEFAULT_SD, help="diffusers repo id or folder of miniSD (default: %(default)s)")
    add("--mir", default=DEFAULT_MODELS["codified-lm"], help="music encoder id or folder (default: %(default)s)")
    add("--kind", choices=ENCODER_KINDS, help="encoder kind (default: from the model's config)")
    add("--layer", type=int, help="hidden layer of the music encoder (default: a middle layer)")
    add("--out", type=Path, metavar="DIR", help="cache folder (default: DATA/cache)")
    add("--resolution", type=int, default=RESOLUTION, help="cover size in pixels (default: %(default)s)")
    add("--clip-seconds", type=float, default=CLIP_SECONDS, help="music clip length (default: %(default)s)")
    add("--store-dtype", choices=sorted(STORE_DTYPES), default="bf16", help="dtype of the stored tensors")
    add("--batch-size", type=int, default=8, help="albums encoded together (default: %(default)s)")
    add("--shard-size", type=int, default=64, help="albums per shard file (default: %(default)s)")
    add("--workers", type=int, default=0, help="DataLoader processes decoding audio and covers")
    add("--dtype", choices=sorted(DTYPES), default="fp32", help="compute dtype of the frozen models")
    add("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_dataset_cache)


def _run_dataset_cache(args: argparse.Namespace) -> int:
    import torch

    from nopaingan_core.cli import DTYPES

    from .cache import cache_dataset

    report = cache_dataset(
        args.data,
        args.sd,
        args.mir,
        kind=args.kind,
        layer=args.layer,
        out=args.out,
        resolution=args.resolution,
        clip_seconds=args.clip_seconds,
        store_dtype=args.store_dtype,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        workers=args.workers,
        dtype=getattr(torch, DTYPES[args.dtype]),
        progress=not args.quiet,
    )
    if report.main_process:
        print(report.summary())
    return 0


def add_training_commands(sub: argparse._SubParsersAction) -> None:
    """``nopaingan train`` and ``nopaingan evaluate``."""
    from nopaingan_core.cli import add_device_options
    from nopaingan_core.sampling import SCHEDULERS

    from .recipes import RECIPES
    from .train import ADAPTER_INITS, MIXED_PRECISION, OPTIMIZERS

    train = sub.add_parser(
        "train",
        help="train adapter + fusion on a cached dataset with the frozen UNet",
        description="Train the music adapter and fusion on DATA's cache (nopaingan dataset cache) with the "
        "frozen miniSD UNet, minimising the diffusion MSE on the noise for one epoch. The optimizer settings "
        "come from --recipe (default: AdamW, batch 8; seed: the seed's SGD lr 1e-4, batch 1); options given "
        "explicitly override it. Several GPUs or machines: `accelerate launch -m training train ...`. "
        "See docs/training.md.",
    )
    add = train.add_argument
    add("--data", type=Path, required=True, metavar="DATA", help="dataset folder")
    add("--out", type=Path, required=True, metavar="RUN", help="run folder (checkpoints, logs, fusion.safetensors)")
    add("--cache", type=Path, metavar="DIR", help="cache folder (default: DATA/cache)")
    add("--sd", help="miniSD repo id or folder (default: the one the cache was made with)")
    add("--optimizer", choices=OPTIMIZERS, help="(default: the recipe's)")
    add("--lr", type=float, help="peak learning rate (default: the recipe's)")
    add("--weight-decay", type=float, help="(default: the recipe's)")
    add("--warmup-steps", type=int, help="linear warm-up before the cosine decay (default: the recipe's)")
    add("--batch-size", type=int, help="albums per micro-batch and process (default: the recipe's)")
    add("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default: %(default)s)")
    add("--epochs", type=int, default=1, help="(default: %(default)s)")
    add("--max-steps", type=int, help="optimizer steps to run, overriding --epochs")
    add(
        "--max-timestep",
        type=int,
        help="draw timesteps from [0, N) (the seed lists 150; default: the whole schedule, see docs/training.md)",
    )
    add("--tokens", type=int, default=16, help="music tokens the adapter makes (default: %(default)s)")
    add(
        "--adapter-init",
        choices=ADAPTER_INITS,
        default="data",
        help="data: the adapter starts by standardising the music features (default); random: plain init",
    )
    add("--mixed-precision", choices=MIXED_PRECISION, default="no", help="(default: %(default)s)")
    add("--save-every", type=int, default=500, help="checkpoint every N steps (default: %(default)s)")
    add("--keep-checkpoints", type=int, default=2, help="newest checkpoints kept, 0: all (default: %(default)s)")
    add(
        "--eval-every",
        type=int,
        default=500,
        help="held-out diffusion MSE vs text only every N steps and at the end, 0: never (default: %(default)s)",
    )
    add("--eval-albums", type=int, default=64, help="eval albums measured by --eval-every (default: %(default)s)")
    add("--seed", type=int, default=0, help="(default: %(default)s)")
    add("--workers", type=int, default=0, help="DataLoader processes reading the cache")
    add("--resume", action="store_true", help="continue RUN from its last checkpoint")
    add("--quiet", action="store_true", help="no progress bar")
    add("--recipe", choices=RECIPES, default="default", help="optimizer settings (default: %(default)s); see docs")
    add("--gate-init", type=float, help="the fusion gate's starting value (default: the recipe's)")
    add("--gate-lr-scale", type=float, help="the gate's learning rate is --lr times this (default: the recipe's)")
    add("--stop-if-inert", action="store_true", help="stop when --eval-every finds the music path still inert")
    train.set_defaults(run=_run_train)

    ev = sub.add_parser(
        "evaluate",
        help="compare a fusion checkpoint with the text-only baseline on the eval albums",
        description="Diffusion MSE, FID, KID and CLIP score of a fusion checkpoint and of the text-only "
        "baseline (strength 0) on the same eval albums, noise seeds and timesteps; writes eval.json, eval.md "
        "and grid.png. See docs/training.md.",
    )
    add = ev.add_argument
    add("--data", type=Path, required=True, metavar="DATA", help="dataset folder")
    add("--fusion", type=Path, required=True, metavar="CKPT", help="fusion checkpoint (.safetensors)")
    add("--out", type=Path, help="report folder (default: next to the checkpoint, eval/)")
    add("--cache", type=Path, metavar="DIR", help="cache folder (default: DATA/cache)")
    add("--sd", help="miniSD repo id or folder (default: the one the cache was made with)")
    add("--split", choices=("train", "eval"), default="eval", help="(default: %(default)s)")
    add("--limit", type=int, help="only the first N albums of the split")
    add("--strength", type=float, default=1.0, help="music strength of the fusion column (default: %(default)s)")
    add("--seed", type=int, default=0, help="(default: %(default)s)")
    add("--mse-samples", type=int, default=4, help="noise draws per album for the MSE (default: %(default)s)")
    add("--max-timestep", type=int, help="timesteps of the MSE from [0, N) (default: the training range)")
    add("--no-images", action="store_true", help="diffusion MSE only: no generation, FID, KID, CLIP score")
    add("--scheduler", choices=SCHEDULERS, default="pndm")
    add("--steps", type=int, default=20)
    add("--guidance", type=float, default=7.5)
    add("--negative", default="", help="negative prompt for classifier-free guidance")
    add("--inception-weights", type=Path, metavar="PATH", help="torch-fidelity's pt_inception-2015-12-05 weights")
    add("--clip", metavar="ID_OR_DIR", help="CLIP model for the CLIP score (e.g. openai/clip-vit-large-patch14)")
    add("--grid", type=int, default=8, help="albums in grid.png (default: %(default)s)")
    add("--quiet", action="store_true", help="no progress bar")
    add_device_options(ev)
    ev.set_defaults(run=_run_evaluate)


def _run_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    config = TrainConfig(
        data=args.data,
        out=args.out,
        cache=args.cache,
        sd=args.sd,
        recipe=args.recipe,
        gate_init=args.gate_init,
        gate_lr_scale=args.gate_lr_scale,
        stop_if_inert=args.stop_if_inert,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_timestep=args.max_timestep,
        tokens=args.tokens,
        adapter_init=args.adapter_init,
        mixed_precision=args.mixed_precision,
        save_every=args.save_every,
        keep_checkpoints=args.keep_checkpoints,
        eval_every=args.eval_every,
        eval_albums=args.eval_albums,
        seed=args.seed,
        workers=args.workers,
        resume=args.resume,
        progress=not args.quiet,
    )
    result = train(config)
    if result.main_process:
        print(f"{result.fusion}: {result.steps} steps, final loss {result.final_loss:.5f}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from nopaingan_core.cli import device_from_args

    from .evaluate import EvalConfig, evaluate

    device, dtype = device_from_args(args)
    out = args.out or args.fusion.parent / "eval"
    config = EvalConfig(
        data=args.data,
        fusion=args.fusion,
        out=out,
        cache=args.cache,
        sd=args.sd,
        split=args.split,
        limit=args.limit,
        strength=args.strength,
        seed=args.seed,
        mse_samples=args.mse_samples,
        max_timestep=args.max_timestep,
        images=not args.no_images,
        scheduler=args.scheduler,
        steps=args.steps,
        guidance=args.guidance,
        negative=args.negative,
        inception_weights=args.inception_weights,
        clip=args.clip,
        grid=args.grid,
        device=device,
        dtype=dtype,
        progress=not args.quiet,
    )
    result = evaluate(config)
    print((out / "eval.md").read_text(), end="")
    print(f"wrote {out / 'eval.json'}, {out / 'eval.md'}" + (f", {out / 'grid.png'}" if result.images else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    try:
        return args.run(args) or 0
    except NoPainGanError as exc:
        print(f"nopaingan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nopaingan {args.command}: interrupted", file=sys.stderr)
        return 130
