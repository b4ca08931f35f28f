"""``nopaingan check-cover``, ``nopaingan finish`` and the ``--release`` options of ``nopaingan generate``.

Exit status: ``check-cover`` 0 only when every rule passes, else 1; ``finish`` and ``generate --release`` 0 when
every release cover was written and passes its check, 1 when one was written but fails a rule (the file is
kept: the check says what to change), 2 for a user error (one line, before any model loads; files already
written are kept and named).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..cli_args import add_quiet, existing_file, int_range, note, path_arg
from . import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, PREVIEW_SIZE

NONE = "none"
AUTO = "auto"
MAX_X4_STEPS = 999
CPU_NOTE = (
    "note: x4 diffusion upscaler skipped on the CPU, where it takes hours per cover (about 166 s per denoising "
    "step of each 128 px tile, BENCHMARKS.md); force it with --x4 stabilityai/stable-diffusion-x4-upscaler or "
    "--x4 FOLDER"
)


def text_color(text: str) -> str:
    """``--text-color``: ``auto``, a CSS colour name or ``#rrggbb``, checked when parsed."""
    from ..errors import CoverError
    from .typography import parse_color

    if text != AUTO:
        try:
            parse_color(text)
        except CoverError as exc:
            reason = str(exc).split(": ", 1)[-1]
            raise argparse.ArgumentTypeError(f"got {text!r}: {reason}") from None
    return text


def x4_source(text: str) -> str:
    """``--x4``: ``auto``, ``none``, a hub id or a folder; an empty one is refused, as every path option does."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"got {text!r}, expected auto, none, a hub id or a folder")
    return text


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``check-cover`` and ``finish`` on the ``nopaingan`` parser."""
    from ..cli import add_device_options

    check = sub.add_parser(
        "check-cover",
        help="check a cover against the distributors' rules for cover art",
        description="Each rule the stores publish for cover art, with pass/fail and the value measured: square, "
        f"{MIN_SIZE}-{MAX_SIZE} px a side, RGB with an sRGB profile, JPEG or PNG under 10 MB, sharp, and no text "
        "but the artist and title given. Exit status 0 only when every rule passes for every file. See "
        "docs/release.md.",
    )
    check.add_argument(
        "files",
        type=existing_file("image file (JPEG or PNG)"),
        nargs="+",
        metavar="FILE",
        help="the cover; several are checked one after another (a file named twice is checked once)",
    )
    check.add_argument("--title", help="the release title as in its metadata: the text on the cover must match")
    check.add_argument("--artist", help="the artist name as in the release's metadata")
    check.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list with one object per file: {"file", "passed", "rules"}',
    )
    add_quiet(check)
    check.set_defaults(run=run_check)

    finish = sub.add_parser(
        "finish",
        help="turn covers (PNG/JPEG) into release-ready *_release.jpg files",
        description="Upscale each square cover to --size pixels (x4 diffusion on a GPU, then an ESRGAN-family "
        "model or Lanczos), set the title and artist, write an sRGB *_release.jpg under 10 MB (never over an "
        "existing file) and check it as check-cover does. See docs/release.md.",
    )
    finish.add_argument(
        "images",
        nargs="+",
        type=existing_file("image file (PNG or JPEG)"),
        metavar="IMAGE",
        help="square covers, e.g. generate's PNGs",
    )
    finish.add_argument("--title", default="", help="release title to draw on the cover (default: no text)")
    finish.add_argument("--artist", default="", help="artist name to draw on the cover (default: no text)")
    finish.add_argument("--prompt", help="prompt for the x4 upscaler (default: the one recorded in the image)")
    finish.add_argument("--out", type=path_arg, help="folder for the release covers (default: beside each image)")
    add_release_options(finish, switch=False)
    add_device_options(finish)
    add_quiet(finish)
    finish.set_defaults(run=run_finish)


