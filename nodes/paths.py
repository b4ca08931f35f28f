"""Model folders and input files, through ComfyUI's ``folder_paths`` so ``extra_model_paths.yaml`` works.

- ``models/nopaingan/mir/<name>/``: music encoders and CLAP models saved with ``save_pretrained``
  (``hf download <id> --local-dir ...``), folder key ``nopaingan_mir``;
- ``models/nopaingan/fusion/*.safetensors``: fusion weights, folder key ``nopaingan_fusion``;
- ``models/diffusers/<name>/``: miniSD in diffusers layout (ComfyUI's own ``diffusers`` key);
- the input folder: songs, uploaded with the Load Audio nodes.
"""

from __future__ import annotations

import os

import folder_paths

from ..nopaingan_core.audio import AUDIO_EXTENSIONS
from ..nopaingan_core.errors import ModelNotFoundError

MIR = "nopaingan_mir"
FUSION = "nopaingan_fusion"
DIFFUSERS = "diffusers"
FOLDERS = {MIR: ("nopaingan/mir", {"folder"}), FUSION: ("nopaingan/fusion", {".safetensors"})}
MARKERS = {MIR: "config.json", DIFFUSERS: "model_index.json"}


def register_model_folders() -> None:
    """Add our folders under ``models/``, keeping any paths extra_model_paths.yaml already gave them
    (it is read before custom nodes are imported)."""
    for key, (sub, extensions) in FOLDERS.items():
        default = os.path.join(folder_paths.models_dir, *sub.split("/"))
        paths = folder_paths.folder_names_and_paths.get(key, ([], set()))[0]
        if default not in paths:
            paths.append(default)
        folder_paths.folder_names_and_paths[key] = (paths, set(extensions))


def model_dirs(key: str) -> list[str]:
    """Model folders (holding a ``config.json`` or ``model_index.json``) under every path of ``key``, as
    paths relative to it; ``folder_paths.get_filename_list`` lists files only."""
    found = set()
    for base in folder_paths.get_folder_paths(key):
        if not os.path.isdir(base):
            continue
        for root, dirs, files in os.walk(base, followlinks=True):
            if MARKERS[key] in files:
                found.add(os.path.relpath(root, base).replace(os.sep, "/"))
                dirs[:] = []  # a model's subfolders are not models
    return sorted(found - {"."})


def model_dir(key: str, name: str) -> str:
    """The folder of a model listed by :func:`model_dirs`."""
    for base in folder_paths.get_folder_paths(key):
        path = os.path.join(base, *name.split("/"))
        if os.path.isfile(os.path.join(path, MARKERS[key])):
            return path
    where = ", ".join(folder_paths.get_folder_paths(key))
    raise ModelNotFoundError(f"model folder '{name}' not found in {where}; put the model there and press R to refresh")


def fusion_files() -> list[str]:
    return folder_paths.get_filename_list(FUSION)


def fusion_file(name: str) -> str:
    path = folder_paths.get_full_path(FUSION, name)
    if path is None:
        where = ", ".join(folder_paths.get_folder_paths(FUSION))
        raise ModelNotFoundError(
            f"fusion checkpoint '{name}' not found in {where}; put it there and press R to refresh"
        )
    return path


def audio_files() -> list[str]:
    """Songs at the top of the input folder, by extension (the MIME table ComfyUI's own list uses lacks
    .flac, .ogg and .m4a on some systems)."""
    folder = folder_paths.get_input_directory()
    if not os.path.isdir(folder):
        return []
    names = (f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))
    return sorted(f for f in names if f.lower().endswith(AUDIO_EXTENSIONS))
