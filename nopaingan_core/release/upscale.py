"""256 px cover -> ``size`` px cover: diffusion x4 first, then a model upscaler or Lanczos, in tiles.

1. Stable Diffusion's x4 upscaler (``stabilityai/stable-diffusion-x4-upscaler``, diffusers'
   ``StableDiffusionUpscalePipeline``) takes the cover to 4x its size, conditioned on the album prompt, so the
   new pixels are detail the prompt asks for rather than interpolation. It runs on input tiles (default
   128 px with 16 px overlap, blended with linear ramps) and decodes with VAE tiling, so memory stays bounded
   whatever the size.
2. An ESRGAN-family model the user supplies (4x-UltraSharp, RealESRGAN_x4plus..., ``.safetensors`` or
   ``.pth``), loaded with spandrel as ComfyUI does (``.pth`` files go through spandrel's restricted unpickler:
   tensors only, no code), applied in tiles until the image reaches the target; without one, Lanczos, with a
   note that a model upscaler gives sharper results.
3. A Lanczos resize to exactly ``size`` x ``size``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import CoverError, ModelLoadError, ModelNotFoundError
from . import DEFAULT_SIZE

if TYPE_CHECKING:
    import torch

DEFAULT_X4 = "stabilityai/stable-diffusion-x4-upscaler"
MODEL_EXTENSIONS = (".safetensors", ".pth", ".pt", ".ckpt")
MAX_MODEL_PASSES = 3  # 4x models: 256 -> 1024 -> 4096 at most needs two
Note = Callable[[str], None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class UpscaleSettings:
    """How the cover is enlarged. ``tile``/``overlap`` are input pixels of the x4 pass; ``model_tile`` of
    the model upscaler; ``steps``, ``guidance``, ``noise_level`` and ``seed`` are the x4 pipeline's."""

    size: int = DEFAULT_SIZE
    steps: int = 20
    guidance: float = 7.5
    noise_level: int = 20
    seed: int = 0
    tile: int = 128
    overlap: int = 16
    model_tile: int = 256


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Offsets of tiles of ``tile`` pixels covering ``length`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    return sorted({min(i * stride, length - tile) for i in range(count)})


def _ramp(length: int, fade: int, start: bool, end: bool) -> torch.Tensor:
    """Blend weights along one side of a tile: 1 inside, rising linearly over ``fade`` pixels at the sides
    that meet a neighbour (``start``/``end``), never 0 so every pixel has weight."""
    import torch

    weight = torch.ones(length)
    ramp = torch.linspace(1 / (fade + 1), 1, fade + 2)[1:-1] if fade > 0 else torch.empty(0)
    if start and fade:
        weight[:fade] = ramp
    if end and fade:
        weight[-fade:] = ramp.flip(0)
    return weight


def tiled(
    image: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    scale: int,
    tile: int,
    overlap: int,
    callback: Progress | None = None,
) -> torch.Tensor:
    """Apply ``fn`` (``[B, C, h, w]`` -> ``[B, C, h*scale, w*scale]``, values in [0, 1]) to overlapping tiles
    of ``image`` ``[B, C, H, W]`` and blend them into ``[B, C, H*scale, W*scale]``."""
    import torch

    b, c, h, w = image.shape
    tile = min(tile, max(h, w)) if tile > 0 else max(h, w)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    out = torch.zeros(b, c, h * scale, w * scale)
    total = torch.zeros(1, 1, h * scale, w * scale)
    done, count = 0, len(ys) * len(xs)
    for y in ys:
        for x in xs:
            part = fn(image[:, :, y : y + tile, x : x + tile]).float().cpu()
            th, tw = part.shape[-2:]
            fade = overlap * scale // 2
            wy = _ramp(th, fade, y > 0, y + tile < h)
            wx = _ramp(tw, fade, x > 0, x + tile < w)
            weight = wy[:, None] * wx[None, :]
            out[:, :, y * scale : y * scale + th, x * scale : x * scale + tw] += part * weight
            total[:, :, y * scale : y * scale + th, x * scale : x * scale + tw] += weight
            done += 1
            if callback is not None:
                callback(done, count)
    return (out / total).clamp(0, 1)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> ``[1, 3, H, W]`` float32 in [0, 1]."""
    import numpy as np
    import torch

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def to_image(tensor: torch.Tensor) -> Image.Image:
    """``[1, 3, H, W]`` in [0, 1] -> PIL RGB (rounded to 8 bits)."""
    array = (tensor[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    return Image.fromarray(array, "RGB")


def load_x4(source: str = DEFAULT_X4, device: Any = "cpu", dtype: Any = None) -> Any:
    """diffusers' ``StableDiffusionUpscalePipeline`` from a hub id or folder (one-line error when missing),
    with VAE tiling on so decoding large outputs stays within memory."""
    import torch
    from diffusers import StableDiffusionUpscalePipeline

    from ..hub import from_pretrained

    pipe = from_pretrained(StableDiffusionUpscalePipeline, source, "x4 upscaler", "--x4", dtype=dtype or torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_tiling()
    return pipe.to(device)


def prompt_overflow(pipe: Any, prompt: str) -> tuple[int, int] | None:
    """(tokens in ``prompt``, tokens the pipeline's CLIP tokenizer keeps) when the prompt is longer than CLIP
    reads, else None (also for a pipeline without a tokenizer)."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None or not prompt:
        return None
    limit = int(tokenizer.model_max_length)
    count = len(tokenizer(prompt, truncation=False).input_ids)
    return (count, limit) if count > limit else None


def x4_upscale(
    pipe: Any,
    image: Image.Image,
    prompt: str,
    negative: str = "",
    settings: UpscaleSettings = UpscaleSettings(),
    callback: Progress | None = None,
) -> Image.Image:
    """The x4 diffusion pass: ``image`` (W x H) -> 4W x 4H, tile by tile, each tile conditioned on ``prompt``
    and seeded with ``settings.seed`` (deterministic)."""
    import torch

    def run(part: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(settings.seed)
        result = pipe(
            prompt=prompt,
            negative_prompt=negative or None,
            image=to_image(part),
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            noise_level=settings.noise_level,
            generator=generator,
            output_type="pt",
        )
        return result.images

    with torch.no_grad():
        return to_image(tiled(to_tensor(image), run, 4, settings.tile, settings.overlap, callback))


def load_upscaler_model(path: str | Path) -> Any:
    """An ESRGAN-family (or any single-image spandrel) upscaler from ``.safetensors``/``.pth``, in eval mode.

    Raises ModelNotFoundError for a missing file and ModelLoadError for a file spandrel does not recognise.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"--upscaler-model '{path}' does not exist; pass an ESRGAN-family model file "
            f"({', '.join(MODEL_EXTENSIONS)}), e.g. RealESRGAN_x4plus or 4x-UltraSharp"
        )
    if path.suffix.lower() not in MODEL_EXTENSIONS:
        raise ModelLoadError(f"--upscaler-model '{path}': expected one of {', '.join(MODEL_EXTENSIONS)}")
    from spandrel import ImageModelDescriptor, ModelLoader

    try:
        model = ModelLoader().load_from_file(path)
    except Exception as exc:  # spandrel raises UnsupportedModelError, pickle/safetensors errors, KeyError...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"--upscaler-model '{path}': not an upscale model spandrel knows ({reason})") from exc
    if not isinstance(model, ImageModelDescriptor):
        raise ModelLoadError(f"--upscaler-model '{path}': a {model.architecture.name} model, not a single-image one")
    return model.eval()


def model_upscale(
    model: Any, image: Image.Image, tile: int = 256, overlap: int = 16, callback: Progress | None = None
) -> Image.Image:
    """One pass of a spandrel upscaler (``model.scale`` times larger), in tiles of ``tile`` input pixels."""
    import torch

    with torch.no_grad():
        x = to_tensor(image).to(model.device, model.dtype)
        return to_image(tiled(x, lambda part: model(part), model.scale, tile, overlap, callback))


LANCZOS_NOTE = 1.5  # a final Lanczos enlargement beyond this factor is named with its cost in sharpness


def upscale_cover(
    image: Image.Image,
    prompt: str = "",
    x4: Any = None,
    model: Any = None,
    settings: UpscaleSettings = UpscaleSettings(),
    note: Note = print,
    negative: str = "",
) -> Image.Image:
    """The whole enlargement to exactly ``settings.size`` pixels a side, each stage only while it is needed:
    x4 diffusion when ``x4`` (a pipeline from :func:`load_x4`) is given and the image is smaller than the
    target (else skipped with a note: a 3000 px cover is never diffused to 12000); model passes while smaller
    than the target when ``model`` (from :func:`load_upscaler_model`) is given (a 1x model runs once); then
    Lanczos to the exact size. ``note`` receives one line per stage, the final resize included, and says when
    Lanczos does a large enlargement (over 1.5x), which a model upscaler would do sharper."""
    if image.width != image.height:
        raise CoverError(f"the cover is {image.width}x{image.height}; release covers are square: crop it first")
    image = image.convert("RGB")
    target = settings.size
    if x4 is not None and image.width < target:
        note(f"x4 diffusion upscaler: {image.width} -> {image.width * 4} px")
        clipped = prompt_overflow(x4, prompt)
        if clipped:
            note(
                f"note: the prompt is {clipped[0]} tokens; the x4 upscaler's CLIP reads the first {clipped[1]}, "
                "the rest is ignored (said once, not per tile)"
            )
        image = x4_upscale(x4, image, prompt, negative, settings)
    elif x4 is not None:
        note(f"x4 diffusion upscaler skipped: the image is already {image.width} px, --size is {target}")
    passes = 0
    while model is not None and image.width < target and passes < MAX_MODEL_PASSES:
        name = f"{model.architecture.name} x{model.scale}"
        note(f"model upscaler ({name}): {image.width} -> {image.width * model.scale} px")
        image = model_upscale(model, image, settings.model_tile)
        passes += 1
        if model.scale <= 1:
            break
    if image.width == target:
        return image
    factor = target / image.width
    if factor <= 1:
        note(f"Lanczos {image.width} -> {target} px (reduced to the exact size)")
    elif factor <= LANCZOS_NOTE:
        note(f"Lanczos {image.width} -> {target} px (to the exact size)")
    elif model is None:
        note(
            f"no model upscaler: Lanczos {image.width} -> {target} px (x{factor:.1f}; an ESRGAN-family model, "
            "--upscaler-model FILE, gives sharper results)"
        )
    else:
        note(
            f"Lanczos {image.width} -> {target} px (x{factor:.1f} after the x{model.scale} model: a model with a "
            "larger scale gives sharper results)"
        )
    return image.resize((target, target), Image.Resampling.LANCZOS)
