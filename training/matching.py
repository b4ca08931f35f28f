"""Matching catalogue search results to a requested artist and album.

Titles are compared after normalisation (case, accents, punctuation, ``&``/``and``, a leading "The", edition
markers such as ``(Deluxe Edition)``, ``[Remastered 2011]``, ``- 2011 Remaster`` or iTunes' ``- Single``, and
``feat.`` credits removed), then fuzzily with :class:`difflib.SequenceMatcher` (the standard library's
Ratcliff/Obershelp ratio, 0..1). An album's score is the lower of its artist and album scores: both must
match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Generic, TypeVar

from .cleaning import fold_name

MIN_SCORE = 0.85  # least score of a match
MARGIN = 0.05  # two different albums scoring within this of each other are ambiguous

# Words that mark an edition or a release format rather than a different album.
_EDITION_WORDS = (
    r"deluxe|remaster(?:ed)?|edition|expanded|anniversary|bonus|version|reissue|special|collector'?s|"
    r"mono|stereo|explicit|clean|single|ep|super|legacy|platinum|limited|international|\d{4}\s*mix"
)
_BRACKETED = re.compile(rf"\s*[(\[]([^()\[\]]*\b(?:{_EDITION_WORDS})\b[^()\[\]]*)[)\]]", re.IGNORECASE)
_DASHED = re.compile(rf"\s+[-–—:]\s+[^-–—:]*\b(?:{_EDITION_WORDS})\b[^-–—:]*$", re.IGNORECASE)
_FEATURING = re.compile(r"\s*[(\[]?\b(?:feat|ft|featuring)\b\.?\s.*$", re.IGNORECASE)
_THE = re.compile(r"^the\s+")


def normalise_album(title: str) -> str:
    """An album title as compared: edition markers and a leading "The" removed, then folded like
    :func:`training.cleaning.fold_name` (``"The Wall (Remastered 2011)"`` -> ``"wall"``). A title that is
    nothing but such words keeps them (``"Deluxe"`` stays ``"deluxe"``)."""
    text = title
    for pattern in (_BRACKETED, _DASHED):
        while (stripped := pattern.sub("", text)) != text and stripped.strip():
            text = stripped
    return _without_the(fold_name(text)) or fold_name(title)


def normalise_artist(name: str) -> str:
    """An artist name as compared: ``feat.`` credits and a leading "The" removed, then folded
    (``"The Beatles"`` = ``"Beatles"``, ``"Beyoncé feat. Jay-Z"`` -> ``"beyonce"``, ``"Simon & Garfunkel"`` =
    ``"Simon and Garfunkel"``)."""
    stripped = _FEATURING.sub("", name)
    return _without_the(fold_name(stripped if stripped.strip() else name)) or fold_name(name)


def _without_the(text: str) -> str:
    return _THE.sub("", text)


def similarity(a: str, b: str) -> float:
    """Ratcliff/Obershelp similarity (0..1) of two normalised strings; 1.0 exactly when they are equal.
    SequenceMatcher's ratio depends on the order of its arguments; the larger of both orders is taken, so the
    score does not."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    ratio = max(
        SequenceMatcher(None, a, b, autojunk=False).ratio(), SequenceMatcher(None, b, a, autojunk=False).ratio()
    )
    return min(ratio, 0.999)


def match_score(artist: str, album: str, found_artist: str, found_album: str) -> float:
    """How well a found album matches the requested one: the lower of the artist and album similarities."""
    return min(
        similarity(normalise_artist(artist), normalise_artist(found_artist)),
        similarity(normalise_album(album), normalise_album(found_album)),
    )


T = TypeVar("T")


@dataclass(frozen=True)
class Match(Generic[T]):
    """The outcome of :func:`best_match`: the chosen ``item`` and its ``score``, or ``item`` None and the
    ``reason`` nothing was chosen (no result, best below the threshold, or two different albums too close)."""

    item: T | None
    score: float
    reason: str = ""


def best_match(
    artist: str,
    album: str,
    found: Sequence[tuple[T, str, str, int | None]],
    *,
    year: int | None = None,
    min_score: float = MIN_SCORE,
    margin: float = MARGIN,
) -> Match[T]:
    """The found album (``(item, artist, album, year)`` in the catalogue's order) that matches the request.

    Results scoring below ``min_score`` are ignored. When two results that are different albums after
    normalisation (not two editions of one) score within ``margin`` of the best, the requested ``year``
    decides if exactly one of them has it; otherwise the request is ambiguous. Among editions of the same
    album the catalogue's first is taken.
    """
    if not found:
        return Match(None, 0.0, "no result")
    scored = [(match_score(artist, album, a, t), i, a, t, y) for i, (_, a, t, y) in enumerate(found)]
    scored.sort(key=lambda s: (-s[0], s[1]))
    best = scored[0]
    if best[0] < min_score:
        return Match(None, best[0], f"no match: best was {best[2]} - {best[3]} (score {best[0]:.2f} < {min_score})")
    key = (normalise_artist(best[2]), normalise_album(best[3]))
    close = [s for s in scored if s[0] >= max(min_score, best[0] - margin)]
    rivals = [s for s in close if (normalise_artist(s[2]), normalise_album(s[3])) != key]
    if rivals:
        dated = [s for s in close if year is not None and s[4] == year]
        keys = {(normalise_artist(s[2]), normalise_album(s[3])) for s in dated}
        if len(keys) != 1:
            names = "; ".join(f"{s[2]} - {s[3]} ({s[0]:.2f})" for s in [best, *rivals][:3])
            return Match(None, best[0], f"ambiguous: {names}")
        best = dated[0]
    return Match(found[best[1]][0], best[0])
