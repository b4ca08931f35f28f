"""Guidance cut-off and DeepCache on a tiny UNet that was trained, so images mean something: speed and image
difference against the full computation, and whether the covers keep the colour the prompt names.

The models are the learnability benchmark's (``learnability.build_models``: a tiny VAE and cross-attention UNet
trained on captioned 32 px covers whose caption names their colour); ``--work`` keeps and reuses them (a
``WORK/models`` folder made with the learnability benchmark's default model settings, e.g. a copy of such a run's;
one made with others is refused, exit status 2). Each variant
generates ``--seeds`` covers per colour x genre prompt ("A red album cover. The genre is rock.") with the same
seeds as the full computation, interleaved, one thread.

Per variant: time (median of ``--repeats`` interleaved rounds), the UNet calls a cover makes by kind (full or
DeepCache-shallow, guided batch 2 or single batch 1: ``peers.unet_calls``), the FLOPs of one cover's denoising
loop as torch's ``FlopCounterMode`` counts them on the unpacked model, the image difference from the full
computation (max and mean on [0, 1]) and the share of covers whose dominant colour is the one the prompt names
(``learnability.read_colour``). For scale, ``bf16`` is the full computation with the same model in bf16: what
that precision alone changes (on a CPU without native bf16 it is emulated and slow; its time is not a target).

    python bench/fewer_evaluations.py --work /tmp/fe --out bench/results/fewer_evaluations_trained.json
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import learnability
import torch
from peers import unet_calls
from timing import check_new_outputs, interleaved, load, machine, summary, write_json
from torch.utils.flop_counter import FlopCounterMode

from nopaingan_core.generate import SamplerSettings, generate_covers
from nopaingan_core.sampling import load_minisd, sample

VARIANTS = {
    "full": {},
    "cfg-cutoff-0.7": {"cfg_cutoff": 0.7},
    "cfg-cutoff-0.5": {"cfg_cutoff": 0.5},
    "deep-cache-2": {"deep_cache": 2},
    "deep-cache-3": {"deep_cache": 3},
    "deep-cache-3+cfg-cutoff-0.5": {"deep_cache": 3, "cfg_cutoff": 0.5},
}


def loop_flops(path: str, prompt: str, steps: int, size: int) -> dict[str, float]:
    """FLOPs of one cover's denoising loop (``sample``: UNet calls and guidance arithmetic, no text encoding or
    VAE decode) per fp32 variant, counted by ``FlopCounterMode`` on a plain (unpacked) load of the model: the
    counter sees aten convolutions and matmuls, not oneDNN's prepacked ones."""
    sd = load_minisd(path, dtype="fp32", channels_last=False)
    cond, uncond = sd.encode_prompt([prompt]), sd.encode_prompt([""])
    flops = {}
    for name, options in VARIANTS.items():
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            sample(sd, cond, uncond, steps=steps, seed=0, width=size, height=size, **options)
        flops[name] = float(counter.get_total_flops())
    return flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", type=Path, help="keeps the trained models (default: temporary, removed)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=4, help="covers per prompt (seeds 0, 1, ...)")
    parser.add_argument("--no-bf16", action="store_true", help="leave out the bf16 row")
    parser.add_argument("--sd", help="another diffusers folder instead (e.g. tiny random weights; no training)")
    parser.add_argument("--size", type=int, default=learnability.SIZE, help="image size (px)")
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="fewer-evaluations-"))
    if args.sd is None:
        train = argparse.Namespace(seed=0, web_images=2048, vae_steps=200, unet_steps=1200)
        args.sd = str(learnability.build_models(work, train)["sd"])
    sd = load_minisd(args.sd, dtype="fp32", prepack=True)
    models = {"fp32": sd}
    if not args.no_bf16:
        # Not prepacked: oneDNN's bf16 weight reorder needs AVX512 (BW, VL, DQ) or AVX-NE-CONVERT.
        models["bf16"] = load_minisd(args.sd, dtype="bf16", prepack=True)
    variants = {name: ("fp32", options) for name, options in VARIANTS.items()}
    if not args.no_bf16:
        variants["bf16"] = ("bf16", {})
    prompts = [
        (colour, f"A {colour} album cover. The genre is {genre}.", seed)
        for colour in learnability.COLOURS
        for genre in learnability.GENRES
        for seed in range(args.seeds)
    ]
    size = args.size
    images: dict[str, torch.Tensor] = {}

    def variant(name: str, dtype: str, options: dict):
        settings = {"steps": args.steps, "width": size, "height": size, **options}

        def run() -> None:
            covers = [
                generate_covers(models[dtype], prompt, settings=SamplerSettings(seed=seed, **settings))
                for _, prompt, seed in prompts
            ]
            images[name] = torch.cat(covers).float()

        return run

    load_before = load()
    times = interleaved({name: variant(name, *spec) for name, spec in variants.items()}, args.repeats)
    load_after = load()
    full_s = statistics.median(times["full"])
    named = torch.tensor([list(learnability.COLOURS).index(colour) for colour, _, _ in prompts])
    flops = loop_flops(args.sd, prompts[0][1], args.steps, size)
    result = {
        "machine": machine(),
        "model": args.sd,
        "load_avg": [load_before, load_after],
        "steps": args.steps,
        "size": size,
        "prompts": len(prompts) // args.seeds,
        "seeds_per_prompt": args.seeds,
        "covers": len(prompts),
    }
    for name, (dtype, options) in variants.items():
        colours = torch.tensor([learnability.read_colour(image) for image in images[name]])
        difference = (images[name] - images["full"]).abs()
        result[name] = {
            "dtype": dtype,
            **summary(times[name]),
            "speedup": round(full_s / statistics.median(times[name]), 3),
            "unet_calls": unet_calls(args.steps, options.get("cfg_cutoff", 1.0), options.get("deep_cache", 1)),
            "loop_gflops_per_cover": round(flops[name if dtype == "fp32" else "full"] / 1e9, 4),
            "work_ratio": round(flops["full"] / flops[name if dtype == "fp32" else "full"], 3),
            "max_abs_diff_vs_full": float(difference.max()),
            "mean_abs_diff_vs_full": float(difference.mean()),
            "colour_as_named": float((colours == named).float().mean()),
        }
        print(name, result[name], flush=True)
    write_json(args.out, result)
    if args.work is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
