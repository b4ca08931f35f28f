"""Music-aware prompts without training: zero-shot tags from the audio itself, and the tempo.

A music CLAP model (``laion/larger_clap_music``) embeds audio and text in one space. Each label of an
editable label set (``labels/*.txt``: mood, genre, instruments, energy) becomes a sentence such as
"This is a melancholic song."; the song's embedding, averaged over 10 s windows spread across the whole
song, is compared with every sentence, and a softmax within each label set turns the similarities into
scores. The tempo is estimated from the same windows (:mod:`.tempo`). This works on day one, before any
fusion weights are trained, and fills in genres a dataset lacks.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .audio import SILENCE_PEAK, AudioClip, as_clip, decode_windows, decoded_duration
from .encoders.clap import DEFAULT_MODEL as DEFAULT_CLAP
from .encoders.clap import load_clap
from .errors import AudioError, ModelLoadError, NoPainGanError
from .hub import from_pretrained
from .tempo import estimate_tempo

log = logging.getLogger(__name__)

LABELS_DIR = Path(__file__).parent / "labels"
DEFAULT_TEMPLATE = "This is a {label} song."
WINDOWS = 6  # 10 s windows spread over the song
TOP_K = 3
PROMPT_CATEGORIES = ("mood", "instruments")
CATEGORY_ORDER = ("mood", "genre", "instruments", "energy")  # others follow by name
GENRE_MIN_SCORE = 0.3  # below this the best genre is a guess among many; the album keeps "unknown"

_TEMPLATE_LINE = re.compile(r"#\s*template:\s*(.*)$", re.IGNORECASE)

AudioInput = str | os.PathLike | AudioClip | dict | torch.Tensor


class LabelError(NoPainGanError):
    """A label file that cannot be used (empty, duplicate labels, a template without ``{label}``)."""


@dataclass(frozen=True)
class Tag:
    label: str
    category: str
    score: float


@dataclass(frozen=True)
class LabelSet:
    """One category of labels and the sentence each label is put into before CLAP reads it."""

    category: str
    labels: tuple[str, ...]
    template: str = DEFAULT_TEMPLATE

    def prompts(self) -> list[str]:
        return [self.template.format(label=label) for label in self.labels]


def read_labels(path: str | os.PathLike) -> LabelSet:
    """A label file: one label per line, ``#`` comments, and optionally ``# template: ... {label} ...``.
    The category is the file's name without ``.txt``."""
    path = Path(path)
    labels: list[str] = []
    template = DEFAULT_TEMPLATE
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        directive = _TEMPLATE_LINE.match(line)
        if directive:
            template = directive.group(1).strip()
            if "{label}" not in template:
                raise LabelError(f"{path}:{number}: template must contain {{label}}, found {template!r}")
        elif line and not line.startswith("#"):
            if line in labels:
                raise LabelError(f"{path}:{number}: label {line!r} is listed twice")
            labels.append(line)
    if not labels:
        raise LabelError(f"{path}: no labels (expected one label per line)")
    return LabelSet(path.stem, tuple(labels), template)


def load_label_sets(folder: str | os.PathLike | None = None) -> list[LabelSet]:
    """Every ``*.txt`` label file in ``folder`` (default: the package's ``labels/``), in
    :data:`CATEGORY_ORDER`, then by file name."""
    folder = Path(folder) if folder is not None else LABELS_DIR
    files = list(folder.glob("*.txt")) if folder.is_dir() else []
    order = {name: i for i, name in enumerate(CATEGORY_ORDER)}
    files.sort(key=lambda f: (order.get(f.stem, len(order)), f.stem))
    if not files:
        raise LabelError(f"{folder}: expected a folder of label files (*.txt), found none")
    return [read_labels(file) for file in files]


def top_tags(tags: Iterable[Tag], category: str, k: int = TOP_K) -> list[Tag]:
    """The ``k`` best tags of one category, best first."""
    ranked = sorted((t for t in tags if t.category == category), key=lambda t: (-t.score, t.label))
    return ranked[:k]


def tags_to_prompt_words(tags: Iterable[Tag], categories: Sequence[str] = PROMPT_CATEGORIES, k: int = TOP_K) -> str:
    """Words for the album prompt's ``extra``: ``"Mood: dreamy, calm. Instruments: piano, strings."``."""
    tags = list(tags)
    parts = []
    for category in categories:
        best = top_tags(tags, category, k)
        if best:
            parts.append(f"{category.capitalize()}: {', '.join(t.label for t in best)}.")
    return " ".join(parts)


