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


Artist = str | Sequence[str]  # an album's artist, or every name it goes by (the list's, the catalogue's)


def assign_splits(
    artists: Sequence[Artist],
    eval_fraction: float = EVAL_FRACTION,
    seed: int = 0,
    *,
    kept: Sequence[tuple[Artist, str]] = (),
    earlier: Sequence[tuple[Artist, str]] = (),
) -> list[str]:
    """``"train"`` or ``"eval"`` for each album, given its artist.

    An album's artist is a name, or several names of one artist (``dataset fetch`` gives the list's and the
    catalogue's): albums sharing a normalised name are one artist's, so an artist spelt two ways (``Daft Punk
    feat. Romanthony`` and ``DAFT-PUNK``, both ``Daft Punk`` in the catalogue) is on one side. Artists are put
    in an order fixed by a hash of ``seed`` and their normalised name (the first of their names in sorted order),
    then each artist's albums go to eval while that keeps eval at or under ``round(eval_fraction * albums)``
    albums. The result depends only on the set of artists and album counts, not on the order rows come in, and
    with many artists the eval share is exactly the one asked for (4899 albums at 0.3 give 3429/1470).

    Albums added to a dataset: ``kept`` lists the (artist, split) of the albums that stay in it beside these,
    ``earlier`` those of earlier versions of these albums (which they replace). An artist of either keeps the
    side it has there (its first album's, should its albums be on both), so an album trained on never moves to
    eval and no artist gets onto both sides; the kept albums count among the ``albums`` above, so the other
    artists fill eval up to the share of the whole dataset. Without either this is the split of a new dataset.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise DatasetError(f"eval fraction must be at least 0 and below 1, found {eval_fraction}")
    named = [*(names for names, _ in [*kept, *earlier]), *artists]
    artist_of = _artists([_keys(names) for names in named])
    keys = [artist_of[_keys(names)[0]] for names in artists]
    sides: dict[str, str] = {}
    for names, side in [*kept, *earlier]:
        sides.setdefault(artist_of[_keys(names)[0]], side)
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


def _keys(names: Artist) -> list[str]:
    """An album's normalised artist names, its first name first; empty names only when it has no other."""
    names = [names] if isinstance(names, str) else list(names)
    keys = list(dict.fromkeys(artist_key(name) for name in names))
    return [key for key in keys if key] or keys[:1] or [""]


def _artists(albums: Sequence[list[str]]) -> dict[str, str]:
    """Each normalised name -> its artist: names that one album goes by are one artist's, and so, in turn, are
    all names linked through albums (union-find). An artist is named by the least of its names."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for keys in albums:
        for key in keys:
            a, b = root(keys[0]), root(key)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {key: root(key) for key in parent}
