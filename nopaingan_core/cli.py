"""Subcommands of the core library: ``demo``, ``generate``, ``encode`` and ``tag``. Each parses its options and
calls the library; nothing here computes anything the ComfyUI nodes would do differently."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .release import cli as release_cli

if TYPE_CHECKING:
    import torch

from .cli_args import (
    MAX_SEED,
    UsageError,
    add_quiet,
    choice,
    device_name,
    device_syntax,
    existing_file,
    float_range,
    fusion_checkpoint,
    given_options,
    int_range,
    multiple_of,
    non_empty,
    note,
    path_arg,
    positive_float,
    prompt_template,
)

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
MAX_STEPS = 999  # the schedulers' 1000 training timesteps, less one
MAX_NUM = 1000
MAX_SIZE = 4096
MAX_GUIDANCE = 50.0
MAX_STRENGTH = 4.0
DEFAULT_STRENGTH = 1.0
PNG_KEY = "nopaingan"  # the PNG text chunk holding a cover's record (JSON)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the core subcommands on the ``nopaingan`` parser."""
    from .audio import CLIP_SECONDS
    from .encoders import DEFAULT_MODELS, ENCODER_KINDS
    from .prompt import DEFAULT_TEMPLATE
    from .sampling import BACKENDS, DEFAULT_SD, SCHEDULERS
    from .tagging import DEFAULT_CLAP, TOP_K, WINDOWS

    audio_file = existing_file("audio file (wav, mp3, flac, ogg, opus, m4a)")
    gen = sub.add_parser(
        "generate",
        help="album covers from a song and its album name and genre",
        description="Album covers from the album prompt, fused with the song's sound when a fusion checkpoint "
        "is given. Each PNG records everything needed to make it again: `nopaingan generate --from-png COVER.png`.",
    )
    gen.add_argument("--audio", type=audio_file, help="the song (wav, mp3, flac, ogg, opus, m4a); needed with --fusion")
    gen.add_argument("--album", type=non_empty, help="album name (required unless --from-png)")
    gen.add_argument("--genre", type=non_empty, help="genre words (required unless --from-png)")
    gen.add_argument("--artist", default="", help="artist name, added to the prompt")
    gen.add_argument(
        "--prompt-template", type=prompt_template, default=DEFAULT_TEMPLATE, help="fields: {album} {genre} {artist}"
    )
    gen.add_argument("--negative", default="", help="negative prompt for classifier-free guidance")
    gen.add_argument("--sd", default=DEFAULT_SD, help="diffusers repo id or folder")
    gen.add_argument(
        "--mir",
        help="music encoder id or folder (default: the fusion checkpoint's encoder, "
        f"else {DEFAULT_MODELS['codified-lm']})",
    )
    gen.add_argument(
        "--fusion",
        type=fusion_checkpoint,
        help="fusion weights (.safetensors) or a training run folder holding fusion.safetensors; without it: text only",
    )
    gen.add_argument(
        "--strength",
        type=float_range(0.0, MAX_STRENGTH),
        help="how much music enters the conditioning, 0: none (needs --fusion; default: 1)",
    )
    gen.add_argument("--scheduler", choices=SCHEDULERS, default="pndm", help="sampler")
    gen.add_argument("--steps", type=int_range(1, MAX_STEPS), default=20, help="denoising steps")
    gen.add_argument(
        "--guidance", type=float_range(0.0, MAX_GUIDANCE), default=7.5, help="classifier-free guidance scale, <=1: off"
    )
    gen.add_argument("--seed", type=int_range(0, MAX_SEED), default=0, help="image i of the batch uses seed + i")
    gen.add_argument("--num", type=int_range(1, MAX_NUM), default=1, help="images to generate")
    gen.add_argument("--width", type=multiple_of(8, 8, MAX_SIZE), default=256, help="image width in pixels")
    gen.add_argument("--height", type=multiple_of(8, 8, MAX_SIZE), default=256, help="image height in pixels")
    gen.add_argument(
        "--offset",
        type=float_range(0.0),
        help="start (s) of the 25 s clip; default: the most representative window",
    )
    gen.add_argument(
        "--auto-tags",
        action="store_true",
        help="add the song's top moods and instruments, heard by a music CLAP model, to the prompt (needs --audio)",
    )
    gen.add_argument("--clap", default=DEFAULT_CLAP, help="music CLAP id or folder for --auto-tags")
    gen.add_argument("--top-k", type=int_range(1), default=TOP_K, help="tags per category with --auto-tags")
    gen.add_argument("--out", type=path_arg, default=Path("outputs"), help="folder for the covers")
    gen.add_argument("--overwrite", action="store_true", help="replace covers of the same name instead of numbering")
    gen.add_argument(
        "--from-png",
        type=existing_file("PNG cover made by nopaingan generate"),
        metavar="COVER.png",
        help="make this cover again, bit for bit, from the settings it records (other options: --out, --device, "
        "--overwrite, --quiet)",
    )
    gen.add_argument(
        "--cfg-cutoff",
        type=float_range(0.0, 1.0),
        default=1.0,
        help="fraction of the steps after which guidance stops and only the conditional UNet branch runs "
        "(faster; 1 = guidance throughout)",
    )
    gen.add_argument(
        "--deep-cache",
        type=int_range(1, MAX_STEPS),
        default=1,
        help="run the full UNet every N steps and only its outer blocks, on cached deep features, in between "
        "(DeepCache; faster; 1 = off)",
    )
    gen.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="openvino: UNet, VAE decoder and text encoder on OpenVINO's CPU runtime (extra [openvino])",
    )
    gen.add_argument("--int8-weights", action="store_true", help="with --backend openvino: int8 weights (NNCF)")
    gen.add_argument(
        "--openvino-cache", type=path_arg, help="converted models, OpenVINO IR (default: ~/.cache/nopaingan/openvino)"
    )
    add_device_options(gen, dtype_default="auto")
    add_quiet(gen)
    release_cli.add_release_options(gen)
    gen.set_defaults(run=run_generate)

    tag = sub.add_parser(
        "tag",
        help="zero-shot mood, genre, instrument and energy tags and the tempo of a song",
        description="Zero-shot tags of a whole song with a music CLAP model, and its tempo. See docs/tagging.md.",
    )
    tag.add_argument("--audio", type=audio_file, required=True, help="the song (wav, mp3, flac, ogg, opus, m4a)")
    tag.add_argument("--clap", default=DEFAULT_CLAP, help="music CLAP id or folder")
    tag.add_argument("--top-k", type=int_range(1), default=TOP_K, help="tags per category")
    tag.add_argument("--windows", type=int_range(1), default=WINDOWS, help="10 s windows spread over the song")
    tag.add_argument(
        "--labels", type=path_arg, help="folder of label files, one *.txt per category (default: built in)"
    )
    tag.add_argument("--json", action="store_true", help="print JSON instead of one tag per line")
    add_device_options(tag)
    add_quiet(tag)
    tag.set_defaults(run=run_tag)

    enc = sub.add_parser(
        "encode",
        help="write a song's music embedding to a .safetensors file",
        description="The music encoder's hidden states of a 25 s clip of the song, with the encoder, layer and "
        "clip window in the file's metadata.",
    )
    enc.add_argument("--audio", type=audio_file, required=True, help="the song (wav, mp3, flac, ogg, opus, m4a)")
    enc.add_argument("--mir", default=DEFAULT_MODELS["codified-lm"], help="music encoder id or folder")
    enc.add_argument("--kind", choices=ENCODER_KINDS, help="encoder kind (default: from the model's config)")
    enc.add_argument("--layer", type=int_range(0), help="hidden layer to take (default: a middle layer)")
    enc.add_argument("--offset", type=float_range(0.0), help="start (s) of the clip; default: the most representative")
    enc.add_argument("--duration", type=positive_float, default=CLIP_SECONDS, help="clip length in seconds")
    enc.add_argument("--out", type=path_arg, required=True, metavar="EMB.safetensors", help="file to write")
    enc.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_device_options(enc)
    add_quiet(enc)
    enc.set_defaults(run=run_encode)

    demo = sub.add_parser(
        "demo",
        help="offline end-to-end run on tiny random models",
        description="Builds tiny randomly initialised models (no download) and runs encode, fusion and generation "
        "end to end; the covers are noise that proves the pipeline runs.",
    )
    demo.add_argument("--out", type=path_arg, default=Path("outputs/demo"), help="folder for the song and covers")
    demo.add_argument(
        "--models-dir", type=path_arg, default=default_models_dir(), help="where the tiny models are saved"
    )
    add_quiet(demo)
    demo.set_defaults(run=run_demo)
    release_cli.add_commands(sub)


