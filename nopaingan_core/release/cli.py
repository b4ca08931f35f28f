"""``nopaingan check-cover``, ``nopaingan finish`` and the ``--release`` options of ``nopaingan generate``.

Exit status: ``check-cover`` 0 only when every rule passes, else 1; ``finish`` and ``generate --release`` 0 when
every release cover was written and passes its check, 1 when one was written but fails a rule (the file is
kept: the check says what to change), 2 for a user error (one line, nothing written).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import DEFAULT_SIZE

NONE = "none"


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``check-cover`` and ``finish`` on the ``nopaingan`` parser."""
    from ..cli import add_device_options

    check = sub.add_parser("check-cover", help="check a cover against the distributors' rules for cover art")
    check.add_argument("file", type=Path, metavar="FILE", help="the cover (JPEG or PNG)")
    check.add_argument("--title", help="the release title as in its metadata: the text on the cover must match")
    check.add_argument("--artist", help="the artist name as in the release's metadata")
    check.add_argument("--json", action="store_true", help="print the rules as JSON")
    check.set_defaults(run=run_check)

    finish = sub.add_parser("finish", help="turn covers (PNG/JPEG) into release-ready *_release.jpg files")
    finish.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="square covers, e.g. generate's PNGs")
    finish.add_argument("--title", default="", help="release title to draw on the cover (default: no text)")
    finish.add_argument("--artist", default="", help="artist name to draw on the cover (default: no text)")
    finish.add_argument("--prompt", help="prompt for the x4 upscaler (default: the one recorded in the image)")
    finish.add_argument("--out", type=Path, help="folder for the release covers (default: beside each image)")
    add_release_options(finish, switch=False)
    add_device_options(finish)
    finish.set_defaults(run=run_finish)


def add_release_options(parser: argparse.ArgumentParser, switch: bool = True) -> None:
    """Upscaling and typography options; with ``switch``, also ``--release`` and ``--title`` (for generate,
    whose ``--artist`` is then drawn too)."""
    from .typography import AUTO, POSITIONS
    from .upscale import DEFAULT_X4

    group = parser.add_argument_group("release cover")
    if switch:
        group.add_argument(
            "--release", action="store_true", help="also write a release-ready *_release.jpg of each cover"
        )
        group.add_argument("--title", default="", help="release title drawn on the release cover (default: none)")
    group.add_argument("--size", type=int, default=DEFAULT_SIZE, help="pixels a side (default: %(default)s)")
    group.add_argument(
        "--x4", default=DEFAULT_X4, help=f"x4 diffusion upscaler id or folder, or '{NONE}' (default: %(default)s)"
    )
    group.add_argument("--x4-steps", type=int, default=20, help="x4 upscaler denoising steps (default: %(default)s)")
    group.add_argument(
        "--upscaler-model", type=Path, help="ESRGAN-family model file (.safetensors/.pth); default: Lanczos"
    )
    group.add_argument("--font", type=Path, help="a .ttf/.otf for the text (default: Inter Display, OFL)")
    group.add_argument("--text-position", choices=(AUTO, *POSITIONS), default=AUTO, help="default: calmest band")
    group.add_argument("--text-color", default=AUTO, help="auto (white or black, WCAG 4.5:1), a name or #rrggbb")


def print_rules(path: Path, rules: list) -> None:
    print(f"{path}:")
    for rule in rules:
        print(f"  {rule.line()}")


def run_check(args: argparse.Namespace) -> int:
    from .check import check_cover

    rules = check_cover(args.file, args.title, args.artist)
    if args.json:
        print(json.dumps([rule.__dict__ for rule in rules], ensure_ascii=False, indent=2))
    else:
        print_rules(args.file, rules)
    return 0 if all(rule.passed for rule in rules) else 1


def _settings(args: argparse.Namespace, seed: int = 0):
    from .upscale import UpscaleSettings

    return UpscaleSettings(size=args.size, steps=args.x4_steps, seed=seed)


def check_release_options(args: argparse.Namespace) -> None:
    """Everything that can be wrong with the options, checked before slow work (CoverError, one line)."""
    from ..hub import is_local, not_found
    from .finish import check_options
    from .typography import check_font, parse_color

    check_options(_settings(args), (getattr(args, "out", None) or Path(".")) / "x.jpg")
    if getattr(args, "width", None) != getattr(args, "height", None):
        from ..errors import CoverError

        raise CoverError(f"--release needs a square cover: --width {args.width} and --height {args.height} differ")
    if args.x4 != NONE and is_local(args.x4) and not Path(args.x4).expanduser().exists():
        raise not_found(args.x4, "x4 upscaler", "--x4")
    if args.font:
        check_font(args.font)
    if args.text_color != "auto":
        parse_color(args.text_color)
    if args.upscaler_model is not None and not args.upscaler_model.expanduser().is_file():
        from .upscale import load_upscaler_model

        load_upscaler_model(args.upscaler_model)  # raises its one-line error


def load_upscalers(args: argparse.Namespace) -> tuple[Any, Any]:
    """The x4 pipeline (None for ``--x4 none``) and the model upscaler (None without ``--upscaler-model``)."""
    from ..cli import device_from_args
    from .upscale import load_upscaler_model, load_x4

    device, dtype = device_from_args(args)
    x4 = None if args.x4 == NONE else load_x4(args.x4, device, dtype)
    model = None if args.upscaler_model is None else load_upscaler_model(args.upscaler_model).to(device)
    return x4, model


def _finish_all(args: argparse.Namespace, jobs: list[tuple[Path, Any, str, dict]], out: Path | None) -> int:
    from .finish import TextOptions, finish_image, release_path

    x4, model = load_upscalers(args)
    text = TextOptions(args.title, args.artist, args.font, args.text_position, args.text_color)
    failed = 0
    for source, image, prompt, info in jobs:
        result = finish_image(
            image, release_path(source, out), text, prompt, _settings(args, info.get("seed", 0)), x4, model, info
        )
        print_rules(result.path, result.rules)
        failed += not result.passed
    if failed:
        print(f"{failed} release cover(s) fail a rule: see FAIL above")
    return 1 if failed else 0


def run_finish(args: argparse.Namespace) -> int:
    from .finish import load_cover

    check_release_options(args)
    jobs = []
    for path in args.images:
        image, info = load_cover(path)
        if image.width != image.height:
            from ..errors import CoverError

            raise CoverError(f"image '{path}' is {image.width}x{image.height}; release covers are square")
        prompt = args.prompt if args.prompt is not None else info.get("prompt", "")
        jobs.append((path, image, prompt, info))
    return _finish_all(args, jobs, args.out)


def finish_generated(args: argparse.Namespace, paths: list[Path], prompt: str, info: dict) -> int:
    """``generate --release``: a release cover beside each PNG just written, from the same prompt and seed."""
    from .finish import load_cover

    return _finish_all(args, [(p, load_cover(p)[0], prompt, info) for p in paths], None)
