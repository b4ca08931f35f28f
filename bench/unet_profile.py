"""Where one guided UNet call spends its time: ours (the default path) against ONNX Runtime, op kind by op kind.

The unit is one guided miniSD UNet call at 256x256 (batch 2, 4x32x32 latents, 77x768 text, timestep 500), 20 of
an image's 21 model calls, and one VAE decode of a 32x32 latent. Ours is the model as ``nopaingan generate`` loads
it on this CPU (``load_minisd`` with ``prepack=True``, fp32); ONNX Runtime's is bench/peer_onnx.py's export of the
same folder (exported on first use, then read from its cache) on ``peer_onnx.session`` (CPUExecutionProvider,
default ORT_ENABLE_ALL optimizations). One thread each, the same inputs.

Each contender runs in a process of its own (in one process the two runtimes' allocations share glibc's heap, and
ours then page-faults tens of thousands of times per call, which it does not do alone), driven in turn: A B A B.
Every call records wall seconds, the process's user + system CPU seconds (with one thread, the CPU time leaves out
the time other jobs held the core: the steadier measure on a shared machine), system seconds and minor page faults.

``--profile-rounds N`` then profiles N UNet calls of each, interleaved: torch.profiler's self CPU time per op and
onnxruntime's ``SessionOptions.enable_profiling`` kernel times per node, summed into op kinds (:data:`KINDS`;
ONNX MatMuls are told apart by the module path the export keeps in node names), with the FLOPs of each kind
counted by ``FlopCounterMode`` on the unpacked UNet (attention under SDPA's math kernel, whose matmuls it counts).

    python bench/unet_profile.py --cache /tmp/speed-models --rounds 6 --profile-rounds 4 --out R.json
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import real_models  # noqa: F401  (puts the worktree's library first on sys.path)
import torch
from timing import check_new_outputs, load, machine, summary, timed, write_json

from nopaingan_core.sampling import load_minisd

KINDS = ("convolution", "attention", "linear GEMM", "norm", "elementwise", "copy / layout", "other")


def torch_kind(op: str) -> str:
    """The kind of a torch profiler op name (``aten::addmm``, ``mkldnn::_convolution_pointwise``...)."""
    name = op.split("::")[-1]
    if "convolution" in name:
        return "convolution"
    if "scaled_dot_product" in name or name in ("bmm", "baddbmm", "_softmax", "softmax"):
        return "attention"
    if name in ("addmm", "mm", "_mkl_linear", "_linear_pointwise"):
        return "linear GEMM"
    if "norm" in name:
        return "norm"
    if name in ("copy_", "clone", "cat", "contiguous", "_to_copy", "upsample_nearest2d"):
        return "copy / layout"
    if name in ("add", "add_", "mul", "mul_", "div", "sub", "gelu", "silu", "silu_", "exp", "sin", "cos", "neg"):
        return "elementwise"
    return "other"


def ort_kind(op: str, node: str) -> str:
    """The kind of an onnxruntime node from its op type and node name (the export keeps torch's module path,
    so ``.../attn1/MatMul`` is attention's QK^T and ``.../attn1/to_q/MatMul`` a linear layer)."""
    parent = node.rsplit("/", 2)[-2] if node.count("/") >= 2 else ""
    if "Conv" in op:
        return "convolution"
    if op == "Softmax" or (op in ("MatMul", "FusedMatMul") and parent in ("attn1", "attn2")):
        return "attention"
    if op in ("MatMul", "Gemm", "FusedMatMul", "FusedGemm"):
        return "linear GEMM"
    if "Norm" in op:
        return "norm"
    if op in (
        "ReorderInput",
        "ReorderOutput",
        "Transpose",
        "Concat",
        "Reshape",
        "Slice",
        "Split",
        "Resize",
        "Upsample",
        "Expand",
        "Gather",
        "Unsqueeze",
        "Squeeze",
        "Shape",
        "Cast",
    ):
        return "copy / layout"
    return "elementwise"


def flops_by_kind(unet: torch.nn.Module, args: tuple, context: torch.Tensor) -> dict[str, float]:
    """GFLOP per kind of one call of the unpacked ``unet`` (attention through SDPA's math kernel: its matmuls)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), counter:
        unet(*args, encoder_hidden_states=context, return_dict=False)
    kinds: dict[str, float] = defaultdict(float)
    for op, flops in counter.get_flop_counts()["Global"].items():
        name = str(op).split(".")[-1]
        kind = {"convolution": "convolution", "addmm": "linear GEMM"}.get(name, "attention")
        kinds["linear GEMM" if name == "mm" else kind] += flops / 1e9
    return dict(kinds)


def profile_torch(call: Callable[[], object]) -> dict[str, dict]:
    """Self CPU seconds and calls per op of one ``call()``, with each op's kind."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    return {
        e.key: {"kind": torch_kind(e.key), "s": e.self_cpu_time_total / 1e6, "calls": e.count}
        for e in prof.key_averages()
        if e.self_cpu_time_total > 0
    }


