"""The UNet's linear layers and convolutions one shape at a time: torch's kernels against ONNX Runtime's.

Every ``nn.Linear`` and ``nn.Conv2d`` call of one guided miniSD UNet call at 256x256 (batch 2, 32x32 latents, 77
text tokens) is recorded with its input shape; each distinct shape is then built alone with random weights and run
by each candidate, interleaved, ``--repeats`` times, in CPU seconds of this process (one thread: it leaves out the
time other jobs held the core). A candidate's total is the sum over shapes of its median time times the number of
calls of that shape in the UNet.

Linear layers: ``F.linear`` (MKL's sgemm), oneDNN's prepacked linear (``mkldnn._linear_pointwise``), MKL's
prepacked sgemm (``mkl._mkl_linear``, what inductor's freezing uses) and an ONNX ``MatMul`` (+ ``Add``) on
onnxruntime. Convolutions: ``prepack.PackedConv2d`` given NCHW input (it converts it) or channels-last input, and an
ONNX ``Conv`` on onnxruntime (its optimizer turns it into an NCHWc convolution).

    python bench/unet_kernels.py --cache /tmp/speed-models --out R.json
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable

import real_models  # noqa: F401  (puts the worktree's library first on sys.path)
import torch
from timing import check_new_outputs, load, machine, write_json

from nopaingan_core.prepack import PackedConv2d


def unet_shapes(path) -> tuple[Counter, Counter]:
    """Counts of ``(rows, in, out, bias)`` per linear call and ``(batch, in, out, height, width, kernel, stride)``
    per convolution call in one guided UNet call."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(str(path), subfolder="unet").eval()
    linears, convs = Counter(), Counter()

    def record(module: torch.nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        if isinstance(module, torch.nn.Linear):
            linears[(x.numel() // x.shape[-1], module.in_features, module.out_features, module.bias is not None)] += 1
        else:
            c = module
            convs[
                (x.shape[0], c.in_channels, c.out_channels, x.shape[2], x.shape[3], c.kernel_size[0], c.stride[0])
            ] += 1

    for module in unet.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            module.register_forward_pre_hook(record)
    with torch.inference_mode():
        unet(torch.randn(2, 4, 32, 32), torch.tensor(500), encoder_hidden_states=torch.randn(2, 77, 768))
    return linears, convs


def ort_session(nodes: list, inputs: list, output: tuple, initializers: list):
    """A one-thread onnxruntime session of a graph of ``nodes`` (opset 17)."""
    import onnxruntime
    from onnx import TensorProto, helper

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def linear_candidates(rows: int, k: int, n: int, bias: bool) -> dict[str, Callable[[], object]]:
    from onnx import helper, numpy_helper

    x, w = torch.randn(rows, k), torch.randn(n, k)
    b = torch.randn(n) if bias else None
    nodes = [helper.make_node("MatMul", ["x", "wt"], ["y0" if bias else "y"])]
    inits = [numpy_helper.from_array(w.t().contiguous().numpy(), "wt")]
    if bias:
        nodes.append(helper.make_node("Add", ["y0", "b"], ["y"]))
        inits.append(numpy_helper.from_array(b.numpy(), "b"))
    session = ort_session(nodes, [("x", [rows, k])], ("y", [rows, n]), inits)
    onednn = torch.ops.mkldnn._reorder_linear_weight(w, rows)
    mkl = torch.ops.mkl._mkl_reorder_linear_weight(w, rows)
    feeds = {"x": x.numpy()}
    return {
        "torch F.linear (MKL sgemm)": lambda: torch.nn.functional.linear(x, w, b),
        "oneDNN prepacked linear": lambda: torch.ops.mkldnn._linear_pointwise(x, onednn, b, "none", [], ""),
        "MKL prepacked sgemm": lambda: torch.ops.mkl._mkl_linear(x, mkl, w, b, rows),
        "onnxruntime MatMul": lambda: session.run(None, feeds),
    }


def conv_candidates(batch: int, cin: int, cout: int, h: int, w: int, k: int, stride: int) -> dict:
    from onnx import helper, numpy_helper

    conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2).eval().requires_grad_(False)
    packed = PackedConv2d(conv)
    x = torch.randn(batch, cin, h, w)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    out = (h + 2 * (k // 2) - k) // stride + 1
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[k // 2] * 4, strides=[stride] * 2)
    weights = [numpy_helper.from_array(conv.weight.numpy(), "w"), numpy_helper.from_array(conv.bias.numpy(), "b")]
    session = ort_session([node], [("x", [batch, cin, h, w])], ("y", [batch, cout, out, out]), weights)
    feeds = {"x": x.numpy()}
    return {
        "PackedConv2d, NCHW input": lambda: packed(x),
        "PackedConv2d, channels-last input": lambda: packed(x_cl),
        "onnxruntime Conv": lambda: session.run(None, feeds),
    }


def cpu_seconds(fn: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def compare(shapes: Counter, candidates: Callable[..., dict], flops: Callable[..., float], repeats: int) -> dict:
    """Each shape's candidates, interleaved ``repeats`` times after one untimed call (each timing averages
    enough calls for about 2 GFLOP); per shape the medians times its count of calls, and the totals."""
    rows, totals = [], Counter()
    with torch.inference_mode():
        for shape, count in shapes.items():
            fns = candidates(*shape)
            calls = max(1, int(2e9 / flops(*shape)))
            times: dict[str, list[float]] = {name: [] for name in fns}
            for fn in fns.values():
                fn()
            for _ in range(repeats):
                for name, fn in fns.items():
                    times[name].append(cpu_seconds(fn, calls))
            per_call = {name: round(statistics.median(t) * count, 5) for name, t in times.items()}
            rows.append({"shape": list(shape), "calls_in_unet": count, "cpu_s": per_call})
            totals.update(per_call)
            print(shape, count, per_call, flush=True)
    return {"shapes": rows, "total_cpu_s": {name: round(s, 4) for name, s in totals.items()}}


def main() -> None:
    parser = real_models.parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each shape")
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    torch.set_num_threads(1)
    linears, convs = unet_shapes(real_models.model_path("sd", args.cache))
    result: dict = {"machine": machine(), "repeats": args.repeats, "load_avg_start": load()}
    result["linear"] = compare(linears, linear_candidates, lambda m, k, n, _: 2 * m * k * n, args.repeats)
    result["load_avg_after_linear"] = load()
    result["convolution"] = compare(
        convs, conv_candidates, lambda b, i, o, h, w, k, s: 2 * b * i * o * k * k * h * w / s / s, args.repeats
    )
    result["load_avg_end"] = load()
    print(result["linear"]["total_cpu_s"], result["convolution"]["total_cpu_s"])
    write_json(args.out, result)


if __name__ == "__main__":
    main()
