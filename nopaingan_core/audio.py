"""Audio in: decode common formats with PyAV (as ComfyUI does), mix to mono, resample with torchaudio,
and choose which 25 s of a song the music encoders hear.

Files are decoded as a stream: taking 25 s of a two-hour file seeks to it, and choosing the window reads
the file once into one small feature vector per second, never the whole waveform.
"""

from __future__ import annotations

import io
import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping
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
MIN_RATE, MAX_RATE = 1000, 768000  # Hz, for in-memory audio
MAX_CHANNELS = 64
AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".webm")

_ANALYSIS_RATE = 16000
_STUB_SAMPLES = 256  # a decoded block this short may be what was left of one after trimming
_TIMESTAMP_SLACK = 0.25  # s a timestamp may differ from the samples counted before it is a jump
# Containers whose length and seek positions FFmpeg estimates from the bitrate (raw MP3 and ADTS AAC): in a
# joined or variable-bitrate file both can be far off the samples decoded, so windows are found by counting.
_ESTIMATED_TIMELINE = ("mp3", "aac")


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


def as_clip(audio: AudioClip | Mapping | torch.Tensor | np.ndarray, sample_rate: object = None) -> AudioClip:
    """Accept ComfyUI's ``AUDIO`` (any mapping with ``waveform`` and ``sample_rate``: a dict or another pack's
    lazy, read-only mapping), an :class:`AudioClip`, or a tensor/array ``[T]``, ``[C, T]`` or ``[B, C, T]``
    with its ``sample_rate``, and check it is usable.

    Converted: integer PCM is scaled by its type's range (int16 by 32768, uint8 around 128...), other float
    types become float32, big-endian arrays are byte-swapped, sparse tensors made dense, ``sample_rate`` may be
    a Python, NumPy or 0-d tensor integer (or an integral float). Everything else (no waveform, wrong rank, no
    samples, NaN, silence, shorter than :data:`MIN_SECONDS`, an odd rate, int64 PCM whose scale is ambiguous, a
    float waveform peaking above :data:`MAX_FLOAT_PEAK` as integer PCM cast to float does, a meta tensor, a lazy
    mapping that fails to load) raises :class:`AudioError` saying what was found.
    """
    if isinstance(audio, AudioClip):
        return check_clip(replace(audio, waveform=_as_waveform(audio.waveform, audio.source)))
    if isinstance(audio, Mapping):
        wave, rate = _item(audio, "waveform"), _item(audio, "sample_rate")
    elif isinstance(audio, (torch.Tensor, np.ndarray)):
        if sample_rate is None:
            raise AudioError("a waveform tensor needs its sample_rate")
        wave, rate = audio, sample_rate
    else:
        raise AudioError(f"expected AUDIO, AudioClip or a tensor, found {type(audio).__name__}")
    rate = _as_rate(rate)  # the rate first: a wrong one is the simpler mistake to report
    return check_clip(AudioClip(_as_waveform(wave, "AUDIO"), rate))


def _item(audio: Mapping, key: str) -> object:
    """``audio[key]``; a missing key, or a lazy mapping that fails to build it, is an :class:`AudioError`."""
    try:
        return audio[key]
    except KeyError:
        try:
            found = ", ".join(sorted(map(repr, audio.keys()))) or "no keys"
        except Exception:  # noqa: BLE001 -- another pack's mapping: any failure is reported, not raised
            found = "keys that cannot be listed"
        raise AudioError(f"AUDIO value needs 'waveform' and 'sample_rate' keys, found {found}") from None
    except Exception as exc:  # noqa: BLE001 -- another pack's lazy mapping failed to load its value
        raise AudioError(f"AUDIO value: reading {key!r} failed ({type(exc).__name__}: {exc})") from exc


# Scale refused for a float waveform: integer PCM cast to float (``.float()`` on int16) peaks in the thousands.
MAX_FLOAT_PEAK = 2.0


