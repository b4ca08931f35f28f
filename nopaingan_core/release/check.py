"""The rules distributors publish for cover art, checked on a file: each with pass/fail and the value measured.

Square; 3000 to 6000 pixels a side; RGB with an sRGB ICC profile; JPEG or PNG; under 10 MB; not blurry;
not pixelated; and, when the release's title and artist are given, the text drawn on the cover (as recorded in
the file by ``finish``) spelled exactly as they are.

Blur is measured as *fine detail*: the share of the image's contrast (RMS of the grey image around its mean)
that a copy reduced to a quarter of the side, then enlarged back with bicubic interpolation, loses; the median
over the tiles of a 6x6 grid that are not flat (RMS contrast over 2 grey levels), so a few crisp letters on a
soft picture do not pass it; the tiles under the text block ``finish`` recorded (``layout.box``) are left out
too, so a long title drawn over half the cover does not either (a cover made elsewhere has no such record: its
letters count as picture). An image enlarged from 256 px by interpolation holds nothing a 750 px copy cannot,
so it scores near 0; a photograph at its own resolution keeps detail down to the pixel. The threshold is
calibrated on scikit-image's public-domain photographs (``bench/upscale.py``, BENCHMARKS.md): each at its own
resolution passes, and each reduced to 1/11.7 of it and enlarged back (256 -> 3000) with bicubic or Lanczos
fails.

Pixelation is the share of neighbouring rows (and columns: the smaller of the two counts) that nearly repeat
each other, among the pairs of rows that both have detail (a band of flat sky is not pixelation): their mean
difference is under a quarter of that of the strongest tenth of the pairs, and it is not one step of a smooth
ramp, i.e. the change from row to row (a signed vector over the columns) points in another direction than the
change just before and just after (cosine similarity at most 0.5 with both). A nearest-neighbour enlargement by
k repeats (k-1)/k of them in both directions, JPEG noise or not (what is left between repeated rows is noise,
unrelated from one row to the next); an interpolated (bicubic, Lanczos) enlargement changes a little in the
same direction row after row, which is blur (the sharpness rule's business), not blockiness; a photograph has
edges in every row. Rows are judged in 8 strips of columns (columns in 8 strips of rows), so an object in a flat
sky is judged apart from the sky and letters drawn over a blocky picture do not make its rows look like a ramp;
the text block ``finish`` recorded is left out.

A *flat design* (at least 3/4 of the tiles flat: a colour field, a gradient too gentle to show, a few letters
on a plain ground) is neither blurry nor pixelated: distributors reject soft or blocky pictures, not plain ones.
Both rules pass it and say so; the letters on it are not judged (a nearest-neighbour enlargement of text on a
plain ground passes).
"""

from __future__ import annotations

import json
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

from ..errors import CoverError
from . import MAX_BYTES, MAX_SIZE, MIN_SIZE

DETAIL_FACTOR = 4  # fine detail: what a copy with 1/4 of the side loses
DETAIL_GRID = 6  # tiles per side for the median
MIN_DETAIL = 0.1  # scikit-image photos score 0.19-0.41, their 256 -> 3000 enlargements 0.008-0.035
REPEAT_LEVEL = 0.25  # a row "repeats" when it differs from the next by under this share of the edges' difference
RAMP_LEVEL = 0.5  # cosine similarity from which consecutive row changes are one smooth ramp, not a repeat
SEGMENTS = 8  # strips of columns (of rows) in which repeats are judged
MAX_REPEATS = 0.5  # share of repeated rows/columns above which a cover counts as pixelated
FLAT_SPREAD = 2.0  # grey levels of RMS contrast up to which a tile (or row) counts as flat
FLAT_COVER = 0.75  # share of flat tiles from which a cover is a flat design: neither blurry nor pixelated
RECORD_KEY = "nopaingan"  # the JSON record finish writes (JPEG comment, PNG text chunk)
MAX_PIXELS = 12_000 * 12_000  # larger images are refused (Pillow's decompression-bomb guard, made deliberate)


@dataclass(frozen=True)
class Rule:
    """One rule's verdict: ``measured`` and ``expected`` are short human-readable values; ``value`` is the
    measured quantity as a number (bytes for the file size, pixels ``[w, h]`` for the size, the score for
    sharpness and pixelation, None for rules that compare names) for scripts (``check-cover --json``)."""

    name: str
    passed: bool
    measured: str
    expected: str
    value: float | int | list[int] | None = None

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:<12} {self.measured:<28} ({self.expected})"


HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def to_8bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grey images (Pillow modes I;16*, I, F) as 8-bit ``L``, scaled, not
    clipped: 16-bit and integer data up to 65535 are divided by 257, wider integers by their maximum / 255;
    floats up to 1.0 count as 0-1, others as 0-255 (clipped). Other modes are returned as they are."""
    if image.mode not in HIGH_BIT_MODES:
        return image
    values = np.asarray(image, dtype=np.float64)
    top = float(values.max()) if values.size else 0.0
    if image.mode == "F":
        scale = 255.0 if top <= 1.0 else 1.0
    elif image.mode.startswith("I;16") or top <= 65535:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / top
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")


def upright(image: Image.Image) -> Image.Image:
    """The image as it is meant to be seen: its EXIF orientation applied, then 8 bits a channel
    (:func:`to_8bit`)."""
    return to_8bit(ImageOps.exif_transpose(image))


def grey(image: Image.Image) -> np.ndarray:
    """The image as grey levels ``[H, W]`` float32 in 0-255."""
    return np.asarray(image.convert("L"), dtype=np.float32)


def detail_tiles(image: Image.Image, factor: int = DETAIL_FACTOR, grid: int = DETAIL_GRID) -> list[float | None]:
    """For each of a ``grid`` x ``grid`` of tiles, the share (0-1) of its RMS contrast lost by reducing the image
    ``factor`` times and enlarging it back; None for a flat tile (RMS contrast up to ``FLAT_SPREAD`` grey
    levels), which has no detail to lose or keep."""
    g = grey(image)
    h, w = g.shape
    small = Image.fromarray(g).resize((max(1, w // factor), max(1, h // factor)), Image.BOX)
    lost = g - np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float32)
    shares: list[float | None] = []
    for i in range(grid):
        for j in range(grid):
            rows, cols = slice(i * h // grid, (i + 1) * h // grid), slice(j * w // grid, (j + 1) * w // grid)
            spread = float(g[rows, cols].std()) if g[rows, cols].size else 0.0
            detail = float(np.sqrt(np.mean(lost[rows, cols] ** 2))) / spread if spread > FLAT_SPREAD else None
            shares.append(detail)
    return shares


def fine_detail(image: Image.Image, factor: int = DETAIL_FACTOR, grid: int = DETAIL_GRID) -> float:
    """The median of :func:`detail_tiles` over the tiles that are not flat (0.0 when all are). The median keeps
    a few crisp title letters from making a blurry cover pass."""
    shares = [share for share in detail_tiles(image, factor, grid) if share is not None]
    return float(np.median(shares)) if shares else 0.0


def _repeated(diffs: np.ndarray, ramp: np.ndarray | None = None) -> float:
    """Share of neighbour pairs whose difference is under a quarter of the strongest tenth's mean (and, where
    ``ramp`` is given, that are not a step of a smooth ramp)."""
    top = float(np.sort(diffs)[-max(1, diffs.size // 10) :].mean())
    if top < 1e-6:
        return 1.0
    small = diffs < REPEAT_LEVEL * top
    return float((small & ~ramp).mean() if ramp is not None else small.mean())


def ramp_steps(changes: np.ndarray) -> np.ndarray:
    """For each row of ``changes`` ``[N, W]`` (signed differences of neighbouring rows), whether it points the
    same way as the one before or after it (cosine similarity over ``RAMP_LEVEL``): a step of a smooth ramp."""
    norms = np.linalg.norm(changes, axis=1)
    cosine = np.einsum("ij,ij->i", changes[:-1], changes[1:]) / (norms[:-1] * norms[1:] + 1e-6)
    ramp = np.zeros(len(changes), bool)
    ramp[:-1] |= cosine > RAMP_LEVEL
    ramp[1:] |= cosine > RAMP_LEVEL
    return ramp


def _repeated_lines(g: np.ndarray, keep: np.ndarray | None = None) -> float:
    """:func:`_repeated` over the pairs of neighbouring rows of ``g``, judged in ``SEGMENTS`` strips of columns
    so that what happens in one part of a row (letters drawn over repeated rows, an object in a flat sky) does not
    decide for the rest: the (pair, strip) cells where both rows have detail (RMS contrast over ``FLAT_SPREAD``;
    a band of flat sky repeats without being pixelated) and that are not a step of a smooth ramp (blur).
    ``keep`` (bool, shape of ``g``) leaves pixels out (the drawn text, when recorded). 0.0 with fewer than 4
    such cells."""
    h, w = g.shape
    keep = np.ones(g.shape, bool) if keep is None else keep
    diffs, ramps = [], []
    for k in range(SEGMENTS):
        cols = slice(k * w // SEGMENTS, (k + 1) * w // SEGMENTS)
        part, kept = g[:, cols], keep[:, cols].all(axis=1)
        if part.shape[1] < 2:
            continue
        busy = (part.std(axis=1) > FLAT_SPREAD) & kept
        pairs = busy[:-1] & busy[1:]
        changes = np.diff(part, axis=0)
        diffs.append(np.abs(changes).mean(axis=1)[pairs])
        ramps.append(ramp_steps(changes)[pairs])
    if not diffs or sum(d.size for d in diffs) < 4:
        return 0.0
    return _repeated(np.concatenate(diffs), np.concatenate(ramps))


def repeats(image: Image.Image, box: list | None = None) -> float:
    """The smaller of the shares of rows and of columns that repeat their neighbour (see the module doc),
    leaving out the pixels of ``box`` (left, top, right, bottom: the drawn text) when given."""
    g = grey(image)
    if min(g.shape) < 2:
        return 1.0
    keep = np.ones(g.shape, bool)
    if box is not None:
        left, top, right, bottom = (max(0, int(round(v))) for v in box)
        keep[top:bottom, left:right] = False
    return min(_repeated_lines(g, keep), _repeated_lines(g.T, keep.T))


def record(image: Image.Image) -> dict:
    """The generation record ``finish`` wrote into the file, or {}: a JPEG's COM segments joined in file order
    (a long record spans several), a PNG's ``nopaingan`` text chunk."""
    if image.format == "JPEG":
        raw = b"".join(data for marker, data in getattr(image, "applist", []) if marker == "COM")
        raw = raw or image.info.get("comment", b"")
    else:
        raw = image.info.get(RECORD_KEY, "")
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        data = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    if image.format == "JPEG":
        data = data.get(RECORD_KEY, {}) if isinstance(data, dict) else {}
    return data if isinstance(data, dict) else {}


