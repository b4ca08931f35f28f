"""Runner of the optimum peer for bench/peers.py: OpenVINO's own ``OVStableDiffusionPipeline`` (optimum-intel).

optimum-intel 2.2 needs transformers < 5.6 and the project pins a later one, so this runs in its own virtualenv
(``bench/requirements-optimum.txt``) as ``peers.py --peer-python optimum=<venv>/bin/python``.

The saved diffusers folder is exported to OpenVINO IR once, in a child process (so the worker's peak memory is
the pipeline's, not the export's), and kept under ``$XDG_CACHE_HOME/nopaingan/optimum/<key>`` (default
``~/.cache/...``; key: the folder's files and the versions of optimum-intel, OpenVINO, transformers and diffusers),
renamed into place only when complete. The transformers that optimum-intel allows reads the CLIP text encoder
that the project's transformers saves (keys without the ``text_model.`` prefix) as *missing*, and would export a
randomly initialised encoder without an error; the export therefore stages a copy of the folder whose text
encoder has the prefixed keys, refuses any other key mismatch, and checks the exported encoder against torch's.
Each export writes ``export.json`` next to the IR: seconds, the child's peak RSS, that check, the prompt's ids.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import real_models  # noqa: F401  (puts the worktree's library first on sys.path)
import torch

from nopaingan_core.atomic import umask
from nopaingan_core.hub import cache_home

PACKAGES = ("optimum-intel", "openvino", "transformers", "diffusers")
TEXT_ENCODER_TOLERANCE = 1e-3  # of the torch output's range: the project's own OpenVINO conversion check


def skip_reason() -> str | None:
    """Why this interpreter cannot run the peer, or None."""
    from peers import installed

    if installed("optimum.intel"):
        return None
    return (
        "optimum-intel is not importable here (it needs transformers < 5.6): build its own virtualenv with "
        "bench/requirements-optimum.txt and pass --peer-python optimum=<that venv>/bin/python"
    )


def cache_root() -> Path:
    return cache_home("optimum")


def cache_key(path: Path) -> str:
    """:func:`peers.folder_key` of the folder's files (dot files aside) with the packages' versions."""
    from peers import folder_key

    files = [f for f in path.rglob("*") if f.is_file() and not f.name.startswith(".")]
    return folder_key(path, files, " ".join(f"{p}={version(p)}" for p in PACKAGES))


def exported(path: str, staging: str) -> Path:
    """The exported pipeline's folder for ``path``, exporting it first (in a child process) when not cached.
    ``staging``: a scratch folder for the text encoder's corrected copy."""
    entry = cache_root() / cache_key(Path(path))
    if (entry / "export.json").is_file():
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        command = [sys.executable, __file__, "export", path, str(partial), staging]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"optimum-intel's export of {path} failed:\n{done.stderr[-3000:]}")
        partial.chmod(0o777 & ~umask())  # mkdtemp's folder is the owner's only
        try:
            partial.rename(entry)
        except OSError:  # another process finished the same export first
            if not (entry / "export.json").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return entry


