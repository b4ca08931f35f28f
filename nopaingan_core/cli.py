"""Subcommands of the core library: demo, generate, encode."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the core subcommands on the ``nopaingan`` parser."""
