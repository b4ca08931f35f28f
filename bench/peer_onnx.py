"""Runner of the onnxruntime peer for bench/peers.py: ONNX Runtime's own way of running Stable Diffusion.

The folder's text encoder, UNet and VAE decoder are exported to ONNX as diffusers'
``scripts/convert_stable_diffusion_checkpoint_to_onnx.py`` does: ``torch.onnx.export`` with the TorchScript
exporter (``dynamo=False``; the dynamo exporter needs onnxscript, not installed), fp32, opset ``OPSET``, the
same input/output names and dynamic axes, the UNet's weights collated into one external file ``weights.pb``
(it is over protobuf's 2 GB). Each exported model is run once by onnxruntime next to its torch module on the
same input and refused (:class:`ExportMismatch`) when they differ by more than ``TOLERANCE`` of the torch
output's largest magnitude.

The export is made once per model folder, in a child process (its memory never counts in the timed worker's
peak RSS), and kept under ``$XDG_CACHE_HOME/nopaingan/onnx/<key>`` (``~/.cache/...`` by default): ``key``
hashes the folder's model files (name, size, mtime and their first and last MiB) and the torch, onnx and
onnxruntime versions, so a later run, or round, loads it without exporting. It is written in a temporary
folder renamed into place when complete; an older export of the same folder (rebuilt since) is removed then.

Images come from diffusers' ``OnnxStableDiffusionPipeline`` (deprecated in diffusers, still in 0.42) on
``onnxruntime.InferenceSession`` (CPUExecutionProvider, ``torch.get_num_threads()`` intra-op threads, one
inter-op), with the initial latents drawn as diffusers' ``StableDiffusionPipeline`` draws them from
``torch.Generator("cpu").manual_seed(seed)`` (the ONNX pipeline would use numpy's RandomState), so both start
from the same noise and ``max_abs_diff_vs_diffusers`` measures the runtimes, not the seeds.

    python bench/peer_onnx.py MODEL_FOLDER EXPORT_FOLDER [THREADS]   # the child: export and check, no more
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import real_models  # noqa: F401  (puts the worktree's library first on sys.path)
import torch

from nopaingan_core.hub import cache_home

OPSET = 17
TOLERANCE = 1e-3  # of the torch output's largest magnitude; fp32 exports agree to about 1e-6
MODELS = ("text_encoder", "unet", "vae")  # the folder's subfolders the export reads
ONNX_PIPELINE = "pipeline_onnx_stable_diffusion.py"  # OnnxStableDiffusionPipeline's module in diffusers


class ExportMismatch(RuntimeError):
    """An exported model's output differs from its torch module's on the same input."""


def skip_reason() -> str | None:
    """Why this peer cannot run here (a missing package), or None."""
    for module, why in (("onnxruntime", "onnxruntime"), ("onnx", "onnx (torch.onnx.export writes with it)")):
        if importlib.util.find_spec(module) is None:
            return f"{why} is not installed (bench/requirements-peers.txt)"
    diffusers = importlib.util.find_spec("diffusers")  # its file, not an import: that takes seconds
    if not (Path(diffusers.origin).parent / "pipelines" / "stable_diffusion" / ONNX_PIPELINE).is_file():
        return f"this diffusers ({diffusers.origin}) has no OnnxStableDiffusionPipeline (deprecated, gone in 0.43)"
    return None


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/nopaingan/onnx``, i.e. ``~/.cache/nopaingan/onnx`` by default."""
    return cache_home("onnx")


def cache_key(path: str | os.PathLike) -> str:
    """:func:`peers.folder_key` of ``path``'s text_encoder/, unet/ and vae/ files with the torch, onnx and
    onnxruntime versions and ``OPSET``."""
    import onnx
    import onnxruntime
    import peers

    root = Path(path)
    files = [f for name in MODELS for f in (root / name).rglob("*") if f.is_file()]
    return peers.folder_key(root, files, f"{torch.__version__} {onnx.__version__} {onnxruntime.__version__} {OPSET}")


