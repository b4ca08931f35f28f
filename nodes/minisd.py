"""miniSD through diffusers inside ComfyUI: the core library's sampling path, so a graph gives the same images
as ``nopaingan generate`` for the same seed and settings."""

from __future__ import annotations

import math

import torch

from ..nopaingan_core.errors import NoPainGanError
from ..nopaingan_core.precision import resolve_dtype
from ..nopaingan_core.sampling import BACKENDS, DEFAULT_SD, SCHEDULERS, load_minisd, sample
from . import bridge, paths
from .handles import CATEGORY, MINISD, Loaded


class NoPainGanMiniSDLoader:
    DESCRIPTION = (
        "Loads miniSD (Stable Diffusion 1.4 fine-tuned to 256x256) in diffusers layout, from a folder in "
        f"models/diffusers/ or {DEFAULT_SD} from the Hugging Face cache."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (MINISD,)
    RETURN_NAMES = ("minisd",)
    OUTPUT_TOOLTIPS = ("UNet, VAE, text encoder and scheduler config, for the miniSD nodes.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (
                    [*paths.model_dirs(paths.DIFFUSERS), DEFAULT_SD],
                    {"tooltip": f"A diffusers folder in models/diffusers/ (with model_index.json), or {DEFAULT_SD}."},
                ),
                **bridge.device_inputs(auto=True),
            },
            "optional": {
                "backend": (
                    list(BACKENDS),
                    {
                        "default": "torch",
                        "tooltip": "openvino: UNet, VAE decoder and text encoder on OpenVINO's CPU runtime (needs "
                        "the pack's [openvino] extra; converted once, then cached). CPU only.",
                    },
                ),
                "int8_weights": (
                    "BOOLEAN",
                    {"default": False, "tooltip": "With openvino: int8 weights (NNCF). Less memory, close images."},
                ),
            },
        }

    def load(self, model: str, device: str, dtype: str, backend: str = "torch", int8_weights: bool = False):
        source = model if model == DEFAULT_SD else paths.model_dir(paths.DIFFUSERS, model)
        compute = bridge.compute_device("cpu" if backend == "openvino" else device)
        # packed convolutions cannot move between devices: only when the UNet computes where it waits (CPU)
        stays = compute == bridge.offload_device()
        sd = load_minisd(
            source,
            compute if backend == "openvino" else bridge.offload_device(),
            resolve_dtype(dtype, compute),
            prepack=stays,
            backend=backend,
            int8_weights=int8_weights,
        )
        return (Loaded(sd, compute),)


class NoPainGanMiniSDTextEncode:
    DESCRIPTION = (
        "Encodes a prompt with miniSD's CLIP text encoder into native CONDITIONING [1, 77, 768] (prompts longer "
        "than 77 tokens are cut, as in diffusers). Music-Text Fusion Conditioning and native nodes accept it."
    )
    CATEGORY = f"{CATEGORY}/conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("The text embedding, with CLIP's pooled output.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "minisd": (MINISD, {"tooltip": "From the miniSD Loader."}),
                "text": (
                    "STRING",
                    {"multiline": True, "dynamicPrompts": False, "tooltip": "The prompt (connect Album Prompt)."},
                ),
            }
        }

    def encode(self, minisd: Loaded, text: str):
        sd = minisd.model
        with bridge.on_device([sd.text_encoder], minisd.device):
            embedding, pooled = sd.encode_prompt_pooled([text])
        out = bridge.intermediate_device()
        return ([[embedding.to(out), {"pooled_output": pooled.to(out)}]],)


def single_tensor(conditioning: list, name: str) -> torch.Tensor:
    """The embedding of a one-entry CONDITIONING; combined or area conditionings need native KSampler."""
    if len(conditioning) != 1:
        raise NoPainGanError(
            f"miniSD Sampler: {name} conditioning has {len(conditioning)} entries (combined or area conditioning); "
            "it takes one. Use the native KSampler for several."
        )
    return conditioning[0][0]


