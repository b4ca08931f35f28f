"""256 px -> 3000 px release covers: seconds and peak memory per stage, and the sharpness measure of each path.

    OMP_NUM_THREADS=1 python bench/upscale.py [--out bench/results/upscale.json]

Each stage runs in a fresh process (spawned), so its peak resident memory (``ru_maxrss``) is its own; the
baseline is the same process after its imports. Stages:

- ``bicubic`` / ``lanczos``: Pillow 256 -> 3000;
- ``x4_real_tile_step``: the real x4 upscaler's UNet and VAE (widths of ``stabilityai/stable-diffusion-x4-upscaler``
  with random weights; ``nopaingan_core.release.tiny.build_tiny_x4(real_size=True)`` has the config) on one
  128 px input tile: one denoising step of the UNet at a 128x128 latent, and the tile's VAE decode to 512 px;
  a full 256 -> 1024 pass is 9 such tiles (128 px, 16 px overlap) x the steps, extrapolated and labelled so;
- ``esrgan_real_tile``: RealESRGAN_x4plus's RRDBNet (64 features, 23 blocks; random weights in its key layout,
  loaded by spandrel) on one 64 px tile; 1024 -> 4096 is 256 such tiles, extrapolated likewise;
- ``tiny_pipeline``: the whole ``finish`` path end to end with the tiny random x4 (4 steps) and ESRGAN (the
  plumbing's own cost: tiles, Lanczos to 3000, text, JPEG, check), per stage.

Sharpness (``check.fine_detail``, the check-cover rule, threshold ``check.MIN_DETAIL``) of: bicubic only,
Lanczos only, x4 only (+ Lanczos to 3000) and x4 + model upscaler, from scikit-image's astronaut reduced to
256 (random weights: the diffusion and model numbers show that the plumbing keeps detail, not what trained
weights give); and of scikit-image's public-domain photographs at their own resolution, reduced to 256 and
brought back to 3000 px by bicubic and Lanczos (the calibration of the threshold).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry", "hubble_deep_field")
SIZE = 3000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def photo(name: str):
    from PIL import Image
    from skimage import data

    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    side = min(image.size)
    return image.crop((0, 0, side, side))


def cover_256():
    from PIL import Image

    return photo("astronaut").resize((256, 256), Image.BOX)


def stage_resize(method: str) -> dict:
    from PIL import Image

    image = cover_256()
    base = rss_mb()
    start = time.perf_counter()
    image.resize((SIZE, SIZE), getattr(Image.Resampling, method.upper()))
    return {"seconds": time.perf_counter() - start, "baseline_mb": base}


def stage_x4_real_tile_step() -> dict:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=128,
        in_channels=7,
        out_channels=4,
        block_out_channels=(256, 512, 512, 1024),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=1024,
        attention_head_dim=8,
        num_class_embeds=1000,
        use_linear_projection=True,
    ).eval()
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=2,
        latent_channels=4,
        scaling_factor=0.08333,
    ).eval()
    params = sum(p.numel() for p in unet.parameters()), sum(p.numel() for p in vae.parameters())
    base = rss_mb()
    latents = torch.randn(2, 7, 128, 128)  # classifier-free guidance: two rows
    text = torch.randn(2, 77, 1024)
    with torch.no_grad():
        start = time.perf_counter()
        unet(latents, 500, encoder_hidden_states=text, class_labels=torch.tensor([20, 20]))
        step = time.perf_counter() - start
        start = time.perf_counter()
        vae.decode(torch.randn(1, 4, 128, 128))
        decode = time.perf_counter() - start
    return {
        "unet_params": params[0],
        "vae_params": params[1],
        "unet_step_seconds_one_tile": step,
        "vae_decode_seconds_one_tile": decode,
        "baseline_mb": base,
        "extrapolated_256_to_1024_20_steps_9_tiles_s": 9 * (20 * step + decode),
    }


def stage_esrgan_real_tile() -> dict:
    import torch
    from spandrel import ModelLoader

    from nopaingan_core.release.tiny import esrgan_state_dict

    model = ModelLoader().load_from_state_dict(esrgan_state_dict(features=64, blocks=23)).eval()
    params = sum(p.numel() for p in model.model.parameters())
    base = rss_mb()
    with torch.no_grad():
        start = time.perf_counter()
        model(torch.rand(1, 3, 64, 64))
        seconds = time.perf_counter() - start
    return {
        "architecture": model.architecture.name,
        "params": params,
        "seconds_one_64px_tile": seconds,
        "baseline_mb": base,
        "extrapolated_1024_to_4096_s": seconds * (1024 / 64) ** 2,
    }


def stage_tiny_pipeline() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        return _tiny_pipeline(Path(folder))


def _tiny_pipeline(work: Path) -> dict:
    from PIL import Image

    from nopaingan_core.release.check import check_cover, fine_detail
    from nopaingan_core.release.finish import encode_jpeg, write_new
    from nopaingan_core.release.tiny import build_tiny_esrgan, build_tiny_x4
    from nopaingan_core.release.typography import set_text
    from nopaingan_core.release.upscale import (
        UpscaleSettings,
        load_upscaler_model,
        load_x4,
        model_upscale,
        x4_upscale,
    )

    x4 = load_x4(str(build_tiny_x4(work / "x4")))
    model = load_upscaler_model(build_tiny_esrgan(work / "esrgan.safetensors"))
    image = cover_256()
    base = rss_mb()
    times, sharp = {}, {}

    def clock(name, fn):
        start = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - start
        return out

    settings = UpscaleSettings(steps=4)
    big = clock("x4 tiny, 9 tiles, 4 steps", lambda: x4_upscale(x4, image, "an album cover", settings=settings))
    sharp["x4 only (+Lanczos)"] = fine_detail(big.resize((SIZE, SIZE), Image.LANCZOS))
    bigger = clock("model tiny, 1024 -> 4096", lambda: model_upscale(model, big))
    final = clock("Lanczos 4096 -> 3000", lambda: bigger.resize((SIZE, SIZE), Image.LANCZOS))
    sharp["x4 + model upscaler"] = fine_detail(final)
    titled, _ = clock("text", lambda: set_text(final, "Midnight Drive", "The Night Shift", note=lambda _: None))
    data, quality = clock("JPEG encode", lambda: encode_jpeg(titled, {"bench": True}))
    write_new(work / "cover_release.jpg", data)
    rules = clock("check", lambda: check_cover(work / "cover_release.jpg"))
    return {
        "seconds": times,
        "sharpness_random_weights": sharp,
        "jpeg_bytes": len(data),
        "jpeg_quality": quality,
        "check": {r.name: r.passed for r in rules},
        "baseline_mb": base,
    }


STAGES = {
    "bicubic": lambda: stage_resize("bicubic"),
    "lanczos": lambda: stage_resize("lanczos"),
    "x4_real_tile_step": stage_x4_real_tile_step,
    "esrgan_real_tile": stage_esrgan_real_tile,
    "tiny_pipeline": stage_tiny_pipeline,
}


def _child(name: str, queue) -> None:
    import torch

    torch.set_num_threads(1)
    result = STAGES[name]()
    result["peak_mb"] = rss_mb()
    queue.put(result)


def run_stage(name: str) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(name, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def sharpness_table() -> dict:
    from PIL import Image

    from nopaingan_core.release.check import MIN_DETAIL, fine_detail, repeats

    rows = {}
    for name in PHOTOS:
        image = photo(name)
        small = image.resize((256, 256), Image.BOX)
        rows[name] = {
            "side": image.width,
            "native": fine_detail(image),
            "bicubic_256_to_native": fine_detail(small.resize(image.size, Image.BICUBIC)),
            "lanczos_256_to_native": fine_detail(small.resize(image.size, Image.LANCZOS)),
            "bicubic_256_to_3000": fine_detail(small.resize((SIZE, SIZE), Image.BICUBIC)),
            "lanczos_256_to_3000": fine_detail(small.resize((SIZE, SIZE), Image.LANCZOS)),
            "nearest_256_to_3000_repeats": repeats(small.resize((SIZE, SIZE), Image.NEAREST)),
            "bicubic_256_to_3000_repeats": repeats(small.resize((SIZE, SIZE), Image.BICUBIC)),
            "lanczos_256_to_3000_repeats": repeats(small.resize((SIZE, SIZE), Image.LANCZOS)),
            "native_repeats": repeats(image),
        }
    return {"threshold": MIN_DETAIL, "photos": rows}


def main() -> None:
    from timing import check_new_outputs, load, machine, write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/upscale.json"))
    parser.add_argument("--stages", nargs="*", default=list(STAGES))
    parser.add_argument(
        "--sharpness-only", action="store_true", help="recompute only the sharpness table, kept in the --out file"
    )
    args = parser.parse_args()
    if args.sharpness_only:  # the check's measures changed; the timings stay as measured
        import json

        result = json.loads(args.out.read_text())
        before = load()
        result["sharpness"] = sharpness_table() | {"machine": machine(), "load_before": before}
        result["sharpness"]["load_after"] = load()
        write_json(args.out, result, replace=True)  # asked for: this file updated in place
        print(json.dumps(result["sharpness"], indent=1))
        return
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    result = {"machine": machine(), "load_before": load(), "stages": {}}
    out = None  # this run's file, once written: then updated in place
    for name in args.stages:
        result["stages"][name] = run_stage(name)
        print(name, result["stages"][name], flush=True)
        out = write_json(out or args.out, result, replace=out is not None)  # an interrupted run keeps its stages
    result["sharpness"] = sharpness_table()
    result["load_after"] = load()
    out = write_json(out or args.out, result, replace=out is not None)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
