"""Subcommands of the core library: ``demo``, ``generate``, ``encode`` and ``tag``. Each parses its options and
calls the library; nothing here computes anything the ComfyUI nodes would do differently."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the core subcommands on the ``nopaingan`` parser."""
    from .audio import CLIP_SECONDS
    from .encoders import DEFAULT_MODELS, ENCODER_KINDS
    from .prompt import DEFAULT_TEMPLATE
    from .sampling import BACKENDS, DEFAULT_SD, SCHEDULERS
    from .tagging import DEFAULT_CLAP, TOP_K, WINDOWS

    gen = sub.add_parser("generate", help="album covers from a song and its album name and genre")
    gen.add_argument("--audio", type=Path, help="the song (wav, mp3, flac, ogg, opus, m4a); needed with --fusion")
    gen.add_argument("--album", required=True)
    gen.add_argument("--genre", required=True)
    gen.add_argument("--artist", default="")
    gen.add_argument("--prompt-template", default=DEFAULT_TEMPLATE, help="fields: {album} {genre} {artist}")
    gen.add_argument("--negative", default="", help="negative prompt for classifier-free guidance")
    gen.add_argument("--sd", default=DEFAULT_SD, help="diffusers repo id or folder (default: %(default)s)")
    gen.add_argument(
        "--mir",
        help="music encoder id or folder (default: the fusion checkpoint's encoder, "
        f"else {DEFAULT_MODELS['codified-lm']})",
    )
    gen.add_argument("--fusion", type=Path, help="fusion weights (.safetensors); without it: text only")
    gen.add_argument("--strength", type=float, default=1.0, help="how much music enters the conditioning")
    gen.add_argument("--scheduler", choices=SCHEDULERS, default="pndm")
    gen.add_argument("--steps", type=int, default=20)
    gen.add_argument("--guidance", type=float, default=7.5)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--num", type=int, default=1, help="images to generate")
    gen.add_argument("--width", type=int, default=256)
    gen.add_argument("--height", type=int, default=256)
    gen.add_argument("--offset", type=float, help="start (s) of the 25 s clip; default: the most representative")
    gen.add_argument(
        "--auto-tags",
        action="store_true",
        help="add the song's top moods and instruments, heard by a music CLAP model, to the prompt (needs --audio)",
    )
    gen.add_argument(
        "--clap", default=DEFAULT_CLAP, help="music CLAP id or folder for --auto-tags (default: %(default)s)"
    )
    gen.add_argument("--top-k", type=_positive, default=TOP_K, help="tags per category with --auto-tags")
    gen.add_argument(
        "--cfg-cutoff",
        type=float,
        default=1.0,
        help="fraction of the steps after which guidance stops and only the conditional UNet branch runs "
        "(faster; default: %(default)s = guidance throughout)",
    )
    gen.add_argument(
        "--deep-cache",
        type=_positive,
        default=1,
        help="run the full UNet every N steps and only its outer blocks, on cached deep features, in between "
        "(DeepCache; faster; default: %(default)s = off)",
    )
    gen.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="openvino: UNet, VAE decoder and text encoder on OpenVINO's CPU runtime (extra [openvino])",
    )
    gen.add_argument("--int8-weights", action="store_true", help="with --backend openvino: int8 weights (NNCF)")
    gen.add_argument("--openvino-cache", type=Path, help="converted and compiled models (default: ~/.cache/nopaingan)")
    gen.add_argument("--out", type=Path, default=Path("outputs"))
    add_device_options(gen, dtype_default="auto")
    gen.set_defaults(run=run_generate)

    tag = sub.add_parser("tag", help="zero-shot mood, genre, instrument and energy tags and the tempo of a song")
    tag.add_argument("--audio", type=Path, required=True, help="the song (wav, mp3, flac, ogg, opus, m4a)")
    tag.add_argument("--clap", default=DEFAULT_CLAP, help="music CLAP id or folder (default: %(default)s)")
    tag.add_argument("--top-k", type=_positive, default=TOP_K, help="tags per category (default: %(default)s)")
    tag.add_argument(
        "--windows", type=_positive, default=WINDOWS, help="10 s windows spread over the song (default: %(default)s)"
    )
    tag.add_argument("--labels", type=Path, help="folder of label files, one *.txt per category (default: built in)")
    tag.add_argument("--json", action="store_true", help="print JSON instead of one tag per line")
    add_device_options(tag)
    tag.set_defaults(run=run_tag)

    enc = sub.add_parser("encode", help="write a song's music embedding to a .safetensors file")
    enc.add_argument("--audio", type=Path, required=True)
    enc.add_argument("--mir", default=DEFAULT_MODELS["codified-lm"], help="music encoder id or folder")
    enc.add_argument("--kind", choices=ENCODER_KINDS, help="encoder kind (default: from the model's config)")
    enc.add_argument("--layer", type=int, help="hidden layer to take (default: a middle layer)")
    enc.add_argument("--offset", type=float, help="start (s) of the clip; default: the most representative")
    enc.add_argument("--duration", type=float, default=CLIP_SECONDS)
    enc.add_argument("--out", type=Path, required=True, help="EMB.safetensors")
    add_device_options(enc)
    enc.set_defaults(run=run_encode)

    demo = sub.add_parser("demo", help="offline end-to-end run on tiny random models")
    demo.add_argument("--out", type=Path, default=Path("outputs/demo"))
    demo.add_argument(
        "--models-dir",
        type=Path,
        default=default_models_dir(),
        help="where the tiny models are saved (default: %(default)s)",
    )
    demo.set_defaults(run=run_demo)


