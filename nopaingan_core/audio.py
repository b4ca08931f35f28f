"""Audio in: decode common formats with PyAV (as ComfyUI does), mix to mono, resample with torchaudio,
and choose which 25 s of a song the music encoders hear.

Files are decoded as a stream: taking 25 s of a two-hour file seeks to it, and choosing the window reads
the file once into one small feature vector per second, never the whole waveform.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import torch
import torchaudio

from .errors import AudioError

CLIP_SECONDS = 25.0
MIN_SECONDS = 0.5
SILENCE_PEAK = 1e-4
AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".webm")

_ANALYSIS_RATE = 16000


@dataclass(frozen=True)
class AudioClip:
    """A batch of audio: ``waveform`` is ``[B, C, T]`` float32 in [-1, 1], as ComfyUI's ``AUDIO``."""

    waveform: torch.Tensor
    sample_rate: int
    offset: float = 0.0
    source: str = "<tensor>"

    @property
    def duration(self) -> float:
        return self.waveform.shape[-1] / self.sample_rate

    def to_comfy(self) -> dict:
        """ComfyUI's native ``AUDIO`` value."""
        return {"waveform": self.waveform, "sample_rate": self.sample_rate}

    def mono(self) -> AudioClip:
        return replace(self, waveform=self.waveform.mean(dim=1, keepdim=True))

    def resample(self, sample_rate: int) -> AudioClip:
        if sample_rate == self.sample_rate:
            return self
        wave = torchaudio.functional.resample(self.waveform, self.sample_rate, sample_rate)
        return replace(self, waveform=wave, sample_rate=sample_rate)

    def crop(self, offset: float, duration: float) -> AudioClip:
        """The part from ``offset`` seconds for ``duration`` seconds (shorter if the clip ends first)."""
        start = round(offset * self.sample_rate)
        stop = start + round(duration * self.sample_rate)
        return replace(self, waveform=self.waveform[..., start:stop], offset=self.offset + offset)


def as_clip(audio: AudioClip | dict | torch.Tensor, sample_rate: int | None = None) -> AudioClip:
    """Accept ComfyUI's ``AUDIO`` dict, an :class:`AudioClip`, or a tensor ``[T]``, ``[C, T]`` or
    ``[B, C, T]`` with its ``sample_rate``; check it is usable."""
    if isinstance(audio, AudioClip):
        clip = audio
    elif isinstance(audio, dict):
        if "waveform" not in audio or "sample_rate" not in audio:
            raise AudioError(f"AUDIO value needs 'waveform' and 'sample_rate' keys, found {sorted(audio)}")
        clip = AudioClip(audio["waveform"], int(audio["sample_rate"]))
    elif isinstance(audio, torch.Tensor):
        if sample_rate is None:
            raise AudioError("a waveform tensor needs its sample_rate")
        wave = audio
        while wave.dim() < 3:
            wave = wave.unsqueeze(0)
        clip = AudioClip(wave, int(sample_rate))
    else:
        raise AudioError(f"expected AUDIO, AudioClip or a tensor, found {type(audio).__name__}")
    return check_clip(clip)


def check_clip(clip: AudioClip) -> AudioClip:
    """Refuse audio no encoder can use, naming the source and what was wrong."""
    wave = clip.waveform
    if wave.dim() != 3:
        raise AudioError(f"{clip.source}: waveform must be [batch, channels, samples], found {list(wave.shape)}")
    if clip.sample_rate <= 0:
        raise AudioError(f"{clip.source}: sample rate must be positive, found {clip.sample_rate}")
    if wave.numel() == 0:
        raise AudioError(f"{clip.source}: audio is empty (shape {list(wave.shape)})")
    if not torch.isfinite(wave).all():
        raise AudioError(f"{clip.source}: waveform contains NaN or infinite samples")
    if clip.duration < MIN_SECONDS:
        raise AudioError(f"{clip.source}: audio is {clip.duration:.3f} s long, at least {MIN_SECONDS} s is needed")
    peak = wave.abs().amax().item()
    if peak < SILENCE_PEAK:
        raise AudioError(f"{clip.source}: audio is silent (peak amplitude {peak:.2g} < {SILENCE_PEAK:g})")
    return replace(clip, waveform=wave.float())


