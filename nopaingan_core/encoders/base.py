"""What every music encoder shares: the embedding it returns and the audio handling before the model."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import torch

from ..audio import CLIP_SECONDS, AudioClip, as_clip, representative_clip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderInfo:
    """What a fusion checkpoint must agree with: which encoder, which layer, how wide, how fast."""

    kind: str
    model: str
    layer: int
    dim: int
    frame_rate: float
    sample_rate: int

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.dim}-d {self.kind} layer-{self.layer}"


@dataclass(frozen=True)
class MusicEmbedding:
    """Hidden states of a music encoder: ``features`` is ``[B, T, D]`` at ``encoder.frame_rate`` frames/s
    for the audio from ``offset`` seconds lasting ``duration`` seconds."""

    features: torch.Tensor
    encoder: EncoderInfo
    offset: float
    duration: float

    def metadata(self) -> dict[str, str]:
        """Flat string metadata for a safetensors file."""
        info = {f"encoder_{k}": str(v) for k, v in self.encoder.to_dict().items()}
        return info | {"clip_offset": f"{self.offset:.3f}", "clip_duration": f"{self.duration:.3f}"}


class MusicEncoder(ABC):
    """A frozen music model: audio in, a sequence of hidden states out.

    Subclasses load their model and implement :meth:`_encode` on mono audio already resampled to
    ``sample_rate``; everything else (format checks, mono mix, resampling, window choice) is shared.
    """

    kind: str

    def __init__(self, model: str, layer: int, dim: int, frame_rate: float, sample_rate: int) -> None:
        self.info = EncoderInfo(self.kind, model, layer, dim, frame_rate, sample_rate)

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def to(self, device: torch.device | str) -> MusicEncoder: ...

    @abstractmethod
    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` mono audio at ``sample_rate`` on ``device`` -> ``[B, frames, dim]``."""

    @torch.no_grad()
    def encode(
        self,
        audio: AudioClip | dict | torch.Tensor,
        sample_rate: int | None = None,
        max_seconds: float = CLIP_SECONDS,
    ) -> MusicEmbedding:
        """Embed audio (ComfyUI ``AUDIO``, :class:`AudioClip` or a tensor with its rate).

        Audio longer than ``max_seconds`` is cut to its most representative window first, so a whole
        song gives what training saw: one 25 s clip.
        """
        clip = as_clip(audio, sample_rate)
        if clip.duration > max_seconds + 1e-6:
            log.info(
                "%s: %.1f s of audio, encoding its most representative %.0f s",
                clip.source,
                clip.duration,
                max_seconds,
            )
            clip = representative_clip(clip, max_seconds)
        clip = clip.mono().resample(self.sample_rate)
        wave = clip.waveform[:, 0].to(self.device)
        features = self._encode(wave).float().cpu()
        return MusicEmbedding(features, self.info, clip.offset, clip.duration)
