"""ComfyUI's side of the pack, for tests: load the pack the way ComfyUI's ``nodes.load_custom_node`` does,
and lay out a ComfyUI base folder with tiny models under the names the shipped workflows use.

Outside ComfyUI two of its top-level modules are missing: ``nodes`` (ComfyUI's own, which must never be
what ``from .nodes import`` reaches) and ``folder_paths``, which the pack uses for model folders and the
input folder. Stand-ins are put in ``sys.modules`` for both; ``comfy.*`` stays absent, so the pack's
bridge falls back to the CPU with no progress bar, as it would in any script.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent

# What the shipped workflows reference, relative to the ComfyUI base folder.
SD_DIR = "models/diffusers/miniSD-diffusers"
MIR_DIR = "models/nopaingan/mir/musicgen-small"
CLAP_DIR = "models/nopaingan/mir/larger_clap_music"
FUSION_FILE = "models/nopaingan/fusion/fusion-musicgen-small.safetensors"
CHECKPOINT_FILE = "models/checkpoints/miniSD.safetensors"
X4_CHECKPOINT_FILE = "models/checkpoints/x4-upscaler-ema.safetensors"  # album_cover_release_ready's
UPSCALE_MODEL_FILE = "models/upscale_models/RealESRGAN_x4plus.pth"
SONG_FILE = "input/song.mp3"
SONG_SECONDS = 12.0


def fake_folder_paths(base: Path) -> ModuleType:
    """The part of ComfyUI's ``folder_paths`` the pack uses, rooted at ``base`` like ``--base-directory``."""
    fp = ModuleType("folder_paths")
    fp.models_dir = str(base / "models")
    fp.folder_names_and_paths = {
        "diffusers": ([str(base / "models" / "diffusers")], {"folder"}),
        "checkpoints": ([str(base / "models" / "checkpoints")], {".safetensors", ".ckpt"}),
    }

    def get_folder_paths(name: str) -> list[str]:
        return list(fp.folder_names_and_paths[name][0])

    def get_filename_list(name: str) -> list[str]:
        paths, extensions = fp.folder_names_and_paths[name]
        found = set()
        for folder in paths:
            for root, _, files in os.walk(folder, followlinks=True):
                for file in files:
                    if not extensions or os.path.splitext(file)[1].lower() in extensions:
                        found.add(os.path.relpath(os.path.join(root, file), folder).replace(os.sep, "/"))
        return sorted(found)

    def get_full_path(name: str, filename: str) -> str | None:
        for folder in get_folder_paths(name):
            path = os.path.join(folder, filename)
            if os.path.isfile(path):
                return path
        return None

    def get_annotated_filepath(name: str) -> str:
        return os.path.join(base / "input", name)

    fp.get_folder_paths = get_folder_paths
    fp.get_filename_list = get_filename_list
    fp.get_full_path = get_full_path
    fp.get_input_directory = lambda: str(base / "input")
    fp.get_annotated_filepath = get_annotated_filepath
    fp.exists_annotated_filepath = lambda name: os.path.exists(get_annotated_filepath(name))
    fp.get_output_directory = lambda: str(base / "output")

    def get_save_image_path(prefix: str, output_dir: str, width: int = 0, height: int = 0):
        """ComfyUI's: the folder, file name, counter, subfolder and prefix for a save node."""
        subfolder, name = os.path.split(os.path.normpath(prefix))
        folder = os.path.join(output_dir, subfolder)
        os.makedirs(folder, exist_ok=True)
        return folder, name, 1, subfolder, prefix

    fp.get_save_image_path = get_save_image_path
    return fp


def load_pack(base: Path) -> ModuleType:
    """Import the repository as ComfyUI imports a custom-node folder: a module spec from its
    ``__init__.py`` under a name made from its path, with ComfyUI's ``nodes`` module already taken."""
    sys.modules.setdefault("nodes", ModuleType("nodes"))  # ComfyUI's nodes.py, imported before any pack
    sys.modules["folder_paths"] = fake_folder_paths(base)
    name = str(ROOT).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def install_models(base: Path, tiny_models: dict[str, Path]) -> None:
    """Put the tiny models and a song where the workflows expect the real ones (the SD1.x single-file
    checkpoint is separate: see ``sd1_checkpoint``)."""
    from audio_files import write_audio

    from nopaingan_core.checkpoint import new_fusion, save_fusion
    from nopaingan_core.encoders import load_encoder
    from nopaingan_core.synth import synth_song

    for link, key in ((SD_DIR, "sd"), (MIR_DIR, "codified-lm"), (CLAP_DIR, "clap")):
        _link(base / link, tiny_models[key])
    fusion = new_fusion(load_encoder("codified-lm", str(tiny_models["codified-lm"])).info)
    fusion.fusion.gate.data.fill_(1.0)  # open the gate: the random music path visibly changes the cover
    save_fusion(fusion, base / FUSION_FILE)
    song = synth_song(SONG_SECONDS, sample_rate=44100, seed=3)
    (base / "input").mkdir(parents=True, exist_ok=True)
    write_audio(base / SONG_FILE, song.waveform[0].numpy(), song.sample_rate)


def install_release_models(base: Path) -> list[Path]:
    """Put a tiny SD x4 upscaler checkpoint (see ``x4_checkpoint``, ~0.9 GB) and a tiny Real-ESRGAN x4 network
    where ``album_cover_release_ready`` expects the real ones; returns their paths. The network is saved as the
    published ``.pth`` is, a pickled tensor dict, which ComfyUI and spandrel load with ``weights_only``."""
    import torch
    from x4_checkpoint import write_x4_checkpoint

    from nopaingan_core.release.tiny import esrgan_state_dict

    upscaler = base / UPSCALE_MODEL_FILE
    upscaler.parent.mkdir(parents=True, exist_ok=True)
    torch.save(esrgan_state_dict(), upscaler)
    return [write_x4_checkpoint(base / X4_CHECKPOINT_FILE), upscaler]


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.symlink_to(target, target_is_directory=True)
