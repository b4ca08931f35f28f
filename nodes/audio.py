"""Load Audio (No-Pain-No-GAN): a song from the input folder, cut to the clip the music encoder hears."""

from __future__ import annotations

import hashlib

import folder_paths

from ..nopaingan_core.audio import CLIP_SECONDS, load_audio
from . import paths
from .handles import CATEGORY


class NoPainGanLoadAudio:
    DESCRIPTION = (
        "Loads a song from ComfyUI's input folder (upload one with the button, or drop a file on the node) and "
        "cuts the clip the music encoder hears: its most representative 25 s, or from a start time you choose. "
        "Outputs native AUDIO, so Preview Audio, Trim Audio and the other audio nodes connect to it."
    )
    CATEGORY = f"{CATEGORY}/audio"
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The clip: all channels at the file's sample rate.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        # audioUI and upload are the frontend's audio player and upload button, which it gives only the core
        # audio nodes by itself; the button finds the player by name, so the player is declared first. Both
        # come last: a loaded workflow skips the player's (unsaved) value, so widgets after it would shift.
        return {
            "required": {
                "audio": (
                    paths.audio_files(),
                    {
                        "audio_upload": True,
                        "tooltip": "A song in ComfyUI's input folder (wav, mp3, flac, ogg, m4a...).",
                    },
                ),
                "automatic_window": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "label_on": "most representative",
                        "label_off": "from start",
                        "tooltip": "Pick the song's most typical stretch (no intro or outro), or start at 'start'.",
                    },
                ),
                "start": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 86400.0,
                        "step": 0.5,
                        "tooltip": "Start of the clip in seconds, used when the automatic window is off.",
                    },
                ),
                "duration": (
                    "FLOAT",
                    {
                        "default": CLIP_SECONDS,
                        "min": 0.5,
                        "max": 3600.0,
                        "step": 0.5,
                        "tooltip": "Length of the clip in seconds; the fusion models were trained on 25 s.",
                    },
                ),
            },
            "optional": {
                "audioUI": ("AUDIO_UI", {"tooltip": "Plays the selected file (shown in the browser only)."}),
                "upload": ("AUDIOUPLOAD", {"tooltip": "Upload a song into the input folder (browser only)."}),
            },
        }

    def load(
        self,
        audio: str,
        automatic_window: bool,
        start: float,
        duration: float,
        audioUI: str = "",  # browser-only widgets: the frontend sends audioUI as "" and upload not at all
        upload: object = None,
    ):
        clip = load_audio(folder_paths.get_annotated_filepath(audio), None if automatic_window else start, duration)
        return (clip.to_comfy(),)

    @classmethod
    def IS_CHANGED(cls, audio: str, **kwargs):
        digest = hashlib.sha256()
        with open(folder_paths.get_annotated_filepath(audio), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, audio: str):
        if not folder_paths.exists_annotated_filepath(audio):
            return f"Invalid audio file: {audio} is not in ComfyUI's input folder"
        return True