def profile_name(image: Image.Image) -> str:
    """The embedded ICC profile's description, '' when there is none."""
    icc = image.info.get("icc_profile")
    if not icc:
        return ""
    try:
        from io import BytesIO

        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(BytesIO(icc))).strip()
    except (ImageCms.PyCMSError, OSError):
        return "unreadable profile"


def check_image(image: Image.Image, nbytes: int, title: str | None = None, artist: str | None = None) -> list[Rule]:
    """Every rule on an opened image whose file has ``nbytes`` bytes."""
    w, h = image.size
    side = min(w, h)
    profile = profile_name(image)
    rules = [
        Rule("format", image.format in ("JPEG", "PNG"), image.format or "unknown", "JPEG or PNG"),
        Rule("square", w == h, f"{w}x{h}", "width = height", [w, h]),
        Rule(
            "size", side >= MIN_SIZE and max(w, h) <= MAX_SIZE, f"{w}x{h}", f"{MIN_SIZE}-{MAX_SIZE} px a side", [w, h]
        ),
        Rule("colour mode", image.mode == "RGB", image.mode, "RGB"),
        Rule("ICC profile", "srgb" in profile.lower(), profile or "none", "an sRGB profile embedded"),
        Rule("file size", nbytes < MAX_BYTES, f"{nbytes / 1e6:.2f} MB", f"under {MAX_BYTES / 1e6:.0f} MB", nbytes),
    ]
    rgb = upright(image).convert("RGB")
    tiles = detail_tiles(rgb)
    under_text = text_tiles(record(image), w, h)
    if len(under_text) < len(tiles):  # the drawn letters are crisp whatever the picture: judged without them
        tiles = [share for i, share in enumerate(tiles) if i not in under_text]
    else:
        under_text = set()
    flat = sum(share is None for share in tiles)
    if flat >= FLAT_COVER * len(tiles):
        measured = f"flat design: {flat} of {len(tiles)} tiles flat"
        rules.append(Rule("sharpness", True, measured, f">= {MIN_DETAIL}, or a flat design"))
        rules.append(Rule("pixelation", True, measured, f"< {MAX_REPEATS}, or a flat design"))
    else:
        detail = float(np.median([share for share in tiles if share is not None]))
        measured, expected = f"fine detail {detail:.3f}", f">= {MIN_DETAIL}"
        if under_text:
            measured += f" ({len(under_text)} text tiles out)"
        rules.append(Rule("sharpness", detail >= MIN_DETAIL, measured, expected, round(detail, 4)))
        share = repeats(rgb, text_box(record(image)))
        measured, expected = f"repeated rows/cols {share:.2f}", f"< {MAX_REPEATS}"
        rules.append(Rule("pixelation", share < MAX_REPEATS, measured, expected, round(share, 4)))
    if title is not None or artist is not None:
        rules.append(text_rule(record(image), title or "", artist or "", w, h))
    return rules


