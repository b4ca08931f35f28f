"""The title and the artist set on the cover: a font that has every glyph, the calmest band, readable colour.

- Font: the user's ``.ttf/.otf`` (``--font``), else the shipped Inter Display SemiBold (SIL Open Font
  License 1.1, ``nopaingan_core/fonts/``); for text whose characters a font lacks (Cyrillic in a Latin-only
  font, CJK...), the first font on the system that has them all (glyph coverage read from the font's cmap
  with fontTools). No such font: one line saying which characters and how to fix it, never tofu boxes.
- Placement: a block (title, then the artist smaller) at one of nine positions (top/middle/bottom x
  left/center/right) inside 6 % safe margins; ``auto`` picks the one with the least edge energy (mean gradient
  magnitude, 0-255 grey levels per pixel) behind it. The text is sized to fit the width between the margins.
- Colour: white or black, whichever has the higher WCAG 2 contrast ratio against the background under the
  text (its 5th percentile pixel, so the busiest part counts); below 4.5:1, an outline in the opposite colour
  is added (the contrast reported is still the one against the picture). ``--text-color`` forces an opaque
  colour (outlined too when it falls short).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from ..errors import CoverError

FONTS_DIR = Path(__file__).resolve().parent.parent / "fonts"
DEFAULT_FONT = FONTS_DIR / "InterDisplay-SemiBold.otf"
FONT_EXTENSIONS = (".ttf", ".otf", ".ttc", ".otc")
POSITIONS = tuple(f"{v}-{h}" for v in ("top", "middle", "bottom") for h in ("left", "center", "right"))
# when two bands are equally calm, the usual places for a cover's type win
PREFERENCE = ("bottom-center", "top-center", "bottom-left", "top-left", "bottom-right", "top-right")
AUTO = "auto"
MARGIN = 0.06  # safe margin, fraction of the side
TITLE_SIZE = 0.085  # largest title size (pixels per em), fraction of the side
ARTIST_RATIO = 0.6  # artist size / title size
MIN_TEXT = 0.015  # smallest artist size (pixels per em), fraction of the side; the title is never smaller
MIN_PIXELS = 8  # ... and never under 8 pixels per em on small previews
MAX_BLOCK = 0.5  # the text block's largest height, fraction of the height between the margins, when it fits
LINE_GAP = 0.3  # gap between title and artist, in title ems
WRAP_GAP = 0.15  # gap between the wrapped lines of one text, in its ems
MIN_CONTRAST = 4.5  # WCAG 2 AA for normal text
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


@functools.lru_cache(maxsize=256)
def codepoints(path: Path) -> frozenset[int]:
    """The code points a font file maps to glyphs (its best cmap); empty for a file fontTools cannot read."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(str(path), fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception:  # not a font, or a broken one: it covers nothing
        return frozenset()