def add_release_options(parser: argparse.ArgumentParser, switch: bool = True) -> None:
    """Upscaling and typography options; with ``switch``, also ``--release`` and ``--title`` (for generate,
    whose ``--artist`` is then drawn too)."""
    from .typography import AUTO as AUTO_TEXT
    from .typography import POSITIONS
    from .upscale import DEFAULT_X4

    group = parser.add_argument_group("release cover")
    if switch:
        group.add_argument(
            "--release", action="store_true", help="also write a release-ready *_release.jpg of each cover"
        )
        group.add_argument("--title", default="", help="release title drawn on the release cover (default: none)")
    group.add_argument(
        "--size",
        type=int_range(PREVIEW_SIZE, MAX_SIZE),
        default=DEFAULT_SIZE,
        help=f"pixels a side; stores want {MIN_SIZE} to {MAX_SIZE}, smaller sizes make previews that check-cover fails",
    )
    group.add_argument(
        "--x4",
        type=x4_source,
        default=AUTO,
        help=f"x4 diffusion upscaler: '{AUTO}' ({DEFAULT_X4} on a GPU, skipped on the CPU where it takes hours), "
        f"a hub id or folder to use it on any device, or '{NONE}'",
    )
    group.add_argument("--x4-steps", type=int_range(1, MAX_X4_STEPS), default=20, help="x4 upscaler denoising steps")
    group.add_argument(
        "--upscaler-model",
        type=existing_file("ESRGAN-family model file (.safetensors, .pth)"),
        help="ESRGAN-family model file (.safetensors/.pth), e.g. 4x-UltraSharp (default: Lanczos)",
    )
    group.add_argument(
        "--font", type=existing_file("OpenType/TrueType font file (.ttf, .otf)"),
        help="a .ttf/.otf for the text (default: Inter Display, OFL)"
    )  # fmt: skip
    group.add_argument(
        "--text-position", choices=(AUTO_TEXT, *POSITIONS), default=AUTO_TEXT, help="auto: the calmest band"
    )
    group.add_argument(
        "--text-color", type=text_color, default=AUTO_TEXT, help="auto (white or black, WCAG 4.5:1), a name or #rrggbb"
    )


def print_rules(path: Path, rules: list) -> None:
    print(f"{path}:")
    for rule in rules:
        print(f"  {rule.line()}")


def run_check(args: argparse.Namespace) -> int:
    """Check each file in turn (a file named twice, however spelled, once); plain text prints each file's rules as
    they are measured, ``--json`` one list at the end. 0 when every rule of every file passes, else 1; an unreadable
    file is a :class:`~nopaingan_core.errors.CoverError` (exit status 2) naming it."""
    from .check import check_cover

    files: dict[Path, Path] = {}
    for path in args.files:
        files.setdefault(path.resolve(), path)
    passed = True
    reports = []
    for path in files.values():
        rules = check_cover(path, args.title, args.artist)
        ok = all(rule.passed for rule in rules)
        passed &= ok
        if args.json:
            reports.append({"file": str(path), "passed": ok, "rules": [asdict(rule) for rule in rules]})
        else:
            print_rules(path, rules)
    if args.json:
        print(json.dumps(reports, ensure_ascii=False, indent=2))
    return 0 if passed else 1


def _settings(args: argparse.Namespace, seed: int = 0):
    from .upscale import UpscaleSettings

    return UpscaleSettings(size=args.size, steps=args.x4_steps, seed=seed)


def resolve_x4(args: argparse.Namespace) -> None:
    """``--x4 auto``: the x4 diffusion upscaler on an accelerator (CUDA, MPS, XPU), none on the CPU, with a
    note saying why and how to force it."""
    if args.x4 != AUTO:
        return
    from ..cli import device_from_args
    from .upscale import DEFAULT_X4

    device, _ = device_from_args(args)
    if device.type == "cpu":
        args.x4 = NONE
        note(args, CPU_NOTE)
    else:
        args.x4 = DEFAULT_X4


def check_release_options(args: argparse.Namespace) -> None:
    """Everything argparse cannot check, before slow work: a square cover, the font, the title and artist (one
    line each, a font with their glyphs, room for them at ``--size``), and an x4 upscaler that is a local folder
    or a hub id in the cache (or downloadable). One-line errors."""
    from ..hub import check_available, is_local, not_found
    from .typography import check_font, check_text, fit_text, fonts_for

    if getattr(args, "width", None) != getattr(args, "height", None):
        from ..errors import CoverError

        raise CoverError(f"--release needs a square cover: --width {args.width} and --height {args.height} differ")
    preferred = check_font(args.font) if args.font else None
    texts = [check_text(args.title or "", "--title"), check_text(getattr(args, "artist", None) or "", "--artist")]
    if any(texts):
        fit_text(*texts, fonts_for(texts, preferred, lambda _: None), args.size)
    resolve_x4(args)
    if args.x4 != NONE:
        if is_local(args.x4) and not Path(args.x4).expanduser().exists():
            raise not_found(args.x4, "x4 upscaler", "--x4")
        check_available(args.x4, "x4 upscaler", "--x4", "unet/config.json")
        check_x4_folder(args.x4)
    if args.upscaler_model is not None:  # small next to the x4 pipeline: loaded now, so a bad file stops here
        from .upscale import load_upscaler_model

        args.loaded_upscaler = load_upscaler_model(args.upscaler_model)


