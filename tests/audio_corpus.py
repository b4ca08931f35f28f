"""Audio files made the way they arise in the wild, for the bad-input tests: every container the pack reads
with the codecs, sample formats (packed and planar, 8 to 32-bit integer and float), rates and channel layouts
its encoders take, tags in several text encodings and tag formats, and files joined byte for byte.

Everything is written with PyAV (and mutagen for tags), in the test's temporary folder. The signal is a
tone whose level steps up every second over a little noise, so lossy codecs have something to code and
no stretch of it is silent.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# extension -> container format and {codec: (input sample formats, rates, layouts)}; `None` rates: any.
ANY_RATE = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000)
LAYOUTS = ("mono", "stereo", "5.1")
CODECS: dict[str, tuple[str, dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]]]] = {
    "wav": (
        "wav",
        {
            "pcm_u8": (("u8",), ANY_RATE, LAYOUTS),
            "pcm_s16le": (("s16",), ANY_RATE, LAYOUTS),
            "pcm_s24le": (("s32",), ANY_RATE, LAYOUTS),
            "pcm_s32le": (("s32",), ANY_RATE, LAYOUTS),
            "pcm_f32le": (("flt",), ANY_RATE, LAYOUTS),
            "pcm_f64le": (("dbl",), ANY_RATE, LAYOUTS),
        },
    ),
    "mp3": ("mp3", {"libmp3lame": (("s16p", "s32p", "fltp"), ANY_RATE[:7], ("mono", "stereo"))}),
    "flac": ("flac", {"flac": (("s16", "s32"), ANY_RATE, LAYOUTS)}),
    "ogg": ("ogg", {"vorbis": (("fltp",), ANY_RATE, ("stereo",)), "flac": (("s16",), ANY_RATE, LAYOUTS)}),
    "opus": ("ogg", {"libopus": (("s16", "flt"), (8000, 12000, 16000, 24000, 48000), LAYOUTS)}),
    "aac": ("adts", {"aac": (("fltp",), (8000, 16000, 22050, 44100, 48000), ("mono", "stereo"))}),
    "m4a": (
        "ipod",
        {
            "aac": (("fltp",), (8000, 16000, 22050, 44100, 48000, 96000), LAYOUTS),
            "alac": (("s16p", "s32p"), ANY_RATE, ("mono", "stereo")),
        },
    ),
}
# Samples one packet of each codec holds at most: decoded lengths may differ from the written by this much.
FRAME_SAMPLES = {"libmp3lame": 1152, "vorbis": 2048, "libopus": 960 * 6, "aac": 1024, "alac": 4096, "flac": 4608}

TAG_VALUES = {"artist": "Beyoncé Ñandú", "album": "Café Ümlaut", "genre": "Jazz", "date": "1999", "title": "Été"}


@dataclass(frozen=True)
class Spec:
    """One file to write: ``ext`` decides the container, ``codec`` and ``sample_fmt`` what is encoded."""

    ext: str
    codec: str
    sample_fmt: str
    rate: int
    layout: str
    seconds: float

    @property
    def frame_seconds(self) -> float:
        """How far a decoded length may be from ``seconds``: one packet of the codec (PCM: one sample)."""
        frames = 2 if self.ext == "aac" else 1  # ADTS has no header to trim the encoder's priming and padding
        return frames * FRAME_SAMPLES.get(self.codec, 1) / self.rate + 1e-3


def signal(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """``[channels, samples]`` float32: a 440 Hz tone over noise, 0.2-0.6 loud and stepping every second."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    level = 0.2 + 0.1 * (np.floor(t) % 5)
    noise = np.random.default_rng(seed).standard_normal((channels, n)) * 0.02
    tone = np.sin(2 * np.pi * 440.0 * t)
    return (level * tone * np.linspace(1.0, 0.8, channels)[:, None] + noise).astype(np.float32)


def _samples(wave: np.ndarray, fmt: str) -> np.ndarray:
    """``wave`` [C, n] in the array layout ``AudioFrame.from_ndarray`` takes for ``fmt``."""
    base = fmt.rstrip("p")
    if base == "u8":
        data = np.clip(np.round(wave * 127 + 128), 0, 255).astype(np.uint8)
    elif base == "s16":
        data = np.round(wave * 32767).astype(np.int16)
    elif base == "s32":
        data = np.round(wave.astype(np.float64) * 2147483647).astype(np.int32)
    elif base == "dbl":
        data = wave.astype(np.float64)
    else:
        data = wave.astype(np.float32)
    return np.ascontiguousarray(data if fmt.endswith("p") else data.T.reshape(1, -1))