def text_box(info: dict) -> list | None:
    """The box (left, top, right, bottom, pixels) of the text ``finish`` recorded drawing, None when none."""
    text, layout = info.get("text"), info.get("layout")
    box = layout.get("box") if isinstance(layout, dict) else None
    drawn = isinstance(text, dict) and any(isinstance(v, str) and v for v in text.values())
    valid = isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)
    return box if drawn and valid else None


def text_tiles(info: dict, w: int, h: int, grid: int = DETAIL_GRID) -> set[int]:
    """Indices (row-major, as :func:`detail_tiles`) of the tiles that the text block recorded by ``finish``
    (:func:`text_box`) overlaps; empty when the record has none or draws no text."""
    box = text_box(info)
    if box is None:
        return set()
    left, top, right, bottom = box
    found = set()
    for i in range(grid):
        for j in range(grid):
            y0, y1, x0, x1 = i * h // grid, (i + 1) * h // grid, j * w // grid, (j + 1) * w // grid
            if left < x1 and right > x0 and top < y1 and bottom > y0:
                found.add(i * grid + j)
    return found


def text_rule(info: dict, title: str, artist: str, w: int, h: int) -> Rule:
    """The text the file's record says was drawn against the release's: equal after Unicode NFC normalisation
    (the same letters however they are composed), nothing stripped; and, when the record has the drawn block's
    box, that box inside the ``w`` x ``h`` canvas."""
    wanted = {"title": title, "artist": artist}
    expected = f"exactly {json.dumps(wanted, ensure_ascii=False)}"
    drawn = info.get("text")
    if not isinstance(drawn, dict):
        return Rule("text", False, "no record of the drawn text", expected)
    same = all(nfc(drawn.get(key, "")) == nfc(value) for key, value in wanted.items())
    box = info.get("layout", {}).get("box")
    inside = box is None or (box[0] >= 0 and box[1] >= 0 and box[2] <= w and box[3] <= h)
    measured = json.dumps(drawn, ensure_ascii=False) + ("" if inside else f", drawn outside the canvas at {box}")
    return Rule("text", same and inside, measured, expected)


def nfc(text: object) -> str:
    return unicodedata.normalize("NFC", text) if isinstance(text, str) else repr(text)


@contextmanager
def open_image(path: Path, what: str) -> Iterator[Image.Image]:
    """The image file at ``path``, decoded, open for the ``with`` block. Raises CoverError naming it as ``what``
    ("cover file '<path>' ...") when it is missing, or when Pillow cannot read it (in the block too: a
    truncated file may only fail there)."""
    if not path.is_file():
        raise CoverError(f"{what} '{path}' does not exist")
    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():  # the size is checked here, with one line, not Pillow's two-line warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow refuses from twice this, before reading the pixels
            with Image.open(path) as image:
                w, h = image.size
                if w * h > MAX_PIXELS:
                    raise CoverError(too_large(path, what, w, h))
                image.load()
                yield image
    except Image.DecompressionBombError as exc:  # over twice Pillow's own limit: refused before the size is read
        raise CoverError(too_large(path, what, 0, 0)) from exc
    except (OSError, SyntaxError) as exc:
        raise CoverError(f"{what} '{path}' is not an image Pillow can read ({exc})") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def too_large(path: Path, what: str, w: int, h: int) -> str:
    """One line refusing an image over :data:`MAX_PIXELS` (``w``/``h`` 0 when unknown)."""
    size = f"{w}x{h} ({w * h / 1e6:.0f} Mpx)" if w else f"over {2 * MAX_PIXELS / 1e6:.0f} Mpx"
    limit = int(MAX_PIXELS**0.5)
    return f"{what} '{path}' is {size}; images over {limit}x{limit} px are refused (memory); reduce it first"


def check_cover(path: str | Path, title: str | None = None, artist: str | None = None) -> list[Rule]:
    """:func:`check_image` on a file. Raises CoverError when it is missing or not an image."""
    path = Path(path)
    with open_image(path, "cover file") as image:
        return check_image(image, path.stat().st_size, title, artist)
