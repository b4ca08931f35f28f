"""One call of each converted model, our OpenVINO backend against optimum-intel's ``OVStableDiffusionPipeline``,
in one process on the same OpenVINO runtime: what each compiled model is and how long one call takes.

Ours is built as the backend builds it (``ConvertedModel`` with ``to_openvino``'s compile config, called through
``OpenVINOUNet``/``OpenVINODecoder``/``OpenVINOTextEncoder`` with torch tensors); the pipeline's IR (the folder
``bench/peer_optimum.py`` exports, read with plain OpenVINO: no optimum-intel needed here) is reshaped to the same
static shapes and compiled with the ``ov_config`` that ``peer_optimum.load`` passes, then called as optimum-intel's
``OVPipelinePart`` does (``compiled_model(inputs, share_inputs=True)``). For each part it writes: the compiled
models' properties and where they differ, input names/shapes/types, the executed graph's layers by type
(``get_runtime_model()``), the largest per-layer-type times of OpenVINO's performance counters (``PERF_COUNT``),
the outputs' largest difference and the call times, interleaved A B B A ..., with the load average of each call.
``--load-rounds N`` also times our UNet's load, compiled from the IR against imported from OpenVINO's
compiled-model cache, in fresh processes (why the backend does not use that cache: ``compile_config``).

    OMP_NUM_THREADS=1 python bench/openvino_parity.py --ours ~/.cache/nopaingan/openvino/<key> \\
        --pipeline ~/.cache/nopaingan/optimum/<key> --rounds 6 --load-rounds 3 --out bench/results/R.json
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import real_models  # noqa: F401  (puts the worktree's library first on sys.path)
import torch
from timing import check_new_outputs, load, machine, write_json

from nopaingan_core.openvino_backend import (
    ConvertedModel,
    OpenVINODecoder,
    OpenVINOTextEncoder,
    OpenVINOUNet,
    compile_config,
)

# static shapes of one guided 256x256 step: batch 2 (prompt and negative prompt), 4 x 32 x 32 latents, 77 tokens
PARTS = {
    "unet": ("unet.xml", "unet/openvino_model.xml"),
    "vae_decoder": ("vae_decoder.xml", "vae_decoder/openvino_model.xml"),
    "text_encoder": ("text_encoder.xml", "text_encoder/openvino_model.xml"),
}


def example(part: str) -> dict[str, torch.Tensor]:
    """The inputs of one call, by the pipeline's input names (ours take them in the same order)."""
    generator = torch.Generator().manual_seed(0)
    if part == "unet":
        return {
            "sample": torch.randn(2, 4, 32, 32, generator=generator),
            "timestep": torch.tensor([500]),
            "encoder_hidden_states": torch.randn(2, 77, 768, generator=generator),
        }
    if part == "vae_decoder":
        return {"latent_sample": torch.randn(1, 4, 32, 32, generator=generator)}
    return {"input_ids": torch.randint(0, 49408, (1, 77), generator=generator)}


def ours(core, part: str, path: Path, config: dict):
    """``(call, compiled)``: our wrapper of ``path`` called on the example, as the sampling loop calls it."""
    model = ConvertedModel(core.read_model(path), core, config, {})
    inputs = list(example(part).values())
    if part == "unet":
        wrapper = OpenVINOUNet(model, None, "f32")

        def call():
            return wrapper(inputs[0], inputs[1], inputs[2])[0]
    elif part == "vae_decoder":
        wrapper = OpenVINODecoder(model, None)

        def call():
            return wrapper.decode(inputs[0])[0]
    else:
        wrapper = OpenVINOTextEncoder(model)

        def call():
            return wrapper(inputs[0])[0]

    call()  # compiles for these shapes
    return call, next(iter(model.compiled.values()))


def pipeline(core, part: str, path: Path, threads: int):
    """``(call, compiled)``: the pipeline's IR as optimum-intel reshapes, compiles and calls it (``PERF_COUNT``
    added, as on ours)."""
    inputs = example(part)
    model = core.read_model(path)
    model.reshape({port: list(inputs[port.get_any_name()].shape) for port in model.inputs})
    ov_config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    compiled = core.compile_model(model, "CPU", {**ov_config, "PERF_COUNT": True})

    def call():
        return torch.from_numpy(compiled(inputs, share_inputs=True).to_dict()[compiled.outputs[0]])

    return call, compiled


def describe(compiled) -> dict:
    """The compiled model's properties, inputs and executed layers by type."""
    skip = {"SUPPORTED_PROPERTIES", "NETWORK_NAME"}
    properties = {p: str(compiled.get_property(p)) for p in compiled.get_property("SUPPORTED_PROPERTIES")}
    layers = collections.Counter(
        op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ops()
    )
    properties["LOADED_FROM_CACHE"] = str(compiled.get_property("LOADED_FROM_CACHE"))
    return {
        "properties": {k: v for k, v in properties.items() if k not in skip},
        "inputs": [[p.get_any_name(), str(p.get_partial_shape()), str(p.get_element_type())] for p in compiled.inputs],
        "executed_layers": dict(sorted(layers.items())),
    }


def profile(compiled, top: int = 8) -> dict[str, float]:
    """Seconds per layer type of the last call (``PERF_COUNT`` on), the ``top`` largest."""
    totals: dict[str, float] = collections.defaultdict(float)
    for info in compiled._infer_request.profiling_info:  # the request CompiledModel.__call__ keeps and reuses
        totals[info.node_type] += info.real_time.total_seconds()
    return {k: round(v, 4) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:top]}


