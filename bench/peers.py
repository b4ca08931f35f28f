"""Seconds per cover, ours against every peer, side by side on the same saved miniSD components.

Each contender runs in a fresh process per round (load untimed, then one timed image; its peak resident memory
is that process's), contenders interleaved round by round, one torch/OpenVINO thread each (``--threads``).
Ours: ``ours-default`` (what ``nopaingan generate`` does with no options) and ``ours-<setting>``. Peers:
diffusers' ``StableDiffusionPipeline`` in fp32 and bf16; OpenVINO's own ``OVStableDiffusionPipeline``
(optimum-intel, in its own virtualenv: bench/requirements-optimum.txt, ``--peer-python optimum=PYTHON``), ONNX
Runtime and ComfyUI's sampler where installed (bench/requirements-peers.txt), else listed under ``skipped`` with
the reason. Also: FLOPs per image counted with ``torch.utils.flop_counter``
from each path's UNet calls, one thread's fp32/bf16 GEMM peak, and each path's fraction of that peak.

    python bench/peers.py --out bench/results/peers.json                       # full: 20 steps, 2 rounds
    python bench/peers.py --out R.json --steps 2 --rounds 1 --contenders ours-default,diffusers-fp32
    python bench/peers.py --out R.json --tiny                                   # tiny models: a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import real_models
import torch
from timing import check_new_outputs, load, machine, summary, write_json

PROMPT = "Create an album cover for the album Night Drive. The genre is synthwave."
SEED, GUIDANCE, SIZE = 0, 7.5, 256
CFG_CUTOFF, DEEP_CACHE = 0.5, 3  # the documented work-saving settings

# name -> (runner, options). Ours are measured through the library's own entry points.
CONTENDERS: dict[str, tuple[str, dict]] = {
    "ours-default": ("ours", {}),
    "ours-fp32": ("ours", {"dtype": "fp32"}),
    "ours-bf16": ("ours", {"dtype": "bf16"}),
    "ours-cfg-cutoff": ("ours", {"cfg_cutoff": CFG_CUTOFF}),
    "ours-deep-cache": ("ours", {"deep_cache": DEEP_CACHE}),
    "ours-fastest": ("ours", {"cfg_cutoff": CFG_CUTOFF, "deep_cache": DEEP_CACHE}),
    "ours-openvino": ("ours", {"backend": "openvino"}),
    "ours-openvino-int8": ("ours", {"backend": "openvino", "int8_weights": True}),
    "diffusers-fp32": ("diffusers", {"dtype": "fp32"}),
    "diffusers-bf16": ("diffusers", {"dtype": "bf16"}),
    "openvino-pipeline-fp32": ("optimum", {}),
    "onnxruntime-fp32": ("onnxruntime", {}),
    "comfyui-fp32": ("comfyui", {"extra_unet_calls": 0}),  # its ipndm makes one UNet call per step
}
REFERENCE = "diffusers-fp32"


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


# Peers with their own runner module in bench/ (``peer_<runner>.py``): each has ``skip_reason() -> str | None``
# and ``load(path, cache_dir) -> run(steps) -> image [1, H, W, 3] in [0, 1]`` for PROMPT, SEED, GUIDANCE, SIZE.
PEER_MODULES = {"onnxruntime": "peer_onnx", "comfyui": "peer_comfyui", "optimum": "peer_optimum"}


def peer_module(runner: str):
    return importlib.import_module(PEER_MODULES[runner])


def skip_reason(runner: str, options: dict, python: str | None = None) -> str | None:
    """Why a contender cannot run here, or None. ``python``: the interpreter its worker runs under
    (``--peer-python``), asked in a subprocess when it is not this one."""
    if runner in PEER_MODULES:
        if python and python != sys.executable:
            code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            code += f"import {PEER_MODULES[runner]} as m; print(m.skip_reason() or '')"
            done = subprocess.run([python, "-c", code], capture_output=True, text=True)
            if done.returncode != 0:
                return f"{python} cannot import bench/{PEER_MODULES[runner]}.py: {done.stderr.strip()[-300:]}"
            return done.stdout.strip() or None
        return peer_module(runner).skip_reason()
    if options.get("backend") == "openvino" and not installed("openvino"):
        return "OpenVINO is not installed (extra [openvino])"
    if options.get("int8_weights") and not installed("nncf"):
        return "NNCF is not installed (extra [openvino])"
    return None


def folder_key(root: Path, files: Iterable[Path], salt: str) -> str:
    """The key of an export cache: a hash of ``salt`` (the versions that make the export) and, for each of
    ``files`` under ``root``, its relative name, size, mtime and first and last MiB (cheap on a 3.4 GB UNet)."""
    digest = hashlib.sha256(salt.encode())
    for file in sorted(files):
        stat = file.stat()
        digest.update(f"{file.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        with file.open("rb") as handle:
            digest.update(handle.read(2**20))
            handle.seek(max(2**20, stat.st_size - 2**20))
            digest.update(handle.read())
    return digest.hexdigest()[:20]


def peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 2**20, 3)
    return float("nan")


def load_diffusers(path: str, dtype: str = "fp32") -> Callable[[int], torch.Tensor]:
    """The reference peer: diffusers' ``StableDiffusionPipeline`` from ``path`` in ``dtype`` ("fp32", "bf16").
    Returns ``run(steps)`` -> the image for PROMPT, SEED, GUIDANCE, SIZE as ``[1, H, W, 3]`` float in [0, 1]."""
    from diffusers import StableDiffusionPipeline

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    pipe = StableDiffusionPipeline.from_pretrained(
        path, torch_dtype=torch_dtype, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)

    def run(n_steps: int) -> torch.Tensor:
        out = pipe(
            PROMPT,
            negative_prompt="",
            num_inference_steps=n_steps,
            guidance_scale=GUIDANCE,
            height=SIZE,
            width=SIZE,
            generator=torch.Generator("cpu").manual_seed(SEED),
            output_type="pt",
        )
        return out.images.permute(0, 2, 3, 1).float().cpu()

    return run


def worker(name: str, path: str, steps: int, threads: int, image_out: str, cache_dir: str) -> dict:
    """One contender in this fresh process: load (timed apart: ``load_s``, an export or conversion included where
    the contender makes one), one warm-up image at 1 step, one timed image."""
    torch.set_num_threads(threads)
    load_start = time.perf_counter()
    runner, options = CONTENDERS[name]
    if runner == "ours":
        from nopaingan_core.generate import SamplerSettings, generate_covers
        from nopaingan_core.sampling import load_minisd

        sd = load_minisd(
            path,
            dtype=options.get("dtype", "auto"),
            prepack=True,
            backend=options.get("backend", "torch"),
            int8_weights=options.get("int8_weights", False),
            cache_dir=cache_dir,
        )
        extra = {k: options[k] for k in ("cfg_cutoff", "deep_cache") if k in options}
        settings = SamplerSettings(steps=steps, guidance=GUIDANCE, seed=SEED, width=SIZE, height=SIZE, **extra)

        def run(n_steps: int) -> torch.Tensor:
            return generate_covers(sd, PROMPT, settings=SamplerSettings(**{**settings.__dict__, "steps": n_steps}))

        precision = sd.precision
    elif runner in PEER_MODULES:
        run = peer_module(runner).load(path, cache_dir)
        precision = "fp32"
    else:
        run = load_diffusers(path, options["dtype"])
        precision = options["dtype"]
    load_s = time.perf_counter() - load_start
    run(1)  # warm-up: primitives, caches, OpenVINO's compilation for these shapes
    start, cpu_start = time.perf_counter(), time.process_time()
    image = run(steps)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    torch.save(image, image_out)
    return {
        "seconds": seconds,
        "cpu_s": round(cpu_s, 2),
        "load_s": round(load_s, 2),
        "peak_rss_gb": peak_rss_gb(),
        "precision": precision,
    }


def unet_calls(steps: int, cfg_cutoff: float = 1.0, deep_cache: int = 1, extra: int = 1) -> dict[str, int]:
    """How many UNet calls of each kind an image makes, by sample()'s rules: ``steps + extra`` in all (PNDM:
    ``extra`` 1; ComfyUI's samplers: 0)."""
    total = steps + extra
    guided = math.ceil(cfg_cutoff * total)
    calls = {"full2": 0, "full1": 0, "shallow2": 0, "shallow1": 0}
    for i in range(total):
        kind = "full" if deep_cache == 1 or i % deep_cache == 0 else "shallow"
        calls[f"{kind}{2 if i < guided else 1}"] += 1
    return calls


