"""The seed's album prompt, and words for it heard in the song (zero-shot CLAP tags)."""

from __future__ import annotations

from ..nopaingan_core.prompt import DEFAULT_TEMPLATE, album_prompt
from ..nopaingan_core.tagging import DEFAULT_CLAP, TOP_K, get_tagger, tags_for_prompt
from . import bridge, paths
from .handles import CATEGORY


class NoPainGanAlbumPrompt:
    DESCRIPTION = (
        "Builds the seed's prompt: 'Create an album cover for the album <album>. The genre is <genre>.', then the "
        "artist and any extra words (connect Music Tags' words here). The template is editable."
    )
    CATEGORY = f"{CATEGORY}/prompt"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("prompt",)
    OUTPUT_TOOLTIPS = ("The prompt, for miniSD Text Encode or CLIP Text Encode.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        text = {"dynamicPrompts": False}
        return {
            "required": {
                "album": ("STRING", {**text, "default": "", "tooltip": "The album's name (required)."}),
                "genre": ("STRING", {**text, "default": "", "tooltip": "The genre, e.g. synthwave; empty: unknown."}),
                "artist": ("STRING", {**text, "default": "", "tooltip": "Optional: added as 'By <artist>.'"}),
                "extra": (
                    "STRING",
                    {**text, "default": "", "multiline": True, "tooltip": "Optional words appended to the prompt."},
                ),
                "template": (
                    "STRING",
                    {
                        **text,
                        "default": DEFAULT_TEMPLATE,
                        "multiline": True,
                        "tooltip": "The sentence to fill; fields {album}, {genre} and {artist}.",
                    },
                ),
            }
        }

    def build(self, album: str, genre: str, artist: str, extra: str, template: str):
        return (album_prompt(album, genre, artist, extra, template),)


class NoPainGanMusicTags:
    DESCRIPTION = (
        "Listens to the whole song with a music CLAP model and names its top moods and instruments, zero-shot "
        "(no training), for the Album Prompt's extra words. Scores compare labels with each other; they are hints, "
        "not facts. CLAP models live in models/nopaingan/mir/ or the Hugging Face cache."
    )
    CATEGORY = f"{CATEGORY}/prompt"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("words", "scores")
    OUTPUT_TOOLTIPS = (
        "'Mood: ... Instruments: ...' for the Album Prompt's extra input.",
        "Every category's top tags with scores, and the tempo; connect Preview Any to read them.",
    )
    FUNCTION = "tag"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio": ("AUDIO", {"tooltip": "The song; the whole of it is heard, in 10 s windows."}),
                "clap": (
                    [*paths.model_dirs(paths.MIR), DEFAULT_CLAP],
                    {"tooltip": f"A CLAP folder in models/nopaingan/mir/ (with its tokenizer), or {DEFAULT_CLAP}."},
                ),
                "top_k": (
                    "INT",
                    {"default": TOP_K, "min": 1, "max": 10, "tooltip": "How many tags of each category to keep."},
                ),
            }
        }

    def tag(self, audio: dict, clap: str, top_k: int):
        source = clap if clap == DEFAULT_CLAP else paths.model_dir(paths.MIR, clap)
        done = bridge.progress(1)
        bridge.throw_if_interrupted()
        tagger = get_tagger(source)  # loaded once on the CPU and kept; runs on the compute device
        with bridge.on_device([tagger.net], bridge.compute_device()):
            words, scores = tags_for_prompt(audio, clap=source, top_k=top_k)
        done(1, 1)
        return (words, scores)
