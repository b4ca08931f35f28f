"""The title and the artist set on the cover: a font that has every glyph, the calmest band, readable colour.

- Font: the user's ``.ttf/.otf`` (``--font``), else the shipped Inter Display SemiBold (SIL Open Font
  License 1.1, ``nopaingan_core/fonts/``); for text whose characters a font lacks (Cyrillic in a Latin-only
  font, CJK...), the first font on the system that has them all (glyph coverage read from the font's cmap
  with fontTools). No such font: one line saying which characters and how to fix it, never tofu boxes.
- Placement: on an image of any size, a block (title, then the artist smaller) at one of nine positions
  (top/middle/bottom x left/center/right) inside 6 % safe margins (of the shorter side); ``auto`` picks the
  one with the least edge energy (mean gradient magnitude, 0-255 grey levels per pixel) behind it. The text is
  sized to fit the width between the margins; at the smallest size a word wider than that is broken between
  its characters (no hyphen is added: the letters stay exactly the given ones).
- Colour: white or black, whichever has the higher WCAG 2 contrast ratio against the worst single pixel under
  the glyphs or next to them (their ink grown by ``NEAR`` pixels), so every letter reads everywhere; below 4.5:1 at
  any such pixel, an outline (at least ``OUTLINE_MIN`` pixels, so it covers those next to the glyphs) in black
  or white, whichever is farther from the colour (at least 4.58:1), is added; the contrast reported is still
  the worst one against the picture. ``--text-color`` forces an opaque colour (outlined too when it falls short).
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
from PIL import Image, ImageColor, ImageDraw, ImageFilter, ImageFont

from ..errors import CoverError

FONTS_DIR = Path(__file__).resolve().parent.parent / "fonts"
DEFAULT_FONT = FONTS_DIR / "InterDisplay-SemiBold.otf"
FONT_EXTENSIONS = (".ttf", ".otf", ".ttc", ".otc")
POSITIONS = tuple(f"{v}-{h}" for v in ("top", "middle", "bottom") for h in ("left", "center", "right"))
# when two bands are equally calm, the usual places for a cover's type win
PREFERENCE = ("bottom-center", "top-center", "bottom-left", "top-left", "bottom-right", "top-right")
AUTO = "auto"
LABELS = ("--title", "--artist")  # how errors name the title and the artist (ComfyUI passes its inputs' names)
MARGIN = 0.06  # safe margin, fraction of the side
TITLE_SIZE = 0.085  # largest title size (pixels per em), fraction of the side
ARTIST_RATIO = 0.6  # artist size / title size
MIN_TEXT = 0.015  # smallest artist size (pixels per em), fraction of the side; the title is never smaller
MIN_PIXELS = 8  # ... and never under 8 pixels per em on small previews
MAX_BLOCK = 0.5  # the text block's largest height, fraction of the height between the margins, at every size
LINE_GAP = 0.3  # gap between title and artist, in title ems
WRAP_GAP = 0.15  # gap between the wrapped lines of one text, in its ems
MIN_CONTRAST = 4.5  # WCAG 2 AA for normal text
NEAR = 2  # pixels around the glyphs whose contrast counts (the eye separates a letter from them)
OUTLINE_MIN = 3  # thinnest outline, pixels: it fully covers the pixels 2 away from a glyph's edge
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


@functools.lru_cache(maxsize=64)
def face(font: Path, size: int) -> ImageFont.FreeTypeFont:
    """The font file at ``size`` pixels per em, loaded once (layout measures thousands of strings)."""
    return ImageFont.truetype(str(font), size)


@dataclass(frozen=True)
class TextLine:
    """One line: its text, font file, size (pixels per em) and the top-left of its ink box on the cover."""

    text: str
    font: Path
    size: int
    xy: tuple[int, int]

    def image_font(self) -> ImageFont.FreeTypeFont:
        return face(self.font, self.size)

    def bbox(self) -> tuple[int, int, int, int]:
        left, top, right, bottom = self.image_font().getbbox(self.text)
        return self.xy[0], self.xy[1], self.xy[0] + right - left, self.xy[1] + bottom - top


@dataclass(frozen=True)
class TextLayout:
    """Where and how the text goes: ``energy`` is the mean edge energy behind it, ``contrast`` the WCAG ratio
    of the colour against the worst picture pixel under or next to the glyphs (outlined or not; see
    :meth:`outline_contrast`)."""

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

    def record(self, scale: float = 1.0) -> dict:
        """What a release cover's metadata keeps of the layout; ``box`` (x0, y0, x1, y1 in pixels) scaled by
        ``scale`` for a cover resized after the text was set."""
        return {
            "position": self.position,
            "fonts": sorted({line.font.name for line in self.lines}),
            "font_files": sorted({str(Path(line.font).resolve()) for line in self.lines}),
            "color": f"#{bytes(self.color).hex()}",
            "outline": self.outline is not None,
            "contrast": round(self.contrast, 2),
            "outline_contrast": round(self.outline_contrast, 2),
            "box": [round(v * scale) for v in self.box()],
        }


@dataclass(frozen=True)
class DrawnText:
    """The text set on a batch of images: the title and artist exactly as drawn (both passed
    :func:`check_text`) and each image's layout (None where there is no text). ComfyUI's Cover Title hands it
    to Save Release Cover, so the cover's record and its check describe the text really drawn."""

    title: str
    artist: str
    layouts: tuple[TextLayout | None, ...]

    @classmethod
    def received(cls, value: object, images: int, label: str) -> DrawnText:
        """``value`` checked as the text drawn on a batch of ``images`` (None: no text), the way the command
        line checks ``--title``/``--artist`` (:func:`check_text`). Raises a one-line CoverError starting with
        ``label`` for anything else, text the command line refuses, or a layout count that is not ``images``."""
        drawn = cls("", "", ()) if value is None else value
        if not isinstance(drawn, cls):
            raise CoverError(f"{label}: cover_text is a {type(drawn).__name__}; connect Cover Title's cover_text")
        check_text(drawn.title, f"{label}: title")
        check_text(drawn.artist, f"{label}: artist")
        if drawn.layouts and len(drawn.layouts) != images:
            raise CoverError(
                f"{label}: cover_text describes {len(drawn.layouts)} images but {images} came in; connect the "
                "image and the cover_text of the same Cover Title"
            )
        return drawn

    def record(self, index: int, scale: float = 1.0) -> dict:
        """The ``text`` (and ``layout``, when there is text) entries of image ``index``'s record."""
        layout = self.layouts[index] if self.layouts else None
        entry: dict = {"text": {"title": self.title, "artist": self.artist}}
        return entry | ({"layout": layout.record(scale)} if layout is not None else {})


