"""A training step from the cache vs a step that re-encodes the album every time, as the seed's loop did.

Both use the real architectures with random weights from ``bench/real_models.py`` (built once from the
published configs): miniSD = Stable Diffusion 1.4's UNet (320/640/1280/1280, 768-d cross-attention, 32x32
latents for 256 px), VAE (128/256/512/512) and CLIP ViT-L/14 text encoder; MusicGen-small's 32 kHz EnCodec
(4 codebooks of 2048) and 24-layer decoder (1024-d, 16 heads, FFN 4096), read to its middle layer by the
codified-lm encoder.

- cached: read the album's tensors from the ``nopaingan dataset cache`` shard, adapter + fusion, UNet forward
  and backward, SGD step: what ``nopaingan train`` does;
- re-encoding: decode 25 s of the song and the cover, VAE-encode the cover, CLIP-encode the prompt,
  MusicGen-encode the clip, then the same training computation.

Steps alternate (cached, re-encoding, cached, ...) after one warm-up each, so load from other jobs on the
machine falls on both; medians are reported. Peak memory is the process's peak resident set size when only
the training models are loaded (cached) and after the encoders are loaded too (re-encoding).

``--batch B`` trains on B albums a step (copies of the one album under ids of their own, so each draws its own
noise, as distinct albums do; the default recipe's batch is 8) and ``--noise-draws N`` draws each album N times a
step, as ``nopaingan train --noise-draws N`` does: the step is training/train.py's (its ``collate``,
``draw_generators`` and ``diffusion_loss``, the conditioning repeated N times, one UNet batch of B x N).
``--compare-draws 1 2`` times cached steps with 1 and with 2 draws instead, interleaved (1, 2, 1, 2, ...) after
one warm-up each, and reports the ratio; it loads no encoder and times no re-encoding step.

Run: ``python bench/train_step.py --out RESULT.json`` (a few minutes and about 10 GB of RAM on a CPU;
``--batch 8 --compare-draws 1 2`` about 8 minutes at one thread and 12 GB).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from real_models import DEFAULT_CACHE, model_path  # noqa: E402  (bench/ is on sys.path when run as a script)
from timing import check_new_outputs, interleaved, load, machine, write_json  # noqa: E402

from nopaingan_core.audio import load_audio, save_wav  # noqa: E402
from nopaingan_core.checkpoint import new_fusion  # noqa: E402
from nopaingan_core.encoders import load_encoder  # noqa: E402
from nopaingan_core.sampling import MiniSD  # noqa: E402
from nopaingan_core.synth import synth_song  # noqa: E402
from training.cache import CachedAlbum, CacheReader, cover_pixels  # noqa: E402
from training.records import read_dataset  # noqa: E402
from training.train import (  # noqa: E402
    Conditioning,
    collate,
    diffusion_loss,
    draw_generators,
    load_unet,
    stratified_timesteps,
)


def build_dataset(data: Path) -> None:
    """One album: a 30 s song (a preview's length) and a 256 px cover."""
    from PIL import Image

    (data / "audio").mkdir(parents=True, exist_ok=True)
    (data / "covers").mkdir(exist_ok=True)
    save_wav(synth_song(seconds=30.0, sample_rate=44100), data / "audio" / "album.wav")
    ramp = torch.linspace(0, 255, 256).to(torch.uint8)
    across, down = ramp[None].expand(256, 256), ramp[:, None].expand(256, 256)
    pixels = torch.stack([across, down, 255 - across], dim=-1)
    Image.fromarray(pixels.numpy()).save(data / "covers" / "album.png")
    row = {"id": "album", "file_name": "covers/album.png", "audio": "audio/album.wav", "artist": "Bench",
           "album": "Step Timing", "genre": "synthwave", "genres": ["synthwave"], "split": "train"}  # fmt: skip
    (data / "metadata.jsonl").write_text(json.dumps(row) + "\n")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def albums_batch(items: list[CachedAlbum]) -> dict:
    """A micro-batch as ``nopaingan train`` collates it; copies of one album get ids of their own (``id-0``,
    ``id-1``, ...), so that each draws its own noise, as distinct albums do."""
    if len({item.id for item in items}) < len(items):
        items = [dataclasses.replace(item, id=f"{item.id}-{i}") for i, item in enumerate(items)]
    return collate(items)


def training_step(unet, scheduler, model, optimizer, batch: dict, step: int, draws: int) -> torch.Tensor:
    """One optimizer step of ``nopaingan train`` (training/train.py's loop with one process, no gradient
    accumulation, fp32): conditioning for the batch, repeated ``draws`` times, one diffusion loss over the
    batch x draws rows (a UNet batch of that many) at the default recipe's stratified timesteps, backward, update.
    Returns the loss."""
    gens = draw_generators(0, step, 0, 0, batch["ids"], draws)
    total = scheduler.config.num_train_timesteps
    timesteps = stratified_timesteps(0, step, 0, 0, len(batch["ids"]), draws, total)
    cond = model(batch["text"], batch["music"])
    cond, items = cond.repeat(draws, 1, 1), batch["items"] * draws
    loss = diffusion_loss(unet, scheduler, cond, items, gens, total, timesteps=timesteps)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="RESULT.json")
    parser.add_argument("--work", type=Path, help="folder for the album and its cache (default: temporary)")
    parser.add_argument("--models", type=Path, default=DEFAULT_CACHE, help="built models (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="timed steps of each kind (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--batch", type=int, default=1, help="albums a step (default: %(default)s)")
    parser.add_argument("--noise-draws", type=int, default=1, help="draws per album a step (default: %(default)s)")
    parser.add_argument(
        "--compare-draws",
        type=int,
        nargs=2,
        metavar=("N1", "N2"),
        help="time cached steps with N1 and N2 draws, interleaved, instead of cached vs re-encoding",
    )
    parser.add_argument(
        "--optimizer",
        choices=("sgd", "adamw"),
        default="sgd",
        help="sgd (the seed's) or adamw (the default recipe's) (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    if args.batch < 1 or args.noise_draws < 1 or (args.compare_draws and min(args.compare_draws) < 1):
        parser.error("--batch, --noise-draws and --compare-draws must be at least 1")
    if args.compare_draws and args.compare_draws[0] == args.compare_draws[1]:
        parser.error("--compare-draws needs two different draw counts")
    if args.threads:
        torch.set_num_threads(args.threads)
    from training.cli import quiet_libraries

    quiet_libraries()
    work = args.work or Path(tempfile.mkdtemp(prefix="train-step-"))
    began = time.monotonic()
    sd_dir, mir_dir = model_path("sd", args.models), model_path("codified-lm", args.models)
    data = work / "data"
    if not (data / "metadata.jsonl").exists():
        build_dataset(data)
    built = time.monotonic() - began

    start = time.monotonic()
    cache = [sys.executable, "-m", "training", "dataset", "cache", str(data), "--sd", str(sd_dir)]
    if not (data / "cache").is_dir():
        subprocess.run([*cache, "--mir", str(mir_dir), "--quiet"], cwd=ROOT, check=True)
    cache_seconds = time.monotonic() - start
    reader = CacheReader(data / "cache")
    album = read_dataset(data)[0]

    device = torch.device("cpu")
    unet, scheduler = load_unet(str(sd_dir), device, torch.float32)
    fusion = new_fusion(reader.spec.encoder, gate=0.5)  # as after some training: gradients reach every weight
    model = Conditioning(fusion)
    optimizer = (torch.optim.SGD if args.optimizer == "sgd" else torch.optim.AdamW)(model.parameters(), lr=1e-4)

    def train_on(items: list[CachedAlbum], step: int, draws: int = args.noise_draws) -> None:
        training_step(unet, scheduler, model, optimizer, albums_batch(items), step, draws)

    def cached_step(step: int, draws: int = args.noise_draws) -> None:
        train_on([reader.load(album.id) for _ in range(args.batch)], step, draws)

    def millions(*modules: torch.nn.Module) -> float:
        return sum(p.numel() for m in modules for p in m.parameters()) / 1e6

    setup = {
        "batch": args.batch,
        "optimizer": args.optimizer,
        "music_embedding": list(reader.load(album.id).music.shape),
        "cache_seconds_one_album_incl_model_loading": round(cache_seconds, 1),
        "build_seconds": round(built, 1),
        "device": "cpu",
        "machine": machine(),
    }
    if args.compare_draws:
        return compare_draws(
            args, cached_step, setup | {"params_m": {"unet": millions(unet), "fusion": millions(fusion)}}
        )

    cached_step(-1)  # warm-up
    rss_cached = peak_rss_gb()

    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel, CLIPTokenizer

    vae = AutoencoderKL.from_pretrained(sd_dir, subfolder="vae").eval().requires_grad_(False)
    text_encoder = CLIPTextModel.from_pretrained(sd_dir, subfolder="text_encoder").eval().requires_grad_(False)
    tokenizer = CLIPTokenizer.from_pretrained(sd_dir, subfolder="tokenizer")
    sd = MiniSD(unet, vae, text_encoder, tokenizer, dict(scheduler.config), str(sd_dir))
    encoder = load_encoder("codified-lm", str(mir_dir))
    prompt = album.prompt()

    def reencode() -> CachedAlbum:
        clip = load_audio(album.audio)
        pixels = cover_pixels(album.cover, 256)[None].permute(0, 3, 1, 2) * 2 - 1
        with torch.no_grad():
            dist = vae.encode(pixels).latent_dist
        scale = vae.config.scaling_factor
        music = encoder.encode(clip)
        return CachedAlbum(album.id, prompt, dist.mean[0] * scale, dist.std[0] * scale,
                           sd.encode_prompt([prompt])[0], music.features[0], clip.offset, clip.duration)  # fmt: skip

    def reencode_step(step: int) -> None:
        train_on([reencode() for _ in range(args.batch)], step)  # each album of the batch re-encoded

    reencode_step(-2)  # warm-up
    load_before = load()
    steps = itertools.count()  # each timed step draws its own noise, as training does
    times = interleaved(
        {"cached": lambda: cached_step(next(steps)), "reencode": lambda: reencode_step(next(steps))},
        args.rounds,
        warmup=0,  # done above, each before its own peak RSS is read
    )
    medians = {name: statistics.median(values) for name, values in times.items()}

    result = {
        "cached_step_s": medians["cached"],
        "reencode_step_s": medians["reencode"],
        "speedup": medians["reencode"] / medians["cached"],
        "times_s": times,
        "peak_rss_gb": {"cached": rss_cached, "reencode": peak_rss_gb()},
        "noise_draws": args.noise_draws,
        **setup,
        "load_avg_1min": [load_before, load()],
        "params_m": {
            "unet": millions(unet),
            "vae": millions(vae),
            "text_encoder": millions(text_encoder),
            "music_encoder_kept": millions(encoder.decoder, encoder.codec),
            "fusion": millions(fusion),
        },
    }
    write_json(args.out, result)
    print(
        f"cached step {medians['cached']:.2f} s, re-encoding step {medians['reencode']:.2f} s: "
        f"{result['speedup']:.2f}x faster from the cache; peak RSS {rss_cached:.1f} GB vs {peak_rss_gb():.1f} GB"
    )
    return 0


def compare_draws(args: argparse.Namespace, cached_step, setup: dict) -> int:
    """Cached steps with ``args.compare_draws`` = (N1, N2) draws, interleaved after one warm-up each (the smaller
    first, so the peak RSS read after each warm-up is that draw count's)."""
    counts = sorted(set(args.compare_draws))
    steps = itertools.count()
    rss = {}
    for draws in counts:
        cached_step(-1 - draws, draws)  # warm-up
        rss[f"draws_{draws}"] = peak_rss_gb()
    load_before = load()
    times = interleaved(
        {f"draws_{d}": (lambda d=d: cached_step(next(steps), d)) for d in counts}, args.rounds, warmup=0
    )
    load_after = load()
    medians = {name: statistics.median(values) for name, values in times.items()}
    low, high = f"draws_{counts[0]}", f"draws_{counts[-1]}"
    ratio = medians[high] / medians[low]
    result = {
        "step_s": medians,
        "ratio": ratio,
        "ratio_of": f"{high} / {low}",
        "ratios_per_round": [b / a for a, b in zip(times[low], times[high], strict=True)],
        "times_s": times,
        "peak_rss_gb": rss,
        **setup,
        "load_avg_1min": [load_before, load_after],
    }
    write_json(args.out, result)
    print(
        f"batch {args.batch}: cached step {medians[low]:.2f} s with {counts[0]} draw(s), {medians[high]:.2f} s with "
        f"{counts[-1]}: {ratio:.2f}x; peak RSS {rss[low]:.1f} GB vs {rss[high]:.1f} GB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
