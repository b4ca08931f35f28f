"""What every ``nopaingan`` command shares: a parser whose errors are one line, help that shows defaults, and
argument types that check a value when it is parsed, before any model loads.

Each type names what it accepts; argparse puts the option and the value in front, so a mistake reads
``nopaingan generate: error: argument --num: got '0', expected a whole number of at least 1``.
"""

from __future__ import annotations

import argparse
import math
import re
import string
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .errors import NoPainGanError


class UsageError(NoPainGanError):
    """Options that do not go together, found after parsing (e.g. ``--strength`` without ``--fusion``)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: ...)`` after every option's help that does not say it already, except for flags and
    options without a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS)
        if "%(default)" in text or "(default:" in text or hidden or not action.option_strings:
            return text
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are exactly one line, ``PROG: error: MESSAGE``, with exit status 2
    (argparse's own prints the usage first). Subcommand parsers are of the same class. Abbreviated options are
    refused (``--prompt`` is not taken for ``--prompt-template``): a saved command keeps its meaning when a later
    version adds an option with the same beginning."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 (argparse's signature)
        """Also records, in the namespace, which options the command line gave (see :func:`given_options`)."""
        outer, self._given = getattr(self, "_given", None), set()
        try:
            namespace, extras = super().parse_known_args(args, namespace)
            setattr(namespace, GIVEN, frozenset(getattr(namespace, GIVEN, frozenset()) | self._given))
            if not hasattr(namespace, PROG):  # the innermost (sub)command's name, set first
                setattr(namespace, PROG, self.prog)
        finally:
            self._given = outer
        return namespace, extras

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201
        """Unknown arguments are an error of the (sub)command they were given to, named as such."""
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            prog = getattr(namespace, PROG, self.prog)
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)}\n")
        return namespace

    def _get_values(self, action: argparse.Action, arg_strings: list[str]):  # noqa: ANN202
        # argparse calls this for every option on the command line and never for defaults
        if action.option_strings and self._given is not None:
            self._given.add(action.dest)
        return super()._get_values(action, arg_strings)


# the largest seed an option takes: torch.manual_seed takes 64 bits, and generation adds the image's index to it
MAX_SEED = 2**63 - 1
GIVEN = "_options_given"
PROG = "_prog"


def given_options(args: argparse.Namespace) -> frozenset[str]:
    """The ``dest`` of every option given on the command line, even one given its default value."""
    return getattr(args, GIVEN, frozenset())


def _got(text: str, expected: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"got {text!r}, expected {expected}")


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def range_text(noun: str, low: float | None, high: float | None, low_open: bool = False) -> str:
    """What a range accepts, in words: "a number from 0 to 4", "a whole number of at least 1", "a number above
    0 and at most 10". Every numeric type says its range this way, for a value of the wrong kind as for one
    outside it."""
    if low is None:
        return f"{noun} of at most {_bound(high)}" if high is not None else noun
    if low_open:
        return f"{noun} above {_bound(low)}" + (f" and at most {_bound(high)}" if high is not None else "")
    return f"{noun} from {_bound(low)} to {_bound(high)}" if high is not None else f"{noun} of at least {_bound(low)}"


def int_range(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A whole number in ``[low, high]`` (either end open when None)."""
    expected = range_text("a whole number", low, high)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _got(text, expected) from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise _got(text, expected)
        return value

    parse.__name__ = "int"
    return parse


