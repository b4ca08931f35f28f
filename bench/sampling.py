"""Seconds per 256x256 image at 20 steps: our generation path against diffusers' StableDiffusionPipeline.

Both pipelines load the same saved miniSD-shaped components (SD1.4 architecture, random weights, see
``real_models.py``) in the same dtype: ours through ``load_minisd`` + ``generate_covers``, diffusers' through
``StableDiffusionPipeline.from_pretrained``. They run interleaved with the same prompt, seed, scheduler (PNDM),
guidance and step count, and their images are compared. Also reported: the VAE decode's share of an image, the
bf16 path against fp32, and what the music adapter + fusion add per image.

    python bench/sampling.py --out R.json            # full: fp32 and bf16, 3 repeats (~15 min on 2 cores)
    python bench/sampling.py --out R.json --quick    # tiny models, a smoke run in well under a minute
"""

from __future__ import annotations

import statistics
from pathlib import Path

import real_models  # noqa: F401  (puts the worktree's library first on sys.path)
import torch
from timing import check_new_outputs, interleaved, load, machine, summary, timed, write_json

from nopaingan_core.checkpoint import new_fusion
from nopaingan_core.encoders.base import EncoderInfo, MusicEmbedding
from nopaingan_core.generate import SamplerSettings, condition, generate_covers
from nopaingan_core.sampling import load_minisd

PROMPT = "Create an album cover for the album Night Drive. The genre is synthwave."
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def diffusers_pipeline(path: Path, dtype: torch.dtype):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        str(path), torch_dtype=dtype, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_diffusers(pipe, settings: SamplerSettings) -> torch.Tensor:
    """diffusers' images as ours are laid out: ``[B, H, W, 3]`` float32 in [0, 1]."""
    out = pipe(
        PROMPT,
        negative_prompt="",
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        height=settings.height,
        width=settings.width,
        num_images_per_prompt=settings.num,
        generator=torch.Generator("cpu").manual_seed(settings.seed),
        output_type="pt",
    )
    return out.images.permute(0, 2, 3, 1).float().cpu()


def compare(path: Path, dtype: torch.dtype, settings: SamplerSettings, repeats: int) -> tuple[dict, torch.Tensor]:
    """Ours vs diffusers for one dtype, interleaved; returns the result and our image."""
    sd = load_minisd(str(path), dtype=dtype, prepack=True)  # as `nopaingan generate` loads it
    pipe = diffusers_pipeline(path, dtype)
    warm = SamplerSettings(steps=2, width=settings.width, height=settings.height)  # primitives, caches
    generate_covers(sd, PROMPT, settings=warm)
    run_diffusers(pipe, warm)
    images: dict[str, torch.Tensor] = {}

    def ours() -> None:
        images["ours"] = generate_covers(sd, PROMPT, settings=settings)

    def theirs() -> None:
        images["diffusers"] = run_diffusers(pipe, settings)

    load_before = load()
    times = interleaved({"ours": ours, "diffusers": theirs}, repeats, warmup=0)
    load_after = load()

    # Where the time goes in ours: the VAE decode of one image, and the prompt tokenization.
    latents = torch.randn(settings.num, 4, settings.height // 8, settings.width // 8, dtype=dtype)
    decode = [timed(lambda: sd.decode(latents))[0] for _ in range(3)]
    tokenize = [timed(lambda: sd.tokenizer([PROMPT, ""], padding="max_length", max_length=77))[0] for _ in range(5)]
    ours_s = statistics.median(times["ours"])
    diffusers_s = statistics.median(times["diffusers"])
    result = {
        "ours_s": round(ours_s, 3),
        "diffusers_s": round(diffusers_s, 3),
        "ratio": round(ours_s / diffusers_s, 4),  # below 1: ours is faster
        "speedup": round(diffusers_s / ours_s, 4),
        "max_abs_diff": float((images["ours"] - images["diffusers"]).abs().max()),
        "mean_abs_diff": float((images["ours"] - images["diffusers"]).abs().mean()),
        "ours": summary(times["ours"]),
        "diffusers": summary(times["diffusers"]),
        "decode_s": round(statistics.median(decode), 3),
        "decode_share": round(statistics.median(decode) / ours_s, 4),
        "tokenize_ms": round(1000 * statistics.median(tokenize), 3),
        "load_avg": [load_before, load_after],
    }
    return result, images["ours"]


def fusion_overhead(sd_path: Path, frames: int, image_s: float, repeats: int = 20) -> dict:
    """Adapter + fusion on a 25 s codified-lm embedding ``[1, frames, 1024]`` -> fused ``[1, 77, 768]``."""
    info = EncoderInfo("codified-lm", "facebook/musicgen-small", 12, 1024, 50.0, 32000)
    fusion = new_fusion(info).eval()
    music = MusicEmbedding(torch.randn(1, frames, 1024), info, 0.0, 25.0)
    text = torch.randn(1, 77, 768)

    @torch.inference_mode()
    def fuse() -> torch.Tensor:
        return fusion.fuse(text, fusion.music_tokens(music))

    fuse()
    times = [timed(fuse)[0] for _ in range(repeats)]
    seconds = statistics.median(times)
    sd = load_minisd(str(sd_path))
    condition(sd, PROMPT, music, fusion)  # the real call path, checked to run; timing above is its fusion part
    return {
        "embedding": [1, frames, 1024],
        "tokens": list(fusion.music_tokens(music).shape),
        "fusion_s": round(seconds, 5),
        "fusion": summary(times),
        "percent_of_image": round(100 * seconds / image_s, 4),
    }


def main() -> None:
    parser = real_models.parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed images per pipeline and dtype")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, help="image width and height")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both pipelines (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny models, fp32, 4 steps, 1 repeat: a smoke run")
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.quick:
        from nopaingan_core.tiny import build_tiny_models

        path = build_tiny_models(args.cache / "tiny")["sd"]
        args.repeats, args.steps, args.dtypes = 1, 4, "fp32"
    else:
        path = real_models.model_path("sd", args.cache)
    settings = SamplerSettings(
        scheduler="pndm", steps=args.steps, guidance=7.5, seed=0, width=args.size, height=args.size
    )
    result: dict = {"machine": machine(), "model": str(path), "settings": settings.__dict__, "repeats": args.repeats}
    images = {}
    for name in args.dtypes.split(","):
        print(f"{name}: ours vs diffusers, {args.repeats} interleaved repeats", flush=True)
        result[name], images[name] = compare(path, DTYPES[name], settings, args.repeats)
        print(f"{name}: {result[name]}", flush=True)
    first = args.dtypes.split(",")[0]
    result.update({k: result[first][k] for k in ("ours_s", "diffusers_s", "ratio", "max_abs_diff")})
    if "bf16" in images and "fp32" not in images:  # our fp32 image, the reference for bf16's difference
        images["fp32"] = generate_covers(load_minisd(str(path), prepack=True), PROMPT, settings=settings)
    if "bf16" in images:
        result["bf16"]["diff_vs_fp32"] = float((images["bf16"] - images["fp32"]).abs().max())
        result["bf16"]["mean_diff_vs_fp32"] = float((images["bf16"] - images["fp32"]).abs().mean())
    result["fusion"] = fusion_overhead(path, 1250, result["ours_s"])
    print(f"fusion: {result['fusion']}", flush=True)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