def default_models_dir() -> Path:
    from .hub import cache_home

    return cache_home("tiny-models")


def add_device_options(parser: argparse.ArgumentParser, dtype_default: str = "fp32") -> None:
    """``--device`` and ``--dtype``, shared by every command that runs a model (``device_from_args`` reads them).
    ``--dtype auto`` is the fastest native precision of the device (``precision.auto_dtype``)."""
    parser.add_argument(
        "--device", type=device_name, default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:1..."
    )
    parser.add_argument(
        "--dtype",
        choices=[*sorted(DTYPES), "auto"],
        default=dtype_default,
        help="compute dtype; auto: bf16 on CPUs with native bf16 and on GPUs that support it, fp16 on other GPUs, "
        "else fp32",
    )


def device_from_args(args: argparse.Namespace) -> tuple[torch.device, torch.dtype]:
    import torch

    from .precision import resolve_dtype

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device), resolve_dtype(args.dtype, device)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "album"


def sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


FROM_PNG_OPTIONS = {"from_png", "out", "device", "overwrite", "quiet", "openvino_cache", "release"}
RELEASE_ONLY = ("title", "size", "x4", "x4_steps", "upscaler_model", "font", "text_position", "text_color")


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_generate(args: argparse.Namespace) -> None:
    """Option combinations argparse cannot see, checked before anything loads."""
    given = given_options(args)
    release_only = [_option(n) for n in RELEASE_ONLY if n in given]
    if release_only and not args.release:
        raise UsageError(f"{', '.join(release_only)}: options of the release cover, but there is no --release; "
                         "add --release or drop them")  # fmt: skip
    if args.from_png is not None:
        others = sorted(_option(n) for n in given - FROM_PNG_OPTIONS - set(RELEASE_ONLY))
        if others:
            raise UsageError(
                f"--from-png takes every setting from the cover's record; drop {', '.join(others)} (with --from-png "
                "only --out, --device, --overwrite, --quiet, --openvino-cache and the --release options apply)"
            )
        return
    missing = [f"--{n}" for n in ("album", "genre") if getattr(args, n) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)} (or --from-png COVER.png)")
    if args.fusion is None and args.strength is not None:
        raise UsageError(
            f"--strength {args.strength:g}: sets how much music the fusion adds, but there is no --fusion; "
            "add --fusion CKPT --audio SONG or drop --strength"
        )
    if args.fusion is not None and args.audio is None:
        raise UsageError("--fusion needs --audio FILE: the song whose sound goes into the cover")
    if args.auto_tags and args.audio is None:
        raise UsageError("--auto-tags needs --audio FILE: the song whose moods and instruments are heard")