def float_range(
    low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (either end unbounded when None); with ``low_open``, in ``(low, high]``:
    above ``low``, not equal to it."""
    expected = range_text("a number", low, high, low_open)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _got(text, expected) from None
        below = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or below or (high is not None and value > high):
            raise _got(text, expected)
        return value

    parse.__name__ = "float"
    return parse


positive_float = float_range(0.0, low_open=True)  # a finite number above 0


def multiple_of(step: int, low: int, high: int) -> Callable[[str], int]:
    """A whole number in ``[low, high]`` divisible by ``step`` (image sizes: the VAE works in 8-pixel cells)."""
    expected = f"a multiple of {step} from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _got(text, expected) from None
        if not low <= value <= high or value % step:
            raise _got(text, expected)
        return value

    parse.__name__ = "int"
    return parse


def path_arg(text: str) -> Path:
    """A file or folder name (``~`` expanded); an empty one is refused rather than meaning the current folder."""
    if not text.strip():
        raise _got(text, "a file or folder name")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~name of no such user: kept as written, as a shell does
        return Path(text)


path_arg.__name__ = "path"


def choice(choices) -> Callable[[str], str]:  # noqa: ANN001 (any collection of names)
    """One of ``choices`` (what argparse's ``choices=`` accepts), as a validator for values read from files."""
    expected = "one of " + ", ".join(choices)

    def parse(text: str) -> str:
        if text not in choices:
            raise _got(text, expected)
        return text

    parse.__name__ = "choice"
    return parse


def non_empty(text: str) -> str:
    if not text.strip():
        raise _got(text, "a non-empty text")
    return text


def prompt_template(text: str) -> str:
    """A template whose only fields are ``{album}``, ``{genre}`` and ``{artist}``, checked by formatting it once."""
    expected = "a text whose fields are {album}, {genre} and {artist} (double braces for literal ones)"
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        text.format(album="a", genre="g", artist="x")
    except (KeyError, IndexError, ValueError, AttributeError):
        raise _got(text, expected) from None
    if fields - {"album", "genre", "artist"}:
        raise _got(text, expected)
    return text


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")


def device_syntax(text: str) -> str:
    """A device name as :func:`device_name` accepts it, without asking whether this machine has it."""
    if not _DEVICE.match(text):
        raise _got(text, "auto, cpu, cuda, cuda:N, mps or xpu")
    return text


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``xpu``; a GPU this machine does not have is refused
    now, not after the models loaded."""
    if device_syntax(text) in ("auto", "cpu"):
        return text
    import torch

    kind, _, index = text.partition(":")
    backend = getattr(torch, kind, None) if kind != "mps" else getattr(torch.backends, "mps", None)
    available = bool(backend is not None and backend.is_available())
    count = backend.device_count() if available and hasattr(backend, "device_count") else int(available)
    if not available:
        raise argparse.ArgumentTypeError(f"got {text!r}, but this machine has no {kind} device; use cpu or auto")
    if index and int(index) >= count:
        raise argparse.ArgumentTypeError(f"got {text!r}, but this machine has {count} {kind} device(s)")
    return text


def _a(what: str) -> str:
    """``what`` with its article: "an audio file", "a PNG cover"."""
    return f"{'an' if what[:1].lower() in 'aeio' else 'a'} {what}"


def _existing(what: str, kind: str) -> Callable[[str], Path]:
    """A parser of a path to an existing ``kind`` ("file" or "folder"); ``what`` names it in errors, and a path
    of the other kind is named as such ("x is a folder, expected an audio file")."""
    is_kind, is_other, other = (
        (Path.is_file, Path.is_dir, "folder") if kind == "file" else (Path.is_dir, Path.is_file, "file")
    )

    def parse(text: str) -> Path:
        path = path_arg(text)
        if is_other(path):
            raise argparse.ArgumentTypeError(f"{text} is a {other}, expected {_a(what)}")
        if not is_kind(path):
            raise argparse.ArgumentTypeError(f"{text}: no such {kind}, expected {_a(what)}")
        return path

    parse.__name__ = kind
    return parse


def existing_file(what: str) -> Callable[[str], Path]:
    """A path to an existing file (``what`` names it: "audio file"); a folder is named as one."""
    return _existing(what, "file")


def as_typed(parse: Callable[[str], object]) -> Callable[[str], str]:
    """``parse`` (:func:`path_arg`, :func:`existing_file`...) as a check alone: the argument as the user typed it
    when ``parse`` accepts it, for messages that name it so (``./a.csv``; a :class:`~pathlib.Path` would make it
    ``a.csv``, and ``~/a.csv`` the home folder's path). Whoever reads the file expands ``~`` itself."""

    def check(text: str) -> str:
        parse(text)
        return text

    check.__name__ = getattr(parse, "__name__", "value")  # argparse's "invalid <name> value"
    return check


def existing_folder(what: str) -> Callable[[str], Path]:
    """A path to an existing folder (``what`` names it: "dataset folder"); a file is named as one."""
    return _existing(what, "folder")


def fusion_checkpoint(text: str) -> Path:
    """A fusion checkpoint (.safetensors), or a training run folder holding ``fusion.safetensors``."""
    path = path_arg(text)
    if path.is_dir():
        inside = path / "fusion.safetensors"
        if not inside.is_file():
            raise argparse.ArgumentTypeError(
                f"{text} is a folder without fusion.safetensors, expected a fusion checkpoint or a training run "
                "folder (nopaingan train --out RUN)"
            )
        return inside
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file, expected a fusion checkpoint (.safetensors)")
    return path


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no notes; results and errors only")


def note(args: argparse.Namespace, text: str) -> None:
    """An informational line on stdout, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stdout)


Parsers = dict[tuple[str, ...], argparse.ArgumentParser]


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Parsers:
    """Every runnable (sub)command's parser by its words, e.g. ``("dataset", "cache")``: for help and tests."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= leaf_parsers(sub, (*path, name))
    return found or {path: parser}
