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
    return parser


def add_dataset_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """``nopaingan dataset ACTION``; returns the action subparsers, so more actions register beside import."""
    parser = sub.add_parser("dataset", help="build and prepare training datasets", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_dataset_import(actions)
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