def _as_waveform(wave: object, source: str) -> torch.Tensor:
    """A float32 tensor ``[B, C, T]`` from a tensor or array of rank 1-3, integer PCM scaled to [-1, 1]."""
    if isinstance(wave, np.ndarray):
        wave = _from_numpy(wave, source)
    if not isinstance(wave, torch.Tensor):
        raise AudioError(f"{source}: waveform must be a tensor [batch, channels, samples], found {type(wave).__name__}")
    wave = wave.detach()
    if wave.device.type == "meta":
        raise AudioError(f"{source}: waveform is on the 'meta' device: it holds no samples (shape {list(wave.shape)})")
    if wave.layout != torch.strided:
        try:
            wave = wave.to_dense()
        except (RuntimeError, NotImplementedError) as exc:
            raise AudioError(f"{source}: waveform is a {wave.layout} tensor that cannot be made dense ({exc})") from exc
    if wave.dtype == torch.bool or wave.is_complex() or wave.is_quantized:
        raise AudioError(f"{source}: waveform must be real samples, found a tensor of {wave.dtype}")
    if wave.dtype in (torch.int64, torch.uint64):
        raise AudioError(
            f"{source}: waveform holds {wave.dtype} samples: no audio format has 64-bit integer PCM, so its scale "
            "is ambiguous (torch.tensor(list of ints) makes int64); convert it to int16, int32, or float in [-1, 1]"
        )
    if not 1 <= wave.dim() <= 3:
        raise AudioError(f"{source}: waveform must be [batch, channels, samples], found shape {list(wave.shape)}")
    while wave.dim() < 3:
        wave = wave.unsqueeze(0)
    if wave.shape[1] > MAX_CHANNELS:
        raise AudioError(
            f"{source}: waveform has {wave.shape[1]} channels, at most {MAX_CHANNELS} expected; "
            f"is it [batch, samples, channels] (shape {list(wave.shape)}) instead of [batch, channels, samples]?"
        )
    if wave.dtype.is_floating_point:
        wave = wave.to("cpu", torch.float32)
        peak = wave.nan_to_num(0.0, 0.0, 0.0).abs().amax().item() if wave.numel() else 0.0
        if peak > MAX_FLOAT_PEAK:
            raise AudioError(
                f"{source}: float waveform peaks at {peak:.6g}, far above 1: is it integer PCM cast to float? "
                "Divide it by 32768 (16-bit) or 2147483648 (32-bit), or pass the integer tensor itself"
            )
        return wave
    info = torch.iinfo(wave.dtype)
    half = (info.max - info.min + 1) / 2  # 32768 for int16, 128 for uint8
    middle = info.min + half  # 0 for signed types, 128 for uint8
    return ((wave.to("cpu", torch.float64) - middle) / half).float()


def _from_numpy(wave: np.ndarray, source: str) -> torch.Tensor:
    """A tensor of ``wave``: big-endian samples are byte-swapped, long double becomes float64."""
    if wave.dtype.kind not in "biuf":
        raise AudioError(f"{source}: waveform must hold numbers, found a NumPy array of {wave.dtype}")
    if wave.dtype.kind == "f" and wave.dtype.itemsize > 8:  # long double: torch has no such type
        wave = wave.astype(np.float64)
    wave = np.ascontiguousarray(wave, dtype=wave.dtype.newbyteorder("="))
    try:
        return torch.from_numpy(wave)
    except TypeError as exc:
        raise AudioError(f"{source}: waveform of NumPy {wave.dtype} cannot be read as samples ({exc})") from exc


def _as_rate(rate: object) -> int:
    """An integer sample rate from an int, a NumPy integer, a 0-d (or one-element) tensor, or an integral float."""
    found = f"{rate!r} ({type(rate).__name__})"
    if isinstance(rate, (torch.Tensor, np.ndarray)):
        if (rate.size if isinstance(rate, np.ndarray) else rate.numel()) != 1:
            raise AudioError(f"AUDIO sample_rate must be one number, found an array of shape {list(rate.shape)}")
        rate = rate.item()
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise AudioError(f"AUDIO sample_rate must be an integer (samples per second), found {found}")
    try:
        whole = isinstance(rate, (int, np.integer)) or (math.isfinite(float(rate)) and rate == int(rate))
    except (OverflowError, ValueError, TypeError):
        whole = False
    if not whole:
        raise AudioError(f"AUDIO sample_rate must be a whole number of samples per second, found {found}")
    if not MIN_RATE <= int(rate) <= MAX_RATE:
        shown = int(rate) if abs(int(rate)) < 10**12 else f"a {len(str(abs(int(rate))))}-digit number"
        raise AudioError(f"AUDIO sample_rate must be between {MIN_RATE} and {MAX_RATE} Hz, found {shown}")
    return int(rate)