def _width(font: ImageFont.FreeTypeFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return right - left


def wrap(text: str, font: Path, size: int, width: int, split_words: bool = False) -> list[str] | None:
    """``text`` broken at spaces into lines at most ``width`` pixels wide at ``size``, greedily. A word that
    does not fit is broken between characters when it is made of wide (CJK) characters, or any word when
    ``split_words`` (the last resort at the smallest size: the characters are kept exactly, none added). None
    when a word cannot fit (or one character, when breaking)."""
    face_ = face(font, size)
    lines: list[str] = []
    for word in text.split(" "):
        if lines and _width(face_, f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        elif _width(face_, word) <= width:
            lines.append(word)
        elif split_words or any(unicodedata.east_asian_width(c) in "WF" for c in word):
            lines.append("")
            for char in word:
                if _width(face_, lines[-1] + char) <= width:
                    lines[-1] += char
                elif lines[-1] and _width(face_, char) <= width:
                    lines.append(char)
                else:
                    return None  # one character wider than the line
        else:
            return None
    return lines


def _block(
    texts: list[tuple[str, Path, int]], width: int, split_words: bool = False
) -> list[tuple[str, Path, int]] | None:
    """The wrapped lines (text, font, size) of every text, or None when one does not fit ``width``."""
    lines = []
    for text, font, size in texts:
        wrapped = wrap(text, font, size, width, split_words)
        if wrapped is None:
            return None
        lines += [(line, font, size) for line in wrapped]
    return lines


def _height(lines: list[tuple[str, Path, int]]) -> int:
    """The block's height as :func:`_place` stacks it."""
    heights = [_ink(f, s, t)[1] for t, f, s in lines]
    return sum(heights) + sum(_gap(a, b) for a, b in zip(lines, lines[1:], strict=False))


def _ink(font: Path, size: int, text: str) -> tuple[int, int]:
    left, top, right, bottom = face(font, size).getbbox(text)
    return right - left, bottom - top


def _gap(line: tuple[str, Path, int], following: tuple[str, Path, int]) -> int:
    """Space between two stacked lines: small within a text, larger from the title to the artist."""
    return round((WRAP_GAP if line[2] == following[2] else LINE_GAP) * line[2])


def fit_text(
    title: str,
    artist: str,
    fonts: tuple[Path | None, Path | None],
    side: int,
    height: int | None = None,
    labels: tuple[str, str] = LABELS,
) -> list[tuple[str, Path, int]]:
    """The lines (text, font file, size in pixels per em) of the title then the artist on a ``side``-pixel wide,
    ``height``-pixel tall cover (square when ``height`` is None).

    Sizes and the safe margin follow the shorter side. The title starts at ``TITLE_SIZE`` of it and the artist
    at ``ARTIST_RATIO`` of the title; both shrink together, wrapping at spaces, until every line fits between
    the side margins and the block takes at most ``MAX_BLOCK`` of the height between the margins (at every size,
    the smallest included: text that needs more is refused). The artist never goes below ``MIN_TEXT`` of the
    shorter side (``MIN_PIXELS`` at least), so the title never goes below that / ARTIST_RATIO when there is an
    artist, MIN_TEXT otherwise. At the
    smallest size a word still wider than the safe area is broken between its characters (as CJK text is), never
    hyphenated or cut: the letters drawn stay exactly the given ones. Raises a one-line CoverError naming the
    text that does not fit then by its label (``labels``: how the caller names the title and the artist): the
    image too small for one letter, or the text too long, with how many of its first characters do fit."""
    width, height = side, side if height is None else height
    short = min(width, height)
    margin = round(MARGIN * short)
    room, tall = width - 2 * margin, height - 2 * margin
    limit = MAX_BLOCK * tall  # the block's largest height, at every size
    smallest = max(MIN_PIXELS, round(MIN_TEXT * short))
    floor = math.ceil(smallest / ARTIST_RATIO) if artist else smallest
    size = max(round(TITLE_SIZE * short), floor)

    def items_at(at: int, title_: str = title, artist_: str = artist) -> list[tuple[str, Path, int]]:
        pairs = ((title_, fonts[0], at), (artist_, fonts[1], round(at * ARTIST_RATIO)))
        return [(t, f, s) for t, f, s in pairs if t]

    def fits(items: list[tuple[str, Path, int]], limit: float, split: bool) -> list[tuple[str, Path, int]] | None:
        # a cheap lower bound first (lines needed x half an em each), so very long text does not wrap at every size
        if sum(math.ceil(_ink(f, s, t)[0] / max(1, room)) * s / 2 for t, f, s in items) > limit:
            return None
        lines = _block(items, room, split) if room > 0 else None
        return lines if lines is not None and _height(lines) <= limit else None

    while True:
        lines = fits(items_at(size), limit, size == floor)
        if lines is not None:
            return lines
        if size == floor:
            break
        size = max(floor, int(size * 0.92))
    # at the smallest size: which text is to blame, and how much of it would fit
    # the artist when it does not fit alone or when its first line fits beside the title (then some of it fits);
    # else the title, whose count is taken beside the whole artist
    if not title or not artist:
        blame_title = bool(title)
    elif fits(items_at(size, title_=""), limit, True) is None:
        blame_title = False
    else:
        first = (wrap(artist, fonts[1], round(size * ARTIST_RATIO), room, True) or [artist])[0]
        blame_title = fits(items_at(size, artist_=first), limit, True) is None
    option, text, font = (labels[0], title, fonts[0]) if blame_title else (labels[1], artist, fonts[1])
    at = size if blame_title else round(size * ARTIST_RATIO)
    letter = max((c for c in text if not c.isspace()), key=lambda c: _ink(font, at, c))
    letter_w, letter_h = _ink(font, at, letter)
    if letter_w > room or letter_h > limit:
        raise CoverError(
            f"{option}: a {width}x{height} px image is too small for this text: at the smallest legible size "
            f"({at} px) {letter!r} ({letter_w}x{letter_h} px) does not fit the {max(0, room)}x"
            f"{max(0, math.floor(limit))} px (half the height) inside the {margin} px safe margins; set the text "
            "on a larger image"
        )

    # greedy wrapping sets a prefix of the text on the same first lines as the whole text: count the characters
    # on the lines that fit below (title blamed) or above (artist blamed) the other text's lines
    other, other_font, other_at = (
        (artist, fonts[1], round(size * ARTIST_RATIO)) if blame_title else (title, fonts[0], size)
    )
    own = wrap(text, font, at, room, True) or []
    fixed = [(t, other_font, other_at) for t in (wrap(other, other_font, other_at, room, True) or [])] if other else []

    def height_with(k: int) -> int:  # the block with the first k lines of the blamed text
        mine = [(t, font, at) for t in own[:k]]
        return _height(mine + fixed if blame_title else fixed + mine)

    kept, more = 0, len(own)  # the most lines that fit, by bisection (the height grows with every line)
    while kept < more:
        mid = (kept + more + 1) // 2
        kept, more = (mid, more) if height_with(mid) <= limit else (kept, mid - 1)
    done = 0
    for line in own[:kept]:
        done = text.index(line, done) + len(line)
    with_other = (" beside the artist" if blame_title else " beside the title") if other else ""
    raise CoverError(
        f"{option} is too long to set legibly on a {width}x{height} px cover: {len(text)} characters, of which "
        f"the first {done} fit at the smallest size ({at} px{with_other}); shorten it"
    )


def _place(lines: list[tuple[str, Path, int]], position: str, width: int, height: int) -> tuple[TextLine, ...]:
    """Stack the lines as a block at ``position`` inside the safe margins of a ``width`` x ``height`` cover."""
    margin = round(MARGIN * min(width, height))
    inks = [_ink(f, s, t) for t, f, s in lines]
    block_h = _height(lines)
    vertical, horizontal = position.split("-")
    top = {"top": margin, "middle": (height - block_h) // 2, "bottom": height - margin - block_h}[vertical]
    placed = []
    for n, ((text, font, size), (w, h)) in enumerate(zip(lines, inks, strict=True)):
        left = {"left": margin, "center": (width - w) // 2, "right": width - margin - w}[horizontal]
        placed.append(TextLine(text, font, size, (left, top)))
        top += h + (_gap(lines[n], lines[n + 1]) if n + 1 < len(lines) else 0)
    return tuple(placed)


def edge_energy(image: Image.Image) -> np.ndarray:
    """Gradient magnitude ``[H, W]`` of the grey image, in grey levels (0-255) per pixel."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    gy = np.abs(np.diff(grey, axis=0, append=grey[-1:]))
    gx = np.abs(np.diff(grey, axis=1, append=grey[:, -1:]))
    return gx + gy


def _region(box: tuple[int, int, int, int], shape: tuple[int, ...], pad: int) -> tuple[slice, slice]:
    """Rows and columns of ``box`` grown by ``pad`` pixels, clipped to an array of ``shape`` (H, W, ...)."""
    x0, y0, x1, y1 = box
    return slice(max(0, y0 - pad), min(shape[0], y1 + pad)), slice(max(0, x0 - pad), min(shape[1], x1 + pad))


def ink_mask(lines: tuple[TextLine, ...], size: tuple[int, int], grow: int = 0) -> np.ndarray:
    """Boolean ``[H, W]`` (``size`` is W, H): the pixels the lines' glyphs touch (any coverage, antialiased edges
    included), grown by ``grow`` pixels in every direction (a square neighbourhood)."""
    mask = Image.new("L", size)
    _draw_lines(ImageDraw.Draw(mask), lines, 255)
    if grow:
        mask = mask.filter(ImageFilter.MaxFilter(2 * grow + 1))
    return np.asarray(mask) > 0


def _color(background: np.ndarray, wanted: tuple[int, int, int] | None) -> tuple[tuple, tuple | None, float]:
    """Text colour, outline colour (None when not needed) and the colour's contrast against the worst pixel of
    ``background`` (``[N, 3]``: the pixels under the glyphs and next to them)."""
    lum = luminance(background.reshape(-1, 3))
    candidates = [wanted] if wanted else [WHITE, BLACK]

    def worst(color: tuple[int, int, int]) -> float:
        return float(contrast_ratio(luminance(np.array(color)), lum).min()) if lum.size else 21.0

    color = max(candidates, key=worst)
    contrast = worst(color)
    if contrast >= MIN_CONTRAST:
        return color, None, contrast
    # the one of black and white farther from the colour: at least sqrt(21) = 4.58:1 against any colour
    outline = max(
        (BLACK, WHITE), key=lambda o: float(contrast_ratio(luminance(np.array(color)), luminance(np.array(o))))
    )
    return color, outline, contrast


def layout_text(
    image: Image.Image,
    title: str = "",
    artist: str = "",
    font: Path | None = None,
    position: str = AUTO,
    color: str = AUTO,
    note: Callable[[str], None] = print,
    labels: tuple[str, str] = LABELS,
) -> TextLayout | None:
    """Plan the text on ``image`` (any size; a square cover usually); None when there is no text. Raises
    CoverError for an unknown position, a bad colour or font, characters no font has, or text that does not
    fit (see :func:`fit_text`); errors about the text name it by ``labels`` (the CLI's options by default)."""
    texts = [check_text(title, labels[0]), check_text(artist, labels[1])]
    if not any(texts):
        return None
    if position != AUTO and position not in POSITIONS:
        raise CoverError(f"--text-position '{position}': expected auto or one of {', '.join(POSITIONS)}")
    wanted = None if color == AUTO else parse_color(color)
    preferred = check_font(font) if font else None
    width, height = image.size
    lines = fit_text(title, artist, fonts_for(texts, preferred, note), width, height, labels)
    energy = edge_energy(image)
    pixels = np.asarray(image.convert("RGB"))
    pad = round(0.02 * min(width, height))

    def calm(candidate: str) -> float:
        placed = _place(lines, candidate, width, height)
        rows, cols = _region(TextLayout(placed, candidate, WHITE, None, 0, 0, 0).box(), energy.shape, pad)
        return float(energy[rows, cols].mean())

    order = PREFERENCE + tuple(p for p in POSITIONS if p not in PREFERENCE)
    chosen = position if position != AUTO else min(order, key=lambda p: (round(calm(p), 3), order.index(p)))
    placed = _place(lines, chosen, width, height)
    # every pixel a glyph touches and its neighbours: the text must read against each one of them
    rows, cols = _region(TextLayout(placed, chosen, WHITE, None, 0, 0, 0).box(), pixels.shape, NEAR + 1)
    local = pixels[rows, cols]
    around = ink_mask(_shifted(placed, cols.start, rows.start), (local.shape[1], local.shape[0]), grow=NEAR)
    text_color, outline, contrast = _color(local[around], wanted)
    stroke = max(OUTLINE_MIN, round(lines[0][2] / 18)) if outline else 0
    return TextLayout(placed, chosen, text_color, outline, stroke, contrast, calm(chosen))


def _shifted(lines: tuple[TextLine, ...], left: int, top: int) -> tuple[TextLine, ...]:
    """The lines placed on a crop whose top-left corner is at (``left``, ``top``)."""
    return tuple(TextLine(ln.text, ln.font, ln.size, (ln.xy[0] - left, ln.xy[1] - top)) for ln in lines)


def _draw_lines(draw: ImageDraw.ImageDraw, lines: tuple[TextLine, ...], fill, stroke: int = 0) -> None:
    for line in lines:
        font = line.image_font()
        left, top, _, _ = font.getbbox(line.text)
        xy = (line.xy[0] - left, line.xy[1] - top)
        draw.text(xy, line.text, font=font, fill=fill, stroke_width=stroke, stroke_fill=fill)


def draw_text(image: Image.Image, layout: TextLayout | None) -> Image.Image:
    """A copy of ``image`` with the planned text drawn, outlined when the layout says so: the outline is the
    glyphs' round stroke (``outline_width`` pixels) joined with their ink grown by ``NEAR`` pixels, so it covers
    every pixel whose contrast counted, in small counters too (FreeType's stroke leaves holes where the strokes
    of both sides of a narrow counter overlap)."""
    out = image.convert("RGB")
    if layout is None:
        return out
    if layout.outline is not None:  # drawn in the text's neighbourhood only: a 3000 px cover is 9 Mpx
        rows, cols = _region(layout.box(), (out.height, out.width), layout.outline_width + NEAR + 2)
        lines, crop = _shifted(layout.lines, cols.start, rows.start), (cols.start, rows.start, cols.stop, rows.stop)
        part = out.crop(crop)
        ring = Image.new("L", part.size)
        _draw_lines(ImageDraw.Draw(ring), lines, 255, layout.outline_width)
        near = ink_mask(lines, part.size, grow=NEAR)
        ring = Image.fromarray(np.where(near, 255, np.asarray(ring)).astype(np.uint8))
        out.paste(Image.composite(Image.new("RGB", part.size, layout.outline), part, ring), crop[:2])
    _draw_lines(ImageDraw.Draw(out), layout.lines, layout.color)
    return out


def set_text(
    image: Image.Image,
    title: str = "",
    artist: str = "",
    font: Path | None = None,
    position: str = AUTO,
    color: str = AUTO,
    note: Callable[[str], None] = print,
    labels: tuple[str, str] = LABELS,
) -> tuple[Image.Image, TextLayout | None]:
    """:func:`layout_text` then :func:`draw_text`; ``note`` gets one line describing the choice."""
    layout = layout_text(image, title, artist, font, position, color, note, labels)
    if layout is not None:
        fonts = ", ".join(sorted({line.font.name for line in layout.lines}))
        how = f"contrast {layout.contrast:.1f}:1 against the picture"
        if layout.outline:
            outline = f"#{bytes(layout.outline).hex()} ({layout.outline_contrast:.1f}:1)"
            how += f", under {MIN_CONTRAST}:1, so outlined in {outline}"
        note(f"text at {layout.position} in {fonts}, colour #{bytes(layout.color).hex()} ({how})")
    return draw_text(image, layout), layout
