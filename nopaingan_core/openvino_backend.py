"""miniSD on OpenVINO's CPU runtime: the UNet, VAE decoder and CLIP text encoder converted from our torch
modules with ``openvino.convert_model`` (optional extra ``[openvino]``; ``--backend openvino``).

Not optimum-intel: it pins transformers below ours. The converted models stand in for the torch modules inside
:class:`~nopaingan_core.sampling.MiniSD`, so the sampling loop, the schedulers, guidance, its cut-off and the
music fusion are unchanged: the fused conditioning enters the UNet as its encoder hidden states, as in torch.

- **Checked before use.** Every freshly converted model is run on a sample input next to its torch module
  (fp32 on both sides) and refused with :class:`ConversionError` when they differ by more than ``1e-3``
  relative to the output's range (a silently mis-converted model gives noise).
- **Static shapes.** Each model is compiled for the exact input shapes it is called with (256x256 latents,
  77 tokens, batch 2 for guided steps...), one compiled model per shape, so the runtime plans for fixed sizes.
- **Precision.** ``dtype`` ``auto`` gives OpenVINO's bf16 inference hint where the CPU computes bf16 natively
  (AVX512-BF16 or AMX), f32 otherwise; inputs and outputs stay fp32. ``int8_weights`` compresses the weights
  to int8 with NNCF (``nncf.compress_weights``): less memory and bandwidth, slightly different images.
- **Cache.** Converted models are saved as OpenVINO IR under ``cache_dir`` (keyed by a fingerprint of the
  weights, the options and the OpenVINO version), so the second run does not convert again (minutes at real
  size). Compiled models are not cached (see :func:`compile_config`): each run compiles the IR it reads.
- **Same as OpenVINO's own pipeline.** Compiled this way, the UNet, VAE decoder and text encoder are the models
  optimum-intel's ``OVStableDiffusionPipeline`` compiles from its export: same executed layers, same compile
  properties, bit-identical outputs and the same time per call (``bench/openvino_parity.py``, BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch

from .errors import NoPainGanError
from .hub import cache_home
from .precision import cpu_has_native_bf16

TOLERANCE = 1e-3  # of the torch output's range; fp32 conversions agree to about 1e-6


class ConversionError(NoPainGanError):
    """A converted model's output differs from its torch module's."""


def require_openvino():
    try:
        import openvino
    except ImportError as error:
        raise NoPainGanError(
            "--backend openvino needs OpenVINO: pip install 'comfyui-no-pain-no-gan[openvino]'"
        ) from error
    return openvino


def default_cache_dir() -> Path:
    return cache_home("openvino")


def inference_precision(dtype: str | torch.dtype, core) -> str:
    """OpenVINO's ``INFERENCE_PRECISION_HINT`` for a dtype choice: ``bf16`` where the CPU computes it natively
    (``auto`` picks it there), else ``f32``. Raises :class:`NoPainGanError` for an explicit bf16/fp16 the CPU
    cannot run natively."""
    names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    choice = names.get(dtype, dtype) if isinstance(dtype, torch.dtype) else dtype
    capabilities = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    native_bf16 = "BF16" in capabilities or cpu_has_native_bf16()
    if choice == "auto":
        return "bf16" if native_bf16 else "f32"
    if choice == "fp32":
        return "f32"
    if choice == "bf16" and native_bf16:
        return "bf16"
    if choice == "fp16" and "FP16" in capabilities:
        return "f16"
    raise NoPainGanError(
        f"--dtype {choice} with --backend openvino needs a CPU with native {choice} arithmetic; this one has "
        f"{', '.join(sorted(capabilities)) or 'none'}: use --dtype auto or fp32"
    )


def compile_config(precision: str) -> dict:
    """The CPU plugin's compile options of every model: ``precision`` (:func:`inference_precision`), one stream
    of ``torch.get_num_threads()`` threads for one request at a time (``LATENCY``); the options optimum-intel's
    pipeline is given in ``bench/peer_optimum.py``.

    No ``CACHE_DIR``: OpenVINO's compiled-model cache did not make the UNet's load faster on the AVX2 CPU
    measured (f32, 1 thread, fresh processes, interleaved, medians of 3: importing the blob 15.8 s against
    12.3 s to read and compile the IR at load 4.2; 6.5 s against 6.6 s at load 3.4; the same time per call
    afterwards), yet it wrote a 3.44 GB blob per UNet input shape (guided, after a cut-off, 154 tokens, each
    size) beside the 3.44 GB IR (``bench/openvino_parity.py --load-rounds``, BENCHMARKS.md)."""
    return {
        "INFERENCE_PRECISION_HINT": precision,
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "PERFORMANCE_HINT": "LATENCY",
    }


def cache_key(sd, openvino_version: str) -> str:
    """The folder name of ``sd``'s converted models: its weights (:func:`fingerprint`) and everything else that
    decides the IR: the versions of OpenVINO, torch, diffusers, transformers and NNCF (which trace, convert and
    compress it) and this module's own code (its wrappers and conversion), so an upgrade converts again rather
    than reading IR an earlier version made."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    options = {"openvino": openvino_version, "torch": torch.__version__}
    options |= {package: installed(package) for package in ("diffusers", "transformers", "nncf")}
    options["converter"] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    weights = [fingerprint(sd.unet), fingerprint(sd.vae), fingerprint(sd.text_encoder)]
    return hashlib.sha256(json.dumps([*weights, options]).encode()).hexdigest()[:20]