X4_PIPELINE = "StableDiffusionUpscalePipeline"


def check_x4_folder(source: str) -> None:
    """A local ``--x4`` folder (or the cached hub snapshot) whose ``model_index.json`` names another pipeline,
    or is missing or unreadable, is a one-line ModelLoadError now, before anything loads or samples."""
    from ..errors import ModelLoadError
    from ..hub import is_local

    if is_local(source):
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"--x4 '{source}' is a file; expected a folder with an x4 upscaler ({X4_PIPELINE})")
        index = folder / "model_index.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "model_index.json")
        if not isinstance(cached, str):
            return  # downloaded when it loads; from_pretrained checks it then
        index = Path(cached)
    try:
        spec = json.loads(index.read_text(encoding="utf-8"))
        name = spec.get("_class_name")
    except (OSError, ValueError, AttributeError):
        raise ModelLoadError(
            f"--x4 '{source}': no readable model_index.json; expected a diffusers {X4_PIPELINE} folder "
            "(e.g. stabilityai/stable-diffusion-x4-upscaler)"
        ) from None
    if name != X4_PIPELINE:
        raise ModelLoadError(f"--x4 '{source}': a {name} folder, expected an x4 upscaler ({X4_PIPELINE})")
    if is_local(source):
        check_components(index.parent, spec, f"--x4 '{source}'")


def component_files(cls: str) -> tuple[tuple[str, ...], bool]:
    """What diffusers reads from the folder of a pipeline part of class ``cls``: alternatives for its config
    file (one must exist) and whether it bears weights (a ``.safetensors``)."""
    if cls.endswith("Scheduler"):
        return ("scheduler_config.json",), False
    if "Tokenizer" in cls:
        return ("tokenizer_config.json",), False
    if cls.endswith(("ImageProcessor", "FeatureExtractor")):
        return ("preprocessor_config.json",), False
    return ("config.json",), True


def check_components(folder: Path, index: dict, label: str) -> None:
    """Every part ``model_index.json`` lists (``name: [library, class]``, null ones skipped) has its folder, its
    config file (a tokenizer also its vocabulary, ``tokenizer.json`` or ``vocab.json``) and, for a part with
    weights, ``.safetensors`` files whose headers read (``safe_open``: cheap, no tensor is loaded). Raises a
    one-line ModelLoadError naming the missing or corrupt file, so nothing is sampled or upscaled before."""
    from safetensors import safe_open

    from ..errors import ModelLoadError

    for part, spec in sorted(index.items()):
        if part.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or not all(spec):
            continue
        cls = str(spec[1])
        configs, weights = component_files(cls)
        sub = folder / part
        if not sub.is_dir():
            raise ModelLoadError(f"{label}: model_index.json lists {part} ({cls}) but the folder '{sub}' is missing")
        missing = [name for name in configs if not (sub / name).is_file()]
        if "Tokenizer" in cls and not any((sub / name).is_file() for name in ("tokenizer.json", "vocab.json")):
            missing.append("tokenizer.json or vocab.json")
        if missing:
            raise ModelLoadError(f"{label}: {part} ({cls}) has no {missing[0]} in '{sub}'")
        if not weights:
            continue
        files = sorted(sub.glob("*.safetensors"))
        if not files:
            raise ModelLoadError(
                f"{label}: {part} ({cls}) has no .safetensors weights in '{sub}' (pickled weights are not read)"
            )
        for file in files:
            try:
                with safe_open(str(file), framework="pt"):
                    pass
            except Exception as exc:  # safetensors raises SafetensorError, OSError, ValueError on a bad header
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelLoadError(
                    f"{label}: '{file}' is unreadable or corrupt, not a safetensors file ({reason})"
                ) from exc


def upscaler_sources(args: argparse.Namespace) -> dict:
    """Where the upscalers come from, for the record: the x4 model (an absolute folder, or a hub id) and the
    model upscaler's absolute path and sha256 (None for the ones not used)."""
    from ..cli import sha256
    from ..hub import is_local

    x4 = None if args.x4 == NONE else str(Path(args.x4).expanduser().resolve()) if is_local(args.x4) else args.x4
    model = None
    if args.upscaler_model is not None:
        path = Path(args.upscaler_model).expanduser().resolve()
        model = {"path": str(path), "sha256": sha256(path)}
    return {"x4_model": x4, "upscaler_model": model}


