"""The train/eval split: deterministic and grouped by artist, so evaluation never hears an artist the model
was trained on (an artist's covers share one style, which would flatter FID and MSE)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from .cleaning import artist_key
from .errors import DatasetError

TRAIN = "train"
EVAL = "eval"
EVAL_FRACTION = 0.3  # the seed's 3429 train / 1470 eval of 4899 albums


def assign_splits(
    artists: Sequence[str],
    eval_fraction: float = EVAL_FRACTION,
    seed: int = 0,
    *,
    kept: Sequence[tuple[str, str]] = (),
    earlier: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """``"train"`` or ``"eval"`` for each album, given its artist.

    Artists are put in an order fixed by a hash of ``seed`` and their normalised name, then each artist's
    albums go to eval while that keeps eval at or under ``round(eval_fraction * albums)`` albums.
    The result depends only on the set of artists and album counts, not on the order rows come in, and
    with many artists the eval share is exactly the one asked for (4899 albums at 0.3 give 3429/1470).

    Albums added to a dataset: ``kept`` lists the (artist, split) of the albums that stay in it beside these,
    ``earlier`` those of earlier versions of these albums (which they replace). An artist of either keeps the
    side it has there (its first album's, should its albums be on both), so an album trained on never moves to
    eval and no artist gets onto both sides; the kept albums count among the ``albums`` above, so the other
    artists fill eval up to the share of the whole dataset. Without either this is the split of a new dataset.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise DatasetError(f"eval fraction must be at least 0 and below 1, found {eval_fraction}")
    keys = [artist_key(a) for a in artists]
    sides: dict[str, str] = {}
    for artist, side in [*kept, *earlier]:
        sides.setdefault(artist_key(artist), side)
    sizes = Counter(key for key in keys if key not in sides)
    target = round(eval_fraction * (len(kept) + len(keys)))
    taken = sum(side == EVAL for _, side in kept) + sum(sides.get(key) == EVAL for key in keys)
    order = sorted(sizes, key=lambda k: (hashlib.sha256(f"{seed}\x1f{k}".encode()).digest(), k))
    eval_artists = {key for key, side in sides.items() if side == EVAL}
    for key in order:
        if taken + sizes[key] <= target:
            eval_artists.add(key)
            taken += sizes[key]
    return [EVAL if key in eval_artists else TRAIN for key in keys]