def compare(core, part: str, ours_dir: Path, pipeline_dir: Path, rounds: int, threads: int) -> dict:
    config = {**compile_config("f32"), "PERF_COUNT": True}
    ours_call, ours_compiled = ours(core, part, ours_dir / PARTS[part][0], config)
    pipe_call, pipe_compiled = pipeline(core, part, pipeline_dir / PARTS[part][1], threads)
    described = {"ours": describe(ours_compiled), "pipeline": describe(pipe_compiled)}
    a, b = described["ours"], described["pipeline"]
    result = {
        **described,
        "properties_differ": {
            k: [a["properties"].get(k), b["properties"].get(k)]
            for k in sorted(set(a["properties"]) | set(b["properties"]))
            if a["properties"].get(k) != b["properties"].get(k)
        },
        "layers_differ": {
            k: [a["executed_layers"].get(k, 0), b["executed_layers"].get(k, 0)]
            for k in sorted(set(a["executed_layers"]) | set(b["executed_layers"]))
            if a["executed_layers"].get(k) != b["executed_layers"].get(k)
        },
        "max_abs_diff": float((ours_call() - pipe_call()).abs().max()),
    }
    contenders = {"ours": ours_call, "pipeline": pipe_call}
    calls: dict[str, list] = {name: [] for name in contenders}
    for i in range(rounds):
        for name in list(contenders) if i % 2 == 0 else list(contenders)[::-1]:
            start = time.perf_counter()
            contenders[name]()
            calls[name].append({"s": round(time.perf_counter() - start, 4), "load": load()})
    result["calls"] = calls
    result["median_s"] = {n: round(statistics.median(c["s"] for c in v), 4) for n, v in calls.items()}
    result["perf_counters_last_call_s"] = {"ours": profile(ours_compiled), "pipeline": profile(pipe_compiled)}
    return result


def compile_once(path: Path, cache_dir: str) -> dict:
    """Seconds to read ``path`` and compile it for the UNet's guided shapes with the backend's config, plus
    OpenVINO's model cache under ``cache_dir`` unless "none", and whether the cache served it."""
    import openvino as ov

    torch.set_num_threads(1)
    core = ov.Core()
    start = time.perf_counter()
    model = core.read_model(path)
    model.reshape({port: list(x.shape) for port, x in zip(model.inputs, example("unet").values(), strict=True)})
    cache = {} if cache_dir == "none" else {"CACHE_DIR": cache_dir}
    compiled = core.compile_model(model, "CPU", {**compile_config("f32"), **cache})
    return {"s": round(time.perf_counter() - start, 2), "loaded_from_cache": compiled.get_property("LOADED_FROM_CACHE")}


def load_times(ours_dir: Path, rounds: int) -> dict:
    """Our UNet read and compiled from its IR against imported from OpenVINO's model cache (``CACHE_DIR``, a
    temporary folder filled first), each in a fresh process, interleaved; the cached blob's size."""
    command = [sys.executable, __file__, "--compile-once", str(ours_dir / PARTS["unet"][0])]
    times: dict[str, list] = {"compile": [], "import": []}
    with tempfile.TemporaryDirectory(prefix="openvino-cache-") as cache:
        subprocess.run([*command, cache], check=True, capture_output=True)  # the blob exists from here on
        for i in range(rounds):
            for name in ("compile", "import") if i % 2 == 0 else ("import", "compile"):
                done = subprocess.run(
                    [*command, "none" if name == "compile" else cache], check=True, capture_output=True
                )
                times[name].append({**json.loads(done.stdout.decode().splitlines()[-1]), "load": load()})
        cache_gb = sum(f.stat().st_size for f in Path(cache).iterdir()) / 1e9
    return {
        "runs": times,
        "median_s": {n: round(statistics.median(r["s"] for r in v), 2) for n, v in times.items()},
        "cache_gb": round(cache_gb, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", type=Path, help="our IR folder (~/.cache/nopaingan/openvino/<key>)")
    parser.add_argument("--pipeline", type=Path, help="optimum-intel's export folder")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--rounds", type=int, default=6, help="timed calls per contender and part")
    parser.add_argument("--load-rounds", type=int, default=0, help="also time compile vs cache import (processes)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compile-once", nargs=2, metavar=("XML", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    if args.compile_once:
        print(json.dumps(compile_once(Path(args.compile_once[0]), args.compile_once[1])))
        return
    if not (args.ours and args.out and (args.pipeline or not args.parts)):
        parser.error("--ours, --out and (unless --parts is empty) --pipeline are required")
    import openvino as ov

    torch.set_num_threads(1)
    core = ov.Core()
    result = {
        "machine": machine()
        | {"cpu_capabilities": core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"), "openvino": ov.__version__},
        "ours": str(args.ours),
        "pipeline": str(args.pipeline),
        "load_avg": [load()],
        "parts": {},
    }
    if args.load_rounds:
        result["unet_load"] = load_times(args.ours, args.load_rounds)
        print("unet load", json.dumps(result["unet_load"]["median_s"]), flush=True)
    for part in filter(None, args.parts.split(",")):
        result["parts"][part] = compare(core, part, args.ours, args.pipeline, args.rounds, torch.get_num_threads())
        print(part, json.dumps(result["parts"][part]["median_s"]), flush=True)
    result["load_avg"].append(load())
    write_json(args.out, result)


if __name__ == "__main__":
    main()
