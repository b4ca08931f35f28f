"""Matching catalogue search results to a requested artist and album.

Titles are compared after normalisation (HTML character references such as ``&amp;`` read once, case, accents,
punctuation, ``&``/``and``, a leading "The", edition markers such as ``(Deluxe Edition)``, ``[Remastered 2011]``,
``- 2011 Remaster``, iTunes' ``- EP`` or a trailing ``Remastered`` / ``Deluxe Edition`` without brackets, and
``feat.`` credits removed), then fuzzily with :class:`difflib.SequenceMatcher` (the standard library's
Ratcliff/Obershelp ratio, 0..1). An album's score is the lower of its artist and album scores: both must
match. Some differences are never fuzzy, however close the score:

- numbers: titles whose numbers differ (digits, or roman numerals from II as words: "Peter Gabriel 1" and
  "Peter Gabriel 2", "Led Zeppelin II" and "Led Zeppelin III") are different albums;
- recordings: a title marked as another recording of the music or another release (:data:`RECORDING_MARKS`:
  ``(Live)``, ``Demos``, ``Acoustic``, ``Remixes``, ``(Piano Version)``, ``(Taylor's Version)``, iTunes' ``-
  Single``...) is another album than one without that mark, and one with it asked for is not the studio album
  (:func:`recording_marks`);
- short names: an artist or a title of one or two words matches only the same words (:data:`SHORT_WORDS`:
  "Blue" is not "Blues");
- years: a release more than :data:`YEAR_LIMIT` years from the list's year is another album of that name
  (:func:`year_rank`), unless it is marked as an edition and dated after the list's year: a reissue
  (:func:`edition_marked`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from html.entities import html5
from typing import Generic, TypeVar

from .cleaning import fold_name

T = TypeVar("T")

MIN_SCORE = 0.85  # least score of a match
MARGIN = 0.05  # two different albums scoring within this of each other (neither exactly) are ambiguous
YEAR_SLACK = 1  # a release year this close to the list's is the list's (release dates differ by region)
# A release year further than this from the list's is not the list's album. Release dates of one album differ by
# region, format and catalogue by up to a year (an album out in December in one country, in January in another; a
# catalogue dating the CD, a list the vinyl) and a list may be a year off itself, so two years keep every such album;
# reissues and remasters come later (anniversary editions 10, 20, 25 years on), and an album of the same name a
# year later than that is another album.
YEAR_LIMIT = 2
# Names (artist or album title, normalised) of at most this many words match only the same words. The fuzzy ratio
# is 2M/T (M characters in common, T in both strings): one letter added to an n-letter word scores 2n/(2n+1), over
# MIN_SCORE from n = 3 on ("blue"/"blues" 0.89, "low"/"glow" 0.86), and one changed letter (n-1)/n, over it from
# n = 7 on. A score that forgives a typo in a long title ("Random Acess Memories") thus takes
# another word for a short one, and in a title of one or two words each word is much of what tells it apart: a
# plural, a changed letter is most often another album ("Blue" and "Blues", "Red" and "Reds", "Low" and "Glow").
# A typo in a short title is rare and shows in skipped.jsonl, which names what the catalogue had; a wrong album
# would go into the data set without a word.
SHORT_WORDS = 2

# Words that mark an edition or a release format rather than a different album.
_EDITION_WORDS = (
    r"deluxe|re-?master(?:ed|s)?|remasteri[sz]\w*|edition|expanded|extended|anniversary|bonus|version|reissue|"
    r"special|collector'?s|"
    r"mono|stereo|explicit|clean|single|ep|super|legacy|platinum|limited|international|\d{4}\s*mix|"
    r"(?:original|new|album|atmos|surround|quad(?:raphonic)?|binaural|[57]\.1)\s+mix|dolby\s+atmos|spatial\s+audio|"
    # what a soundtrack's title says it is: "Frozen (Original Motion Picture Soundtrack)", "Hamilton (Original
    # Broadway Cast Recording)", "Black Panther: The Album (Music From And Inspired By)"; a film's score is another
    # album (the mark "score")
    r"soundtrack|motion\s+picture|cast\s+recording|music\s+from|inspired\s+by|original\s+score"
)
_BRACKETED = re.compile(rf"\s*[(\[]([^()\[\]]*\b(?:{_EDITION_WORDS})\b[^()\[\]]*)[)\]]", re.IGNORECASE)
_DASHED = re.compile(rf"\s+[-–—:]\s+([^-–—:]*\b(?:{_EDITION_WORDS})\b[^-–—:]*)$", re.IGNORECASE)
# An edition phrase ending the title without brackets or a dash ("Nevermind Remastered", "... 2009 Remaster",
# "... Deluxe Edition", "... 25th Anniversary Edition", "... Bonus Track Version"): "Remaster(ed)" and "Deluxe"
# alone, or "Edition"/"Version" after words that say which; a plain "Edition" or "Version" may be the title's.
# A year before the phrase goes with it only in "2009 Remaster" (Spotify's form): "Live 1986 Remastered" keeps
# its year, which may be the title's.
_YEAR = r"(?:19|20)[0-9]{2}"
_ORDINAL = r"[0-9]{1,3}(?:st|nd|rd|th)"
_QUALIFIER = (
    rf"(?:super|deluxe|expanded|extended|special|collector'?s|limited|legacy|platinum|tour|complete|anniversary|"
    rf"{_ORDINAL}\s+anniversary|remastered|reissue|bonus\s+tracks?)"
)
_TRAILING = re.compile(
    rf"\s+(?:(?:{_QUALIFIER}\s+)+(?:edition|version)|(?:{_YEAR}\s+)?remaster|remastered|"
    rf"(?:super\s+)?deluxe|{_ORDINAL}\s+anniversary|(?:original\s+)?(?:motion\s+picture\s+)?soundtrack)"
    rf"(?:\s+{_YEAR})?$",
    re.IGNORECASE,
)
# The edition words a mark of another recording may carry ("(Live Version)", "[Remastered Live]", "- Acoustic
# Deluxe Edition"): removed from it, so that it reads as the recording it names ("(Live)").
_EDITION_IN_RECORDING = re.compile(
    rf"\b(?:(?:{_YEAR}\s+)?remaster\b|remastered(?:\s+{_YEAR})?|{_ORDINAL}\s+anniversary|anniversary|deluxe|super|"
    r"expanded|extended|special|limited|legacy|platinum|collector'?s|reissue|bonus\s+tracks?|edition|version|"
    r"(?:original\s+)?motion\s+picture|original(?=\s+score))\b",
    re.IGNORECASE,
)
# The words before "Mix" that name a new mix of the album itself ("Abbey Road - 2019 Mix", "(2017 Stereo Mix)",
# "(Dolby Atmos Mix)", "(5.1 Mix)", "(Original Mix)"), which catalogues sell as the album; any other word before it
# names a remix ("Extended Dance Mix", "Dub Mix", '12" Mix', "Club Mix", "Radio Mix") with other audio.
_NEW_MIX = (
    rf"(?:{_YEAR}|stereo|mono|original|album|anniversary|atmos|surround|spatial|quad|quadraphonic|binaural|1) |"
    r"new mix(?!es)"  # "(New Mix)" is the album mixed anew, "(New Mixes)" a remix album
)
# A French or Spanish edition marker, "Version" first: "(Version Deluxe)", "- Versión Remasterizada"; it names no
# other recording (the word before it is the title's).
_VERSION_FIRST = re.compile(
    r"(?:[(\[]|\s[-–—]\s)\s*versi[oó]n\s+(?:deluxe|remasteri[sz]\w*|collector|int[ée]grale|originale?|sp[ée]ciale|"
    r"limit[ée]e|expandida|especial)\b[^)\]]*[)\]]?",
    re.IGNORECASE,
)
# The words before "Version" that name an edition of the album ("(Deluxe Version)", "[Bonus Track Version]",
# "(Japan Version)", "(Explicit Version)"), or a recording another mark names ("(Live Version)" is live, "(Taylor's
# Version)" a re-recording); any other word before it names another recording of the songs: "(Piano Version)",
# "(Orchestral Version)", "(Stripped Version)", "(Spanish Version)", "(Dub Version)".
_EDITION_VERSION = (
    rf"(?:{_YEAR}|[0-9]+|deluxe|expanded|extended|special|bonus|tracks?|collectors?|s|limited|legacy|platinum|tour|"
    r"complete|anniversary|super|remaster(?:ed)?|standard|original|album|explicit|clean|edited|censored|uncensored|"
    r"digital|international|int l|intl|l|japan|japanese|korea|korean|asia|asian|uk|us|usa|european|eu|australian|"
    r"canadian|premium|uncut|enhanced|mono|stereo|lp|cd|vinyl|hd|"
    r"itunes|mastered|exclusive|new|revised|reissue|edition|live|demos?|acoustic|instrumentals?|karaoke|"
    r"remix(?:es|ed)?|mix|unplugged|commentary|covers?|tribute|up|slowed|reverb|cappella|capella|nightcore|"
    r"recorded|recording|edit)"
)
# Marks of another recording than the album's: words (on the folded title: lower case, punctuation as spaces) and
# the name each is reported by. A live, demo, acoustic, instrumental, karaoke, remixed (:data:`_NEW_MIX`), re-edited
# (radio or extended edit), unplugged, commentary, cover, tribute, sped-up, slowed, a cappella or nightcore album,
# or an artist's re-recording ("Re-recorded", "(Taylor's Version)": "X's Version", not a collector's), has the
# songs but not the recordings of the album: its previews are other audio. Within words, so "Alive" and "Covered"
# are not marked.
RECORDING_MARKS: tuple[tuple[str, str], ...] = (
    ("live", r"live|en vivo|ao vivo|in concert"),
    ("demo", r"demos?"),
    ("acoustic", r"acoustic"),
    ("instrumental", r"instrumentals?"),
    ("karaoke", r"karaoke"),
    ("remix", rf"re ?mix(?:es|ed)?|(?!{_NEW_MIX})\w+ mix(?:es)?"),
    ("edit", r"(?:radio|extended|single|club|dance|dub|short) edits?"),
    ("unplugged", r"unplugged"),
    ("commentary", r"commentary"),
    ("cover", r"covers?"),
    ("tribute", r"tribute"),
    ("sped up", r"sped up|speed up"),
    ("slowed", r"slowed"),
    ("a cappella", r"a ?cappella|a ?capella"),
    ("nightcore", r"nightcore"),
    ("re-recording", r"re ?recorded|re ?recording|(?!collector s )\w+ s version"),
    ("version", rf"(?!{_EDITION_VERSION} )\w+ versions?"),
    ("single", r"single"),  # iTunes' "- Single" (and Deezer's record type): one song, the single's cover
    ("score", r"(?:original|motion picture|film|television|tv|series|game) score"),  # a film's music, not its songs
)
_MARKS = [(name, re.compile(rf"(?<!\w)(?:{words})(?!\w)")) for name, words in RECORDING_MARKS]
# Marks another one implies: an unplugged album is recorded live ("MTV Unplugged in New York (25th Anniversary –
# Live)" is "MTV Unplugged in New York").
_IMPLIED = {"unplugged": "live"}
_FEATURING = re.compile(r"\s*[(\[]?\b(?:feat|ft|featuring)\b\.?\s.*$", re.IGNORECASE)
# A credit in a title: "(feat. X)", "[featuring X]", "feat. X" to the end ("ft." is left: "Live at Ft. Worth").
_TITLE_FEATURING = re.compile(r"\s*[(\[]?\b(?:feat|featuring)\b\.?\s.*$", re.IGNORECASE)
# Letters written as symbols in stylised artist names: "P!nk" is Pink, "Ke$ha" Kesha, "A$AP Rocky" ASAP Rocky,
# "Ty Dolla $ign" Ty Dolla Sign (a "$" before a letter, and a "!" between a letter and a lower-case one: the "!" of
# "Hey!Say!JUMP" and "Go!Go!7188" separates words).
_STYLISED = ((re.compile(r"\$(?=[^\W\d_])"), "s"), (re.compile(r"(?<=[^\W\d_])!(?=[a-z])"), "i"))
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
    (``"Nevermind Remastered"``, ``"Rumours 2004 Remaster"``, ``"Blue Deluxe Edition"``); numbers are written in
    digits, ``vol`` as ``volume`` (:func:`_numbered`: ``"Vol. II"`` is ``"volume 2"``). A title that is
    nothing but such words keeps them (``"Deluxe"`` stays ``"deluxe"``, ``"Remastered"`` ``"remastered"``).
    A marker that names another recording (:func:`recording_marks`) stays, without its edition words:
    ``"Definitely Maybe (Remastered) [Live]"`` and ``"Definitely Maybe (Live Version)"`` are ``"definitely maybe
    live"``, ``"Red (Taylor's Version)"`` is ``"red taylor s"``.
    Character references are read first (:func:`unescape_references`): ``Blue &#40;Deluxe&#41;`` is ``blue``."""
    title = unescape_references(title)
    featured = _TITLE_FEATURING.sub("", title)
    title = featured if featured.strip() else title
    text, changed = title, True
    while changed:  # until none is left: removing one marker may bare another
        changed = False
        for pattern in (_BRACKETED, _DASHED, _TRAILING):
            stripped = pattern.sub(_edition_removed, text)
            if stripped != text and _without_the(fold_name(stripped)) not in ("", "the"):
                text, changed = stripped, True
    return _numbered(_without_the(fold_name(text).replace("×", "x"))) or fold_name(title)