def profiling_session(model: Path):
    """An onnxruntime session like :func:`peer_onnx.session` with its profiler on (a JSON trace in a temporary
    folder)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ort-profile-")) / "ort")
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def ort_profiles(session) -> list[dict[str, dict]]:
    """Kernel seconds and calls per op type of each ``session.run`` since the session started, by kind, read
    from onnxruntime's trace (which is removed; the session profiles no more after)."""
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    trace.parent.rmdir()
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    profiles: list[dict[str, dict]] = [{} for _ in runs]
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        index = next(i for i, run in enumerate(runs) if run["ts"] <= e["ts"] <= run["ts"] + run["dur"])
        op = e["args"]["op_name"]
        kind = ort_kind(op, e["name"].removesuffix("_kernel_time"))
        entry = profiles[index].setdefault(f"{op} ({kind})", {"kind": kind, "s": 0.0, "calls": 0})
        entry["s"] += e["dur"] / 1e6
        entry["calls"] += 1
    return profiles


def median_ops(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """Each op's median and least seconds over profiled runs (on a shared machine the least is the closest
    to the op's own time: a run the scheduler interrupted only takes longer)."""
    ops = {}
    for op, entry in runs[0].items():
        seconds = [run.get(op, {"s": 0.0})["s"] for run in runs]
        ops[op] = {**entry, "s": round(statistics.median(seconds), 4), "min_s": round(min(seconds), 4)}
    return ops


def by_kind(ops: dict[str, dict]) -> dict[str, float]:
    kinds = dict.fromkeys(KINDS, 0.0)
    for entry in ops.values():
        kinds[entry["kind"]] += entry["s"]
    return {k: round(v, 4) for k, v in kinds.items()}


class Contender:
    """One contender's calls in this process: ``ours`` (the UNet and VAE as ``load_minisd(prepack=True)`` loads
    them) or ``onnxruntime`` (peer_onnx's export of the same folder), on the same fixed inputs."""

    def __init__(self, name: str, path: Path) -> None:
        torch.set_num_threads(1)
        gen = torch.Generator().manual_seed(0)
        sample = torch.randn(2, 4, 32, 32, generator=gen)
        context = torch.randn(2, 77, 768, generator=gen)
        latent = sample[:1] / 0.18215
        self.profiles: list[dict] = []
        if name == "ours":
            sd = load_minisd(str(path), dtype="fp32", prepack=True)
            timestep = torch.tensor(500)

            @torch.inference_mode()
            def unet() -> torch.Tensor:
                return sd.unet(sample, timestep, encoder_hidden_states=context, return_dict=False)[0]

            @torch.inference_mode()
            def vae() -> torch.Tensor:
                return sd.vae.decode(latent, return_dict=False)[0]

            self.calls = {"unet": unet, "vae": vae}
            self.profile = lambda: self.profiles.append(profile_torch(unet))
            self.end_profile = lambda: self.profiles
        else:
            import peer_onnx

            folder = peer_onnx.exported(str(path))
            model = folder / "unet" / "model.onnx"
            feeds = {
                "sample": sample.numpy(),
                "timestep": torch.tensor([500.0, 500.0]).numpy(),
                "encoder_hidden_states": context.numpy(),
            }
            sessions = {
                "unet": peer_onnx.session(model),
                "vae": peer_onnx.session(folder / "vae_decoder" / "model.onnx"),
            }
            vae_feeds = {"latent_sample": latent.numpy()}
            self.calls = {
                "unet": lambda: torch.from_numpy(sessions["unet"].run(None, feeds)[0]),
                "vae": lambda: torch.from_numpy(sessions["vae"].run(None, vae_feeds)[0]),
            }

            def profile() -> None:
                if "profiling" not in sessions:
                    del sessions["unet"]  # one copy of the weights at a time
                    sessions["profiling"] = profiling_session(model)
                    sessions["profiling"].run(None, feeds)  # untimed: the first run allocates
                sessions["profiling"].run(None, feeds)

            self.profile = profile
            self.end_profile = lambda: ort_profiles(sessions["profiling"])[1:]

    def measure(self, part: str) -> dict:
        """One call of ``part``: wall seconds, user and system CPU seconds, minor page faults."""
        before = resource.getrusage(resource.RUSAGE_SELF)
        wall = timed(self.calls[part])[0]
        after = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "wall_s": round(wall, 3),
            "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 3),
            "sys_s": round(after.ru_stime - before.ru_stime, 3),
            "minor_faults": after.ru_minflt - before.ru_minflt,
        }


