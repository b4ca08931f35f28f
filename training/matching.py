"""Matching catalogue search results to a requested artist and album.

Titles are compared after normalisation (HTML character references such as ``&amp;`` read once, case, accents,
punctuation, ``&``/``and``, a leading "The", edition markers such as ``(Deluxe Edition)``, ``[Remastered 2011]``,
``- 2011 Remaster``, iTunes' ``- Single`` or a trailing ``Remastered`` / ``Deluxe Edition`` without brackets, and
``feat.`` credits removed), then fuzzily with :class:`difflib.SequenceMatcher` (the standard library's
Ratcliff/Obershelp ratio, 0..1). An album's score is the lower of its artist and album scores: both must
match. Numbers are not fuzzy: titles whose numbers differ (digits, or roman numerals from II as words:
"Peter Gabriel 1" and "Peter Gabriel 2", "Led Zeppelin II" and "Led Zeppelin III") are different albums
however close they score.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from html.entities import html5
from typing import Generic, TypeVar

from .cleaning import fold_name

MIN_SCORE = 0.85  # least score of a match
MARGIN = 0.05  # two different albums scoring within this of each other (neither exactly) are ambiguous
YEAR_SLACK = 1  # a release year this close to the list's is the list's (release dates differ by region)

# Words that mark an edition or a release format rather than a different album.
_EDITION_WORDS = (
    r"deluxe|remaster(?:ed)?|edition|expanded|anniversary|bonus|version|reissue|special|collector'?s|"
    r"mono|stereo|explicit|clean|single|ep|super|legacy|platinum|limited|international|\d{4}\s*mix"
)
_BRACKETED = re.compile(rf"\s*[(\[]([^()\[\]]*\b(?:{_EDITION_WORDS})\b[^()\[\]]*)[)\]]", re.IGNORECASE)
_DASHED = re.compile(rf"\s+[-–—:]\s+[^-–—:]*\b(?:{_EDITION_WORDS})\b[^-–—:]*$", re.IGNORECASE)
# An edition phrase ending the title without brackets or a dash ("Nevermind Remastered", "... 2009 Remaster",
# "... Deluxe Edition", "... 25th Anniversary Edition", "... Bonus Track Version"): "Remaster(ed)" and "Deluxe"
# alone, or "Edition"/"Version" after words that say which; a plain "Edition" or "Version" may be the title's.
# A year before the phrase goes with it only in "2009 Remaster" (Spotify's form): "Live 1986 Remastered" keeps
# its year, which may be the title's.
_YEAR = r"(?:19|20)[0-9]{2}"
_ORDINAL = r"[0-9]{1,3}(?:st|nd|rd|th)"
_QUALIFIER = (
    rf"(?:super|deluxe|expanded|special|collector'?s|limited|legacy|platinum|anniversary|{_ORDINAL}\s+anniversary|"
    r"remastered|reissue|bonus\s+tracks?)"
)
_TRAILING = re.compile(
    rf"\s+(?:(?:{_QUALIFIER}\s+)+(?:edition|version)|(?:{_YEAR}\s+)?remaster|remastered|"
    rf"(?:super\s+)?deluxe|{_ORDINAL}\s+anniversary)(?:\s+{_YEAR})?$",
    re.IGNORECASE,
)
_FEATURING = re.compile(r"\s*[(\[]?\b(?:feat|ft|featuring)\b\.?\s.*$", re.IGNORECASE)
_THE = re.compile(r"^the\s+")
# An HTML character reference, complete with its semicolon: named (&amp;), decimal (&#39;) or hexadecimal (&#x27;).
_REFERENCE = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")
# A roman numeral as a word, 2 to 39 (a lone "i" is the pronoun far more often than the number one).
_ROMAN = re.compile(r"(?=[ivx]{2}|[vx]$)x{0,3}(?:ix|iv|v?i{0,3})")
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10}


def unescape_references(name: str) -> str:
    """``name`` with each HTML character reference read as its character (``Simon &amp; Garfunkel`` -> ``Simon &
    Garfunkel``, ``Guns N&#39; Roses`` -> ``Guns N' Roses``): lists scraped from web pages and catalogue answers
    carry them. Each is read once, by :func:`html.unescape`, so ``&amp;amp;`` is ``&amp;``. Only a complete
    reference (WHATWG HTML, "Character references": a number, or a name HTML knows, ending in ``;``) is one: an
    ``&`` before a word is the name's own (html.unescape alone would read ``Rock&paradise`` as ``Rock¶dise``, an
    old reference without its semicolon)."""

    def character(reference: re.Match[str]) -> str:
        text = reference[0]
        return html.unescape(text) if text[1] == "#" or text[1:] in html5 else text

    return _REFERENCE.sub(character, name)


def normalise_album(title: str) -> str:
    """An album title as compared: edition markers and a leading "The" removed, then folded like
    :func:`training.cleaning.fold_name` (``"The Wall (Remastered 2011)"`` -> ``"wall"``). Markers are in
    brackets, after a dash (``"Abbey Road - 2019 Remaster"``), or an edition phrase ending the title
    (``"Nevermind Remastered"``, ``"Rumours 2004 Remaster"``, ``"Blue Deluxe Edition"``). A title that is
    nothing but such words keeps them (``"Deluxe"`` stays ``"deluxe"``, ``"Remastered"`` ``"remastered"``).
    Character references are read first (:func:`unescape_references`): ``Blue &#40;Deluxe&#41;`` is ``blue``."""
    title = unescape_references(title)
    text, changed = title, True
    while changed:  # until none is left: removing one marker may bare another
        changed = False
        for pattern in (_BRACKETED, _DASHED, _TRAILING):
            stripped = pattern.sub("", text)
            if stripped != text and _without_the(fold_name(stripped)) not in ("", "the"):
                text, changed = stripped, True
    return _without_the(fold_name(text)) or fold_name(title)


