"""Cleaning as the seed did: one spelling per genre, missing genres filled from the artist's other albums
(else marked ``unknown``), and duplicate albums recognised by a normalised artist + album key."""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

UNKNOWN = "unknown"

# Values that mean "no genre" in scraped tables (pandas writes NaN as "nan", empty lists as "[]").
_MISSING = {"", "unknown", "none", "null", "nan", "n/a", "-", "[]"}

# Spellings of one genre that differ by more than case or spacing, mapped to Spotify's spelling (the
# seed's genres came from the Spotify Web API).
_ALIASES = {
    "hiphop": "hip hop",
    "hip-hop": "hip hop",
    "rap/hip hop": "hip hop",
    "hip-hop/rap": "hip hop",
    "rnb": "r&b",
    "r and b": "r&b",
    "r & b": "r&b",
    "rhythm and blues": "r&b",
    "rock n roll": "rock-and-roll",
    "rock & roll": "rock-and-roll",
    "rock and roll": "rock-and-roll",
    "rock'n'roll": "rock-and-roll",
    "lofi": "lo-fi",
    "lo fi": "lo-fi",
    "kpop": "k-pop",
    "k pop": "k-pop",
    "jpop": "j-pop",
    "j pop": "j-pop",
    "synth-pop": "synthpop",
    "synth pop": "synthpop",
    "alt rock": "alternative rock",
    "alt-rock": "alternative rock",
    "soundtracks": "soundtrack",
}

_SPLIT = re.compile(r"\s*[,;|]\s*")


def normalise_genre(name: str) -> str:
    """One spelling per genre: lower case, single spaces, no stray punctuation, known aliases merged."""
    text = unicodedata.normalize("NFKC", name).casefold().replace("_", " ")
    text = " ".join(text.split()).strip(" .'\"")
    return _ALIASES.get(text, text)


def split_genres(value: object) -> list[str]:
    """Genres from a tag or table cell: a list, a ``"pop, rock; jazz"`` string, or a list written out as
    text (``"['pop', 'rock']"``, as pandas exports list columns to CSV)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            parsed = _parse_list(text)
            if parsed is not None:
                return split_genres(parsed)
        items: Iterable[object] = _SPLIT.split(text)
    elif isinstance(value, Iterable):
        items = value
    else:
        items = [value]
    return [str(item).strip() for item in items if item is not None and str(item).strip()]


def _parse_list(text: str) -> list | None:
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, list):
            return parsed
    return None


def normalise_genres(values: Iterable[str]) -> list[str]:
    """Normalised genres in their first order, without repeats and without values that mean "none"."""
    out: list[str] = []
    for value in values:
        genre = normalise_genre(value)
        if genre not in _MISSING and genre not in out:
            out.append(genre)
    return out


# Latin letters that Unicode does not decompose into a base letter and an accent, as ASCII (after casefold,
# which makes the capitals small and ß, ẞ "ss"); the usual transliterations (as Unidecode and anyascii give).
LATIN_LETTERS = str.maketrans(
    {"æ": "ae", "œ": "oe", "ø": "o", "ð": "d", "þ": "th", "ł": "l", "đ": "d", "ı": "i", "ħ": "h", "ŧ": "t", "ŋ": "ng"}
)


# Emoji and text presentation selectors: "❤️" is "❤" shown as an emoji, the same name.
VARIATION_SELECTORS = dict.fromkeys([*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])
SYMBOL_CATEGORIES = ("Sm", "Sc", "So")  # maths, currency and other symbols (×, ÷, +, $, ★, emoji): words of a name


def fold_name(text: str) -> str:
    """Case, accents, punctuation and spacing removed, ``&`` read as ``and``; symbols (:data:`SYMBOL_CATEGORIES`:
    ``×``, ``÷``, ``+``, an emoji) kept as words of their own, so ``× (Deluxe)`` and ``÷ (Deluxe)`` stay two names.
    Invisible format characters (:func:`visible`: a zero-width space or joiner, a soft hyphen, a byte order mark)
    go without a trace: ``Arr\u200bival`` is ``arrival``, not ``arr ival``. A name of punctuation alone, which that
    leaves empty (``!!!``, ``???``), is its :func:`raw_name`: never equal to another name."""
    folded = unicodedata.normalize("NFKD", visible(text).replace("&", " and ")).translate(VARIATION_SELECTORS)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).casefold().translate(LATIN_LETTERS)
    return " ".join("".join(map(_word_part, folded)).split()) or raw_name(text)


def visible(text: str) -> str:
    """``text`` without its format characters (Unicode general category Cf: U+200B zero width space, U+200C/U+200D
    zero width non-joiner/joiner, U+2060 word joiner, U+FEFF zero width no-break space or byte order mark, U+00AD
    soft hyphen, directional marks): the Unicode Standard (section 23.2, "Layout Controls", and 4.5, "General
    Category") has them control how text is laid out, not stand for letters, so a name copied from a web page with
    one inside is the name without it. Matching would otherwise read one as a word break."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def _word_part(ch: str) -> str:
    """A letter or digit as it is, a symbol as a word of its own, anything else (punctuation, ``_``) a space."""
    if unicodedata.category(ch) in SYMBOL_CATEGORIES:
        return f" {ch} "
    return ch if ch.isalnum() else " "


def raw_name(text: str) -> str:
    """A name as written, up to Unicode compatibility forms, variation selectors, case and spacing (``"  ÷ "`` ->
    ``"÷"``)."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(VARIATION_SELECTORS).casefold().split())


def artist_key(artist: str) -> str:
    """Names that differ only in case, accents or punctuation are one artist (``Beyoncé`` = ``beyonce``)."""
    return fold_name(artist)


def album_key(artist: str, album: str) -> str:
    """Two rows with this key equal are the same album: the duplicates the seed dropped."""
    return f"{fold_name(artist)}\x1f{fold_name(album)}"


def artist_genres(albums: Iterable[tuple[str, Sequence[str]]]) -> dict[str, list[str]]:
    """Each artist's genres over all their albums, most frequent first, ties in alphabetical order."""
    counts: dict[str, Counter[str]] = {}
    for artist, genres in albums:
        counts.setdefault(artist_key(artist), Counter()).update(genres)
    return {key: sorted(count, key=lambda g: (-count[g], g)) for key, count in counts.items() if count}


def fill_genres(
    genres: Sequence[str],
    artist: str,
    by_artist: Mapping[str, list[str]],
    audio: Path | None = None,
    genre_from_audio: Callable[[Path], str | None] | None = None,
    own: str = "source",
) -> tuple[list[str], str]:
    """The album's genres and where they came from: its own (``own``: ``"source"``, or ``"catalogue"`` for
    genres a fetch took from the catalogue), else the artist's other albums (``"artist"``), else
    ``genre_from_audio(audio)`` when given (``"audio"``), else ``["unknown"]`` (``"unknown"``)."""
    if genres:
        return list(genres), own
    if by_artist.get(artist_key(artist)):
        return list(by_artist[artist_key(artist)]), "artist"
    if genre_from_audio is not None and audio is not None:
        guessed = normalise_genres([genre_from_audio(audio) or ""])
        if guessed:
            return guessed, "audio"
    return [UNKNOWN], UNKNOWN