def fingerprint(module: torch.nn.Module) -> str:
    """A cheap hash of a module's weights: names, shapes and the first and last values of each tensor."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().reshape(-1)
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(torch.cat([flat[:64], flat[-64:]]).float().numpy().tobytes())
    return digest.hexdigest()[:16]


class _UNet(torch.nn.Module):
    def __init__(self, unet: torch.nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states=context, return_dict=False)[0]


class _Decoder(torch.nn.Module):
    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents, return_dict=False)[0]


class _TextEncoder(torch.nn.Module):
    def __init__(self, text_encoder: torch.nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.text_encoder(ids, return_dict=False)
        return out[0], out[1]


@dataclass
class ConvertedModel:
    """An OpenVINO model compiled once per input shape (static shapes), called with torch tensors."""

    model: object  # openvino.Model
    core: object  # openvino.Core
    config: dict
    compiled: dict

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        shapes = tuple(tuple(x.shape) for x in inputs)
        if shapes not in self.compiled:
            model = self.model.clone()
            model.reshape({port: list(shape) for port, shape in zip(model.inputs, shapes, strict=True)})
            self.compiled[shapes] = self.core.compile_model(model, "CPU", self.config)
        arrays = [x.detach().cpu().numpy() for x in inputs]
        result = self.compiled[shapes](arrays)
        return [torch.from_numpy(result[port].copy()) for port in self.compiled[shapes].outputs]


class OpenVINOUNet:
    """Stands in for ``UNet2DConditionModel`` in the sampling loop: same call, fp32 in and out, on the CPU."""

    def __init__(self, model: ConvertedModel, config, precision: str) -> None:
        self.model, self.config, self.precision = model, config, precision
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def __call__(self, sample, timestep, encoder_hidden_states, return_dict: bool = False):
        t = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1)[:1]
        return (self.model(sample.float(), t, encoder_hidden_states.float())[0],)

    def to(self, *args, **kwargs):
        return self


class OpenVINODecoder:
    """Stands in for ``AutoencoderKL`` where generation uses it: ``decode`` and ``config``."""

    def __init__(self, model: ConvertedModel, config) -> None:
        self.model, self.config = model, config
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def decode(self, latents: torch.Tensor, return_dict: bool = False):
        return (self.model(latents.float())[0],)

    def encode(self, *args, **kwargs):
        raise NoPainGanError("the OpenVINO backend converts the VAE decoder only; encode images with --backend torch")

    def to(self, *args, **kwargs):
        return self


class OpenVINOTextEncoder:
    """Stands in for ``CLIPTextModel``: ``(ids) -> (last hidden state, pooled output)``."""

    def __init__(self, model: ConvertedModel) -> None:
        self.model = model
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def __call__(self, ids: torch.Tensor):
        return tuple(self.model(ids.to(torch.int64)))

    def to(self, *args, **kwargs):
        return self


def _check(name: str, ov_model, module: torch.nn.Module, example: tuple, core) -> None:
    """Run the converted model in f32 next to the torch module; raise ConversionError if they differ."""
    compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled([x.numpy() for x in example])
    with torch.inference_mode():
        expected = module(*example)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for i, (port, want) in enumerate(zip(compiled.outputs, expected, strict=False)):
        have = torch.from_numpy(got[port])
        scale = float(want.abs().max()) or 1.0
        error = float((have - want).abs().max()) / scale
        if have.shape != want.shape or not error <= TOLERANCE:
            raise ConversionError(
                f"OpenVINO's {name} (output {i}) differs from torch's by {error:.2e} of its range "
                f"(shape {tuple(have.shape)} vs {tuple(want.shape)}); refusing it"
            )


def _save(ov, model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp.xml")
    ov.save_model(model, tmp, compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
    os.replace(tmp, path)  # last: an .xml is only there once its weights are


def _convert(name: str, module: torch.nn.Module, example: tuple, folder: Path, int8: bool, core):
    """The IR of ``module``: read from ``folder`` if it was converted and checked before, else converted,
    checked against torch and saved; with ``int8`` its NNCF-compressed copy (saved under ``folder/int8``)."""
    ov = require_openvino()
    path, int8_path = folder / f"{name}.xml", folder / "int8" / f"{name}.xml"
    if int8 and int8_path.exists():
        return core.read_model(int8_path)
    if path.exists():
        model = core.read_model(path)
    else:
        model = ov.convert_model(module.eval(), example_input=example)
        _check(name, model, module, example, core)
        _save(ov, model, path)
    if not int8:
        return model
    try:
        import nncf
    except ImportError as error:
        raise NoPainGanError("--int8-weights needs NNCF: pip install 'comfyui-no-pain-no-gan[openvino]'") from error
    model = nncf.compress_weights(model)  # int8 (asymmetric) weights of the matmuls and convolutions
    _save(ov, model, int8_path)
    return model


def to_openvino(
    sd,
    dtype: str | torch.dtype = "auto",
    int8_weights: bool = False,
    cache_dir: str | os.PathLike | None = None,
    width: int = 256,
    height: int = 256,
):
    """A copy of ``sd`` (an fp32 torch :class:`MiniSD` on the CPU) whose UNet, VAE decoder and text encoder run on
    OpenVINO. ``width``/``height`` only size the conversion's sample input (any size runs afterwards).

    Raises :class:`NoPainGanError` when OpenVINO (or NNCF, for ``int8_weights``) is missing or the precision
    is not native to this CPU, and :class:`ConversionError` when a converted model disagrees with torch."""
    from .sampling import MiniSD

    ov = require_openvino()
    if sd.dtype != torch.float32 or sd.device.type != "cpu":
        raise NoPainGanError(f"to_openvino converts an fp32 CPU model, got {sd.dtype} on {sd.device}")
    core = ov.Core()
    precision = inference_precision(dtype, core)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache / cache_key(sd, ov.__version__)
    config = compile_config(precision)
    scale = sd.latent_scale
    latents = torch.randn(2, sd.unet.config.in_channels, height // scale, width // scale)
    length = sd.tokenizer.model_max_length
    context = torch.randn(2, length, sd.unet.config.cross_attention_dim)
    ids = torch.randint(0, sd.text_encoder.config.vocab_size, (1, length))
    examples = {
        "unet": (_UNet(sd.unet), (latents, torch.tensor([500.0]), context)),
        "vae_decoder": (_Decoder(sd.vae), (latents[:1],)),
        "text_encoder": (_TextEncoder(sd.text_encoder), (ids,)),
    }
    models = {
        name: ConvertedModel(_convert(name, module, example, folder, int8_weights, core), core, config, {})
        for name, (module, example) in examples.items()
    }
    unet_config = SimpleNamespace(**sd.unet.config)
    vae_config = SimpleNamespace(**sd.vae.config)
    label = precision + (" int8 weights" if int8_weights else "")
    return MiniSD(
        OpenVINOUNet(models["unet"], unet_config, f"openvino {label}"),
        OpenVINODecoder(models["vae_decoder"], vae_config),
        OpenVINOTextEncoder(models["text_encoder"]),
        sd.tokenizer,
        sd.scheduler_config,
        sd.source,
    )