def serve(name: str, path: Path, conn) -> None:
    """A contender's process: its first calls' outputs, then one answer per request from ``conn``."""
    contender = Contender(name, path)
    conn.send({part: call() for part, call in contender.calls.items()})  # untimed: packing, allocation
    while (request := conn.recv()) != "quit":
        if request == "profile":
            conn.send(contender.profile())
        elif request == "end_profile":
            conn.send(contender.end_profile())
        else:
            conn.send(contender.measure(request))


def main() -> None:
    parser = real_models.parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    parser.add_argument("--parts", default="unet,vae", help="what each round times: unet, vae or both")
    parser.add_argument("--profile-rounds", type=int, default=0, help="interleaved profiled UNet calls of each")
    parser.add_argument("--contenders", default="ours,onnxruntime", help="ours, onnxruntime or both")
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    path = real_models.model_path("sd", args.cache)
    result: dict = {"machine": machine(), "model": str(path), "rounds": args.rounds, "load_avg_start": load()}
    context = multiprocessing.get_context("spawn")
    conns, processes, outputs = {}, [], {}
    for name in args.contenders.split(","):
        conns[name], child = context.Pipe()
        processes.append(context.Process(target=serve, args=(name, path, child)))
        processes[-1].start()
        outputs[name] = conns[name].recv()
    if len(outputs) == 2:
        first, second = outputs.values()
        result["max_abs_diff"] = {part: float((first[part] - second[part]).abs().max()) for part in first}
    parts = args.parts.split(",")
    runs: dict = {f"{name} {part}": [] for part in parts for name in conns}
    loads = []
    for _ in range(args.rounds):  # A B A B ...: each contender in its own process, one call at a time
        for part in parts:
            for name, conn in conns.items():
                conn.send(part)
                runs[f"{name} {part}"].append(conn.recv())
        loads.append(load())
        print({key: runs[key][-1]["cpu_s"] for key in runs}, "load", loads[-1], flush=True)
    result["load_avg_per_round"] = loads
    result["runs"] = runs
    result["summary"] = {
        key: {measure: summary([r[measure] for r in values]) for measure in ("wall_s", "cpu_s", "sys_s")}
        for key, values in runs.items()
        if values
    }
    if args.profile_rounds:
        from diffusers import UNet2DConditionModel

        plain = UNet2DConditionModel.from_pretrained(str(path), subfolder="unet").eval()
        gen = torch.Generator().manual_seed(0)
        sample, context_ = torch.randn(2, 4, 32, 32, generator=gen), torch.randn(2, 77, 768, generator=gen)
        result["gflop_by_kind"] = flops_by_kind(plain, (sample, torch.tensor(500)), context_)
        del plain
        for _ in range(args.profile_rounds):  # interleaved too
            for conn in conns.values():
                conn.send("profile")
                conn.recv()
        for name, conn in conns.items():
            conn.send("end_profile")
            profiles = conn.recv()
            result[f"{name}_ops"] = median_ops(profiles)
            kinds = [by_kind(run) for run in profiles]
            result[f"{name}_by_kind"] = {
                kind: {
                    "median_s": round(statistics.median(k[kind] for k in kinds), 4),
                    "min_s": round(min(k[kind] for k in kinds), 4),
                }
                for kind in KINDS
            }
        print(json.dumps({k: v for k, v in result.items() if "by_kind" in k}))
    for conn, process in zip(conns.values(), processes, strict=True):
        conn.send("quit")
        process.join()
    result["load_avg_end"] = load()
    write_json(args.out, result)


if __name__ == "__main__":
    main()
