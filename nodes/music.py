"""From the song to the conditioning: music encoder, embedding, fusion weights, music tokens, and the fusion
of those tokens into any SD1.x text conditioning (ours or native CLIP Text Encode's)."""

from __future__ import annotations

import os

from ..nopaingan_core.checkpoint import load_fusion, new_fusion
from ..nopaingan_core.encoders import DEFAULT_MODELS, ENCODER_KINDS, detect_kind, load_encoder
from ..nopaingan_core.errors import ModelLoadError
from . import bridge, paths
from .handles import CATEGORY, FUSION, MIR, MUSIC_EMBEDDING, MUSIC_TOKENS, Loaded, MusicTokens

DEFAULT = "default"
UNTRAINED = "none (untrained)"


class NoPainGanMIREncoderLoader:
    DESCRIPTION = (
        "Loads a frozen music encoder (MIR model): codified-lm (MusicGen-small's codes read by its transformer), "
        "MERT or CLAP, from a folder in models/nopaingan/mir/ or the Hugging Face cache."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (MIR,)
    RETURN_NAMES = ("mir",)
    OUTPUT_TOOLTIPS = ("The music encoder, for MIR Encode and the Fusion Loader.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "kind": (
                    list(ENCODER_KINDS),
                    {"tooltip": "codified-lm: MusicGen-small (the default); mert: MERT-v1; clap: LAION's music CLAP."},
                ),
                "model": (
                    [DEFAULT, *paths.model_dirs(paths.MIR)],
                    {
                        "tooltip": "A folder in models/nopaingan/mir/, or default: the kind's hub model ("
                        + ", ".join(DEFAULT_MODELS.values())
                        + ") from the Hugging Face cache."
                    },
                ),
                "layer": (
                    "INT",
                    {"default": -1, "min": -1, "max": 64, "tooltip": "Hidden layer to read; -1: the kind's default."},
                ),
                **bridge.device_inputs(),
            }
        }

    def load(self, kind: str, model: str, layer: int, device: str, dtype: str):
        source = DEFAULT_MODELS[kind] if model == DEFAULT else paths.model_dir(paths.MIR, model)
        found = detect_kind(source) if os.path.isdir(source) else kind
        if found != kind:
            raise ModelLoadError(f"{model}: holds a {found} model, but kind is {kind}; set kind to {found}")
        layer_index = None if layer < 0 else layer
        encoder = load_encoder(kind, source, layer_index, bridge.offload_device(), bridge.DTYPES[dtype])
        return (Loaded(encoder, bridge.compute_device(device)),)


class NoPainGanMIREncode:
    DESCRIPTION = (
        "Embeds the audio with the music encoder: a sequence of hidden states [batch, frames, width]. Audio longer "
        "than 25 s is cut to its most representative 25 s first, as in training."
    )
    CATEGORY = f"{CATEGORY}/music"
    RETURN_TYPES = (MUSIC_EMBEDDING,)
    RETURN_NAMES = ("embedding",)
    OUTPUT_TOOLTIPS = ("The music embedding, with the encoder it came from (checked by the Music Adapter).",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio": ("AUDIO", {"tooltip": "Any AUDIO: ours, native Load Audio, Trim Audio..."}),
                "mir": (MIR, {"tooltip": "From the MIR Encoder Loader."}),
            }
        }

    def encode(self, audio: dict, mir: Loaded):
        done = bridge.progress(1)
        bridge.throw_if_interrupted()
        with bridge.on_device([mir.model], mir.device):
            embedding = mir.model.encode(audio)
        done(1, 1)
        return (embedding,)


class NoPainGanFusionLoader:
    DESCRIPTION = (
        "Loads trained adapter + fusion weights (.safetensors from models/nopaingan/fusion/) and checks they were "
        "trained for this music encoder; 'none (untrained)' builds a fresh fusion that leaves the text unchanged."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (FUSION, "STRING")
    RETURN_NAMES = ("fusion", "info")
    OUTPUT_TOOLTIPS = (
        "The fusion model, for the Music Adapter.",
        "The checkpoint's metadata (encoder, tokens, training); connect Preview Any to read it.",
    )
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "mir": (MIR, {"tooltip": "The music encoder the fusion must match (kind, layer and width)."}),
                "fusion": (
                    [UNTRAINED, *paths.fusion_files()],
                    {"tooltip": "Fusion weights in models/nopaingan/fusion/ (from `nopaingan train`)."},
                ),
            }
        }

    def load(self, mir: Loaded, fusion: str):
        info = mir.model.info
        if fusion == UNTRAINED:
            model = new_fusion(info)
        else:
            model = load_fusion(paths.fusion_file(fusion), bridge.offload_device())
            model.check_encoder(info)
        return (model, model.describe())


class NoPainGanMusicAdapter:
    DESCRIPTION = "Turns the music embedding into music tokens shaped like CLIP text tokens [batch, 16, 768]."
    CATEGORY = f"{CATEGORY}/music"
    RETURN_TYPES = (MUSIC_TOKENS,)
    RETURN_NAMES = ("music_tokens",)
    OUTPUT_TOOLTIPS = ("Music tokens and their fusion model, for Music-Text Fusion Conditioning.",)
    FUNCTION = "adapt"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "embedding": (MUSIC_EMBEDDING, {"tooltip": "From MIR Encode."}),
                "fusion": (FUSION, {"tooltip": "From the Fusion Loader; must match the embedding's encoder."}),
            }
        }

    def adapt(self, embedding, fusion):
        with bridge.on_device([fusion], bridge.compute_device()):
            tokens = fusion.music_tokens(embedding)
        return (MusicTokens(tokens.to(bridge.intermediate_device()), fusion),)


class NoPainGanFusionConditioning:
    DESCRIPTION = (
        "Fuses music tokens into a text conditioning: the text tokens attend to the music, and a gated residual "
        "adds the result. Works on native CLIP Text Encode output (any SD1.x checkpoint, native KSampler) and on "
        "miniSD Text Encode; keeps each entry's options and its length (77, 154... tokens)."
    )
    CATEGORY = f"{CATEGORY}/conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("The fused conditioning, same shapes and options as the input.",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "conditioning": ("CONDITIONING", {"tooltip": "SD1.x text conditioning (768-d tokens)."}),
                "music_tokens": (MUSIC_TOKENS, {"tooltip": "From the Music Adapter."}),
                "strength": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 5.0,
                        "step": 0.05,
                        "tooltip": "How much music enters the conditioning; 0 returns the text conditioning exactly.",
                    },
                ),
            }
        }

    def apply(self, conditioning: list, music_tokens: MusicTokens, strength: float):
        fusion = music_tokens.fusion
        with bridge.on_device([fusion], bridge.compute_device()):
            fused = [
                [fusion.fuse(text, music_tokens.tokens, strength), dict(options)] for text, options in conditioning
            ]
        return (fused,)