def export(path: str, dest: str, staging: str) -> dict:
    """Export ``path`` with ``OVStableDiffusionPipeline.from_pretrained(export=True)`` into ``dest`` and write
    ``dest/export.json``. Raises RuntimeError when the text encoder's weights cannot be matched to CLIP's names
    or the exported encoder differs from torch's by more than TEXT_ENCODER_TOLERANCE of its range."""
    from optimum.intel import OVStableDiffusionPipeline
    from peers import PROMPT, peak_rss_gb
    from transformers import CLIPTextModel, CLIPTokenizer

    source, renamed = text_encoder_fixed(Path(path), Path(staging))
    start = time.perf_counter()
    pipe = OVStableDiffusionPipeline.from_pretrained(source, export=True, compile=False)
    pipe.save_pretrained(dest)
    seconds = time.perf_counter() - start
    del pipe

    tokenizer = CLIPTokenizer.from_pretrained(source / "tokenizer")
    ids = tokenizer(PROMPT, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids
    ids = torch.tensor([ids])
    text_encoder, info = CLIPTextModel.from_pretrained(source / "text_encoder", output_loading_info=True)
    if info["missing_keys"] or info["unexpected_keys"]:
        raise RuntimeError(f"{source}/text_encoder: keys missing or unexpected after renaming: {info}")
    with torch.inference_mode():
        reference = text_encoder(ids)[0]
    ov_pipe = OVStableDiffusionPipeline.from_pretrained(
        dest, compile=False, ov_config={"INFERENCE_PRECISION_HINT": "f32"}
    )  # only the text encoder is compiled, by its first call
    difference = float((ov_pipe.text_encoder(ids)[0] - reference).abs().max())
    scale = float(reference.max() - reference.min())
    if difference > TEXT_ENCODER_TOLERANCE * scale:
        raise RuntimeError(f"the exported text encoder differs from torch's by {difference} (output range {scale})")

    report = {
        "export_s": round(seconds, 2),
        "export_peak_rss_gb": peak_rss_gb(),
        "text_encoder_keys_renamed": renamed,
        "text_encoder_max_abs_diff_vs_torch": difference,
        "text_encoder_output_range": scale,
        "prompt_ids": ids[0].tolist(),
        "source": path,
        "versions": {p: version(p) for p in PACKAGES},
    }
    Path(dest, "export.json").write_text(json.dumps(report, indent=1))
    return report


def text_encoder_fixed(path: Path, staging: Path) -> tuple[Path, bool]:
    """``(folder, renamed)``: ``path`` itself when its text encoder's keys are the ones this transformers'
    CLIPTextModel expects, else a copy under ``staging`` (links to ``path``'s other entries) whose text encoder
    has them after adding the ``text_model.`` prefix. Raises RuntimeError when neither matches."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    weights = path / "text_encoder" / "model.safetensors"
    with safe_open(weights, "pt") as handle:
        saved = set(handle.keys())
    with torch.device("meta"):
        expected = set(CLIPTextModel(CLIPTextConfig.from_pretrained(path / "text_encoder")).state_dict())
    if saved == expected:
        return path, False
    if {f"text_model.{k}" for k in saved} != expected:
        raise RuntimeError(f"{weights}: its keys match neither CLIPTextModel's nor them without 'text_model.'")
    copy = staging / "sd"
    shutil.rmtree(copy, ignore_errors=True)
    (copy / "text_encoder").mkdir(parents=True)
    for entry in path.iterdir():
        if entry.name != "text_encoder" and not entry.name.startswith("."):
            (copy / entry.name).symlink_to(entry.resolve())
    shutil.copy(path / "text_encoder" / "config.json", copy / "text_encoder" / "config.json")
    tensors = load_file(weights)
    save_file({f"text_model.{k}": v for k, v in tensors.items()}, copy / "text_encoder" / "model.safetensors")
    return copy, True


def load(path: str, cache_dir: str) -> Callable[[int], torch.Tensor]:
    """``run(steps) -> image [1, SIZE, SIZE, 3]`` float in [0, 1] on the CPU: one PNDM image of peers.PROMPT
    (negative prompt "", guidance peers.GUIDANCE) from the same starting latents as diffusers' pipeline with
    ``torch.Generator('cpu').manual_seed(SEED)``; static shapes for that one case, ``torch.get_num_threads()``
    OpenVINO threads, f32. ``cache_dir``: scratch space for this run (the export itself is kept, see above)."""
    from optimum.intel import OVStableDiffusionPipeline
    from peers import GUIDANCE, PROMPT, SEED, SIZE

    ov_config = {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": "f32",  # OpenVINO's default on a CPU with native bf16 is bf16
        "PERFORMANCE_HINT": "LATENCY",
    }
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as staging:
        entry = exported(path, staging)
    pipe = OVStableDiffusionPipeline.from_pretrained(entry, compile=False, ov_config=ov_config)
    pipe.reshape(batch_size=1, height=SIZE, width=SIZE, num_images_per_prompt=1)
    pipe.compile()
    pipe.set_progress_bar_config(disable=True)
    latent = SIZE // pipe.vae_scale_factor
    shape = (1, pipe.unet.config["in_channels"], latent, latent)

    def run(steps: int) -> torch.Tensor:
        latents = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(SEED), dtype=torch.float32)
        out = pipe(
            prompt=PROMPT,
            negative_prompt="",
            num_inference_steps=steps,
            guidance_scale=GUIDANCE,
            height=SIZE,
            width=SIZE,
            latents=latents,
            output_type="pt",
        )
        return out.images.permute(0, 2, 3, 1).float().cpu()

    return run


if __name__ == "__main__":  # the export's child process: peer_optimum.py export PATH DEST STAGING
    print(json.dumps(export(*sys.argv[2:5])))