def default_models_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "nopaingan" / "tiny-models"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, found {value}")
    return value


def add_device_options(parser: argparse.ArgumentParser, dtype_default: str = "fp32") -> None:
    """``--device`` and ``--dtype``, shared by every command that runs a model (``device_from_args`` reads them).
    ``--dtype auto`` is the fastest native precision of the device (``precision.auto_dtype``)."""
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available)")
    parser.add_argument(
        "--dtype",
        choices=[*sorted(DTYPES), "auto"],
        default=dtype_default,
        help="auto: bf16 on CPUs with native bf16 and on GPUs that support it, fp16 on other GPUs, else fp32 "
        "(default: %(default)s)",
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


def run_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .audio import load_audio
    from .checkpoint import load_fusion
    from .encoders import detect_kind, load_encoder
    from .errors import NoPainGanError
    from .generate import SamplerSettings, generate_covers
    from .prompt import album_prompt
    from .sampling import load_minisd, to_pil

    device, dtype = device_from_args(args)
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
    extra = ""
    if args.auto_tags:
        if args.audio is None:
            raise NoPainGanError("--auto-tags needs --audio FILE: the song whose moods and instruments are heard")
        extra = _auto_tags(args, device, dtype)
    prompt = album_prompt(args.album, args.genre, args.artist, extra=extra, template=args.prompt_template)
    music = fusion = None
    if args.fusion is None:
        print("no --fusion checkpoint: generating from the album prompt alone (the text-only baseline)")
    else:
        if args.audio is None:
            raise NoPainGanError("--fusion needs --audio FILE: the song whose sound goes into the cover")
        fusion = load_fusion(args.fusion, device)
        model = args.mir or fusion.encoder.model
        kind = fusion.encoder.kind if args.mir is None else detect_kind(model)
        encoder = load_encoder(kind, model, fusion.encoder.layer, device)
        fusion.check_encoder(encoder.info)
        clip = load_audio(args.audio, args.offset)
        print(f"music: {args.audio} from {clip.offset:.1f} s for {clip.duration:.1f} s, {encoder.info.describe()}")
        music = encoder.encode(clip)
        del encoder
    sd = load_minisd(  # generation only: no gradients needed
        args.sd,
        device,
        dtype,
        prepack=True,
        backend=args.backend,
        int8_weights=args.int8_weights,
        cache_dir=args.openvino_cache,
    )
    print(f"prompt: {prompt}")
    print(f"precision: {sd.precision}" + (" (--dtype auto)" if args.dtype == "auto" else ""))
    with tqdm(desc="sampling", unit="step") as bar:

        def progress(step: int, total: int) -> None:
            bar.total = total
            bar.update(step - bar.n)

        images = generate_covers(sd, prompt, args.negative, music, fusion, args.strength, settings, progress)
    args.out.mkdir(parents=True, exist_ok=True)
    info = {
        "prompt": prompt,
        "negative": args.negative,
        "sd": args.sd,
        "fusion": str(args.fusion or ""),
        "strength": args.strength,
        "audio": str(args.audio or ""),
        "precision": sd.precision,
        **settings.__dict__,
    }
    for i, image in enumerate(to_pil(images)):
        path = args.out / f"{_slug(args.album)}_{args.seed}_{i}.png"
        save_png(image, path, info)
        print(path)
    return 0


def _auto_tags(args: argparse.Namespace, device, dtype) -> str:
    """Prompt words from the song's top moods and instruments over windows of the whole song."""
    from .tagging import MusicTagger

    result = MusicTagger(args.clap, device=device, dtype=dtype).tag(args.audio)
    words = result.prompt_words(k=args.top_k)
    print(f"auto tags from {len(result.windows)} windows of {args.audio}: {words}")
    return words


def run_tag(args: argparse.Namespace) -> int:
    from .tagging import MusicTagger

    device, dtype = device_from_args(args)
    result = MusicTagger(args.clap, args.labels, device, dtype).tag(args.audio, windows=args.windows)
    if args.json:
        print(json.dumps({"model": args.clap} | result.to_dict(args.top_k), indent=2))
    else:
        print(result.to_text(args.top_k))
    return 0


def save_png(image, path: Path, info: dict) -> None:
    """PNG with the generation parameters in a text chunk, so a cover says how it was made."""
    from PIL.PngImagePlugin import PngInfo

    meta = PngInfo()
    meta.add_text("nopaingan", json.dumps(info))
    image.save(path, pnginfo=meta)


def run_encode(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from .audio import load_audio
    from .encoders import detect_kind, load_encoder

    device, dtype = device_from_args(args)
    encoder = load_encoder(args.kind or detect_kind(args.mir), args.mir, args.layer, device, dtype)
    embedding = encoder.encode(load_audio(args.audio, args.offset, args.duration), max_seconds=args.duration)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = embedding.metadata() | {"audio": str(args.audio)}
    save_file({"embedding": embedding.features.contiguous()}, str(args.out), metadata=meta)
    shape = "x".join(map(str, embedding.features.shape))
    print(
        f"{args.out}: {shape} {embedding.encoder.describe()} embedding of {args.audio} "
        f"({embedding.offset:.1f}-{embedding.offset + embedding.duration:.1f} s)"
    )
    return 0


def run_demo(args: argparse.Namespace) -> int:

    from .audio import save_wav
    from .checkpoint import new_fusion, save_fusion
    from .encoders import ENCODER_KINDS, load_encoder
    from .generate import SamplerSettings, generate_covers
    from .prompt import album_prompt
    from .sampling import load_minisd, to_pil
    from .synth import synth_song
    from .tiny import build_tiny_models

    print(
        "demo: every model here is tiny and randomly initialised (no download needed); the covers are "
        "noise that proves the whole pipeline runs, not album art"
    )
    paths = build_tiny_models(args.models_dir)
    print(f"tiny models in {args.models_dir} (use them with --sd {paths['sd']} --mir {paths['codified-lm']})")
    args.out.mkdir(parents=True, exist_ok=True)
    song = synth_song(seconds=8.0)
    wav = args.out / "demo_song.wav"
    save_wav(song, wav)
    embeddings = {}
    for kind in ENCODER_KINDS:
        encoder = load_encoder(kind, str(paths[kind]))
        embeddings[kind] = encoder.encode(song)
        print(f"{kind}: {tuple(embeddings[kind].features.shape)} embedding ({encoder.info.describe()})")
    fusion = new_fusion(embeddings["codified-lm"].encoder, gate=1.0)  # open: the random music path shows
    fusion_path = save_fusion(fusion, args.models_dir / "fusion" / "demo-random.safetensors")
    sd = load_minisd(str(paths["sd"]), prepack=True)
    prompt = album_prompt("Tiny Random Weights", "synthwave")
    settings = SamplerSettings(steps=10, num=2, seed=0)
    text_only = generate_covers(sd, prompt, settings=settings)
    fused = generate_covers(sd, prompt, music=embeddings["codified-lm"], fusion=fusion, settings=settings)
    for name, images in (("text_only", text_only), ("music_fusion", fused)):
        for i, image in enumerate(to_pil(images)):
            save_png(image, args.out / f"{name}_{i}.png", {"prompt": prompt, "demo": True})
    change = (fused - text_only).abs().mean().item()
    print(f"wrote {args.out}/text_only_*.png and music_fusion_*.png (mean pixel change from music: {change:.3f})")
    print(
        f"try: nopaingan generate --sd {paths['sd']} --fusion {fusion_path} --audio {wav} "
        f"--album 'My Album' --genre rock --out {args.out}"
    )
    print(f"try: nopaingan tag --clap {paths['clap']} --audio {wav}")
    return 0