def check_clip(clip: AudioClip) -> AudioClip:
    """Refuse audio no encoder can use, naming the source and what was wrong."""
    wave = clip.waveform
    if not isinstance(wave, torch.Tensor) or wave.dim() != 3:
        shape = list(wave.shape) if isinstance(wave, torch.Tensor) else type(wave).__name__
        raise AudioError(f"{clip.source}: waveform must be [batch, channels, samples], found {shape}")
    if clip.sample_rate <= 0:
        raise AudioError(f"{clip.source}: sample rate must be positive, found {clip.sample_rate}")
    if wave.numel() == 0:
        raise AudioError(f"{clip.source}: audio is empty (shape {list(wave.shape)})")
    if not torch.isfinite(wave).all():
        raise AudioError(f"{clip.source}: waveform contains NaN or infinite samples")
    if wave.shape[-1] < math.floor(MIN_SECONDS * clip.sample_rate):  # 0.5 s at 11025 Hz is 5512 samples
        raise AudioError(f"{clip.source}: audio is {clip.duration:.3f} s long, at least {MIN_SECONDS} s is needed")
    peak = wave.abs().amax().item()
    if peak < SILENCE_PEAK:
        raise AudioError(f"{clip.source}: audio is silent (peak amplitude {peak:.2g} < {SILENCE_PEAK:g})")
    return replace(clip, waveform=wave.float())


@dataclass(frozen=True)
class AudioInfo:
    """What the container says: ``duration`` (s, NaN when unknown) is its header's, an estimate when
    ``estimated`` (raw MP3 and ADTS AAC); :func:`decoded_duration` counts the samples instead."""

    path: str
    duration: float
    sample_rate: int
    channels: int
    codec: str
    estimated: bool = False


def _open(
    path: str | os.PathLike, link: tuple[int, int] | None = None
) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
    """The container (or only the bytes ``link`` of it) and its first audio stream. Tags in any encoding are
    kept as undecoded bytes (``surrogateescape``): metadata never stops decoding (see :func:`container_tags`)."""
    path = str(path)
    if not Path(path).is_file():
        raise AudioError(f"{path}: no such file")
    if Path(path).stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    source = path if link is None else _Slice(path, *link)
    try:
        container = av.open(source, metadata_errors="surrogateescape")
    except av.FFmpegError as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from exc
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{path}: file has no audio stream")
    return container, container.streams.audio[0]