# Words that are one word spelt short: "Vol. 2" is "Volume 2".
_SHORT_FORMS = {"vol": "volume", "vols": "volumes", "pt": "part"}
# Words after which a lone "i" is the number one, not the pronoun: "Volume I" is "Volume 1".
_COUNTED = frozenset({"volume", "part", "chapter", "book", "act", "episode", "disc", "phase"})
# Numbers written as words, read after a word that counts: "Volume One" is "Volume 1", "Part Two" "Part 2",
# "Volume Twenty One" "Volume 21".
_UNITS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_NUMBER_WORDS = {word: n for n, word in enumerate([*_UNITS, *_TEENS], 1)}
_TENS = {word: 10 * n for n, word in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy"], 2)}
_TENS |= {"eighty": 80, "ninety": 90}


def _numbered(text: str) -> str:
    """A folded title with its numbers written one way: a roman numeral word (:data:`_ROMAN`) and a number with
    leading zeros as its value in digits, as :func:`album_numbers` reads them, ``i`` and a number word
    (:data:`_NUMBER_WORDS`, :data:`_TENS`) after a word that counts (:data:`_COUNTED`) as its value, and ``vol``
    as ``volume``, ``pt`` as ``part``: "Volume IV" is "Volume 4", "Vol. 02" is "Volume 2", "Part I" and "Part
    One" are "Part 1" (a catalogue and a list number volumes either way)."""
    words = [_SHORT_FORMS.get(w, w) for w in text.split()]
    out: list[str] = []
    at = 0
    while at < len(words):
        word, counted = words[at], at > 0 and words[at - 1] in _COUNTED
        unit = words[at + 1] if at + 1 < len(words) and words[at + 1] in _UNITS else None
        if counted and word in _TENS:  # "twenty" or "twenty one"
            out.append(str(_TENS[word] + (_UNITS.index(unit) + 1 if unit else 0)))
            at += 2 if unit else 1
            continue
        if _ROMAN.fullmatch(word) or (word == "i" and counted):
            out.append(str(_roman(word)))
        elif word in _NUMBER_WORDS and counted:
            out.append(str(_NUMBER_WORDS[word]))
        else:
            out.append(str(int(word)) if word.isdecimal() else word)
        at += 1
    return " ".join(out)


# Words that say an edition is a later issue of the album (a remaster, a deluxe or anniversary edition), so that its
# catalogue date may be the reissue's (:func:`edition_marked`); format words (mono, EP, single, explicit) do not.
_REISSUE = re.compile(
    r"\b(?:re-?master(?:ed|s)?|remasteri[sz]\w*|deluxe|expanded|extended|anniversary|reissue[ds]?|edition|bonus|legacy|"
    r"collector'?s)\b",
    re.IGNORECASE,
)


def edition_marked(title: str) -> bool:
    """Whether ``title`` says it is a later issue of an album: an edition marker :func:`normalise_album` removes
    names a reissue (:data:`_REISSUE`: ``"Be Here Now (Remastered)"``, ``"Abbey Road - 2019 Remaster"``, ``"Blue
    Deluxe Edition"``) and no other recording (``"Red (Taylor's Version)"`` is a re-recording, not a reissue)."""
    title = unescape_references(title)
    for pattern in (_BRACKETED, _DASHED, _TRAILING):
        for marker in pattern.finditer(title):
            said = marker.group(1) if pattern.groups else marker.group(0)
            if _REISSUE.search(said) and not recording_marks(said):
                return True
    return False


def _edition_removed(marker: re.Match[str]) -> str:
    """What stays of an edition marker: nothing, or, when it names another recording (``(Live Version)``), that
    recording without the edition words (``(Live)``)."""
    said = marker.groups()[0] if marker.groups() else None
    if said is None or not recording_marks(said):
        return ""
    return f" ({' '.join(_EDITION_IN_RECORDING.sub(' ', said).split())})"


def recording_marks(title: str) -> frozenset[str]:
    """The marks of another recording in an album title (:data:`RECORDING_MARKS`, by name), as whole words of
    the folded title wherever they are: ``"Definitely Maybe (Remastered) [Live]"`` -> ``{"live"}``, ``"Red
    (Taylor's Version)"`` -> ``{"re-recording"}``, ``"Demos"`` -> ``{"demo"}``, ``"Blue"`` -> none. Two titles
    whose marks differ are different recordings: a live album is not the studio album, nor "Demos" the album
    (a title that is itself such a word, "Live at Leeds", has the mark on both sides and matches itself).
    "Unplugged" is live too (:data:`_IMPLIED`)."""
    folded = fold_name(_VERSION_FIRST.sub(" ", unescape_references(title)))
    marks = {name for name, pattern in _MARKS if pattern.search(folded)}
    return frozenset(marks | {_IMPLIED[mark] for mark in marks if mark in _IMPLIED})


def short_name_words(name: str) -> tuple[str, ...] | None:
    """The words of a normalised name (:func:`normalise_album`, :func:`normalise_artist`) of at most
    :data:`SHORT_WORDS` words, as compared: joined (``"mirror ball"`` = ``"mirrorball"``), numbers by value
    (``"iv"`` = ``"4"``, ``"02"`` = ``"2"``); None for a longer name, compared fuzzily."""
    words = name.split()
    if len(words) > SHORT_WORDS:
        return None
    return tuple(str(_roman(w)) if _ROMAN.fullmatch(w) else str(int(w)) if w.isdecimal() else w for w in words)


def short_names_differ(a: str, b: str) -> bool:
    """Whether two normalised names, one of them short (:func:`short_name_words`), are different words: the
    short-name rule. Two long names never differ by it."""
    if short_name_words(a) is None and short_name_words(b) is None:
        return False
    return _joined(a) != _joined(b)


def _joined(name: str) -> str:
    """A normalised name's words as the short-name rule compares them, without the spaces between them."""
    words = short_name_words(name)
    return "".join(name.split() if words is None else words)


def normalise_artist(name: str) -> str:
    """An artist name as compared: ``feat.`` credits and a leading "The" removed, then folded
    (``"The Beatles"`` = ``"Beatles"``, ``"Beyoncé feat. Jay-Z"`` -> ``"beyonce"``, ``"Simon & Garfunkel"`` =
    ``"Simon and Garfunkel"``, and, its character references read first, ``"Simon &amp; Garfunkel"``); a ``$``
    or ``!`` written for a letter is that letter (:data:`_STYLISED`: ``"P!nk"`` = ``"Pink"``)."""
    name = unescape_references(name)
    for symbol, letter in _STYLISED:
        name = symbol.sub(letter, name)
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


def year_rank(found: int | None, year: int | None, title: str = "") -> tuple[int, int]:
    """How well a release of year ``found`` titled ``title`` fits the list's ``year``, smaller is better: the list's
    year (within :data:`YEAR_SLACK`, closest first), then an unknown year (Deezer's search gives none: it may be the
    list's), then a year within :data:`YEAR_LIMIT` (closest first), then a reissue: a later year with a title marked
    as an edition (:func:`edition_marked`; catalogues date a remaster by its reissue), closest first, then any other
    year, which is not the list's album (:func:`year_too_far`). Without a list's year every release ranks alike."""
    if year is None:
        return (0, 0)
    if found is None:
        return (1, 0)
    apart = abs(found - year)
    if apart <= YEAR_LIMIT:
        return (0 if apart <= YEAR_SLACK else 2, apart)
    return (3 if found > year and edition_marked(title) else 4, apart)


def far_edition(editions: Sequence[T], year: int | None, dated: Callable[[T], tuple[int | None, str]]) -> T | None:
    """Of an album's ``editions`` (``dated`` gives each one's release year and title), the closest that shows it
    is not the list's album of ``year``, or None when one fits. None fits when the best-fitting is a reissue or
    too far (:func:`year_rank` 3 or worse) and some edition is too far (:func:`year_too_far`): a reissue marked as
    one counts only while no unmarked edition dates the album elsewhere ("Red (Deluxe Edition)" of 2021 is not
    the list's "Red" of 2016 when "Red" is of 2012)."""

    def rank(edition: T) -> tuple[int, int]:
        found, title = dated(edition)
        return year_rank(found, year, title)

    ranked = sorted(editions, key=rank)
    if not ranked or rank(ranked[0])[0] < 3:
        return None
    return next((e for e in ranked if rank(e)[0] == 4), None)


def year_too_far(found: int | None, year: int | None, title: str = "") -> bool:
    """Whether a release of year ``found`` titled ``title`` is too far from the list's ``year`` to be its album:
    more than :data:`YEAR_LIMIT` years, and not a reissue marked as one (:func:`year_rank`): another album of that
    name, or a reissue that does not say so. An unknown year is never too far."""
    return year_rank(found, year, title)[0] == 4


def year_reason(named: str, score: float, found: int | None, year: int | None) -> str:
    """Why a release of the right name is not taken: its year ``found`` is too far from the list's ``year``."""
    return (
        f"no match: best was {named} (score {score:.2f}) of {found}, the list's year is {year}: more than "
        f"{YEAR_LIMIT} years apart and not marked as a reissue (another album of that name, or a reissue that does "
        "not say so; leave the row's year empty to take it)"
    )


# A nickname as catalogues write one after a self-title: "(Blue Album)", "(White Album)" (not "(The Album)").
_COLOUR_NICKNAME = re.compile(r"(?!the )\w+ album")
# A title with a parenthesis at its end: "Weezer (Blue Album)".
_PARENTHESIS = re.compile(r"(.*\S)\s*\(([^()]*)\)\s*")


def self_titled(artist: str, album: str, colour: bool = False) -> str | None:
    """The title of a self-titled album without the parenthesis that tells it from the artist's other albums of
    that title, or None. Wikipedia names such albums by their nickname ("Weezer (Blue Album)", "Peter Gabriel
    (Car)"; its naming conventions, "Disambiguation"), where catalogues may list the bare title ("Weezer"). Only a
    parenthesis at the end of the title, after a title equal to the artist's name (normalised: ``weezer``), that
    names no other recording (:func:`recording_marks`: "Weezer (Live)" is not "Weezer"), holds no number
    (:func:`album_numbers`: that is the album's own, "(II)" too) and is no edition mark (:func:`normalise_album`
    keeps it: "(Deluxe Edition)" is none); with ``colour``, as a catalogue's title, only a "(<word> Album)"
    (:data:`_COLOUR_NICKNAME`: "Weezer (Blue Album)", not "Shawn Mendes (Stripped)", another recording).
    :func:`best_match` compares a bare title with it (the list's or the catalogue's) only with the list's year,
    which tells the artist's self-titled albums apart."""
    parts = _PARENTHESIS.fullmatch(unescape_references(album))
    if parts is None:
        return None
    bare, said = parts.groups()
    if recording_marks(said) or album_numbers(said) or normalise_album(album) == normalise_album(bare):
        return None  # another recording, the album's own number, or an edition mark: "Weezer (Deluxe Edition)"
    if colour and not _COLOUR_NICKNAME.fullmatch(fold_name(said)):
        return None
    if normalise_album(bare) not in (normalise_artist(artist), normalise_album(artist)):  # the band X's "X" is 10
        return None
    return bare


@dataclass(frozen=True)
class Match(Generic[T]):
    """The outcome of :func:`best_match`: the chosen ``item`` and its ``score``, or ``item`` None and the
    ``reason`` nothing was chosen (no result, best below the threshold, numbered or marked differently, a short
    name that differs, two different albums too close, released too far from the list's year). ``editions``
    are the found items that are editions of the chosen album (the same after normalisation), in order of
    preference (:func:`year_rank`): ``item`` first."""

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
    refusal: str  # why this result is another album whatever its score, or ""
    as_listed: bool = True  # both titles compared as given, neither without a self-title's nickname
    nickname: bool = False  # a catalogue's self-titled album named by its nickname, compared bare

    def named(self) -> str:
        return f"{self.artist} - {self.album}"


def _numbers_text(numbers: tuple[int, ...]) -> str:
    return ", ".join(map(str, numbers)) if numbers else "none"


def _marks_text(marks: frozenset[str]) -> str:
    return ", ".join(sorted(marks)) if marks else "none"


def refusal(artist: str, album: str, found_artist: str, found_album: str) -> str:
    """Why a found album is not the requested one whatever its score (the rules that are never fuzzy), or "":
    other numbers in the title (:func:`album_numbers`), other marks of a recording (:func:`recording_marks`), or
    a short artist or title (:func:`short_names_differ`) spelt with other words."""
    numbers, wanted_numbers = album_numbers(found_album), album_numbers(album)
    if numbers != wanted_numbers:
        return f"another album: its numbers are {_numbers_text(numbers)}, the list's {_numbers_text(wanted_numbers)}"
    marks, wanted_marks = recording_marks(found_album), recording_marks(album)
    if marks != wanted_marks:
        return (
            f"another recording: its marks are {_marks_text(marks)}, the list's {_marks_text(wanted_marks)} "
            "(live, demo, acoustic, remix, re-recording... are not the album)"
        )
    for kind, normalise, name, wanted in (
        ("artist", normalise_artist, found_artist, artist),
        ("album", normalise_album, found_album, album),
    ):
        if short_names_differ(normalise(name), normalise(wanted)):
            what = "a name" if kind == "artist" else "a title"
            return (
                f"another {kind}: {what} of at most {SHORT_WORDS} words matches only the same words, found "
                f"{normalise(name)!r}, the list's {normalise(wanted)!r}"
            )
    return ""


def score_text(score: float, min_score: float) -> str:
    """``score`` with two decimals, or as many more (up to six) as it takes to read as below ``min_score`` when it
    is: 0.848 against 0.85 is "0.848", not "0.85 < 0.85"."""
    digits = 2
    while score < min_score and float(f"{score:.{digits}f}") >= min_score and digits < 6:
        digits += 1
    return f"{score:.{digits}f}"


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

    A self-titled album named with a parenthesis on one side and bare on the other (the list's "Weezer (Blue
    Album)" and a found "Weezer", or the list's "Weezer" and a found "Weezer (Blue Album)": :func:`self_titled`)
    with the list's ``year`` is compared without it when the found one is of that year (within
    :data:`YEAR_SLACK`) or an unknown one, and is another album when of another year. Of equal scores, the one of
    the list's year comes first (:func:`year_rank`), then the title as listed.

    Results that are another album whatever their score (:func:`refusal`: other numbers, other recording marks,
    a short name spelt otherwise) are set aside; of the rest, those scoring below ``min_score`` are ignored. An
    exact match (score 1: equal after normalisation) wins, unless another is exact too as a different catalogue
    nickname of the self-title. Otherwise, when results that are different albums after normalisation (not two
    editions of one) score within ``margin`` of the best (or are two such nicknames), the requested ``year``
    decides if exactly one of them has it (within :data:`YEAR_SLACK`; of several, the one of that very year);
    else the request is ambiguous. The
    chosen album's editions are ordered by :func:`year_rank`, then the catalogue's order; when every one is of a
    known year more than :data:`YEAR_LIMIT` years from the list's, the closest marked as an edition and dated
    after the list's year is taken (a reissue: :func:`edition_marked`), and without one nothing is chosen
    (:func:`year_reason`).
    """
    if not found:
        return Match(None, 0.0, "no result")

    def compared(found_artist: str, title: str, found_year: int | None) -> tuple[str, str, str]:
        """The list's title and the found ``title`` as compared, and why the found one is another album whatever
        its score or "" (:func:`refusal`). A self-titled album named by its nickname on one side and bare on the
        other (:func:`self_titled`) is compared bare when the found one is of the list's year or an unknown one;
        of another known year it is another of the artist's self-titled albums however close the nickname's
        spelling ("Peter Gabriel (Melt)", 1980, is not the "Peter Gabriel" of 1982)."""
        for nicknamed, bare_title, other in ((album, title, artist), (title, album, found_artist)):
            base = self_titled(other, nicknamed, colour=nicknamed is title) if year is not None else None
            if base is None or normalise_album(bare_title) != normalise_album(base):
                continue
            if found_year is not None and not year_matches(found_year, year):
                why = f"another album: a self-titled album of {found_year}, the list's {album!r} is of {year}"
                return album, title, why
            listed, named = (base, title) if nicknamed is album else (album, base)
            return listed, named, refusal(artist, listed, found_artist, named)
        return album, title, refusal(artist, album, found_artist, title)

    def score(index: int, found_artist: str, title: str, found_year: int | None) -> _Scored:
        listed, named, why = compared(found_artist, title, found_year)
        key = (normalise_artist(found_artist), normalise_album(title))
        value = match_score(artist, listed, found_artist, named)
        as_listed = (listed, named) == (album, title)
        return _Scored(value, index, found_artist, title, found_year, key, why, as_listed, named != title)

    # the best first; of equal scores the one of the list's year (a self-title's nickname of it before the bare
    # title of another year), then the title as listed, then the catalogue's order
    scored = sorted(
        (score(i, a, t, y) for i, (_, a, t, y) in enumerate(found)),
        key=lambda s: (-s.score, year_rank(s.year, year, s.album), not s.as_listed, s.index),
    )
    same = [s for s in scored if not s.refusal]
    if not same or same[0].score < min_score:
        top = scored[0]
        # a refusal is named even below the threshold: a lower --min-score would not take that album either
        below = f" < {min_score}" if top.score < min_score else ""
        refused = f", {top.refusal}" if top.refusal else ""
        score = score_text(top.score, min_score)
        return Match(None, top.score, f"no match: best was {top.named()} (score {score}{below}){refused}")
    best = same[0]
    # two different albums both exact are two self-titled ones the catalogue names by their nicknames ("Weezer
    # (Blue Album)", "Weezer (Green Album)" for a list's "Weezer"): the year tells them apart as it does close ones
    if best.score < 1.0:
        close = [s for s in same if s.score >= max(min_score, best.score - margin)]
        rivals = [s for s in close if s.key != best.key]
    else:
        close = [s for s in same if s.score == 1.0]
        rivals = [s for s in close if s.key != best.key and s.nickname and best.nickname]
    if rivals:
        dated = [s for s in close if year_matches(s.year, year)]
        exact = [s for s in dated if s.year == year]
        if len({s.key for s in dated}) > 1 and len({s.key for s in exact}) == 1:
            dated = exact  # of the list's very year rather than a year off
        if len({s.key for s in dated}) != 1:
            names = "; ".join(f"{s.named()} ({s.score:.2f})" for s in [best, *rivals][:3])
            return Match(None, best.score, f"ambiguous: {names}")
        best = dated[0]
    editions = sorted((s for s in same if s.key == best.key), key=lambda s: (year_rank(s.year, year, s.album), s.index))
    first = editions[0]
    far = far_edition(editions, year, lambda s: (s.year, s.album))
    if far is not None:
        return Match(None, best.score, year_reason(far.named(), best.score, far.year, year))
    return Match(found[first.index][0], best.score, editions=tuple(found[s.index][0] for s in editions))
