"""Real audio files for tests, written with PyAV in every format the pack reads."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

# extension -> (container format, codec, sample rate)
FORMATS = {
    "wav": ("wav", "pcm_s16le", 44100),
    "mp3": ("mp3", "libmp3lame", 44100),
    "flac": ("flac", "flac", 44100),
    "ogg": ("ogg", "libvorbis", 44100),
    "opus": ("ogg", "libopus", 48000),
    "m4a": ("ipod", "aac", 44100),
}


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 2, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * freq * t)
    return np.stack([wave * (1.0 - 0.2 * c) for c in range(channels)]).astype(np.float32)


def write_audio(path: Path, wave: np.ndarray, rate: int, codec: str | None = None, fmt: str | None = None) -> Path:
    """Encode ``wave`` ([C, T] float32) to ``path``; codec and container follow the extension."""
    ext = path.suffix.lstrip(".")
    default_fmt, default_codec, _ = FORMATS[ext]
    fmt, codec = fmt or default_fmt, codec or default_codec
    if codec == "libvorbis" and "libvorbis" not in av.codecs_available:
        codec = "vorbis"
    layout = "mono" if wave.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        frame_size = stream.codec_context.frame_size or 1024
        fmt_name = stream.codec_context.format.name if stream.codec_context.format else "fltp"
        for start in range(0, wave.shape[1], frame_size):
            block = np.ascontiguousarray(wave[:, start : start + frame_size])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            resampler = av.AudioResampler(format=fmt_name, layout=layout, rate=rate)
            for rframe in resampler.resample(frame):
                for packet in stream.encode(rframe):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
