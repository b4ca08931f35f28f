"""Guidance cut-off and DeepCache on a tiny UNet that was trained, so images mean something: speed and image
difference against the full computation, and whether the covers keep the colour the prompt names.

The models are the learnability benchmark's (``learnability.build_models``: a tiny VAE and cross-attention UNet
trained on captioned 32 px covers whose caption names their colour); ``--work`` keeps and reuses them. Each
variant generates one cover per colour x genre prompt ("A red album cover. The genre is rock.") with the
same seeds as the full computation, interleaved, one thread.

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
from timing import interleaved, load, machine, summary, write_json

from nopaingan_core.generate import SamplerSettings, generate_covers
from nopaingan_core.sampling import load_minisd

VARIANTS = {
    "full": {},
    "cfg-cutoff-0.7": {"cfg_cutoff": 0.7},
    "cfg-cutoff-0.5": {"cfg_cutoff": 0.5},
    "deep-cache-2": {"deep_cache": 2},
    "deep-cache-3": {"deep_cache": 3},
    "deep-cache-3+cfg-cutoff-0.5": {"deep_cache": 3, "cfg_cutoff": 0.5},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", type=Path, help="keeps the trained models (default: temporary, removed)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sd", help="another diffusers folder instead (e.g. tiny random weights; no training)")
    parser.add_argument("--size", type=int, default=learnability.SIZE, help="image size (px)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="fewer-evaluations-"))
    if args.sd is None:
        train = argparse.Namespace(seed=0, web_images=2048, vae_steps=200, unet_steps=1200)
        args.sd = str(learnability.build_models(work, train)["sd"])
    sd = load_minisd(args.sd, dtype="fp32", prepack=True)
    prompts = [
        (colour, f"A {colour} album cover. The genre is {genre}.")
        for colour in learnability.COLOURS
        for genre in learnability.GENRES
    ]
    size = args.size
    images: dict[str, torch.Tensor] = {}

    def variant(name: str, options: dict):
        def run() -> None:
            covers = [
                generate_covers(
                    sd, prompt, settings=SamplerSettings(steps=args.steps, seed=i, width=size, height=size, **options)
                )
                for i, (_, prompt) in enumerate(prompts)
            ]
            images[name] = torch.cat(covers)

        return run

    load_before = load()
    times = interleaved({name: variant(name, options) for name, options in VARIANTS.items()}, args.repeats)
    full_s = statistics.median(times["full"])
    named = torch.tensor([list(learnability.COLOURS).index(colour) for colour, _ in prompts])
    result = {
        "machine": machine(),
        "model": args.sd,
        "load_avg": [load_before, load()],
        "steps": args.steps,
        "size": size,
        "prompts": len(prompts),
    }
    for name in VARIANTS:
        colours = torch.tensor([learnability.read_colour(image) for image in images[name]])
        difference = (images[name] - images["full"]).abs()
        result[name] = {
            **summary(times[name]),
            "speedup": round(full_s / statistics.median(times[name]), 3),
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
