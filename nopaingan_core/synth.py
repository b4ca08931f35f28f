"""Synthetic songs (chords, bass and a beat) for the offline demo, tests and the learnability benchmark,
where no real music can be downloaded. Tempo and key are parameters, so a song's sound carries
properties that its album prompt does not."""

from __future__ import annotations

import math

import torch

from .audio import AudioClip

MAJOR = (0, 4, 7)
MINOR = (0, 3, 7)


def synth_song(
    seconds: float = 8.0,
    sample_rate: int = 32000,
    tempo: float = 110.0,
    root_hz: float = 220.0,
    mode: tuple[int, ...] | None = MAJOR,
    seed: int = 0,
) -> AudioClip:
    """A stereo loop: I-V-vi-IV triads on ``root_hz``, a bass line, and a kick and hi-hat at ``tempo``."""
    gen = torch.Generator().manual_seed(seed)
    n = round(seconds * sample_rate)
    t = torch.arange(n) / sample_rate
    beat = 60.0 / tempo
    bar = 4 * beat
    progression = (0, 7, 9, 5)
    chord_index = (t // bar).long() % len(progression)
    degree = torch.tensor(progression)[chord_index].float()
    wave = torch.zeros(n)
    for interval in mode or MAJOR:
        freq = root_hz * 2 ** ((degree + interval) / 12)
        phase = 2 * math.pi * torch.cumsum(freq, 0) / sample_rate
        wave += 0.12 * torch.sin(phase) + 0.04 * torch.sin(2 * phase)
    bass = root_hz / 2 * 2 ** (degree / 12)
    wave += 0.2 * torch.sin(2 * math.pi * torch.cumsum(bass, 0) / sample_rate)
    in_beat = torch.remainder(t, beat)
    wave += 0.5 * torch.sin(2 * math.pi * 55 * in_beat) * torch.exp(-in_beat * 25)  # kick
    off = torch.remainder(t + beat / 2, beat)
    hat = torch.randn(n, generator=gen) * torch.exp(-off * 80)
    wave += 0.05 * hat
    wave = wave / wave.abs().max() * 0.8
    stereo = torch.stack([wave, torch.roll(wave, 64)])[None]
    return AudioClip(stereo.float(), sample_rate, 0.0, f"<synth {tempo:g} bpm {root_hz:g} Hz>")