@dataclass(frozen=True)
class MusicTags:
    """What the tagger heard: every label's score (by category, best first), the tempo (None when no
    beat was found) and the start of each window it listened to."""

    tags: tuple[Tag, ...]
    tempo: float | None
    windows: tuple[float, ...]
    window_seconds: float
    source: str

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(t.category for t in self.tags))

    def top(self, category: str, k: int = TOP_K) -> list[Tag]:
        return top_tags(self.tags, category, k)

    def ranked(self, k: int = TOP_K) -> list[Tag]:
        """The ``k`` best tags of each category, category by category."""
        return [tag for category in self.categories for tag in self.top(category, k)]

    def prompt_words(self, categories: Sequence[str] = PROMPT_CATEGORIES, k: int = TOP_K) -> str:
        return tags_to_prompt_words(self.tags, categories, k)

    def to_text(self, k: int = TOP_K) -> str:
        """One tag per line with its score, then the tempo."""
        lines = [f"{t.category:<12} {t.label:<28} {t.score:.3f}" for t in self.ranked(k)]
        tempo = f"{self.tempo:.1f} BPM" if self.tempo is not None else "no steady beat"
        return "\n".join([*lines, f"{'tempo':<12} {tempo}"])

    def to_dict(self, k: int = TOP_K) -> dict:
        return {
            "source": self.source,
            "windows": list(self.windows),
            "window_seconds": self.window_seconds,
            "tempo_bpm": None if self.tempo is None else round(self.tempo, 2),
            "tags": [asdict(t) | {"score": round(t.score, 4)} for t in self.ranked(k)],
        }


def window_offsets(duration: float, window: float, count: int = WINDOWS) -> list[float]:
    """Starts (s) of up to ``count`` windows of ``window`` s spread evenly from the song's start to its
    end; no more windows than fit side by side, one window in the middle when ``count`` is 1."""
    if count < 1:
        raise ValueError(f"need at least one window, found {count}")
    if duration <= window:
        return [0.0]
    count = min(count, math.ceil(duration / window))
    if count == 1:
        return [round((duration - window) / 2, 3)]
    step = (duration - window) / (count - 1)
    return [round(i * step, 3) for i in range(count)]


def load_tokenizer(model: str):
    """CLAP's text tokenizer. transformers quietly builds an empty one from the config alone when the files
    are missing (e.g. a folder saved for the audio encoder only), which would tag every song alike."""
    from transformers import AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, model, "CLAP tokenizer", "--clap")
    if len(tokenizer) <= len(tokenizer.all_special_tokens):
        raise ModelLoadError(
            f"{model}: no CLAP tokenizer (expected tokenizer.json or vocab.json and merges.txt next to the model, "
            f"found a vocabulary of {len(tokenizer)} special tokens); the tagger needs the text tower's tokenizer"
        )
    return tokenizer