def write(
    path: Path,
    spec: Spec,
    *,
    wave: np.ndarray | None = None,
    metadata: dict[str, str] | None = None,
    metadata_encoding: str = "utf-8",
    bit_rate: int | None = None,
) -> Path:
    """Encode ``spec`` (or ``wave`` [C, n] at its rate and layout) to ``path``; ``metadata`` becomes the
    container's own tags (RIFF INFO in WAV, ID3v2 in mp3, Vorbis comments, MP4 atoms) in
    ``metadata_encoding``."""
    fmt, _ = CODECS[spec.ext]
    channels = av.AudioLayout(spec.layout).nb_channels
    wave = signal(spec.seconds, spec.rate, channels) if wave is None else wave
    with av.open(str(path), "w", format=fmt, metadata_encoding=metadata_encoding) as out:
        out.metadata.update(metadata or {})
        stream = out.add_stream(spec.codec, rate=spec.rate, layout=spec.layout)
        stream.format = spec.sample_fmt
        if bit_rate:
            stream.bit_rate = bit_rate
        if spec.codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        step = stream.codec_context.frame_size or 1024
        for start in range(0, wave.shape[1], step):
            block = _samples(wave[:, start : start + step], spec.sample_fmt)
            frame = av.AudioFrame.from_ndarray(block, format=spec.sample_fmt, layout=spec.layout)
            frame.sample_rate = spec.rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def join(path: Path, *parts: Path) -> Path:
    """The parts' bytes one after another, as mp3 joiners and Ogg stream rips make them."""
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


# --- tags written byte for byte where no library writes them any more -----------------------------------


def id3v1(
    title: str = "", artist: str = "", album: str = "", year: str = "", genre: int = 255, encoding: str = "latin-1"
) -> bytes:
    """An ID3v1.1 tag (the 128 bytes at a file's end), text in Latin-1 as most taggers wrote it, or in the 8-bit
    ``encoding`` of the tagger's system."""

    def field(text: str, size: int) -> bytes:
        return text.encode(encoding, "replace")[:size].ljust(size, b"\0")

    body = field(title, 30) + field(artist, 30) + field(album, 30) + field(year, 4) + field("", 28)
    return b"TAG" + body + b"\0\1" + bytes([genre])


def apev2(fields: dict[str, str], encoding: str = "utf-8") -> bytes:
    """An APEv2 tag (header, text items, footer; the file's end, before any ID3v1 tag), its text UTF-8 as the
    format says, or in the 8-bit ``encoding`` of the tagger's system (which mutagen does not write)."""
    items = b"".join(
        len(value).to_bytes(4, "little") + bytes(4) + key.encode("ascii") + b"\0" + value
        for key, value in ((key, text.encode(encoding)) for key, text in fields.items())
    )

    def frame(flags: int) -> bytes:
        sizes = [2000, len(items) + 32, len(fields), flags]
        return b"APETAGEX" + b"".join(n.to_bytes(4, "little") for n in sizes) + bytes(8)

    return frame(0xA0000000) + items + frame(0x80000000)  # flags: has a header; this is the header / the footer


def id3v22(frames: dict[str, str]) -> bytes:
    """An ID3v2.2 tag (three-letter frames: TT2, TP1, TAL, TCO, TYE), text as UTF-16 with BOM."""
    body = b""
    for frame_id, text in frames.items():
        data = b"\x01" + text.encode("utf-16")
        body += frame_id.encode() + len(data).to_bytes(3, "big") + data
    return b"ID3\x02\x00\x00" + _syncsafe(len(body)) + body


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def riff_info(path: Path, fields: dict[str, str], encoding: str) -> Path:
    """Append a LIST/INFO chunk (IART, IPRD, IGNR, ICRD, INAM) in ``encoding`` to a WAV and fix its size."""
    ids = {"artist": b"IART", "album": b"IPRD", "genre": b"IGNR", "date": b"ICRD", "title": b"INAM"}
    body = b"INFO"
    for key, text in fields.items():
        data = (text + "\0").encode(encoding, "replace")  # "utf-16": a byte-order mark and a 2-byte NUL
        body += ids[key] + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    data = bytearray(path.read_bytes()) + b"LIST" + struct.pack("<I", len(body)) + body
    data[4:8] = struct.pack("<I", len(data) - 8)
    path.write_bytes(bytes(data))
    return path
