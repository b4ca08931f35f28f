"""Text of 8-bit tags: ID3v2 frames declared Latin-1, ID3v1, RIFF INFO, and Vorbis comments that are not UTF-8.
Taggers wrote these in the code page of the system they ran on (Windows-1251 in Russia, Shift-JIS in Japan...)
or in UTF-8, without saying which; :func:`decode_8bit` finds it."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Sequence

from charset_normalizer.md import mess_ratio
from charset_normalizer.utils import unicode_range

_LATIN = frozenset({"Latin-1 Supplement", "Latin Extended-A"})
_CJK = frozenset({"CJK Unified Ideographs", "CJK Symbols and Punctuation"})
# The legacy code pages tried when Windows-1252 does not fit, with the Unicode blocks (charset-normalizer's
# names) their text is written in, in the order a tie goes. EUC-KR, not its superset cp949: cp949's extra byte
# pairs read most Shift-JIS and Big5 text as Hangul. Windows-1254 (Turkish) and -1257 (Baltic) are left out:
# they differ from Windows-1252 in a few letters only, which no rule here can tell apart in a short name.
CODE_PAGES: dict[str, frozenset[str]] = {
    "cp1251": frozenset({"Cyrillic"}),
    "euc_kr": frozenset({"Hangul Syllables", "CJK Symbols and Punctuation"}),
    "cp932": frozenset({"Hiragana", "Katakana"}) | _CJK,
    "gb18030": _CJK,
    "cp950": _CJK,
    "cp1253": frozenset({"Greek and Coptic"}),
    "cp1255": frozenset({"Hebrew"}),
    "cp1256": frozenset({"Arabic"}),
    "cp1250": _LATIN,
}
ID3V1_FIELD = 30  # bytes: ID3v1 cuts title, artist and album there, in the middle of a character too
_WORD = re.compile(r"[^\W\d_]+")
_ASCII_LETTER = re.compile("[A-Za-z]")
_MARKS = "’‘´·…«»„¿¡№"  # punctuation that may touch a letter
_APOSTROPHES = "’‘´·"  # and may stand between two (O’Connor, Catalan l·l), in Latin text only
_MISPLACED = re.compile("[ךםןףץς].")  # Hebrew final letters and Greek final sigma end a word
_TONOS = re.compile("[άέήίόύώΐΰ]")  # one accented vowel in a Greek word


def decode_8bit(texts: Sequence[bytes]) -> list[str]:
    """The text of each of ``texts``, raw bytes of 8-bit tag fields of one file (NULs stripped).

    A text that is valid UTF-8 is read as UTF-8: many taggers write UTF-8 into frames declared Latin-1, and
    legacy text is rarely valid UTF-8. The others are read in one code page, chosen on them all together
    (one tagger wrote them, and more text gives more evidence):

    - Windows-1252 when its reading is how Western European text is written (:func:`_plausible`): every
      word of two or more letters holds an unaccented letter, no symbol (``©``, ``±``, ``¼``...) touches a
      letter or another non-ASCII character, no punctuation but an apostrophe stands between two letters,
      no letter is outside Latin-1 and Latin Extended-A (``ƒ`` is Shift-JIS's lead byte 0x83).
      Read as Windows-1252, text of another script breaks this at once: "Кино" in Windows-1251 is
      "Êèíî", "宇多田" in Shift-JIS "‰F‘½“c".
    - else the code page of :data:`CODE_PAGES` whose reading is plausible for its own script (no letter
      of another script, no Latin letter inside a word of a non-Latin one, Hebrew final letters and Greek
      final sigma at a word's end, one tonos per Greek word), ranked by charset-normalizer's mess ratio,
      then by how regular its capitals are, then by the order of :data:`CODE_PAGES`;
    - else Windows-1252, undecodable bytes replaced.

    A text of 30 bytes may be an ID3v1 field cut inside a multibyte character: the cut character is dropped.

    charset-normalizer ranks, it does not decide: its language coherence needs 32 letters of a script and
    its mess detectors ignore strings under 8 to 13 characters, so on tags (3-40 bytes) its own verdict
    (``from_bytes(raw).best()``) reads "Кино" as Big5 and "Motörhead" as cp1006 (Urdu), and 62 of the 159 names
    of tests/test_legacy_encodings.py right, against 145 here. Windows-1252 is only left when its reading
    breaks the rules above, and the rare Western text that does ("Hits™2", a word of accented letters only)
    is only read otherwise when another code page reads it as plausible text of its own script. Short text
    stays ambiguous where two code pages both read as a plausible name: Czech and Polish in Windows-1250 that
    reads as Western letters ("Čechomor" as "Èechomor"), 2-4 character names across Greek, Cyrillic, GBK,
    Big5 and EUC-KR (tests/test_legacy_encodings.py measures each).
    """
    out = [_utf8(raw) for raw in texts]
    legacy = [raw for raw, text in zip(texts, out, strict=True) if text is None]
    code_page = _code_page(legacy) if legacy else "cp1252"
    decoded = iter(_decode(raw, code_page, "replace") for raw in legacy)
    return [text if text is not None else next(decoded) for text in out]


def _utf8(raw: bytes) -> str | None:
    """``raw`` as UTF-8, or None. A character cut at the end (:data:`ID3V1_FIELD`) counts only in a text that holds
    whole non-ASCII ones: ASCII ending in one 8-bit letter ("...Beyoncé" cut at 30 bytes) is not UTF-8."""
    try:
        text = _decode(raw, "utf-8")
    except UnicodeDecodeError:
        return None
    return text if len(text.encode()) == len(raw) or not text.isascii() else None


def _decode(raw: bytes, code_page: str, errors: str = "strict") -> str:
    """``raw`` read in ``code_page``. A text of :data:`ID3V1_FIELD` bytes may be an ID3v1 field cut in the middle
    of a multibyte character: that character is dropped. Raises UnicodeDecodeError on bytes ``code_page`` has
    no character for, where ``errors`` is "strict"."""
    return codecs.getincrementaldecoder(code_page)(errors).decode(raw, final=len(raw) != ID3V1_FIELD)


def _code_page(legacy: Sequence[bytes]) -> str:
    """The code page the ``legacy`` texts were written in, as :func:`decode_8bit` says."""
    try:
        if _plausible("\n".join(_decode(raw, "cp1252") for raw in legacy), _LATIN):
            return "cp1252"
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are no character in Windows-1252
        pass
    best, best_key = "cp1252", None
    for order, (code_page, scripts) in enumerate(CODE_PAGES.items()):
        try:
            text = "\n".join(_decode(raw, code_page) for raw in legacy)
        except UnicodeDecodeError:
            continue
        if _plausible(text, scripts):
            key = (-round(mess_ratio(text), 2), _casing(text), -order)
            if best_key is None or key > best_key:
                best, best_key = code_page, key
    return best


def _plausible(text: str, scripts: frozenset[str]) -> bool:
    """Whether ``text`` reads as written in ``scripts`` (Unicode block names) and ASCII, as names are."""
    latin = scripts == _LATIN
    for word in _WORD.findall(text):
        ascii_letters = bool(_ASCII_LETTER.search(word))
        if latin and len(word) > 1 and not ascii_letters:
            return False
        if not latin and ascii_letters and not word.isascii():
            return False
        if _MISPLACED.search(word) or len(_TONOS.findall(word)) > 1:
            return False
    padded = f" {text} "
    for i, char in enumerate(text, 1):
        if char.isascii():
            continue
        before, after = padded[i - 1], padded[i + 1]
        category = unicodedata.category(char)
        if char.isalpha():
            # halfwidth katakana: Shift-JIS's single bytes 0xA1-0xDF, what GBK and Big5 text reads as there
            if unicode_range(char) not in scripts or "\uff61" <= char <= "\uff9f":
                return False
        elif category in ("Zs", "Pd", "Pi", "Pf") or char in _MARKS:
            if before.isalpha() and after.isalpha() and not (latin and char in _APOSTROPHES):
                return False
        elif category == "Mn":  # a Hebrew or Arabic vowel sign follows a letter of its script (or another sign)
            # not an ASCII one: Windows-1256 reads "Björk" as "Bj" + a kasra + "rk", which the word rule above
            # cannot see, since a sign is no word character
            if before.isascii() or not (unicodedata.category(before) == "Mn" or unicode_range(before) in scripts):
                return False
        elif category[0] == "P" and not latin and unicode_range(char) in scripts:  # 、。「」
            continue
        elif before.isalpha() or after.isalpha() or not (_loose(before) and _loose(after)):
            return False
    return True


def _loose(char: str) -> bool:
    """Whether a symbol may stand next to ``char``: ASCII or a space, not another non-ASCII character."""
    return char.isascii() or char.isspace()


def _casing(text: str) -> float:
    """How regular the capitals of ``text``'s words are, 0 to 1: a word in capitals, capitalised or in a
    caseless script counts 1, in lower case 0.5 (names are capitalised), mixed ("ЧЬсйт", Greek read as
    Windows-1251) 0."""
    words = _WORD.findall(text)
    if not words:
        return 1.0

    def regular(word: str) -> float:
        if word.lower() == word.upper() or word.isupper() or (word[0].isupper() and word[1:].islower()):
            return 1.0
        return 0.5 if word.islower() else 0.0

    return sum(map(regular, words)) / len(words)
