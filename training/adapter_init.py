"""Data-dependent initialisation of the music adapter's input projection (``nopaingan train --adapter-init data``).

Music encoders' hidden states vary mostly *within* a song, frame by frame (positions, beats, notes), and carry
large constant offsets and unequal scales (MusicGen's residual stream is unnormalised), while what a cover can
follow is what differs *between* songs. Before training, the features' mean is removed and their within-song
covariance whitened (Fukunaga's "whitening of the within-class scatter" step of linear discriminant analysis,
with each song as its own class and no labels): directions that change from frame to frame are scaled down to
unit variance, and directions in which songs differ from one another keep their extra spread, so the fresh
adapter sees the song-level differences first. A ridge of ``WHITEN_RIDGE`` times each dimension's total
variance keeps degenerate cases sane (one frame per song gives per-dimension standardisation), and the result
is scaled so the frames' mean variance per dimension is 1, as with plain standardisation. The transform is
folded into the adapter's first linear layer, so the checkpoint format is unchanged and training adjusts it
like any other weight. Measured on the learnability benchmark (BENCHMARKS.md, "Training").
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from nopaingan_core.checkpoint import FusionModel

STATS_ALBUMS = 256  # training albums the statistics are taken from
WHITEN_RIDGE = 0.01  # times each dimension's total variance, added to the within-song covariance


@torch.no_grad()
def within_song_whitening(
    songs: Iterable[torch.Tensor], ridge: float = WHITEN_RIDGE
) -> tuple[torch.Tensor, torch.Tensor]:
    """``songs``: each ``[T_i, D]`` frames of one song (any T_i >= 1). Returns ``(mean [D], transform [D, D])``
    in float64 such that ``(x - mean) @ transform.T`` has a within-song covariance close to a multiple of the
    identity and a mean variance of 1 per dimension over all frames. Raises ValueError for no frames."""
    total = outer = song_outer = frames = 0  # sums over every frame, and each song's length x its mean's outer
    for music in songs:
        music = music.double()
        song = music.mean(dim=0)
        total = total + music.sum(dim=0)
        outer = outer + music.T @ music
        song_outer = song_outer + music.shape[0] * torch.outer(song, song)
        frames += music.shape[0]
    if not frames:
        raise ValueError("no music frames to take the adapter's statistics from")
    mean = total / frames
    cov_total = outer / frames - torch.outer(mean, mean)
    cov_within = (outer - song_outer) / frames
    variance = cov_total.diagonal().clamp_min(0)
    variance = variance.clamp_min(1e-7 * variance.mean().item() + 1e-30)  # constant dimensions: no division by 0
    values, vectors = torch.linalg.eigh(cov_within + ridge * torch.diag(variance))
    transform = vectors @ torch.diag(values.clamp_min(1e-12).rsqrt()) @ vectors.T
    spread = (transform @ cov_total @ transform.T).diagonal().mean().clamp_min(1e-12)
    return mean, transform / spread.sqrt()


@torch.no_grad()
def whiten_adapter_input(fusion: FusionModel, songs: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fold :func:`within_song_whitening` of ``songs`` (``[T_i, D]`` each) into ``fusion.adapter.proj``: the
    fresh adapter then computes its first layer on whitened features. Returns ``{"mean", "transform"}``."""
    mean, transform = within_song_whitening(songs)
    proj = fusion.adapter.proj
    weight = proj.weight.double() @ transform
    proj.bias.copy_(proj.bias.double() - weight @ mean)
    proj.weight.copy_(weight)
    return {"mean": mean.float(), "transform": transform.float()}
