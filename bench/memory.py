"""Resident memory of a generation process: ours (prepacked, as `nopaingan generate` loads it) against diffusers'
pipeline, on the real miniSD architecture (random weights, see ``real_models.py``).

Each contender runs in its own fresh process: load, one guided UNet call at 256x256 (which packs our
convolutions), one VAE decode. Reported per stage: the current resident set (VmRSS) and the peak (VmHWM) in GB.

    python bench/memory.py --out R.json [--cache DIR] [--dtype fp32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import real_models
from timing import check_new_outputs, load, machine, write_json

CONTENDERS = ("ours", "diffusers")


def rss() -> dict:
    """Current and peak resident set of this process, GB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 2**20, 3)
    return {"rss_gb": fields["VmRSS"], "peak_gb": fields["VmHWM"]}


def child(name: str, path: str, dtype_name: str) -> dict:
    import torch

    torch.set_num_threads(1)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    stages = {"imports": rss()}
    if name == "ours":
        from nopaingan_core.sampling import load_minisd

        sd = load_minisd(path, dtype=dtype, prepack=True)
        unet, vae = sd.unet, sd.vae
    else:
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_pretrained(
            path, torch_dtype=dtype, safety_checker=None, feature_extractor=None, requires_safety_checker=False
        )
        unet, vae = pipe.unet, pipe.vae
    stages["loaded"] = rss()
    with torch.inference_mode():
        x, context = torch.randn(2, 4, 32, 32, dtype=dtype), torch.randn(2, 77, 768, dtype=dtype)
        unet(x, torch.tensor(500), encoder_hidden_states=context)
        stages["after_unet_call"] = rss()
        vae.decode(x[:1])
        stages["after_decode"] = rss()
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="JSON file for the results")
    parser.add_argument("--cache", type=Path, default=real_models.DEFAULT_CACHE, help="folder of the built models")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    path = str(real_models.model_path("sd", args.cache))
    if args.child:
        print(json.dumps(child(args.child, path, args.dtype)))
        return
    result = {"machine": machine(), "model": path, "dtype": args.dtype, "load_avg": [load()]}
    for name in CONTENDERS:
        command = [sys.executable, __file__, "--child", name, "--cache", str(args.cache), "--dtype", args.dtype]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result[name] = json.loads(out.strip().splitlines()[-1])
        print(name, result[name], flush=True)
    result["load_avg"].append(load())
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