@dataclass(frozen=True)
class AudioInfo:
    path: str
    duration: float
    sample_rate: int
    channels: int
    codec: str


def _open(path: str | os.PathLike) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
    path = str(path)
    if not Path(path).is_file():
        raise AudioError(f"{path}: no such file")
    if Path(path).stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    try:
        container = av.open(path)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from exc
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{path}: file has no audio stream")
    return container, container.streams.audio[0]


def probe(path: str | os.PathLike) -> AudioInfo:
    """Duration, rate, channels and codec from the container, without decoding."""
    container, stream = _open(path)
    with container:
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = math.nan
        return AudioInfo(str(path), duration, stream.rate, stream.channels, stream.codec_context.name)


def _frames(path: str | os.PathLike, start: float = 0.0) -> Iterator[tuple[float, np.ndarray, int]]:
    """Decoded blocks as (start time in s, float32 [C, n], rate), beginning at or before ``start``.

    Seeking lands on a packet boundary that some codecs (Vorbis, Opus) place after the target, so it aims
    a little early and, if the first block still starts late, further back."""
    for margin in (1.0, 10.0, math.inf):
        blocks = _frames_from(path, start, max(0.0, start - margin))
        first = next(blocks, None)
        if first is None:
            return
        if first[0] <= start + 1e-3 or margin == math.inf:
            yield first
            yield from blocks
            return
        blocks.close()


def _frames_from(path: str | os.PathLike, start: float, seek_to: float) -> Iterator[tuple[float, np.ndarray, int]]:
    container, stream = _open(path)
    resampler = av.AudioResampler(format="fltp")
    with container:
        seeked = False
        if seek_to > 0 and stream.time_base is not None:
            try:
                container.seek(int(seek_to / stream.time_base), stream=stream)
                seeked = True
            except av.FFmpegError:
                container.seek(0)
        position = 0.0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    if frame.pts is not None and frame.time_base is not None:
                        position = float(frame.pts * frame.time_base)
                    elif seeked:
                        raise AudioError(f"{path}: stream has no timestamps, cannot seek")
                    for out in resampler.resample(frame):
                        data = out.to_ndarray().astype(np.float32, copy=False)
                        yield position, data, out.sample_rate
                        position += data.shape[-1] / out.sample_rate
        except av.FFmpegError as exc:
            raise AudioError(f"{path}: audio data is corrupt or truncated ({exc})") from exc


def decode(path: str | os.PathLike, offset: float = 0.0, duration: float | None = None) -> AudioClip:
    """Decode ``duration`` seconds from ``offset`` (to the end if None), all channels, native rate."""
    if offset < 0:
        raise AudioError(f"{path}: offset must be >= 0 s, found {offset}")
    chunks: list[np.ndarray] = []
    rate = 0
    stop = math.inf if duration is None else offset + duration
    for position, data, rate in _frames(path, offset):
        end = position + data.shape[-1] / rate
        if end <= offset:
            continue
        if position >= stop:
            break
        first = max(0, round((offset - position) * rate))
        last = data.shape[-1] if end <= stop else round((stop - position) * rate)
        chunks.append(data[:, first:last])
    if not chunks:
        info = probe(path)
        raise AudioError(f"{path}: no audio at offset {offset:.2f} s (file is {info.duration:.2f} s long)")
    channels = max(c.shape[0] for c in chunks)
    wave = np.concatenate([np.broadcast_to(c, (channels, c.shape[-1])) for c in chunks], axis=-1)
    return AudioClip(torch.from_numpy(np.ascontiguousarray(wave))[None], rate, offset, str(path))


