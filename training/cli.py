"""The ``nopaingan`` command line. Each subcommand parses its options and calls one library function;
errors a user can cause are printed as one line and exit with status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nopaingan_core.cli_args import (
    MAX_SEED,
    OneLineParser,
    add_quiet,
    as_typed,
    device_name,
    existing_folder,
    float_range,
    fusion_checkpoint,
    given_options,
    int_range,
    multiple_of,
    path_arg,
    positive_float,
)
from nopaingan_core.errors import NoPainGanError


def quiet_libraries(quiet: bool = False) -> None:
    """Keep the output to what the user asked for: no weight-loading bars or deprecation chatter; with ``quiet``
    (``--quiet``) no progress bar of diffusers (``Loading pipeline components...``) or huggingface_hub either, and
    no note of the training tools (:data:`training.dataset_import.NOTES`)."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import logging

    # CLIP's "part of your input was truncated" warning, once per x4 tile: the release code notes it once itself
    upscale_logger = logging.getLogger("diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_upscale")
    if not any(isinstance(f, _NoTruncationWarning) for f in upscale_logger.filters):
        upscale_logger.addFilter(_NoTruncationWarning())
    from .dataset_import import NOTES

    NOTES.setLevel(logging.ERROR if quiet else logging.NOTSET)  # set by each command: a process may run several
    if quiet:
        from diffusers.utils import logging as diffusers_logging
        from huggingface_hub.utils import disable_progress_bars

        diffusers_logging.disable_progress_bar()
        diffusers_logging.set_verbosity_error()
        disable_progress_bars()


class _NoTruncationWarning:
    """A logging filter dropping the CLIP prompt truncation warning (printed per tile by the x4 pipeline)."""

    def filter(self, record: object) -> bool:
        return "was truncated because CLIP" not in str(getattr(record, "msg", ""))


def build_parser() -> argparse.ArgumentParser:
    from nopaingan_core import __version__

    parser = OneLineParser(prog="nopaingan", description=__doc__.replace("``", ""))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from nopaingan_core import cli as core_cli

    core_cli.add_commands(sub)
    add_dataset_commands(sub)
    add_training_commands(sub)
    return parser