class MusicTagger:
    """A CLAP model and label sets; label embeddings are computed once per label sentence and kept."""

    def __init__(
        self,
        model: str = DEFAULT_CLAP,
        labels: str | os.PathLike | Sequence[LabelSet] | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.model = str(model)
        if labels is None or isinstance(labels, (str, os.PathLike)):
            labels = load_label_sets(labels)
        self.label_sets = list(labels)
        self.net, self.features = load_clap(self.model, "CLAP model", "--clap")
        self.tokenizer = load_tokenizer(self.model)
        self.net.to(device, dtype)
        self.sample_rate = int(self.features.sampling_rate)
        self.window_seconds = self.features.nb_max_samples / self.sample_rate
        self._text_cache: dict[str, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def text_embeddings(self, sentences: Sequence[str]) -> torch.Tensor:
        """``[len(sentences), D]`` unit vectors; sentences seen before come from the cache."""
        new = [s for s in dict.fromkeys(sentences) if s not in self._text_cache]
        for start in range(0, len(new), 64):
            batch = new[start : start + 64]
            tokens = self.tokenizer(batch, padding=True, truncation=True, return_tensors="pt").to(self.device)
            out = self.net.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            for sentence, vector in zip(batch, out.pooler_output.float().cpu(), strict=True):
                self._text_cache[sentence] = vector
        return torch.stack([self._text_cache[s] for s in sentences])

    @torch.no_grad()
    def audio_embedding(self, windows: Sequence[AudioClip]) -> torch.Tensor:
        """``[D]`` unit vector: the mean of the windows' CLAP audio embeddings (mono, at CLAP's rate)."""
        length = self.features.nb_max_samples
        waves = [w.mono().resample(self.sample_rate).waveform[0, 0, :length].numpy() for w in windows]
        inputs = self.features(waves, sampling_rate=self.sample_rate, return_tensors="pt")
        dtype = next(self.net.parameters()).dtype
        out = self.net.get_audio_features(
            input_features=inputs["input_features"].to(self.device, dtype),
            is_longer=inputs["is_longer"].to(self.device),
        )
        return torch.nn.functional.normalize(out.pooler_output.float().cpu().mean(dim=0), dim=0)

    @torch.no_grad()
    def score(self, embedding: torch.Tensor, categories: Sequence[str] | None = None) -> list[Tag]:
        """Every label's score for an audio embedding: a softmax within each label set over the
        similarities scaled by CLAP's learnt temperature, best first within each category."""
        scale = float(self.net.logit_scale_a.exp())
        tags: list[Tag] = []
        for label_set in self.label_sets:
            if categories is not None and label_set.category not in categories:
                continue
            similarity = self.text_embeddings(label_set.prompts()) @ embedding
            scores = torch.softmax(scale * similarity, dim=0).tolist()
            ranked = sorted(zip(label_set.labels, scores, strict=True), key=lambda p: (-p[1], p[0]))
            tags.extend(Tag(label, label_set.category, score) for label, score in ranked)
        return tags

    def song_windows(self, audio: AudioInput, count: int = WINDOWS, sample_rate: int | None = None) -> list[AudioClip]:
        """Up to ``count`` windows spread over the whole song, silent ones left out. A file is read
        twice as a stream, never held whole: once to count its samples, once to cut the windows; in-memory
        audio (its first batch item) is cropped."""
        length = self.window_seconds
        if isinstance(audio, (str, os.PathLike)):
            # placed by the samples decoded, not the header's length (joined files, VBR MP3s are far off)
            offsets = window_offsets(decoded_duration(audio), length, count)
            clips = decode_windows(audio, offsets, length)
        else:
            song = as_clip(audio, sample_rate)
            song = AudioClip(song.waveform[:1], song.sample_rate, song.offset, song.source)
            clips = [song.crop(o, length) for o in window_offsets(song.duration, length, count)]
        audible = [c for c in clips if c.waveform.numel() and c.waveform.abs().amax() >= SILENCE_PEAK]
        if not audible:
            raise AudioError(f"{clips[0].source}: every window of the song is silent")
        return audible

    def tag(
        self,
        audio: AudioInput,
        windows: int = WINDOWS,
        categories: Sequence[str] | None = None,
        tempo: bool = True,
        sample_rate: int | None = None,
    ) -> MusicTags:
        """Tags (all labels of ``categories``, default every label set) and tempo of a song: a file path,
        ComfyUI ``AUDIO``, an :class:`AudioClip`, or a tensor with its ``sample_rate``."""
        clips = self.song_windows(audio, windows, sample_rate)
        tags = self.score(self.audio_embedding(clips), categories)
        bpm = estimate_tempo(clips) if tempo else None
        offsets = tuple(round(c.offset, 3) for c in clips)
        return MusicTags(tuple(tags), bpm, offsets, self.window_seconds, str(clips[0].source))


def get_tagger(model: str = DEFAULT_CLAP, labels: str | None = None, device: str = "cpu") -> MusicTagger:
    """A loaded tagger, kept for the next call with the same model, labels folder and device."""
    return _cached_tagger(str(model), None if labels is None else str(labels), str(device))


@functools.lru_cache(maxsize=2)
def _cached_tagger(model: str, labels: str | None, device: str) -> MusicTagger:
    return MusicTagger(model, labels, device)


def tags_for_prompt(
    audio: AudioInput,
    clap: str = DEFAULT_CLAP,
    top_k: int = TOP_K,
    categories: Sequence[str] = PROMPT_CATEGORIES,
    device: str = "cpu",
) -> tuple[str, str]:
    """For the ComfyUI node: (words for the Album Prompt's extra, the scores as text for display)."""
    result = get_tagger(clap, device=device).tag(audio)
    return result.prompt_words(categories, top_k), result.to_text(top_k)


def genre_from_audio(
    path: str | os.PathLike,
    clap: str = DEFAULT_CLAP,
    min_score: float = GENRE_MIN_SCORE,
    device: str = "cpu",
) -> str | None:
    """The song's most likely genre label, or None when CLAP is not sure (score below ``min_score``) or the
    audio cannot be read. For ``import_dataset(genre_from_audio=...)``; a missing model still raises."""
    tagger = get_tagger(clap, device=device)
    try:
        result = tagger.tag(path, windows=3, categories=("genre",), tempo=False)
    except AudioError as exc:
        log.warning("no genre from audio: %s", exc)
        return None
    best = result.top("genre", 1)
    return best[0].label if best and best[0].score >= min_score else None