def count_flops(path: str) -> dict[str, float]:
    """FLOPs of each kind of UNet call, the VAE decode and the two prompt encodings (plain, unpacked model:
    the counter sees aten convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    from nopaingan_core.deep_cache import DeepCacheUNet
    from nopaingan_core.sampling import load_minisd

    sd = load_minisd(path, dtype="fp32", channels_last=False)
    latent = SIZE // sd.latent_scale
    flops = {}

    def counted(fn) -> float:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            fn()
        return float(counter.get_total_flops())

    for rows in (2, 1):
        x, context, t = torch.randn(rows, 4, latent, latent), torch.randn(rows, 77, 768), torch.tensor(500)
        cached = DeepCacheUNet(sd.unet, 2)
        flops[f"full{rows}"] = counted(lambda x=x, c=context, t=t, m=cached: m(x, t, c, 0))
        flops[f"shallow{rows}"] = counted(lambda x=x, c=context, t=t, m=cached: m(x, t, c, 1))
    flops["decode"] = counted(lambda: sd.decode(torch.randn(1, 4, latent, latent)))
    flops["prompts"] = counted(lambda: (sd.encode_prompt([PROMPT]), sd.encode_prompt([""])))
    return flops


def image_flops(flops: dict[str, float], steps: int, options: dict) -> float:
    calls = unet_calls(
        steps, options.get("cfg_cutoff", 1.0), options.get("deep_cache", 1), options.get("extra_unet_calls", 1)
    )
    return sum(flops[kind] * n for kind, n in calls.items()) + flops["decode"] + flops["prompts"]


def gemm_peak_gflops(dtype: torch.dtype, repeats: int = 3, budget_s: float = 0.5) -> float:
    """One thread's best square-matmul rate, GFLOP/s: sizes 256, 512... 2048, stopping once one product takes
    longer than ``budget_s`` (bf16 without native support runs at a fraction of a GFLOP/s)."""
    torch.set_num_threads(1)
    best = 0.0
    for n in (256, 512, 1024, 1536, 2048):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        seconds = min(_timed(lambda a=a, b=b: torch.mm(a, b)) for _ in range(repeats))
        best = max(best, 2 * n**3 / seconds / 1e9)
        if seconds > budget_s:
            break
    return round(best, 2)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="JSON file for the results (required)")
    parser.add_argument("--cache", type=Path, default=real_models.DEFAULT_CACHE, help="folder of the built models")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="timed images per contender, interleaved")
    parser.add_argument("--threads", type=int, default=1, help="threads per contender")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated names")
    parser.add_argument("--tiny", action="store_true", help="tiny random models: a smoke run")
    parser.add_argument(
        "--peer-python",
        action="append",
        default=[],
        metavar="RUNNER=PYTHON",
        help=f"run a peer's worker under another interpreter (its own virtualenv); RUNNER: {', '.join(PEER_MODULES)}",
    )
    parser.add_argument("--worker", nargs=4, metavar=("NAME", "PATH", "IMAGE", "OVCACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    if args.worker:
        name, path, image, ov_cache = args.worker
        print(json.dumps(worker(name, path, args.steps, args.threads, image, ov_cache)))
        return
    if not args.out:
        parser.error("--out is required")

    if args.tiny:
        from nopaingan_core.tiny import build_tiny_models

        path = str(build_tiny_models(args.cache / "tiny")["sd"])
    else:
        path = str(real_models.model_path("sd", args.cache))
    names = args.contenders.split(",")
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; known: {', '.join(CONTENDERS)}")
    pythons = {}
    for item in args.peer_python:
        runner, _, python = item.partition("=")
        if runner not in PEER_MODULES or not python:
            parser.error(
                f"--peer-python: expected RUNNER=PYTHON with RUNNER one of {', '.join(PEER_MODULES)}, found {item!r}"
            )
        pythons[runner] = python
    skipped = {n: r for n in names if (r := skip_reason(*CONTENDERS[n], pythons.get(CONTENDERS[n][0])))}
    runnable = [n for n in names if n not in skipped]
    result: dict = {
        "machine": machine(),
        "model": path,
        "settings": {"steps": args.steps, "size": SIZE, "guidance": GUIDANCE, "scheduler": "pndm", "seed": SEED},
        "rounds": args.rounds,
        "threads": args.threads,
        "load_avg": [load()],
        "skipped": skipped,
    }
    times: dict[str, list[float]] = {n: [] for n in runnable}
    cpu_times: dict[str, list[float]] = {n: [] for n in runnable}
    loads: dict[str, list[float]] = {n: [] for n in runnable}
    rss: dict[str, float] = {}
    precision: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        ov_cache = str(Path(tmp) / "openvino")  # one conversion per run, shared by the rounds
        for round_index in range(args.rounds):
            for name in runnable:
                image = str(Path(tmp) / f"{name}.pt")
                python = pythons.get(CONTENDERS[name][0], sys.executable)
                command = [python, __file__, "--steps", str(args.steps), "--threads", str(args.threads)]
                command += ["--worker", name, path, image, ov_cache]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
                report = json.loads(done.stdout.strip().splitlines()[-1])
                times[name].append(report["seconds"])
                cpu_times[name].append(report["cpu_s"])
                loads[name].append(report["load_s"])
                rss[name] = max(rss.get(name, 0.0), report["peak_rss_gb"])
                precision[name] = report["precision"]
                print(f"round {round_index + 1} {name}: {report}", flush=True)
        images = {n: torch.load(Path(tmp) / f"{n}.pt") for n in runnable}
    result["load_avg"].append(load())

    torch.set_num_threads(1)
    flops = count_flops(path)
    peaks = {"fp32": gemm_peak_gflops(torch.float32), "bf16": gemm_peak_gflops(torch.bfloat16)}
    reference = images.get(REFERENCE)
    contenders = {}
    for name in runnable:
        runner, options = CONTENDERS[name]
        work = image_flops(flops, args.steps, options)
        median = statistics.median(times[name])
        peak = peaks["bf16"] if "bf16" in precision[name] else peaks["fp32"]
        contenders[name] = {
            **{k: v for k, v in summary(times[name]).items()},
            # the worker's CPU seconds for the image: with one thread, they leave out the time other jobs held it
            "cpu_s": summary(cpu_times[name]),
            "max_abs_diff_vs_diffusers": None if reference is None else float((images[name] - reference).abs().max()),
            "mean_abs_diff_vs_diffusers": None if reference is None else float((images[name] - reference).abs().mean()),
            "precision": precision[name],
            "load_s": loads[name],
            "peak_rss_gb": rss[name],
            "flops": work,
            "gflops_per_s": round(work / median / 1e9, 2),
            "fraction_of_peak": round(work / median / 1e9 / peak, 3),
        }
    for name in runnable:  # image differences from our own fp32 image too: what bf16 itself changes
        if "ours-fp32" in images:
            contenders[name]["max_abs_diff_vs_ours_fp32"] = float((images[name] - images["ours-fp32"]).abs().max())
            contenders[name]["mean_abs_diff_vs_ours_fp32"] = float((images[name] - images["ours-fp32"]).abs().mean())
    result.update(
        {
            "contenders": contenders,
            "flops_per_image": image_flops(flops, args.steps, {}),
            "flops_per_call": flops,
            "peak_gflops": peaks,
        }
    )
    write_json(args.out, result)
    print(json.dumps({n: (c["median_s"], c["max_abs_diff_vs_diffusers"]) for n, c in contenders.items()}, indent=1))


if __name__ == "__main__":
    main()