def normalise_artist(name: str) -> str:
    """An artist name as compared: ``feat.`` credits and a leading "The" removed, then folded
    (``"The Beatles"`` = ``"Beatles"``, ``"Beyoncé feat. Jay-Z"`` -> ``"beyonce"``, ``"Simon & Garfunkel"`` =
    ``"Simon and Garfunkel"``, and, its character references read first, ``"Simon &amp; Garfunkel"``)."""
    name = unescape_references(name)
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


def album_numbers(title: str) -> tuple[int, ...]:
    """The numbers in an album title as compared (:func:`normalise_album`), sorted: every run of digits
    (``"4ever"`` has 4, ``"Vol. 02"`` 2) and every word that is a roman numeral from ``ii`` to ``xxxix``
    (``"Led Zeppelin IV"`` has 4, as ``"Led Zeppelin 4"`` does). Two titles with different numbers are
    different albums."""
    text = normalise_album(title)
    numbers = [int(digits) for digits in re.findall(r"[0-9]+", text)]
    numbers += [_roman(word) for word in text.split() if _ROMAN.fullmatch(word)]
    return tuple(sorted(numbers))


def _roman(word: str) -> int:
    values = [_ROMAN_VALUES[letter] for letter in word]
    return sum(-v if v < after else v for v, after in zip(values, [*values[1:], 0], strict=True))


def year_matches(found: int | None, year: int | None) -> bool:
    """Whether a catalogue's release year is the list's ``year``, within :data:`YEAR_SLACK`."""
    return found is not None and year is not None and abs(found - year) <= YEAR_SLACK


T = TypeVar("T")


@dataclass(frozen=True)
class Match(Generic[T]):
    """The outcome of :func:`best_match`: the chosen ``item`` and its ``score``, or ``item`` None and the
    ``reason`` nothing was chosen (no result, best below the threshold or numbered differently, two different
    albums too close). ``editions`` are the found items that are editions of the chosen album (the same after
    normalisation), in order of preference: ``item`` first."""

    item: T | None
    score: float
    reason: str = ""
    editions: tuple[T, ...] = ()


@dataclass(frozen=True)
class _Scored:
    score: float
    index: int
    artist: str
    album: str
    year: int | None
    key: tuple[str, str]
    numbers: tuple[int, ...]

    def named(self) -> str:
        return f"{self.artist} - {self.album}"


def _numbers_text(numbers: tuple[int, ...]) -> str:
    return ", ".join(map(str, numbers)) if numbers else "none"


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

    Results whose title numbers differ from the request's (:func:`album_numbers`) are other albums; of the
    rest, those scoring below ``min_score`` are ignored. An exact match (score 1: equal after normalisation)
    wins. Otherwise, when results that are different albums after normalisation (not two editions of one)
    score within ``margin`` of the best, the requested ``year`` decides if exactly one of them has it (within
    :data:`YEAR_SLACK`); else the request is ambiguous. Among editions of the chosen album, those released in
    ``year`` come first, then those of unknown year, then the rest, each in the catalogue's order.
    """
    if not found:
        return Match(None, 0.0, "no result")
    wanted = album_numbers(album)
    scored = sorted(
        (
            _Scored(
                match_score(artist, album, a, t),
                i,
                a,
                t,
                y,
                (normalise_artist(a), normalise_album(t)),
                album_numbers(t),
            )
            for i, (_, a, t, y) in enumerate(found)
        ),
        key=lambda s: (-s.score, s.index),
    )
    same = [s for s in scored if s.numbers == wanted]
    if not same or same[0].score < min_score:
        top = scored[0]
        if top.score < min_score:
            return Match(None, top.score, f"no match: best was {top.named()} (score {top.score:.2f} < {min_score})")
        return Match(
            None,
            top.score,
            f"no match: best was {top.named()} (score {top.score:.2f}), another album: its numbers are "
            f"{_numbers_text(top.numbers)}, the list's {_numbers_text(wanted)}",
        )
    best = same[0]
    if best.score < 1.0:
        close = [s for s in same if s.score >= max(min_score, best.score - margin)]
        rivals = [s for s in close if s.key != best.key]
        if rivals:
            dated = [s for s in close if year_matches(s.year, year)]
            if len({s.key for s in dated}) != 1:
                names = "; ".join(f"{s.named()} ({s.score:.2f})" for s in [best, *rivals][:3])
                return Match(None, best.score, f"ambiguous: {names}")
            best = dated[0]
    editions = [s for s in same if s.key == best.key]
    if year is not None:
        editions.sort(key=lambda s: 0 if year_matches(s.year, year) else 1 if s.year is None else 2)
    return Match(found[editions[0].index][0], best.score, editions=tuple(found[s.index][0] for s in editions))