def second_features(path: str | os.PathLike, block_seconds: int = 60) -> torch.Tensor:
    """One feature vector per second of the file (log-mel bands, then loudness), read as a stream and
    analysed ``block_seconds`` at a time, so memory stays small for any length."""
    mel = torchaudio.transforms.MelSpectrogram(_ANALYSIS_RATE, n_fft=1024, hop_length=500, n_mels=32)
    pending: list[np.ndarray] = []
    count = 0
    rows: list[torch.Tensor] = []
    rate = 0
    for _, data, rate in _frames(path):
        pending.append(data.mean(axis=0))
        count += data.shape[-1]
        if count >= block_seconds * rate:
            wave = torch.from_numpy(np.concatenate(pending))
            whole = count // rate * rate
            rows.append(_block_features(wave[:whole], rate, mel))
            pending, count = [wave[whole:].numpy()], count - whole
    if rate and count >= rate // 2:
        rows.append(_block_features(torch.from_numpy(np.concatenate(pending)), rate, mel))
    if not rows:
        raise AudioError(f"{path}: no decodable audio")
    return torch.cat(rows)


def _block_features(wave: torch.Tensor, rate: int, mel: torchaudio.transforms.MelSpectrogram) -> torch.Tensor:
    wave = torchaudio.functional.resample(wave, rate, _ANALYSIS_RATE)
    seconds = max(1, wave.shape[0] // _ANALYSIS_RATE)
    wave = wave[: seconds * _ANALYSIS_RATE].reshape(seconds, _ANALYSIS_RATE)
    bands = torch.log10(mel(wave).mean(dim=-1) + 1e-10) * 10
    loudness = 10 * torch.log10(wave.pow(2).mean(dim=-1, keepdim=True) + 1e-10)
    return torch.cat([bands, loudness], dim=-1)


def representative_offset(features: torch.Tensor, duration: float = CLIP_SECONDS) -> float:
    """Start (s) of the window made of the song's most typical seconds, avoiding quiet parts.

    Each second is scored by its distance to the song's median second (timbre bands and loudness), so
    intros, outros and breaks, which sound unlike most of the song, are left out; the window with the
    lowest mean distance wins and ties go to the earliest.
    """
    length = math.ceil(duration)
    seconds = features.shape[0]
    if seconds <= length:
        return 0.0
    loudness = features[:, -1]
    audible = loudness > loudness.max() - 40.0
    typical = features[audible].median(dim=0).values
    distance = (features - typical).pow(2).mean(dim=-1) + 100.0 * (~audible).float()
    window_sums = torch.cumsum(torch.cat([torch.zeros(1), distance]), dim=0)
    scores = window_sums[length:] - window_sums[:-length]
    return float(torch.argmin(scores).item())


def representative_clip(clip: AudioClip, duration: float = CLIP_SECONDS) -> AudioClip:
    """The most representative ``duration`` seconds of an in-memory clip (itself if not longer)."""
    if clip.duration <= duration:
        return clip
    mel = torchaudio.transforms.MelSpectrogram(_ANALYSIS_RATE, n_fft=1024, hop_length=500, n_mels=32)
    features = _block_features(clip.waveform.mean(dim=(0, 1)), clip.sample_rate, mel)
    return clip.crop(representative_offset(features, duration), duration)


def load_audio(
    path: str | os.PathLike,
    offset: float | None = None,
    duration: float = CLIP_SECONDS,
) -> AudioClip:
    """The clip the encoders hear: ``duration`` seconds from ``offset``, or from the most representative
    window when ``offset`` is None. A file shorter than ``duration`` is used whole."""
    if duration <= 0:
        raise AudioError(f"{path}: duration must be > 0 s, found {duration}")
    if offset is None:
        offset = representative_offset(second_features(path), duration)
    return check_clip(decode(path, offset, duration))


def save_wav(clip: AudioClip, path: str | os.PathLike) -> Path:
    """Write the first item of a clip as 32-bit float WAV."""
    data = clip.waveform[0].numpy().astype(np.float32)
    layout = "stereo" if data.shape[0] == 2 else "mono"
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=clip.sample_rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T).reshape(1, -1), format="flt", layout=layout)
        frame.sample_rate = clip.sample_rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return Path(path)
