"""miniSD with diffusers: load the components, encode prompts, sample latents, decode images.

The sampling loop is diffusers' own text-to-image loop (same noise, same scheduler calls, same
classifier-free guidance) so results match ``StableDiffusionPipeline`` for a seed, with what makes it
faster on the same hardware: inference mode, one UNet call for both guidance branches and, for generation
on the CPU, convolution weights packed once (``load_minisd(prepack=True)``, see ``prepack.py``). ComfyUI
nodes, the CLI and training all call these functions.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .deep_cache import DeepCacheUNet, check_deep_cache
from .errors import Cancelled, NoPainGanError
from .hub import from_pretrained
from .precision import DTYPE_NAMES, resolve_dtype
from .prepack import can_prepack, prepack_convolutions, to_channels_last

DEFAULT_SD = "lambdalabs/miniSD-diffusers"
SCHEDULERS = ("ddpm", "pndm", "ddim", "dpmpp")
BACKENDS = ("torch", "openvino")

ProgressCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


def scheduler_class(name: str):
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, PNDMScheduler

    classes = {
        "ddpm": DDPMScheduler,
        "pndm": PNDMScheduler,
        "ddim": DDIMScheduler,
        "dpmpp": DPMSolverMultistepScheduler,
    }
    if name not in classes:
        raise NoPainGanError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULERS)}")
    return classes[name]


@dataclass
class MiniSD:
    """The frozen Stable Diffusion parts. ``scheduler_config`` is the repo's, reused for every sampler."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    scheduler_config: dict
    source: str

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def precision(self) -> str:
        """What the UNet computes in: ``fp32``, ``bf16``, ``fp16`` or the OpenVINO backend's, e.g.
        ``openvino bf16``."""
        return getattr(self.unet, "precision", None) or DTYPE_NAMES[self.dtype]

    @property
    def latent_scale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def scheduler(self, name: str = "pndm"):
        return scheduler_class(name).from_config(self.scheduler_config)

    @torch.inference_mode()
    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """CLIP text embeddings ``[B, 77, 768]``: the prompt padded to the tokenizer's length, as in
        ``StableDiffusionPipeline``; longer prompts are truncated (with a warning from the tokenizer)."""
        return self.encode_prompt_pooled(prompts)[0]

    @torch.inference_mode()
    def encode_prompt_pooled(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`encode_prompt` and CLIP's pooled output ``[B, 768]``, which ComfyUI's CONDITIONING carries."""
        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        out = self.text_encoder(ids.to(self.text_encoder.device))
        return out[0].to(self.dtype), out[1].to(self.dtype)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images ``[B, H, W, 3]`` float32 in [0, 1] (ComfyUI's ``IMAGE`` layout)."""
        latents = latents.to(self.vae.device, self.vae.dtype) / self.vae.config.scaling_factor
        images = self.vae.decode(latents, return_dict=False)[0]
        check_finite(images, "decoded images")
        return (images.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous().cpu()

    @torch.inference_mode()
    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images ``[B, H, W, 3]`` in [0, 1] -> scaled VAE latents (what the UNet denoises)."""
        pixels = images.permute(0, 3, 1, 2).to(self.vae.device, self.vae.dtype) * 2 - 1
        dist = self.vae.encode(pixels).latent_dist
        return dist.sample(generator) * self.vae.config.scaling_factor


def load_minisd(
    source: str = DEFAULT_SD,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = "auto",
    channels_last: bool = True,
    prepack: bool = False,
    backend: str = "torch",
    int8_weights: bool = False,
    cache_dir: str | None = None,
) -> MiniSD:
    """Load UNet, VAE, tokenizer and text encoder from a diffusers repo id or folder.

    ``dtype`` is a torch dtype or ``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``; ``"auto"`` (the default) is
    bf16 on CPUs with native bf16 and on CUDA GPUs that support it, fp16 on other CUDA GPUs, fp32 otherwise
    (``precision.auto_dtype``; ``MiniSD.dtype`` tells the choice).

    ``channels_last`` stores UNet and VAE weights in the layout oneDNN's CPU kernels prefer (within 20% of the
    default layout on the benchmark machine, either way). ``prepack`` (CPU, inference only: no gradients
    through the UNet afterwards) packs the UNet's convolution weights once instead of on every step: 16-34%
    less time per step there. BENCHMARKS.md has the measurements.

    ``backend="openvino"`` (CPU only, needs the ``[openvino]`` extra) converts the UNet, VAE decoder and text
    encoder to OpenVINO (``openvino_backend.to_openvino``: checked against torch, cached under ``cache_dir``,
    int8 weights with ``int8_weights``); ``channels_last`` and ``prepack`` do not apply there."""
    if backend not in BACKENDS:
        raise NoPainGanError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "openvino":
        from .openvino_backend import to_openvino

        if torch.device(device).type != "cpu":
            raise NoPainGanError(f"--backend openvino runs on the CPU; got --device {device}")
        torch_sd = load_minisd(source, "cpu", torch.float32, channels_last=False)
        return to_openvino(torch_sd, dtype, int8_weights, cache_dir)
    if int8_weights:
        raise NoPainGanError("int8 weights need --backend openvino")
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    dtype = resolve_dtype(dtype, device)
    what, flag = "Stable Diffusion model", "--sd"
    unet = from_pretrained(UNet2DConditionModel, source, what, flag, subfolder="unet", torch_dtype=dtype)
    vae = from_pretrained(AutoencoderKL, source, what, flag, subfolder="vae", torch_dtype=dtype)
    text_encoder = from_pretrained(CLIPTextModel, source, what, flag, subfolder="text_encoder", dtype=dtype)
    tokenizer = from_pretrained(CLIPTokenizer, source, what, flag, subfolder="tokenizer")
    scheduler = from_pretrained(scheduler_class("pndm"), source, what, flag, subfolder="scheduler")
    for module in (unet, vae, text_encoder):
        module.to(device).eval().requires_grad_(False)
    if channels_last:  # one copy of the weights: the file pages of the originals are released
        to_channels_last(vae)
        if not (prepack and can_prepack(unet)):  # packed weights take any stored layout
            to_channels_last(unet)
    if prepack:
        prepack_convolutions(unet)  # not the VAE: its convolutions are compute-bound, not reorder-bound
    return MiniSD(unet, vae, text_encoder, tokenizer, dict(scheduler.config), source)


def initial_noise(sd: MiniSD, num: int, width: int, height: int, seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """The starting noise, drawn on the CPU so a seed gives the same images on any device; the generator
    is returned because stochastic samplers keep drawing from it."""
    from diffusers.utils.torch_utils import randn_tensor

    scale = sd.latent_scale
    if width % scale or height % scale:
        raise NoPainGanError(f"width and height must be multiples of {scale}, got {width}x{height}")
    generator = torch.Generator("cpu").manual_seed(seed)
    shape = (num, sd.unet.config.in_channels, height // scale, width // scale)
    return randn_tensor(shape, generator=generator, device=sd.device, dtype=sd.dtype), generator


def _batch(embedding: torch.Tensor, num: int, what: str) -> torch.Tensor:
    if embedding.shape[0] == num:
        return embedding
    if embedding.shape[0] == 1:
        return embedding.expand(num, -1, -1)
    raise NoPainGanError(f"{what} conditioning has a batch of {embedding.shape[0]}, expected 1 or {num}")


@torch.inference_mode()
def sample(
    sd: MiniSD,
    cond: torch.Tensor,
    uncond: torch.Tensor | None = None,
    *,
    scheduler: str = "pndm",
    steps: int = 20,
    guidance: float = 7.5,
    seed: int = 0,
    num: int = 1,
    width: int = 256,
    height: int = 256,
    callback: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    cfg_cutoff: float = 1.0,
    deep_cache: int = 1,
) -> torch.Tensor:
    """Denoise ``num`` latents conditioned on ``cond`` ``[1 or num, L, 768]``; ``uncond`` (the negative
    prompt's embedding) is used for classifier-free guidance when ``guidance > 1``.

    Two options do less work per image, at some cost in fidelity (BENCHMARKS.md measures both); their
    defaults give exactly the full computation:

    - ``cfg_cutoff`` (0..1, default 1): guidance runs for the first ``ceil(cfg_cutoff * calls)`` UNet calls
      of the schedule; after that only the conditional branch runs (half the UNet batch), its prediction used
      as is. The late, low-noise steps refine details the guidance no longer changes much.
    - ``deep_cache`` (steps >= 1, default 1: off): the full UNet runs every ``deep_cache`` calls; the calls
      between reuse its deep features and run only its outermost level (``deep_cache.DeepCacheUNet``).
    """
    train_steps = sd.scheduler_config.get("num_train_timesteps", 1000)
    if not 1 <= steps < train_steps:  # the schedulers index past their tables at steps == train_steps
        raise NoPainGanError(f"steps must be between 1 and {train_steps - 1}, got {steps}")
    if not 0.0 <= cfg_cutoff <= 1.0:
        raise NoPainGanError(f"cfg_cutoff must be a fraction of the steps between 0 and 1, got {cfg_cutoff}")
    check_deep_cache(sd.unet, deep_cache)
    sched = sd.scheduler(scheduler)
    sched.set_timesteps(steps, device=sd.device)
    check_timesteps(sched, scheduler, steps, train_steps)
    latents, generator = initial_noise(sd, num, width, height, seed)
    latents = latents * sched.init_noise_sigma
    step_kwargs = {"generator": generator} if "generator" in inspect.signature(sched.step).parameters else {}

    guided = guidance > 1.0
    cond = _batch(cond.to(sd.device, sd.dtype), num, "positive")
    if guided:
        if uncond is None:
            raise NoPainGanError("classifier-free guidance (guidance > 1) needs a negative conditioning")
        uncond = _batch(uncond.to(sd.device, sd.dtype), num, "negative")
        if uncond.shape[1] != cond.shape[1]:
            raise NoPainGanError(
                f"positive and negative conditioning differ in length ({cond.shape[1]} vs {uncond.shape[1]} tokens)"
            )
        context = torch.cat([uncond, cond])
    else:
        context = cond

    # Progress counts denoising steps, i.e. distinct timesteps: PNDM runs its first timestep twice (21 UNet
    # calls for 20 steps), and its bar still ends at 20 of 20.
    timesteps = sched.timesteps.tolist()
    total = len(set(timesteps))
    guided_calls = math.ceil(cfg_cutoff * len(timesteps)) if guided else 0
    cached = DeepCacheUNet(sd.unet, deep_cache) if deep_cache > 1 else None
    for i, t in enumerate(sched.timesteps):
        done = len(set(timesteps[: i + 1]))
        if cancel is not None and cancel():
            raise Cancelled(f"sampling cancelled at step {done - 1} of {total}")
        if i == guided_calls and guided:  # past the guidance cut-off: the conditional branch alone
            guided, context = False, cond
        model_input = torch.cat([latents, latents]) if guided else latents
        model_input = sched.scale_model_input(model_input, t)
        if cached is None:
            noise = sd.unet(model_input, t, encoder_hidden_states=context, return_dict=False)[0]
        else:
            noise = cached(model_input, t, context, i)
        if guided:
            uncond_noise, cond_noise = noise.chunk(2)
            noise = uncond_noise + guidance * (cond_noise - uncond_noise)
        latents = sched.step(noise, t, latents, **step_kwargs, return_dict=False)[0]
        check_finite(latents, f"latents after step {i + 1} of {total} ({scheduler}, {steps} steps)")
        if callback is not None:
            callback(done, total)
    return latents


def check_timesteps(sched, name: str, steps: int, train_steps: int) -> None:
    """Refuse a schedule the scheduler cannot sample: timesteps outside its table ``0..train_steps-1`` (DPM-Solver++
    with "leading" spacing starts at ``train_steps`` when ``steps`` comes close to it), rising timesteps, or
    noise levels that are not finite."""
    timesteps = sched.timesteps.float().cpu()
    sigmas = getattr(sched, "sigmas", None)
    problem = None
    if timesteps.numel() == 0 or not torch.isfinite(timesteps).all():
        problem = "has no usable timesteps"
    elif timesteps.min() < 0 or timesteps.max() > train_steps - 1:
        problem = (
            f"runs from timestep {timesteps[0]:g} to {timesteps[-1]:g}, outside the model's table "
            f"of {train_steps} (0-{train_steps - 1})"
        )
    elif (timesteps[1:] > timesteps[:-1]).any():
        problem = "has timesteps that rise again"
    elif sigmas is not None and not torch.isfinite(torch.as_tensor(sigmas, dtype=torch.float32)).all():
        problem = "has noise levels that are not finite"
    if problem:
        raise NoPainGanError(f"scheduler {name} with {steps} steps {problem}; use fewer steps or another scheduler")


def check_finite(values: torch.Tensor, what: str) -> None:
    """Refuse NaN or infinite values (an image made of them is black), naming where they appeared."""
    if not torch.isfinite(values).all():
        raise NoPainGanError(
            f"sampling gave NaN or infinite {what}; try another scheduler, fewer steps or float32 (--dtype)"
        )


def to_pil(images: torch.Tensor) -> list:
    """``[B, H, W, 3]`` in [0, 1] -> PIL images."""
    from PIL import Image

    array = (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return [Image.fromarray(a) for a in array]