def add_dataset_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """``nopaingan dataset ACTION``; returns the action subparsers, so more actions register beside import."""
    parser = sub.add_parser(
        "dataset",
        help="build and prepare training datasets",
        description="Build a dataset folder from music folders and manifests (import), then run the frozen "
        "models over it once (cache). See docs/dataset.md and docs/training.md.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_dataset_import(actions)
    _add_dataset_cache(actions)
    from .fetch import add_fetch_command

    add_fetch_command(actions)
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
    add(
        "sources",
        nargs="+",
        type=as_typed(path_arg),
        metavar="SRC",
        help="music folder or manifest (.csv, .tsv, .txt, .json, .jsonl)",
    )
    add("--out", required=True, type=path_arg, metavar="DATA", help="dataset folder to write")
    add(
        "--cache-dir",
        type=path_arg,
        metavar="DIR",
        help="downloads cache (default: ~/.cache/nopaingan/downloads)",
    )
    add("--eval-fraction", type=float_range(0.0, 0.99), default=0.3, metavar="F", help="share of albums in eval")
    add("--seed", type=int_range(0), default=0, metavar="N", help="seed of the artist split")
    add(
        "--rate-limit",
        type=float_range(0.0),
        default=2.0,
        metavar="PER_S",
        help="downloads per second, 0: any",
    )
    add("--retries", type=int_range(0, 100), default=3, metavar="N", help="retries of a failed download")
    add("--timeout", type=positive_float, default=30.0, metavar="S", help="seconds to wait for a server")
    add("--min-cover-size", type=int_range(1), default=64, metavar="PX", help="smallest cover side kept")
    add("--copy", action="store_true", help="copy audio files instead of hard-linking them")
    add(
        "--replace",
        action="store_true",
        help="keep only this run's albums in DATA, removing earlier ones it does not bring (default: add to them)",
    )
    add(
        "--fill-genres-from-audio",
        action="store_true",
        help="tag albums that have no genre (and no other album of the artist with one) with a music CLAP",
    )
    add("--clap", default=None, metavar="ID_OR_DIR", help="CLAP model for --fill-genres-from-audio")
    add(
        "--genre-min-score",
        type=float_range(0.0, 1.0),
        default=None,
        metavar="P",
        help="least CLAP genre probability to accept; below it the genre stays unknown (default: 0.3)",
    )
    add("--device", type=device_name, default="cpu", help="device for the CLAP model")
    add_quiet(parser)
    parser.set_defaults(run=_run_dataset_import)


def _run_dataset_import(args: argparse.Namespace) -> int:
    from nopaingan_core.atomic import check_output_folder
    from nopaingan_core.cli_args import note

    from .dataset_import import import_dataset
    from .download import Downloader, default_cache_dir
    from .inputs import distinct_files

    args.out = check_output_folder(args.out, "--out")  # as mkdir -p names it (atomic.made_path)
    cache = check_output_folder(args.cache_dir or default_cache_dir(), "--cache-dir")

    downloader = Downloader(
        cache,
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
    for again, first in distinct_files(args.sources)[1]:
        note(args, f"note: source {first} given again as {again}: read once")
    report = import_dataset(
        args.sources,
        args.out,
        downloader=downloader,
        eval_fraction=args.eval_fraction,
        seed=args.seed,
        link=not args.copy,
        min_cover_size=args.min_cover_size,
        genre_from_audio=genre_from_audio,
        replace=args.replace,
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
    add(
        "data",
        type=dataset_folder,
        metavar="DATA",
        help="dataset folder (metadata.jsonl from `nopaingan dataset import`)",
    )
    add("--sd", default=DEFAULT_SD, help="diffusers repo id or folder of miniSD")
    add("--mir", default=DEFAULT_MODELS["codified-lm"], help="music encoder id or folder")
    add("--kind", choices=ENCODER_KINDS, help="encoder kind (default: from the model's config)")
    add("--layer", type=int_range(0), help="hidden layer of the music encoder (default: a middle layer)")
    add("--out", type=path_arg, metavar="DIR", help="cache folder (default: DATA/cache)")
    add("--resolution", type=multiple_of(8, 8, 4096), default=RESOLUTION, help="cover size in pixels")
    add("--clip-seconds", type=positive_float, default=CLIP_SECONDS, help="music clip length")
    add("--store-dtype", choices=sorted(STORE_DTYPES), default="bf16", help="dtype of the stored tensors")
    add("--batch-size", type=int_range(1), default=8, help="albums encoded together")
    add("--shard-size", type=int_range(1), default=64, help="albums per shard file")
    add("--workers", type=int_range(0), default=0, help="DataLoader processes decoding audio and covers")
    add("--dtype", choices=sorted(DTYPES), default="fp32", help="compute dtype of the frozen models")
    add("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_dataset_cache)


def dataset_folder(text: str) -> Path:
    """A folder made by ``nopaingan dataset import`` (it holds ``metadata.jsonl``), checked when parsed, before
    any model is looked for."""
    from training.dataset_import import METADATA

    folder = existing_folder("dataset folder")(text)
    if not (folder / METADATA).is_file():
        raise argparse.ArgumentTypeError(
            f"{text} has no {METADATA}, expected a dataset folder (nopaingan dataset import SRC --out DATA)"
        )
    return folder


def cache_folder(text: str) -> Path:
    """A folder made by ``nopaingan dataset cache`` (it holds cache shards), checked when parsed, before any model
    is looked for: a folder of model weights, a dataset folder or an empty one is refused naming the option."""
    import fnmatch

    from nopaingan_core.atomic import describe_os_error

    from .cache import SHARD_GLOB
    from .errors import count_text

    folder = existing_folder("cache folder")(text)
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError as exc:  # argparse would not catch it: a traceback
        raise argparse.ArgumentTypeError(f"{text}: cannot read it ({describe_os_error(exc) or exc})") from None
    if not any(fnmatch.fnmatch(name, SHARD_GLOB) for name in names):
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        count = count_text(len(names), "file or folder", "files or folders")
        found = f"{count} but no shard ({shown})" if names else "an empty folder"
        raise argparse.ArgumentTypeError(
            f"{text}: expected a cache folder of shards ({SHARD_GLOB}, made by nopaingan dataset cache DATA), "
            f"found {found}"
        )
    return folder


def _run_dataset_cache(args: argparse.Namespace) -> int:
    from nopaingan_core.atomic import check_output_folder
    from nopaingan_core.hub import check_available

    from .atomic import check_not_being_written
    from .cache import check_cache_folder

    check_not_being_written(args.data, "DATA")
    args.out = check_output_folder(args.out or args.data / "cache", "--out")
    check_cache_folder(args.out)
    check_available(args.sd, "Stable Diffusion model", "--sd", "unet/config.json")
    check_available(args.mir, "music encoder", "--mir")

    from nopaingan_core.precision import resolve_dtype

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
        dtype=resolve_dtype(args.dtype),
        progress=not args.quiet,
    )
    if report.main_process:
        print(report.summary())
    return 0


def add_training_commands(sub: argparse._SubParsersAction) -> None:
    """``nopaingan train`` and ``nopaingan evaluate``."""
    from nopaingan_core.cli import add_device_options
    from nopaingan_core.sampling import SCHEDULERS

    from .recipes import RECIPES, recipes_default
    from .train import (
        ADAPTER_INITS,
        EVAL_EVERY,
        MAX_GATE_INIT,
        MAX_LR,
        MAX_NOISE_DRAWS,
        MAX_TOKENS,
        MIXED_PRECISION,
        OPTIMIZERS,
        SAVE_EVERY,
        TIMESTEPS,
    )

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
    add("--data", type=existing_folder("dataset folder"), metavar="DATA", help="dataset folder")
    add("--out", type=path_arg, metavar="RUN", help="run folder (checkpoints, logs, fusion.safetensors)")
    add("--cache", type=cache_folder, metavar="DIR", help="cache folder (default: DATA/cache)")
    add("--sd", help="miniSD repo id or folder (default: the one the cache was made with)")
    add("--optimizer", choices=OPTIMIZERS, help="optimizer of adapter and fusion " + recipes_default("optimizer"))
    add("--lr", type=float_range(0.0, MAX_LR, low_open=True), help="peak learning rate " + recipes_default("lr"))
    add("--weight-decay", type=float_range(0.0), help="decoupled weight decay " + recipes_default("weight_decay"))
    add(
        "--warmup-steps",
        type=int_range(0),
        help="linear warm-up steps before the cosine decay " + recipes_default("warmup_steps"),
    )
    add("--batch-size", type=int_range(1), help="albums per micro-batch and process " + recipes_default("batch_size"))
    add(
        "--noise-draws",
        type=int_range(1, MAX_NOISE_DRAWS),
        help="diffusion-loss draws (latent sample, noise and timestep) per album and step "
        + recipes_default("noise_draws"),
    )
    add("--grad-accum", type=int_range(1), default=1, help="micro-batches per optimizer step")
    add("--epochs", type=int_range(1), default=1, help="passes over the train split")
    add("--max-steps", type=int_range(1), help="optimizer steps to run, overriding --epochs")
    add(
        "--max-timestep",
        type=int_range(1, 1000),
        help="draw timesteps from [0, N), see docs/training.md " + recipes_default("max_timestep"),
    )
    add(
        "--timesteps",
        choices=TIMESTEPS,
        help="each draw's timestep on its own, or a step's draws spread evenly over the range "
        + recipes_default("timesteps"),
    )
    add("--tokens", type=int_range(1, MAX_TOKENS), default=16, help="music tokens the adapter makes")
    add(
        "--adapter-init",
        choices=ADAPTER_INITS,
        help="data: the adapter starts on music features whitened within songs; random: plain init "
        + recipes_default("adapter_init"),
    )
    add("--mixed-precision", choices=MIXED_PRECISION, default="no", help="accelerate's mixed precision of the UNet")
    add("--save-every", type=int_range(1), default=SAVE_EVERY, help="checkpoint every N steps and at the end")
    add("--keep-checkpoints", type=int_range(0), default=2, help="newest checkpoints kept, 0: all")
    add(
        "--eval-every",
        type=int_range(0),
        default=EVAL_EVERY,
        help="held-out diffusion MSE vs text only every N steps and at the end, 0: never",
    )
    add("--eval-albums", type=int_range(1), default=64, help="eval albums measured by --eval-every")
    add(
        "--seed",
        type=int_range(0, MAX_SEED),
        default=0,
        help="random seed of the fusion's start, noise, timesteps and order",
    )
    add("--workers", type=int_range(0), default=0, help="DataLoader processes reading the cache")
    add(
        "--resume",
        nargs="?",
        const=True,
        type=path_arg,
        metavar="RUN",
        help="continue RUN (default: --out) from its last checkpoint with the options it started with",
    )
    add("--quiet", action="store_true", help="no progress bar")
    add("--recipe", choices=RECIPES, default="default", help="optimizer settings, see docs/training.md")
    add(
        "--gate-init",
        type=float_range(0.0, MAX_GATE_INIT),
        help="the fusion gate's starting value " + recipes_default("gate_init"),
    )
    add(
        "--gate-lr-scale",
        type=positive_float,
        help="the gate's learning rate is --lr times this " + recipes_default("gate_lr_scale"),
    )
    add(
        "--stop-if-inert",
        action="store_true",
        help="stop when --eval-every finds the music path inert twice in a row (or at the run's last evaluation); "
        "a run so stopped exits with status 1",
    )
    train.set_defaults(run=_run_train)

    ev = sub.add_parser(
        "evaluate",
        help="compare a fusion checkpoint with the text-only baseline on the eval albums",
        description="Diffusion MSE, FID, KID and CLIP score of a fusion checkpoint and of the text-only "
        "baseline (strength 0) on the same eval albums, noise seeds and timesteps; writes eval.json, eval.md "
        "and grid.png. See docs/training.md.",
    )
    add = ev.add_argument
    add("--data", type=existing_folder("dataset folder"), required=True, metavar="DATA", help="dataset folder")
    add(
        "--fusion",
        type=fusion_checkpoint,
        required=True,
        metavar="CKPT",
        help="fusion checkpoint (.safetensors) or training run folder",
    )
    add(
        "--out",
        type=path_arg,
        help="report folder, refused if it holds a report (default: eval/ next to the checkpoint, else eval-1/...)",
    )
    add("--cache", type=cache_folder, metavar="DIR", help="cache folder (default: DATA/cache)")
    add("--sd", help="miniSD repo id or folder (default: the one the cache was made with)")
    add("--split", choices=("train", "eval"), default="eval", help="albums to evaluate on")
    add("--limit", type=int_range(1), help="only the first N albums of the split")
    add("--strength", type=float_range(0.0, 4.0), default=1.0, help="music strength of the fusion column")
    add("--seed", type=int_range(0), default=0, help="random seed of noise, timesteps and shuffling")
    add("--mse-samples", type=int_range(1), default=4, help="noise draws per album for the MSE")
    add("--max-timestep", type=int_range(1, 1000), help="MSE timesteps from [0, N) (default: the training range)")
    add("--no-images", action="store_true", help="diffusion MSE only: no generation, FID, KID, CLIP score")
    add("--scheduler", choices=SCHEDULERS, default="pndm", help="sampler of the generated covers")
    add("--steps", type=int_range(1, 999), default=20, help="denoising steps")
    add("--guidance", type=float_range(0.0, 50.0), default=7.5, help="classifier-free guidance scale, <=1: off")
    add("--negative", default="", help="negative prompt for classifier-free guidance")
    add("--inception-weights", type=path_arg, metavar="PATH", help="torch-fidelity's pt_inception-2015-12-05 weights")
    add("--clip", metavar="ID_OR_DIR", help="CLIP model for the CLIP score (e.g. openai/clip-vit-large-patch14)")
    add("--grid", type=int_range(0), help="albums in grid.png (default: 8; 0: no grid)")
    add("--quiet", action="store_true", help="no progress bar")
    add_device_options(ev)
    ev.set_defaults(run=_run_evaluate)


def _require_dataset(data: Path) -> None:
    """Refuse a ``--data`` folder without ``metadata.jsonl`` before anything else is looked for (its cache...)."""
    from .records import METADATA

    if not (data / METADATA).is_file():
        raise NoPainGanError(
            f"--data {data} has no {METADATA}, expected a dataset folder (nopaingan dataset import SRC --out DATA)"
        )


def _run_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig

    if args.resume:
        return _train(_resumed_config(args))
    missing = [f"--{name}" for name in ("data", "out") if getattr(args, name) is None]
    if missing:
        raise NoPainGanError(
            f"expected --data DATA and --out RUN to start a run (or --resume RUN to continue one), "
            f"found no {' and no '.join(missing)}"
        )
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
        noise_draws=args.noise_draws,
        grad_accum=args.grad_accum,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_timestep=args.max_timestep,
        timesteps=args.timesteps,
        tokens=args.tokens,
        adapter_init=args.adapter_init,
        mixed_precision=args.mixed_precision,
        save_every=args.save_every,
        keep_checkpoints=args.keep_checkpoints,
        eval_every=args.eval_every,
        eval_albums=args.eval_albums,
        seed=args.seed,
        workers=args.workers,
        progress=not args.quiet,
    )
    return _train(config)


STOPPED_INERT = 1  # the exit status of a run --stop-if-inert stopped (2 is a user's mistake, as everywhere)


def _train(config) -> int:  # noqa: ANN001 (a TrainConfig, imported when training)
    """Check the run's dataset and folder, then train and say what it made."""
    from dataclasses import replace

    from nopaingan_core.atomic import check_output_folder

    from .errors import count_text
    from .train import train

    _require_dataset(config.data)
    config = replace(config, out=check_output_folder(config.out, "--out"))  # as mkdir -p names it (made_path)
    result = train(config)
    if result.main_process:
        print(f"{result.fusion}: {count_text(result.steps, 'step')}, final loss {result.final_loss:.5f}")
    # a run --stop-if-inert stopped saved its fusion, but it is not one to use: 1, so `train && evaluate` stops too
    return STOPPED_INERT if "stopped_early" in result.summary else 0


def _resumed_config(args: argparse.Namespace):  # noqa: ANN202 (a TrainConfig, imported when training)
    """``--resume [RUN]``: the options the run in RUN (or ``--out``) started with, the ones given checked against
    them (:func:`training.train.resumed_config`). RUN is named as ``--out`` named it when the run started
    (:func:`~nopaingan_core.atomic.made_path`: ``runs/x/../a`` with no ``runs/x`` is ``runs/a``), and ``--out`` and
    ``--resume`` given both must name one folder, however spelled (``runs/a``, ``runs/./a``, ``runs/x/../a``, an
    absolute path, a symbolic link to it)."""
    from nopaingan_core.atomic import made_path

    from .train import resumed_config

    run = args.out if args.resume is True else args.resume
    if run is None:
        raise NoPainGanError("--resume: expected the run folder (--resume RUN, or --out RUN), found neither")
    if args.out is not None and os.path.realpath(made_path(args.out)) != os.path.realpath(made_path(run)):
        raise NoPainGanError(f"--out {args.out} and --resume {run}: expected one run folder, found two")
    given = {name: getattr(args, name) for name in given_options(args) - {"out", "resume", "quiet"}}
    return resumed_config(run, given | {"progress": not args.quiet})


def _run_evaluate(args: argparse.Namespace) -> int:
    from nopaingan_core.atomic import check_output_folder
    from nopaingan_core.cli import device_from_args

    from .evaluate import EvalConfig, evaluate, report_folder

    _require_dataset(args.data)
    if args.no_images:  # options that act only on the generated covers would do nothing
        refused = _cover_options(args)
        if refused:
            needs = "needs" if len(refused) == 1 else "need"
            raise NoPainGanError(f"{', '.join(refused)} {needs} the generated covers, found --no-images")
    out = check_output_folder(args.out or report_folder(args.fusion), "--out")  # evaluate refuses a report
    device, dtype = device_from_args(args)
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
        grid=EvalConfig.grid if args.grid is None else args.grid,
        device=device,
        dtype=dtype,
        progress=not args.quiet,
    )
    result = evaluate(config)
    print((out / "eval.md").read_text(), end="")
    print(f"wrote {out / 'eval.json'}, {out / 'eval.md'}" + (f", {out / 'grid.png'}" if result.images else ""))
    return 0


# evaluate's options that act only on the generated covers (the sampler's settings, FID, CLIP score, the grid)
COVER_OPTIONS = ("--scheduler", "--steps", "--guidance", "--negative", "--inception-weights", "--clip", "--grid")


def _cover_options(args: argparse.Namespace) -> list[str]:
    """The options of :data:`COVER_OPTIONS` the command line gave, even at their default values (``--steps 20``
    asks for covers that ``--no-images`` does not make), except ``--grid 0``, which asks for no grid."""
    given = given_options(args)
    dests = {option: option[2:].replace("-", "_") for option in COVER_OPTIONS}
    return [option for option, dest in dests.items() if dest in given and (dest != "grid" or args.grid != 0)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user's mistake (bad option, unusable file or folder, full disk) is one line on stderr
    and exit status 2, naming what was already written and kept."""
    from nopaingan_core.atomic import describe_os_error, forget_written

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    prog = " ".join(filter(None, ("nopaingan", args.command, getattr(args, "action", None))))
    quiet_libraries(getattr(args, "quiet", False))
    forget_written()
    try:
        return args.run(args) or 0
    except NoPainGanError as exc:
        message = " ".join(str(exc).split())
    except OSError as exc:
        reason = describe_os_error(exc)
        if reason is None:
            raise
        message = f"{exc.filename}: {reason}" if exc.filename else f"{reason} ({exc})"
    except KeyboardInterrupt:
        print(f"{prog}: interrupted{_kept()}", file=sys.stderr)
        return 130
    print(f"{prog}: error: {message}{_kept()}", file=sys.stderr)
    return 2


def _kept() -> str:
    """``; kept N files written before: ...`` when the failed command had already written some."""
    from nopaingan_core.atomic import written

    from .errors import count_text

    files = written()
    if not files:
        return ""
    shown = ", ".join(str(f) for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return f"; kept the {count_text(len(files), 'file')} written before it: {shown}"