def load_upscalers(args: argparse.Namespace, need_x4: bool = True) -> tuple[Any, Any]:
    """The x4 pipeline (None for ``--x4 none``, or when no image is smaller than ``--size``) and the model
    upscaler (None without ``--upscaler-model``; the one :func:`check_release_options` loaded)."""
    from ..cli import device_from_args
    from .upscale import load_upscaler_model, load_x4

    device, dtype = device_from_args(args)
    x4 = None if args.x4 == NONE or not need_x4 else load_x4(args.x4, device, dtype)
    model = getattr(args, "loaded_upscaler", None)
    if model is None and args.upscaler_model is not None:
        model = load_upscaler_model(args.upscaler_model)
    return x4, None if model is None else model.to(device)


def _finish_all(args: argparse.Namespace, jobs: list[tuple[Path, Any, str, dict]], out: Path | None) -> int:
    """Each job (source file, image, prompt, its record) as a release cover; the x4 pass is seeded with the
    image's own seed (``image_seed`` of generate's record)."""
    from .finish import TextOptions, finish_image, release_path

    need_x4 = any(image.width < args.size for _, image, _, _ in jobs)
    if args.x4 != NONE and not need_x4:
        note(args, f"x4 diffusion upscaler not loaded: every image is already {args.size} px or larger")
    x4, model = load_upscalers(args, need_x4)
    sources = upscaler_sources(args)
    text = TextOptions(args.title, args.artist, args.font, args.text_position, args.text_color)
    failed = 0
    for source, image, prompt, info in jobs:
        seed = info.get("image_seed", info.get("seed", 0))
        result = finish_image(
            image,
            release_path(source, out),
            text,
            prompt,
            _settings(args, seed),
            x4,
            model,
            info,
            note=lambda line: note(args, line),
            sources=sources,
        )
        print_rules(result.path, result.rules)
        failed += not result.passed
    if failed:
        print(f"{failed} release cover(s) fail a rule: see FAIL above")
    return 1 if failed else 0


def run_finish(args: argparse.Namespace) -> int:
    from ..atomic import check_output_folder
    from ..errors import CoverError
    from .finish import TextOptions, check_redraw, load_cover

    if args.out is not None:
        args.out = check_output_folder(args.out, "--out")
    else:
        for path in args.images:
            check_output_folder(path.parent, "IMAGE", label=f"{path} (its release cover goes beside it; or --out)")
    check_release_options(args)
    jobs = []
    for path in args.images:
        image, info = load_cover(path)
        if image.width != image.height:
            raise CoverError(f"image '{path}' is {image.width}x{image.height}; release covers are square")
        if check_redraw(info, TextOptions(args.title, args.artist), f"image '{path}'"):
            check_kept_text_options(args, path)
            note(args, f"note: image '{path}' already has text drawn by finish: it is kept, not drawn again")
        prompt = args.prompt if args.prompt is not None else info.get("prompt", "")
        jobs.append((path, image, prompt, info))
    return _finish_all(args, jobs, args.out)


TEXT_STYLE = (
    ("font", None, "--font"),
    ("text_position", AUTO, "--text-position"),
    ("text_color", AUTO, "--text-color"),
)


def check_kept_text_options(args: argparse.Namespace, path: Path) -> None:
    """A cover whose text is kept (already drawn, not drawn again) cannot take a font, position or colour: they
    would be silently ignored, so giving one is a one-line CoverError naming them."""
    from ..errors import CoverError

    given = [flag for name, default, flag in TEXT_STYLE if getattr(args, name, default) != default]
    if given:
        raise CoverError(
            f"{', '.join(given)}: image '{path}' already has its text drawn (its record says so) and it is kept, "
            "not drawn again, so these options would do nothing; drop them, or finish the cover without text "
            "(e.g. generate's PNG)"
        )


def finish_generated(args: argparse.Namespace, paths: list[Path], records: list[dict]) -> int:
    """``generate --release``: a release cover beside each PNG just written, from its own record (prompt,
    ``image_seed``, ``index``)."""
    from .finish import load_cover

    jobs = [(path, load_cover(path)[0], info["prompt"], info) for path, info in zip(paths, records, strict=True)]
    return _finish_all(args, jobs, None)