def _record_from_png(path: Path) -> dict:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            raw = getattr(image, "text", {}).get(PNG_KEY)
    except (OSError, UnidentifiedImageError) as exc:
        raise UsageError(f"--from-png {path}: not a readable PNG ({exc})") from exc
    try:
        record = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or "image_seed" not in record:
        raise UsageError(f"--from-png {path}: no complete nopaingan record in the PNG (made by an older version?)")
    return check_record(record, path)


def _record_checks() -> dict[str, tuple[type | tuple[type, ...], Callable[[str], object] | None, bool]]:
    """Each field of a cover's record: the JSON types it may have, the CLI option's validator, and whether it is
    required (optional ones were added after the first records and have the option's default)."""
    from .sampling import BACKENDS, SCHEDULERS

    number = (int, float)
    return {
        "prompt": (str, None, True),
        "negative": (str, None, False),
        "album": (str, non_empty, True),
        "sd": (str, non_empty, True),
        "audio": (str, None, True),
        "fusion": (str, None, True),
        "strength": (number, float_range(0.0, MAX_STRENGTH), True),
        "backend": (str, choice(BACKENDS), False),
        "int8_weights": (bool, None, False),
        "scheduler": (str, choice(SCHEDULERS), True),
        "steps": (int, int_range(1, MAX_STEPS), True),
        "guidance": (number, float_range(0.0, MAX_GUIDANCE), True),
        "width": (int, multiple_of(8, 8, MAX_SIZE), True),
        "height": (int, multiple_of(8, 8, MAX_SIZE), True),
        "cfg_cutoff": (number, float_range(0.0, 1.0), False),
        "deep_cache": (int, int_range(1, MAX_STEPS), False),
        "seed": (int, int_range(0, MAX_SEED), True),
        "num": (int, int_range(1, MAX_NUM), True),
        "index": (int, int_range(0, MAX_NUM - 1), True),
        "image_seed": (int, int_range(0, MAX_SEED + MAX_NUM), True),
        "dtype": (str, choice(DTYPES), True),
        "device": (str, device_syntax, False),
        "mir": ((str, type(None)), None, False),
        "offset": ((int, float, type(None)), None, False),
    }


