"""Tempo from the signal: onset strength (spectral flux of a log-mel spectrogram) and its autocorrelation.

The beat period is the lag at which the onset envelope best matches itself. Several windows of a song
add their autocorrelations, so the estimate reflects the whole song, not its intro. Like every
autocorrelation method it can land on half or double the felt tempo (an octave error); a log-normal
preference around 120 BPM picks the likelier of the two, as most beat trackers do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchaudio

from .audio import AudioClip, as_clip

ANALYSIS_RATE = 16000
HOP = 160  # 100 onset frames per second
FRAME_RATE = ANALYSIS_RATE / HOP
MIN_BPM = 30.0
MAX_BPM = 300.0
PRIOR_BPM = 120.0
PRIOR_OCTAVES = 1.0  # width of the tempo preference, in octaves (standard deviation of log2(bpm / 120))
MIN_PERIODICITY = 0.15  # normalised autocorrelation at the beat below which there is no beat (noise: ~0.1)

_mel = torchaudio.transforms.MelSpectrogram(ANALYSIS_RATE, n_fft=1024, hop_length=HOP, n_mels=64)


def onset_envelope(clip: AudioClip) -> torch.Tensor:
    """Onset strength per frame at :data:`FRAME_RATE`: the mean rise of log-mel energy (first item, mono)."""
    wave = clip.mono().resample(ANALYSIS_RATE).waveform[0, 0]
    power_db = 10 * torch.log10(_mel(wave) + 1e-10)
    power_db = power_db.clamp(min=power_db.max() - 80.0)  # ignore what lies far below the music
    return torch.relu(power_db.diff(dim=-1)).mean(dim=0)


def autocorrelation(envelope: torch.Tensor, max_lag: int) -> torch.Tensor:
    """Autocorrelation of the mean-removed envelope for lags ``0..max_lag``, each lag averaged over its
    overlap (so long lags are not penalised) and divided by lag 0. Lags longer than half the envelope
    (fewer than two periods heard) and a flat envelope give zero."""
    x = envelope - envelope.mean()
    n = x.shape[0]
    size = 1 << (2 * n - 1).bit_length()
    spectrum = torch.fft.rfft(x, size)
    acf = torch.fft.irfft(spectrum * spectrum.conj(), size)[: min(max_lag, n // 2) + 1]
    acf = acf / torch.arange(n, n - acf.shape[0], -1)
    if acf[0] <= 1e-12:
        return torch.zeros(max_lag + 1)
    return torch.nn.functional.pad(acf / acf[0], (0, max_lag + 1 - acf.shape[0]))


def estimate_tempo(
    audio: AudioClip | dict | torch.Tensor | Sequence[AudioClip], sample_rate: int | None = None
) -> float | None:
    """Beats per minute of a clip (a tensor needs its ``sample_rate``), or of several windows of one song
    together; None when nothing repeats (silence, a steady tone, noise)."""
    clips = list(audio) if isinstance(audio, Sequence) else [as_clip(audio, sample_rate)]
    min_lag, max_lag = math.ceil(FRAME_RATE * 60.0 / MAX_BPM), round(FRAME_RATE * 60.0 / MIN_BPM)
    acf = sum(autocorrelation(onset_envelope(clip), max_lag) for clip in clips) / len(clips)
    lags = torch.arange(min_lag, max_lag, dtype=torch.float32)  # the last lag is left as a neighbour
    prior = torch.exp(-0.5 * (torch.log2(60.0 * FRAME_RATE / lags / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    best = min_lag + int(torch.argmax(acf[min_lag:max_lag] * prior))
    if acf[best] < MIN_PERIODICITY:
        return None
    # parabolic interpolation between neighbouring lags for a sub-frame period
    left, mid, right = acf[best - 1], acf[best], acf[best + 1]
    curve = float(left - 2 * mid + right)
    shift = 0.5 * float(left - right) / curve if curve < 0 else 0.0
    return 60.0 * FRAME_RATE / (best + shift)