def missing_glyphs(path: Path, text: str) -> str:
    """The characters of ``text`` (spaces, controls, format marks aside) the font at ``path`` has no glyph for."""
    have = codepoints(path)
    drawn = (c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Zs", "Zl", "Zp"))
    return "".join(dict.fromkeys(c for c in drawn if ord(c) not in have))


def system_font_dirs() -> list[Path]:
    """Where fonts are installed on Linux, macOS and Windows."""
    home = Path.home()
    dirs = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".local/share/fonts", home / ".fonts"]
    if sys.platform == "darwin":
        dirs += [Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library/Fonts"]
    if os.name == "nt":
        dirs += [Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts"]
    return dirs


@functools.lru_cache(maxsize=1)
def system_fonts() -> tuple[Path, ...]:
    """Every font file under :func:`system_font_dirs`, sorted."""
    found = set()
    for folder in system_font_dirs():
        if folder.is_dir():
            found.update(p for p in folder.rglob("*") if p.suffix.lower() in FONT_EXTENSIONS)
    return tuple(sorted(found))


def check_font(path: Path) -> Path:
    """A user's ``--font``: an existing TrueType/OpenType file, else a one-line CoverError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CoverError(f"--font '{path}' does not exist; pass a .ttf or .otf file")
    if not codepoints(path):
        raise CoverError(f"--font '{path}' is not a TrueType/OpenType font with a character map")
    return path


def font_for(text: str, preferred: Path | None = None, note: Callable[[str], None] = print) -> Path:
    """The first font with every glyph of ``text``: ``preferred`` (or the shipped default), the shipped default,
    then the system's fonts. Raises CoverError naming the characters none of them has."""
    first = preferred or DEFAULT_FONT
    lacking = missing_glyphs(first, text)
    if not lacking:
        return first
    for path in (DEFAULT_FONT, *system_fonts()):
        if not missing_glyphs(path, text):
            note(f"font {first.name} lacks {lacking!r}: using {path} for {text!r}")
            return path
    codes = ", ".join(f"U+{ord(c):04X}" for c in lacking)
    raise CoverError(
        f"no font here has the characters {lacking!r} ({codes}) of {text!r}; pass a font that does with "
        f"--font FILE ({font_hint(lacking)})"
    )


CJK_NAMES = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "IDEOGRAPHIC", "FULLWIDTH", "HALFWIDTH")
NOTO_SCRIPTS = {"ARABIC": "Noto Naskh Arabic"}  # scripts whose Noto font is not "Noto Sans <Script>"


def font_hint(characters: str) -> str:
    """A font family that covers ``characters``, from their Unicode names: Noto Sans CJK for Chinese, Japanese
    and Korean, Noto Color Emoji for emoji, Noto Sans <Script> for another script (Devanagari, Thai...);
    generic when the characters have no name (private use) or mix scripts."""
    hints = set()
    for char in characters:
        name = unicodedata.name(char, "")
        if not name:
            return "the Noto family covers most scripts"
        if name.startswith(CJK_NAMES):
            hints.add("Noto Sans CJK, for Chinese, Japanese and Korean")
        elif ord(char) >= 0x1F000 or unicodedata.category(char) == "So":
            hints.add("Noto Color Emoji, for emoji")
        else:
            script = name.split()[0]
            hints.add(f"{NOTO_SCRIPTS.get(script, f'Noto Sans {script.title()}')}, for {script.title()}")
    return "e.g. " + "; ".join(sorted(hints)) if len(hints) <= 2 else "the Noto family covers most scripts"


def check_text(text: str, option: str) -> str:
    """``text`` as it will be drawn, exactly: one line, no control characters (tab, newline...) and no leading
    or trailing spaces, which a store's metadata field would not keep and the eye cannot see. Raises a one-line
    CoverError naming ``option`` otherwise."""
    controls = [c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    if controls:
        codes = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(controls))
        raise CoverError(
            f"{option} {text!r}: has control characters or line breaks ({codes}); give it on one line as the "
            "release's metadata spells it (long text is wrapped automatically)"
        )
    if text != text.strip():
        raise CoverError(f"{option} {text!r}: remove the leading/trailing spaces; the text is drawn exactly as given")
    return text


def fonts_for(
    texts: list[str], preferred: Path | None, note: Callable[[str], None] = print
) -> tuple[Path | None, Path | None]:
    """The font for each text (None for an empty one): one font having every glyph of both when there is one,
    so title and artist match, else :func:`font_for` each."""
    present = [t for t in texts if t]
    try:
        shared = font_for(" ".join(present), preferred, note)
        return tuple(shared if t else None for t in texts)  # type: ignore[return-value]
    except CoverError:
        return tuple(font_for(t, preferred, note) if t else None for t in texts)  # type: ignore[return-value]


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2 relative luminance of sRGB values ``[..., 3]`` in 0-255, in [0, 1]."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def contrast_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """WCAG 2 contrast ratio (1 to 21) between relative luminances ``a`` and ``b``."""
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    return (hi + 0.05) / (lo + 0.05)


def parse_color(text: str) -> tuple[int, int, int]:
    """``--text-color``: a CSS colour name or ``#rrggbb``; a colour with an alpha channel (``#rrggbbaa``,
    ``rgba()``...) is refused, since a see-through colour's contrast depends on the picture."""
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise CoverError(f"--text-color '{text}': expected 'auto', a colour name or #rrggbb") from None
    if len(rgb) == 4:
        raise CoverError(f"--text-color '{text}': has an alpha channel; expected an opaque colour (#rrggbb)")
    return rgb[:3]


