"""The ``nopaingan`` command line. Each subcommand parses its options and calls one library function;
errors a user can cause are printed as one line and exit with status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
    return parser


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