class _Slice(io.RawIOBase):
    """Bytes ``start`` to ``end`` of a file, as a file of their own (one link of a chained Ogg file)."""

    def __init__(self, path: str, start: int, end: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 -- closed with the slice
        self._start, self._size, self._pos = start, end - start, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._file.seek(self._start + self._pos)
        data = self._file.read(max(0, min(len(buffer), self._size - self._pos)))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._file.close()
        super().close()


def _ogg_links(path: str | os.PathLike) -> list[tuple[int, int] | None]:
    """Byte ranges of the links of a chained Ogg file (streams written one after another, as stream rips and
    joiners make them), or ``[None]`` for any other file: FFmpeg stops where a link changes rate or channels.
    A link starts with beginning-of-stream pages; the page headers are read, the packets skipped."""
    if not Path(path).is_file():
        return [None]  # `_open` says what is wrong
    size = os.path.getsize(path)
    starts: list[int] = []
    with open(path, "rb") as file:
        offset, previous_bos = 0, False
        while True:
            file.seek(offset)
            header = file.read(27)
            if len(header) < 27 or header[:4] != b"OggS":
                break
            bos = bool(header[5] & 2)
            if bos and not previous_bos:
                starts.append(offset)
            previous_bos = bos
            offset += 27 + header[26] + sum(file.read(header[26]))
    if len(starts) <= 1:
        return [None]
    return list(zip(starts, [*starts[1:], size], strict=True))


def probe(path: str | os.PathLike) -> AudioInfo:
    """Duration (NaN when the container does not say), rate, channels and codec from the container, without
    decoding."""
    container, stream = _open(path)
    with container:
        if len(_ogg_links(path)) > 1:  # each link counts from zero: the container's length is one link's
            duration = math.nan
        elif stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = math.nan
        estimated = container.format.name in _ESTIMATED_TIMELINE
        return AudioInfo(str(path), duration, stream.rate, stream.channels, stream.codec_context.name, estimated)


def decoded_duration(path: str | os.PathLike) -> float:
    """The file's length in seconds by the samples decoded (at its first block's rate), not by its header:
    joined files and variable-bitrate MP3s can be minutes off what :func:`probe` says. Reads the whole file."""
    total = 0.0
    for _, data, rate in _frames(path):
        total += data.shape[-1] / rate
    if not total:
        raise AudioError(f"{path}: no decodable audio")
    return total


def _timeline_estimated(path: str | os.PathLike) -> bool:
    container, _ = _open(path)
    with container:
        return container.format.name in _ESTIMATED_TIMELINE


def container_tags(path: str | os.PathLike, decode: Callable[[list[bytes]], list[str]] | None = None) -> dict[str, str]:
    """The tags FFmpeg reads from the container and its audio stream (RIFF INFO, ID3v1/v2, APEv2, Vorbis
    comments, MP4 atoms), keys in lower case. FFmpeg passes on the bytes of text that is not UTF-8 as they are:
    ``decode`` reads the bytes of all the values at once; by default each is read as UTF-8, else as
    Windows-1252, the encoding RIFF INFO and ID3v1 tags are usually written in."""
    container, stream = _open(path)
    with container:
        tags = {**container.metadata, **stream.metadata}
    raw = {key.lower(): value.encode("utf-8", "surrogateescape") for key, value in tags.items() if value.strip()}
    return dict(zip(raw, (decode or _texts)(list(raw.values())), strict=True))


def _texts(raws: list[bytes]) -> list[str]:
    texts = []
    for raw in raws:
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(raw.decode("cp1252", "replace"))
    return texts


class _Unreliable(Exception):
    """After a seek, the stream's timestamps do not say where decoding is: there are none, or they jump."""


def _frames(path: str | os.PathLike, start: float = 0.0) -> Iterator[tuple[float, np.ndarray, int]]:
    """Decoded blocks as (start time in s, float32 [C, n], rate), beginning at or before ``start``.

    Every block has the same rate and channel layout, its first block's, whatever the
    blocks in the file have (joined files, chained Ogg links change both). Positions count the samples
    decoded from the first one. To begin at ``start`` > 0 the file is sought and the timestamp of the first
    block says where decoding landed; seeking lands on a packet boundary that some codecs (Vorbis, Opus) place
    after the target, so it aims a little early, then further back. When the timestamps are missing or jump
    (files joined byte for byte restart them) it raises ``_Unreliable``: the caller decodes from the start."""
    for margin in (1.0, 10.0, math.inf):
        blocks = _frames_from(path, max(0.0, start - margin))
        first = next(blocks, None)
        if first is None:
            return
        if first[0] <= start + 1e-3 or margin == math.inf:
            yield first
            yield from blocks
            return
        blocks.close()


def _frames_from(path: str | os.PathLike, seek_to: float) -> Iterator[tuple[float, np.ndarray, int]]:
    links = _ogg_links(path)
    seek_to = seek_to if len(links) == 1 else 0.0  # a chained file's timestamps restart in every link
    rate, layout, position = None, None, 0.0
    resampler, source, decoded, error = None, None, False, None
    for link in links:
        container, stream = _open(path, link)
        with container:
            frames = _decoded(container, stream)
            if rate is None:  # the first block's rate and layout, which the stream's header may not give
                rate, layout, head = _first_format(frames)
                frames = itertools.chain(head, frames)
            seeked = seek_to > 0 and _seek(container, stream, seek_to)
            if seek_to > 0:  # read again from where the seek landed (or, when it failed, from the start)
                frames = _decoded(container, stream)
            landed = False
            for frame in frames:
                if isinstance(frame, av.FFmpegError):
                    error = error or frame
                    continue
                if seeked:  # where decoding is, by the timestamps, relative to the stream's first sample
                    if frame.pts is None or stream.time_base is None:
                        raise _Unreliable
                    at = float((frame.pts - (stream.start_time or 0)) * stream.time_base)
                    if landed and abs(at - position) > _TIMESTAMP_SLACK:
                        raise _Unreliable
                    position, landed = (position, True) if landed else (at, True)
                rate, layout = rate or frame.sample_rate, layout or frame.layout
                key = (frame.format.name, frame.layout.name, frame.sample_rate)
                if key != source:  # the stream changed: finish the old conversion, start a new one
                    for data in _converted(path, resampler, None):
                        yield position, data, rate
                        position += data.shape[-1] / rate
                    resampler, source = av.AudioResampler(format="flt", layout=layout, rate=rate), key
                for data in _converted(path, resampler, frame):
                    decoded = True
                    yield position, data, rate
                    position += data.shape[-1] / rate
        if isinstance(container.file, _Slice):  # PyAV leaves a file object it was given open
            container.file.close()
    for data in _converted(path, resampler, None):
        yield position, data, rate
        position += data.shape[-1] / rate
    if not decoded and error is not None:
        raise AudioError(f"{path}: audio data is corrupt or truncated ({error})")


def _first_format(frames: Iterator) -> tuple[int | None, av.AudioLayout | None, list]:
    """Rate and layout of the first real block (a few samples left over from the encoder delay may carry the
    header's rate instead), and the frames read to find it."""
    head = []
    for frame in frames:
        head.append(frame)
        if not isinstance(frame, av.FFmpegError) and frame.samples >= _STUB_SAMPLES:
            return frame.sample_rate, frame.layout, head
    real = [f for f in head if not isinstance(f, av.FFmpegError)]
    return (real[0].sample_rate, real[0].layout, head) if real else (None, None, head)


def _seek(container: av.container.InputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> bool:
    if stream.time_base is None:
        return False
    try:
        container.seek(int(seconds / stream.time_base) + (stream.start_time or 0), stream=stream)
    except av.FFmpegError:
        container.seek(0)
        return False
    return True


def _decoded(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> Iterator:
    """The stream's frames in file order; a packet that does not decode (the joint of two files, a damaged
    frame) is skipped and its error yielded in its place, as FFmpeg's own tools do."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as exc:  # damage the demuxer cannot step over: the audio ends here
            yield exc
            break
        try:
            yield from packet.decode()
        except av.FFmpegError as exc:
            yield exc


def _converted(path: str | os.PathLike, resampler: av.AudioResampler | None, frame) -> list[np.ndarray]:
    """``frame`` (None: what the resampler still holds) as float32 ``[C, n]`` arrays."""
    if resampler is None:
        return []
    try:
        frames = resampler.resample(frame)
    except (av.FFmpegError, ValueError) as exc:
        raise AudioError(f"{path}: cannot convert the decoded audio ({exc})") from exc
    return [_planar(f) for f in frames if f.samples]


def _planar(frame: av.AudioFrame) -> np.ndarray:
    """A packed ``flt`` frame as float32 ``[C, n]``. Packed, not planar: PyAV's ``to_ndarray`` of a planar
    frame with 8 or more channels crashes or returns extra rows."""
    channels = frame.layout.nb_channels
    return frame.to_ndarray().reshape(frame.samples, channels).T.astype(np.float32)


def decode(path: str | os.PathLike, offset: float = 0.0, duration: float | None = None) -> AudioClip:
    """Decode ``duration`` seconds from ``offset`` (to the end if None), all channels, at the stream's rate
    (a stream that changes rate or channels part way is converted to its first ones)."""
    if not offset >= 0:
        raise AudioError(f"{path}: offset must be >= 0 s, found {offset}")
    if offset > 0 and _timeline_estimated(path):  # its seeks land by the bitrate, not on the samples counted
        return _decode(path, offset, duration, seek=False)
    try:
        return _decode(path, offset, duration, seek=True)
    except _Unreliable:  # the seek cannot be trusted: count the samples from the first one
        return _decode(path, offset, duration, seek=False)


def _decode(path: str | os.PathLike, offset: float, duration: float | None, seek: bool) -> AudioClip:
    chunks: list[np.ndarray] = []
    rate, end = 0, 0.0
    stop = math.inf if duration is None else offset + duration
    for position, data, rate in _frames(path, offset if seek else 0.0):
        end = position + data.shape[-1] / rate
        if end <= offset:
            continue
        if position >= stop:
            break
        first = max(0, round((offset - position) * rate))
        last = data.shape[-1] if end <= stop else round((stop - position) * rate)
        chunks.append(data[:, first:last])
    if not chunks and offset > 0 and seek:
        raise _Unreliable  # the seek may have landed in a part whose timestamps restarted
    if not chunks:  # counted from the start, so ``end`` is the decoded length, not the header's
        said = f"file is {end:.2f} s long" if end else "no audio there"
        raise AudioError(f"{path}: no audio at offset {offset:.2f} s ({said})")
    wave = np.concatenate(chunks, axis=-1)
    return AudioClip(torch.from_numpy(np.ascontiguousarray(wave))[None], rate, offset, str(path))


def decode_windows(path: str | os.PathLike, offsets: list[float], duration: float) -> list[AudioClip]:
    """``duration`` s from each of ``offsets`` (s, ascending), by the samples counted from the start, in one
    pass over the file (windows past the end are left out)."""
    chunks: list[list[np.ndarray]] = [[] for _ in offsets]
    rate = 0
    for position, data, rate in _frames(path):
        end = position + data.shape[-1] / rate
        if offsets and position >= offsets[-1] + duration:
            break
        for i, offset in enumerate(offsets):
            if end > offset and position < offset + duration:
                first = max(0, round((offset - position) * rate))
                last = data.shape[-1] if end <= offset + duration else round((offset + duration - position) * rate)
                chunks[i].append(data[:, first:last])
    return [
        AudioClip(torch.from_numpy(np.concatenate(parts, axis=-1))[None], rate, offset, str(path))
        for offset, parts in zip(offsets, chunks, strict=True)
        if parts
    ]


def _mel() -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(_ANALYSIS_RATE, n_fft=1024, hop_length=500, n_mels=32)


def second_features(path: str | os.PathLike, block_seconds: int = 60) -> torch.Tensor:
    """One feature vector per second of the file ``[seconds, 33]`` (32 log-mel bands, then loudness in dB),
    read as a stream and analysed ``block_seconds`` at a time, so memory stays small for any length. A last
    partial second of at least :data:`MIN_SECONDS` gets its own row."""
    mel = _mel()
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
    if rate and (count >= MIN_SECONDS * rate or (not rows and count)):
        rows.append(_block_features(torch.from_numpy(np.concatenate(pending)), rate, mel))
    if not rows:
        raise AudioError(f"{path}: no decodable audio")
    return torch.cat(rows)


def _block_features(wave: torch.Tensor, rate: int, mel: torchaudio.transforms.MelSpectrogram) -> torch.Tensor:
    """Features of each whole second of mono ``wave`` ``[T]``, and of a last partial second when it lasts at
    least :data:`MIN_SECONDS` (or is all there is and long enough for one spectrum frame)."""
    wave = torchaudio.functional.resample(wave, rate, _ANALYSIS_RATE) if rate != _ANALYSIS_RATE else wave
    whole = wave.shape[0] // _ANALYSIS_RATE
    parts = [wave[: whole * _ANALYSIS_RATE].reshape(whole, _ANALYSIS_RATE)] if whole else []
    rest = wave[whole * _ANALYSIS_RATE :]
    if rest.shape[0] >= MIN_SECONDS * _ANALYSIS_RATE or (not whole and rest.shape[0] > mel.n_fft):
        parts.append(rest[None])
    if not parts:
        raise AudioError(f"audio of {wave.shape[0] / _ANALYSIS_RATE:.3f} s is too short to analyse")
    return torch.cat([_features(part, mel) for part in parts])


def _features(seconds: torch.Tensor, mel: torchaudio.transforms.MelSpectrogram) -> torch.Tensor:
    bands = torch.log10(mel(seconds).mean(dim=-1) + 1e-10) * 10
    loudness = 10 * torch.log10(seconds.pow(2).mean(dim=-1, keepdim=True) + 1e-10)
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
    features = _block_features(clip.waveform.mean(dim=(0, 1)), clip.sample_rate, _mel())
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