@dataclass(frozen=True)
class TextLine:
    """One line: its text, font file, size (pixels per em) and the top-left of its ink box on the cover."""

    text: str
    font: Path
    size: int
    xy: tuple[int, int]

    def image_font(self) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(self.font), self.size)

    def bbox(self) -> tuple[int, int, int, int]:
        left, top, right, bottom = self.image_font().getbbox(self.text)
        return self.xy[0], self.xy[1], self.xy[0] + right - left, self.xy[1] + bottom - top


@dataclass(frozen=True)
class TextLayout:
    """Where and how the text goes: ``energy`` is the mean edge energy behind it, ``contrast`` the WCAG ratio
    of the colour against the background's 5th percentile (outlined or not; see :meth:`outline_contrast`)."""

    lines: tuple[TextLine, ...]
    position: str
    color: tuple[int, int, int]
    outline: tuple[int, int, int] | None
    outline_width: int
    contrast: float
    energy: float

    @property
    def outline_contrast(self) -> float:
        """WCAG ratio of the colour against its outline (0.0 without one)."""
        if self.outline is None:
            return 0.0
        return float(contrast_ratio(luminance(np.array(self.color)), luminance(np.array(self.outline))))

    def box(self) -> tuple[int, int, int, int]:
        boxes = [line.bbox() for line in self.lines]
        return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _width(font: ImageFont.FreeTypeFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return right - left


def wrap(text: str, font: Path, size: int, width: int) -> list[str] | None:
    """``text`` broken at spaces into lines at most ``width`` pixels wide at ``size``, greedily; a word of wide
    (CJK) characters that does not fit is broken between characters. None when a word cannot fit."""
    face = ImageFont.truetype(str(font), size)
    lines: list[str] = []
    for word in text.split(" "):
        if lines and _width(face, f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        elif _width(face, word) <= width:
            lines.append(word)
        elif any(unicodedata.east_asian_width(c) in "WF" for c in word):
            lines.append("")
            for char in word:
                if lines[-1] and _width(face, lines[-1] + char) > width:
                    lines.append("")
                lines[-1] += char
            if _width(face, lines[-1]) > width:
                return None
        else:
            return None
    return lines


def _block(texts: list[tuple[str, Path, int]], width: int) -> list[tuple[str, Path, int]] | None:
    """The wrapped lines (text, font, size) of every text, or None when one does not fit ``width``."""
    lines = []
    for text, font, size in texts:
        wrapped = wrap(text, font, size, width)
        if wrapped is None:
            return None
        lines += [(line, font, size) for line in wrapped]
    return lines


def _height(lines: list[tuple[str, Path, int]]) -> int:
    """The block's height as :func:`_place` stacks it."""
    heights = [_ink(f, s, t)[1] for t, f, s in lines]
    return sum(heights) + sum(_gap(a, b) for a, b in zip(lines, lines[1:], strict=False))


def _ink(font: Path, size: int, text: str) -> tuple[int, int]:
    left, top, right, bottom = ImageFont.truetype(str(font), size).getbbox(text)
    return right - left, bottom - top


def _gap(line: tuple[str, Path, int], following: tuple[str, Path, int]) -> int:
    """Space between two stacked lines: small within a text, larger from the title to the artist."""
    return round((WRAP_GAP if line[2] == following[2] else LINE_GAP) * line[2])


def fit_text(title: str, artist: str, fonts: tuple[Path | None, Path | None], side: int) -> list[tuple[str, Path, int]]:
    """The lines (text, font file, size in pixels per em) of the title then the artist on a ``side``-pixel cover.

    The title starts at ``TITLE_SIZE`` of the side and the artist at ``ARTIST_RATIO`` of the title; both shrink
    together, wrapping at spaces, until every line fits between the side margins and the block takes at most
    ``MAX_BLOCK`` of the height between the margins (all of it at the smallest size). The artist never goes
    below ``MIN_TEXT`` of the side (``MIN_PIXELS`` at least), so the title never goes below that / ARTIST_RATIO
    when there is an artist, MIN_TEXT otherwise. Raises CoverError naming the option that does not fit then,
    with about how many characters would."""
    margin = round(MARGIN * side)
    room, tall = side - 2 * margin, side - 2 * margin
    smallest = max(MIN_PIXELS, round(MIN_TEXT * side))
    floor = math.ceil(smallest / ARTIST_RATIO) if artist else smallest
    size = max(round(TITLE_SIZE * side), floor)
    while True:
        items = [
            (t, f, s) for t, f, s in ((title, fonts[0], size), (artist, fonts[1], round(size * ARTIST_RATIO))) if t
        ]
        limit = tall if size == floor else MAX_BLOCK * tall
        # a cheap lower bound first (lines needed x half an em each), so very long text does not wrap at every size
        if sum(math.ceil(_ink(f, s, t)[0] / room) * s / 2 for t, f, s in items) <= limit:
            lines = _block(items, room)
            if lines is not None and _height(lines) <= limit:
                return lines
        if size == floor:
            break
        size = max(floor, int(size * 0.92))
    # at the smallest size: which text is to blame, and how much would fit
    title_only = [(title, fonts[0], size)] if title else []
    option, text, font, at = ("--artist", artist, fonts[1], round(size * ARTIST_RATIO))
    alone = (
        _block(title_only, room) if title_only and _ink(fonts[0], size, title)[0] / room * size / 2 <= tall else None
    )
    if title_only and (alone is None or _height(alone) > tall * 0.75):
        option, text, font, at = "--title", title, fonts[0], size
    per_char = max(1.0, _ink(font, at, text)[0] / max(1, len(text)))
    rows = max(1, int(tall * (0.75 if option == "--title" else 0.25) / (at * (1 + WRAP_GAP))))
    most = max(1, int(room / per_char) * rows)
    raise CoverError(
        f"{option} is too long to set legibly on a {side} px cover ({len(text)} characters, no word wider than the "
        f"safe area); at most about {most} characters fit at the smallest size ({at} px)"
    )


def _place(lines: list[tuple[str, Path, int]], position: str, side: int) -> tuple[TextLine, ...]:
    """Stack the lines as a block at ``position`` inside the safe margins of a ``side``-pixel cover."""
    margin = round(MARGIN * side)
    inks = [_ink(f, s, t) for t, f, s in lines]
    block_h = _height(lines)
    vertical, horizontal = position.split("-")
    top = {"top": margin, "middle": (side - block_h) // 2, "bottom": side - margin - block_h}[vertical]
    placed = []
    for n, ((text, font, size), (w, h)) in enumerate(zip(lines, inks, strict=True)):
        left = {"left": margin, "center": (side - w) // 2, "right": side - margin - w}[horizontal]
        placed.append(TextLine(text, font, size, (left, top)))
        top += h + (_gap(lines[n], lines[n + 1]) if n + 1 < len(lines) else 0)
    return tuple(placed)


def edge_energy(image: Image.Image) -> np.ndarray:
    """Gradient magnitude ``[H, W]`` of the grey image, in grey levels (0-255) per pixel."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    gy = np.abs(np.diff(grey, axis=0, append=grey[-1:]))
    gx = np.abs(np.diff(grey, axis=1, append=grey[:, -1:]))
    return gx + gy


def _region(box: tuple[int, int, int, int], side: int, pad: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box
    return slice(max(0, y0 - pad), min(side, y1 + pad)), slice(max(0, x0 - pad), min(side, x1 + pad))


def _color(background: np.ndarray, wanted: tuple[int, int, int] | None) -> tuple[tuple, tuple | None, float]:
    """Text colour, outline colour (None when not needed) and the colour's contrast against the background."""
    lum = luminance(background.reshape(-1, 3))
    candidates = [wanted] if wanted else [WHITE, BLACK]

    def worst(color: tuple[int, int, int]) -> float:
        return float(np.percentile(contrast_ratio(luminance(np.array(color)), lum), 5))

    color = max(candidates, key=worst)
    contrast = worst(color)
    if contrast >= MIN_CONTRAST:
        return color, None, contrast
    outline = BLACK if luminance(np.array(color)) > 0.18 else WHITE
    return color, outline, contrast


def layout_text(
    image: Image.Image,
    title: str = "",
    artist: str = "",
    font: Path | None = None,
    position: str = AUTO,
    color: str = AUTO,
    note: Callable[[str], None] = print,
) -> TextLayout | None:
    """Plan the text on a square ``image``; None when there is no text. Raises CoverError for an unknown
    position, a bad colour or font, or characters no font has."""
    texts = [check_text(title, "--title"), check_text(artist, "--artist")]
    if not any(texts):
        return None
    if position != AUTO and position not in POSITIONS:
        raise CoverError(f"--text-position '{position}': expected auto or one of {', '.join(POSITIONS)}")
    wanted = None if color == AUTO else parse_color(color)
    preferred = check_font(font) if font else None
    side = image.width
    lines = fit_text(title, artist, fonts_for(texts, preferred, note), side)
    energy = edge_energy(image)
    pixels = np.asarray(image.convert("RGB"))
    pad = round(0.02 * side)

    def calm(candidate: str) -> float:
        placed = _place(lines, candidate, side)
        rows, cols = _region(TextLayout(placed, candidate, WHITE, None, 0, 0, 0).box(), side, pad)
        return float(energy[rows, cols].mean())

    order = PREFERENCE + tuple(p for p in POSITIONS if p not in PREFERENCE)
    chosen = position if position != AUTO else min(order, key=lambda p: (round(calm(p), 3), order.index(p)))
    placed = _place(lines, chosen, side)
    rows, cols = _region(TextLayout(placed, chosen, WHITE, None, 0, 0, 0).box(), side, pad)
    text_color, outline, contrast = _color(pixels[rows, cols], wanted)
    width = max(1, round(lines[0][2] / 18)) if outline else 0
    return TextLayout(placed, chosen, text_color, outline, width, contrast, calm(chosen))


def draw_text(image: Image.Image, layout: TextLayout | None) -> Image.Image:
    """A copy of ``image`` with the planned text drawn (outlined when the layout says so)."""
    out = image.convert("RGB")
    if layout is None:
        return out
    draw = ImageDraw.Draw(out)
    for line in layout.lines:
        font = line.image_font()
        left, top, _, _ = font.getbbox(line.text)
        draw.text(
            (line.xy[0] - left, line.xy[1] - top),
            line.text,
            font=font,
            fill=layout.color,
            stroke_width=layout.outline_width,
            stroke_fill=layout.outline,
        )
    return out


def set_text(
    image: Image.Image,
    title: str = "",
    artist: str = "",
    font: Path | None = None,
    position: str = AUTO,
    color: str = AUTO,
    note: Callable[[str], None] = print,
) -> tuple[Image.Image, TextLayout | None]:
    """:func:`layout_text` then :func:`draw_text`; ``note`` gets one line describing the choice."""
    layout = layout_text(image, title, artist, font, position, color, note)
    if layout is not None:
        fonts = ", ".join(sorted({line.font.name for line in layout.lines}))
        how = f"contrast {layout.contrast:.1f}:1 against the picture"
        if layout.outline:
            outline = f"#{bytes(layout.outline).hex()} ({layout.outline_contrast:.1f}:1)"
            how += f", under {MIN_CONTRAST}:1, so outlined in {outline}"
        note(f"text at {layout.position} in {fonts}, colour #{bytes(layout.color).hex()} ({how})")
    return draw_text(image, layout), layout