def check_record(record: dict, png: Path) -> dict:
    """``record`` (a cover's PNG record) checked whole, before anything loads: every field the regeneration
    reads, of the right JSON type and in the range its CLI option accepts. Raises one-line :class:`UsageError`
    ``--from-png FILE: incomplete or invalid record: FIELD ...``."""

    def bad(field: str, why: str) -> UsageError:
        return UsageError(f"--from-png {png}: incomplete or invalid record: {field} {why}")

    for field, (types, validate, required) in _record_checks().items():
        if field not in record:
            if required:
                raise bad(field, "is missing (made by an older version?)")
            continue
        value = record[field]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
            raise bad(field, f"is {json.dumps(value)}, of the wrong type")
        if validate is not None and value is not None:
            try:
                validate(str(value))
            except argparse.ArgumentTypeError as exc:
                raise bad(field, str(exc)) from None
    if record.get("offset") is not None and not record["offset"] >= 0:
        raise bad("offset", f"is {record['offset']}, expected a number of at least 0")
    if record["index"] >= record["num"]:
        raise bad("index", f"is {record['index']}, but the batch had num {record['num']} images")
    if record["image_seed"] != record["seed"] + record["index"]:
        raise bad(
            "image_seed", f"is {record['image_seed']}, expected seed + index = {record['seed'] + record['index']}"
        )
    if record["fusion"]:
        digest = record.get("fusion_sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise bad("fusion_sha256", f"is {json.dumps(digest)}, expected the fusion file's sha256 (64 hex digits)")
        if not record["audio"]:
            raise bad("audio", "is empty, but the cover was made with a fusion, which needs the song")
    return record


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def run_generate(args: argparse.Namespace) -> int:
    from .atomic import check_output_folder
    from .hub import check_available

    _check_generate(args)
    args.out = check_output_folder(args.out, "--out")  # as mkdir -p names it (atomic.made_path)
    if getattr(args, "openvino_cache", None) is not None:  # converted models: tried now, written there
        args.openvino_cache = check_output_folder(args.openvino_cache, "--openvino-cache")
    if args.from_png is not None:
        record = _record_from_png(args.from_png)
        _check_record_models(record, args.from_png)
        if args.release:  # the recorded size is the one the release cover starts from
            args.width, args.height = record["width"], record["height"]
            release_cli.check_release_options(args)
        return _regenerate(args, record)
    check_available(args.sd, "Stable Diffusion model", "--sd", "unet/config.json")
    check_available(args.mir if args.fusion else None, "music encoder", "--mir")
    check_available(args.clap if args.auto_tags else None, "CLAP model", "--clap")
    if args.release:
        release_cli.check_release_options(args)  # the x4 upscaler too: a missing one stops before sampling
    if args.audio is not None and args.fusion is None:
        tags = "only its tags reach the prompt" if args.auto_tags else "--auto-tags adds its moods to the prompt"
        note(args, f"note: without --fusion the song {args.audio} is not used for the image; {tags}")
    device, dtype = device_from_args(args)
    extra = _auto_tags(args, device) if args.auto_tags else ""
    from .prompt import album_prompt

    try:
        prompt = album_prompt(args.album, args.genre, args.artist, extra=extra, template=args.prompt_template)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    record = {
        "prompt": prompt,
        "negative": args.negative,
        "album": args.album,
        "sd": _absolute(args.sd),
        "audio": _absolute(args.audio or ""),
        "fusion": _absolute(args.fusion or ""),
        "strength": DEFAULT_STRENGTH if args.strength is None else args.strength,
        "auto_tags": extra,
        "backend": args.backend,
        "int8_weights": args.int8_weights,
    }
    if args.fusion is not None:
        record |= {"fusion_sha256": sha256(args.fusion), "mir": _absolute(args.mir), "offset": args.offset}
    else:
        note(args, "no --fusion checkpoint: generating from the album prompt alone (the text-only baseline)")
    return _generate(args, record, device, dtype)


def _absolute(source: str | os.PathLike | None) -> str | None:
    """A local file or folder as an absolute path (so ``--from-png`` works from any folder); hub ids and ""
    unchanged."""
    from .hub import expand, is_local

    if source is None or str(source) == "" or not is_local(source):
        return None if source is None else str(source)
    return str(expand(source).absolute())


def _check_record_models(record: dict, png: Path) -> None:
    """The record's models and files, before anything loads; errors say they come from the PNG's record."""
    from .errors import NoPainGanError
    from .hub import check_available, is_local

    where = f"--from-png {png}: the record's"
    for field, what in (("sd", "Stable Diffusion model"), ("mir", "music encoder")):
        source = record.get(field) if field == "sd" or record["fusion"] else None
        if not source:
            continue
        if is_local(source) and not Path(source).expanduser().exists():
            raise UsageError(f"{where} {field} {what} folder {source} is not there any more")
        try:
            check_available(source, what, field, "unet/config.json" if field == "sd" else "config.json")
        except NoPainGanError as exc:
            raise type(exc)(f"{where} {field}: {exc}") from exc


def _regenerate(args: argparse.Namespace, record: dict) -> int:
    """The cover ``args.from_png`` again: its prompt, models, clip window and sampler settings, its own seed."""
    import torch

    device = torch.device(args.device) if args.device != "auto" else torch.device(record.get("device", "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        device = torch.device("cpu")
    from .precision import resolve_dtype

    dtype = resolve_dtype(record["dtype"])
    fusion = Path(record["fusion"]) if record.get("fusion") else None
    if fusion is not None:
        if not fusion.is_file():
            raise UsageError(
                f"--from-png {args.from_png}: the record's fusion checkpoint {fusion} is not there any more"
            )
        if sha256(fusion) != record["fusion_sha256"]:
            raise UsageError(f"--from-png {args.from_png}: {fusion} changed since the cover was made (sha256 differs)")
        if not Path(record["audio"]).is_file():
            raise UsageError(f"--from-png {args.from_png}: the record's song {record['audio']} is not there any more")
    if device != torch.device(record.get("device", "cpu")) or record.get("torch") != torch.__version__:
        note(args, "note: another device or torch version than the cover's: pixels may differ in the last bits")
    record = record | {"regenerated_from": str(args.from_png)}
    from .errors import AudioError, CheckpointError, ModelLoadError, ModelNotFoundError

    try:
        return _generate(args, record, device, dtype)
    except (AudioError, CheckpointError, ModelLoadError, ModelNotFoundError) as exc:  # its models, song, fusion
        raise type(exc)(f"--from-png {args.from_png}: from the record: {exc}") from exc


def _generate(args: argparse.Namespace, record: dict, device, dtype) -> int:
    """Encode the music (when there is a fusion), sample and write one PNG per image, each with its record."""
    import torch
    from tqdm import tqdm

    from . import __version__
    from .atomic import save_png
    from .generate import SamplerSettings, generate_covers
    from .precision import DTYPE_NAMES
    from .sampling import load_minisd, to_pil

    music = fusion = None
    if record["fusion"]:
        from .audio import load_audio
        from .checkpoint import load_fusion
        from .encoders import detect_kind, load_encoder

        fusion = load_fusion(record["fusion"], device)
        model = record.get("mir") or fusion.encoder.model
        kind = fusion.encoder.kind if not record.get("mir") else detect_kind(model)
        encoder = load_encoder(kind, model, fusion.encoder.layer, device)
        fusion.check_encoder(encoder.info)
        clip = load_audio(record["audio"], record.get("offset"))
        window = f"from {clip.offset:.1f} s for {clip.duration:.1f} s"
        note(args, f"music: {record['audio']} {window}, {encoder.info.describe()}")
        music = encoder.encode(clip)
        record |= {"mir": model, "offset": clip.offset, "duration": clip.duration, "encoder": encoder.info.to_dict()}
        del encoder
    sd = load_minisd(  # generation only: no gradients needed
        record["sd"],
        device,
        dtype,
        prepack=True,
        backend=record.get("backend", "torch"),
        int8_weights=record.get("int8_weights", False),
        cache_dir=getattr(args, "openvino_cache", None),
    )
    if args.from_png is None:
        settings = SamplerSettings(
            args.scheduler,
            args.steps,
            args.guidance,
            args.seed,
            args.num,
            args.width,
            args.height,
            cfg_cutoff=args.cfg_cutoff,
            deep_cache=args.deep_cache,
        )
        first = 0
    else:
        names = ("scheduler", "steps", "guidance", "width", "height", "cfg_cutoff", "deep_cache")
        defaults = SamplerSettings()
        settings = SamplerSettings(
            **{n: record.get(n, getattr(defaults, n)) for n in names}, seed=record["image_seed"], num=1
        )
        first = record["index"]
    note(args, f"prompt: {record['prompt']}")
    note(args, f"precision: {sd.precision}" + (" (--dtype auto)" if getattr(args, "dtype", None) == "auto" else ""))
    with tqdm(total=settings.num * settings.steps, desc="sampling", unit="step", disable=args.quiet) as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        images = generate_covers(
            sd, record["prompt"], record.get("negative", ""), music, fusion, record["strength"], settings, progress
        )
    record |= {
        "nopaingan": __version__,
        "torch": torch.__version__,
        "device": str(device),
        "dtype": DTYPE_NAMES[dtype],
        "precision": sd.precision,
        **{k: v for k, v in settings.__dict__.items() if k not in ("seed", "num")},
        "seed": record.get("seed", settings.seed),
        "num": record.get("num", settings.num),
    }
    stem = f"{_slug(record['album'])}_{record['seed']}"
    paths, infos = [], []
    for i, image in enumerate(to_pil(images)):
        index = first + i
        info = record | {"index": index, "image_seed": record["seed"] + index}
        path = args.out / f"{stem}_{index}.png"
        path = save_png(image, path, {PNG_KEY: json.dumps(info)}, overwrite=args.overwrite)
        paths.append(path)
        infos.append(info)
        print(path)
    return release_cli.finish_generated(args, paths, infos) if args.release else 0


def _auto_tags(args: argparse.Namespace, device) -> str:
    """Prompt words from the song's top moods and instruments over windows of the whole song, heard in fp32 as
    ``nopaingan tag`` and the Music Tags node hear them: the words must not depend on the precision the cover is
    drawn in (in bf16 close scores can swap places)."""
    from .tagging import MusicTagger

    result = MusicTagger(args.clap, device=device).tag(args.audio)
    words = result.prompt_words(k=args.top_k)
    note(args, f"auto tags from {len(result.windows)} windows of {args.audio}: {words}")
    return words


def run_tag(args: argparse.Namespace) -> int:
    from .hub import check_available
    from .tagging import MusicTagger

    check_available(args.clap, "CLAP model", "--clap")
    device, dtype = device_from_args(args)
    result = MusicTagger(args.clap, args.labels, device, dtype).tag(args.audio, windows=args.windows)
    if args.json:
        print(json.dumps({"model": args.clap} | result.to_dict(args.top_k), indent=2))
    else:
        print(result.to_text(args.top_k))
    return 0


def check_encoder_kind(model: str, kind: str | None, option: str = "--mir") -> str:
    """The encoder kind to load ``model`` as: ``kind`` when given and the folder agrees, else the folder's."""
    from .encoders import detect_kind
    from .hub import folder_kind, is_local

    if kind is not None and not is_local(model):
        return kind
    found = detect_kind(model) if kind is None or (Path(model).expanduser() / "config.json").is_file() else kind
    if kind is not None and found != kind:
        raise UsageError(
            f"{option} {model}: this folder holds a {folder_kind(model) or found} model, not a {kind} encoder; "
            f"use --kind {found} or another folder"
        )
    return found


def run_encode(args: argparse.Namespace) -> int:
    from .atomic import check_output_file, save_safetensors
    from .audio import load_audio
    from .encoders import load_encoder
    from .errors import OutputError
    from .hub import check_available

    out = check_output_file(args.out, "--out", args.overwrite, suffix=".safetensors")
    check_available(args.mir, "music encoder", "--mir")
    kind = check_encoder_kind(args.mir, args.kind)
    device, dtype = device_from_args(args)
    encoder = load_encoder(kind, args.mir, args.layer, device, dtype)
    embedding = encoder.encode(load_audio(args.audio, args.offset, args.duration), max_seconds=args.duration)
    meta = embedding.metadata() | {"audio": str(args.audio)}
    try:  # without --overwrite, never a file another process wrote there since the check
        save_safetensors({"embedding": embedding.features.contiguous()}, out, meta, replace=args.overwrite)
    except FileExistsError:
        raise OutputError(
            f"--out {out}: file exists (written while this encoded); choose another name or pass --overwrite"
        ) from None
    shape = "x".join(map(str, embedding.features.shape))
    print(
        f"{out}: {shape} {embedding.encoder.describe()} embedding of {args.audio} "
        f"({embedding.offset:.1f}-{embedding.offset + embedding.duration:.1f} s)"
    )
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from . import __version__
    from .atomic import check_output_folder, save_png, temporary_beside
    from .audio import save_wav
    from .checkpoint import new_fusion, save_fusion
    from .encoders import ENCODER_KINDS, load_encoder
    from .generate import SamplerSettings, generate_covers
    from .prompt import album_prompt
    from .sampling import load_minisd, to_pil
    from .synth import synth_song
    from .tiny import build_tiny_models

    args.out = check_output_folder(args.out, "--out")
    args.models_dir = check_output_folder(args.models_dir, "--models-dir")
    note(
        args,
        "demo: every model here is tiny and randomly initialised (no download needed); the covers are "
        "noise that proves the whole pipeline runs, not album art",
    )
    paths = build_tiny_models(args.models_dir)
    note(args, f"tiny models in {args.models_dir} (use them with --sd {paths['sd']} --mir {paths['codified-lm']})")
    args.out.mkdir(parents=True, exist_ok=True)
    song = synth_song(seconds=8.0)
    wav = args.out / "demo_song.wav"
    with temporary_beside(wav) as tmp:
        save_wav(song, tmp)  # WAV whatever the temporary name: the format is given, not guessed
    embeddings = {}
    for kind in ENCODER_KINDS:
        encoder = load_encoder(kind, str(paths[kind]))
        embeddings[kind] = encoder.encode(song)
        note(args, f"{kind}: {tuple(embeddings[kind].features.shape)} embedding ({encoder.info.describe()})")
    fusion = new_fusion(embeddings["codified-lm"].encoder, gate=1.0)  # open: the random music path shows
    fusion_path = save_fusion(fusion, args.models_dir / "fusion" / "demo-random.safetensors")
    sd = load_minisd(str(paths["sd"]), prepack=True)
    prompt = album_prompt("Tiny Random Weights", "synthwave")
    settings = SamplerSettings(steps=10, num=2, seed=0)
    text_only = generate_covers(sd, prompt, settings=settings)
    fused = generate_covers(sd, prompt, music=embeddings["codified-lm"], fusion=fusion, settings=settings)
    for name, images in (("text_only", text_only), ("music_fusion", fused)):
        for i, image in enumerate(to_pil(images)):
            info = {"prompt": prompt, "demo": True, "nopaingan": __version__, "index": i}
            save_png(image, args.out / f"{name}_{i}.png", {PNG_KEY: json.dumps(info)}, overwrite=False)
    change = (fused - text_only).abs().mean().item()
    print(f"wrote {args.out}/text_only_*.png and music_fusion_*.png (mean pixel change from music: {change:.3f})")
    note(
        args,
        f"try: nopaingan generate --sd {paths['sd']} --fusion {fusion_path} --audio {wav} "
        f"--album 'My Album' --genre rock --out {args.out}",
    )
    note(args, f"try: nopaingan tag --clap {paths['clap']} --audio {wav}")
    return 0