def session(model: Path):
    """An onnxruntime CPU session for ``model`` with torch's thread count (intra-op) and one inter-op thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def load(path: str, cache_dir: str) -> Callable[[int], torch.Tensor]:
    """``run(steps)``: one image for peers.PROMPT / SEED / GUIDANCE / SIZE with ``steps`` PNDM steps, a float
    tensor [1, SIZE, SIZE, 3] in [0, 1] on the CPU. ``path``: a diffusers miniSD folder; it is exported on the
    first call (a child process; RuntimeError if that fails) and read from :func:`cache_root` after.
    ``cache_dir`` (peers.py's folder for one run) is not used: the export outlives the run."""
    import peers
    from diffusers import OnnxRuntimeModel, OnnxStableDiffusionPipeline, PNDMScheduler
    from transformers import CLIPTokenizer

    folder = exported(path)
    pipe = OnnxStableDiffusionPipeline(
        vae_encoder=None,
        vae_decoder=OnnxRuntimeModel(model=session(folder / "vae_decoder" / "model.onnx")),
        text_encoder=OnnxRuntimeModel(model=session(folder / "text_encoder" / "model.onnx")),
        tokenizer=CLIPTokenizer.from_pretrained(path, subfolder="tokenizer"),
        unet=OnnxRuntimeModel(model=session(folder / "unet" / "model.onnx")),
        scheduler=PNDMScheduler.from_pretrained(path, subfolder="scheduler"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(peers.SEED)
    latents = torch.randn((1, 4, peers.SIZE // 8, peers.SIZE // 8), generator=generator).numpy()

    def run(steps: int) -> torch.Tensor:
        out = pipe(
            peers.PROMPT,
            negative_prompt="",
            num_inference_steps=steps,
            guidance_scale=peers.GUIDANCE,
            height=peers.SIZE,
            width=peers.SIZE,
            latents=latents,
            output_type="np",
        )
        return torch.from_numpy(out.images).float()

    return run


def exported(path: str) -> Path:
    """The folder of ``path``'s ONNX export (text_encoder/, unet/, vae_decoder/, export.json), exported by a
    child process running :func:`export` when the cache has none for the folder's current files."""
    folder = cache_root() / cache_key(path)
    if not folder.is_dir():
        _export_in_child(path, folder)
    return folder


def _export_in_child(path: str, folder: Path) -> None:
    command = [sys.executable, __file__, str(path), str(folder), str(torch.get_num_threads())]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"exporting {path} to ONNX failed:\n{done.stderr[-3000:]}")
    print(done.stdout.strip(), file=sys.stderr)


def export(path: str, folder: Path) -> dict:
    """Export ``path``'s text encoder, UNet and VAE decoder into ``folder`` (made whole or not at all), each
    checked by :func:`check`; returns (and writes as export.json) the seconds each took (load, reference run,
    export), their errors, the whole export's seconds and this process's peak RSS (GB)."""
    import peers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    # the torch modules called as the runtime calls them: the wrappers the OpenVINO conversion exports
    from nopaingan_core.openvino_backend import _Decoder, _TextEncoder, _UNet

    torch.manual_seed(0)  # the example inputs
    tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
    ids = tokenizer([peers.PROMPT], padding="max_length", max_length=tokenizer.model_max_length, truncation=True)
    ids = torch.tensor(ids.input_ids, dtype=torch.int32)
    latent = peers.SIZE // 8
    # name: (loader, wrapper, example inputs for the loaded model, input names, output names, dynamic axes);
    # names and axes as diffusers' script has them, so that OnnxStableDiffusionPipeline can call the models
    specs = {
        "text_encoder": (
            lambda: CLIPTextModel.from_pretrained(path, subfolder="text_encoder"),
            _TextEncoder,
            lambda model: (ids,),
            ["input_ids"],
            ["last_hidden_state", "pooler_output"],
            {"input_ids": {0: "batch", 1: "sequence"}},
        ),
        "unet": (
            lambda: UNet2DConditionModel.from_pretrained(path, subfolder="unet"),
            _UNet,
            lambda model: (
                torch.randn(2, model.config.in_channels, latent, latent),
                torch.tensor([500.0, 500.0]),
                torch.randn(2, ids.shape[1], model.config.cross_attention_dim),
            ),
            ["sample", "timestep", "encoder_hidden_states"],
            ["out_sample"],
            {
                "sample": {0: "batch", 1: "channels", 2: "height", 3: "width"},
                "timestep": {0: "batch"},
                "encoder_hidden_states": {0: "batch", 1: "sequence"},
            },
        ),
        "vae_decoder": (
            lambda: AutoencoderKL.from_pretrained(path, subfolder="vae"),
            _Decoder,
            lambda model: (torch.randn(1, model.config.latent_channels, latent, latent),),
            ["latent_sample"],
            ["sample"],
            {"latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}},
        ),
    }
    begin = time.perf_counter()
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    report: dict = {"source": str(Path(path).resolve()), "opset": OPSET, "models": {}}
    try:
        for name, (loader, wrapper, examples, inputs, outputs, axes) in specs.items():
            start = time.perf_counter()
            loaded = loader()
            example = examples(loaded)
            module = wrapper(loaded).eval()
            with torch.inference_mode():
                expected = module(*example)
            expected = expected if isinstance(expected, tuple) else (expected,)
            model = tmp / name / "model.onnx"
            model.parent.mkdir(parents=True)
            with torch.no_grad():
                torch.onnx.export(
                    module,
                    example,
                    str(model),
                    input_names=inputs,
                    output_names=outputs,
                    dynamic_axes=axes,
                    opset_version=OPSET,
                    do_constant_folding=True,
                    dynamo=False,
                )
            del module, loaded
            _collate_external_data(model)
            seconds = time.perf_counter() - start
            errors = check(name, model, example, expected)
            report["models"][name] = {"export_s": round(seconds, 2), "relative_errors": errors}
        report["total_s"] = round(time.perf_counter() - begin, 2)  # loads, exports and checks
        report["peak_rss_gb"] = peers.peak_rss_gb()
        (tmp / "export.json").write_text(json.dumps(report, indent=1))
        try:
            tmp.rename(folder)
        except OSError:  # another process got there first: its export is as good
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _remove_older_exports(folder, report["source"])
    return report


def _collate_external_data(model: Path) -> None:
    """A model over 2 GB is written with one file per tensor: collate them into ``weights.pb`` beside it."""
    if len(list(model.parent.iterdir())) == 1:
        return
    import onnx

    proto = onnx.load(str(model))
    for file in model.parent.iterdir():
        file.unlink()
    onnx.save_model(proto, str(model), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.pb")


def check(name: str, model: Path, example: tuple, expected: tuple) -> list[float]:
    """Run ``model`` with onnxruntime on ``example`` and compare each output with torch's ``expected``: the
    largest difference relative to the largest magnitude of the torch output, one per output. Raises
    :class:`ExportMismatch` when a shape differs or one exceeds ``TOLERANCE``."""
    runner = session(model)
    feeds = {i.name: x.numpy() for i, x in zip(runner.get_inputs(), example, strict=True)}
    errors = []
    for index, (have, want) in enumerate(zip(runner.run(None, feeds), expected, strict=True)):
        have = torch.from_numpy(have)
        scale = float(want.abs().max()) or 1.0
        error = float((have - want).abs().max()) / scale if have.shape == want.shape else float("inf")
        if not error <= TOLERANCE:
            raise ExportMismatch(
                f"onnxruntime's {name} (output {index}) differs from torch's by {error:.2e} of its range "
                f"(shape {tuple(have.shape)} vs {tuple(want.shape)}); refusing the export"
            )
        errors.append(error)
    return errors


def _remove_older_exports(folder: Path, source: str) -> None:
    """Remove the other exports of the same model folder: their files have changed since."""
    for other in folder.parent.glob("*/export.json"):
        if other.parent != folder and json.loads(other.read_text()).get("source") == source:
            shutil.rmtree(other.parent, ignore_errors=True)


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    print(json.dumps(export(sys.argv[1], Path(sys.argv[2]))))