def same_length(cond: torch.Tensor, uncond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat both to the least common multiple of their lengths, as ComfyUI does when a long prompt
    (154 tokens: two 77-token chunks) meets a short one."""
    length = math.lcm(cond.shape[1], uncond.shape[1])
    return cond.repeat(1, length // cond.shape[1], 1), uncond.repeat(1, length // uncond.shape[1], 1)


class NoPainGanMiniSDSampler:
    DESCRIPTION = (
        "Samples covers with miniSD: diffusers' text-to-image loop with classifier-free guidance, the same code as "
        "`nopaingan generate` (same seed and settings, same images). Outputs native IMAGE and LATENT."
    )
    CATEGORY = f"{CATEGORY}/sampling"
    RETURN_TYPES = ("IMAGE", "LATENT")
    RETURN_NAMES = ("images", "latent")
    OUTPUT_TOOLTIPS = (
        "The covers, [batch, height, width, 3] in 0..1.",
        "The final latents in ComfyUI's convention (unscaled VAE space), for native VAE Decode or img2img.",
    )
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        size = {"min": 64, "max": 2048, "step": 8}
        return {
            "required": {
                "minisd": (MINISD, {"tooltip": "From the miniSD Loader."}),
                "positive": ("CONDITIONING", {"tooltip": "What the cover shows: text, or text fused with music."}),
                "negative": ("CONDITIONING", {"tooltip": "What to avoid (encode an empty prompt for none)."}),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 0xFFFFFFFFFFFFFFFF,
                        "control_after_generate": True,
                        "tooltip": "The noise seed; each image of a batch gets its own noise from it.",
                    },
                ),
                "steps": ("INT", {"default": 20, "min": 1, "max": 500, "tooltip": "Denoising steps."}),
                "cfg": (
                    "FLOAT",
                    {
                        "default": 7.5,
                        "min": 0.0,
                        "max": 30.0,
                        "step": 0.1,
                        "round": 0.01,
                        "tooltip": "Classifier-free guidance scale; 1 or less ignores the negative.",
                    },
                ),
                "scheduler": (
                    list(SCHEDULERS),
                    {"default": "pndm", "tooltip": "ddpm and pndm as in the seed; ddim and dpmpp (DPM-Solver++) too."},
                ),
                "width": ("INT", {**size, "default": 256, "tooltip": "Image width; miniSD was trained at 256."}),
                "height": ("INT", {**size, "default": 256, "tooltip": "Image height; miniSD was trained at 256."}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip": "How many covers."}),
            },
            "optional": {
                "cfg_cutoff": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.05,
                        "tooltip": "Faster: fraction of the steps after which guidance stops and only the "
                        "positive branch runs. 1 = guidance throughout (exact).",
                    },
                ),
                "deep_cache": (
                    "INT",
                    {
                        "default": 1,
                        "min": 1,
                        "max": 10,
                        "tooltip": "Faster: the full UNet every N steps, only its outer blocks on cached deep "
                        "features in between (DeepCache). 1 = off (exact).",
                    },
                ),
            },
        }

    def generate(
        self,
        minisd: Loaded,
        positive: list,
        negative: list,
        seed: int,
        steps: int,
        cfg: float,
        scheduler: str,
        width: int,
        height: int,
        batch_size: int,
        cfg_cutoff: float = 1.0,
        deep_cache: int = 1,
    ):
        sd = minisd.model
        cond, uncond = single_tensor(positive, "positive"), None
        if cfg > 1:  # classifier-free guidance: the negative is used
            cond, uncond = same_length(cond, single_tensor(negative, "negative"))
        with bridge.on_device([sd.unet, sd.vae], minisd.device):
            latents = sample(
                sd,
                cond,
                uncond,
                scheduler=scheduler,
                steps=steps,
                guidance=cfg,
                seed=seed,
                num=batch_size,
                width=width,
                height=height,
                callback=bridge.progress(steps),
                cancel=bridge.cancel_requested,
                cfg_cutoff=cfg_cutoff,
                deep_cache=deep_cache,
            )
            images = sd.decode(latents)
        out = bridge.intermediate_device()
        unscaled = latents.float() / sd.vae.config.scaling_factor
        return (images.to(out), {"samples": unscaled.to(out)})
