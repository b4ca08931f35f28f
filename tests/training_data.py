"""A tiny dataset folder as ``nopaingan dataset import`` writes it: synthetic songs, small PNG covers whose
colour follows the song's key, and ``metadata.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from nopaingan_core.audio import save_wav
from nopaingan_core.synth import synth_song

COLOURS = ((220, 40, 40), (40, 180, 60), (40, 70, 220))
ROOTS = (110.0, 165.0, 247.0)


def make_dataset(root: Path, train: int = 4, eval: int = 2, seconds: float = 2.0, size: int = 64) -> Path:
    """``root`` with ``train + eval`` albums; album i has key/colour ``i % 3``."""
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "covers").mkdir(exist_ok=True)
    rows = []
    for i in range(train + eval):
        key = i % len(ROOTS)
        album_id = f"artist-{i}-album-{i}"
        song = synth_song(seconds=seconds, sample_rate=16000, tempo=90 + 10 * i, root_hz=ROOTS[key], seed=i)
        save_wav(song, root / "audio" / f"{album_id}.wav")
        pixels = np.zeros((size, size, 3), dtype=np.uint8) + np.array(COLOURS[key], dtype=np.uint8)
        pixels[size // 4 : size // 2, size // 4 : 3 * size // 4] = 255  # a white band, so covers are not flat
        Image.fromarray(pixels).save(root / "covers" / f"{album_id}.png")
        rows.append(
            {
                "id": album_id,
                "file_name": f"covers/{album_id}.png",
                "audio": f"audio/{album_id}.wav",
                "artist": f"Artist {i}",
                "album": f"Album {i}",
                "song": f"Song {i}",
                "genres": ["synthwave"],
                "genre": "synthwave",
                "split": "train" if i < train else "eval",
            }
        )
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
