"""Cover in, ``*_release.jpg`` out: upscale, set the text, write an sRGB JPEG under 10 MB, check it.

The JPEG carries the sRGB ICC profile (Pillow's built-in ``sRGB``), the title and artist in EXIF
(ImageDescription, Artist) and the whole generation record as JSON in its comment (``{"nopaingan": {...}}``:
prompt, seed, models, text drawn, upscaling stages), split over as many COM segments as it needs (a JPEG segment
holds at most 65533 bytes; :func:`.check.record` joins them), so a long prompt never stops the cover being
written. Quality starts at 95 and steps down until the file is under 10 MB. It is written under a temporary
name and linked into place, so an interrupted run leaves nothing and an existing file is never replaced: the
name is chosen at write time, ``X_release.jpg`` or, when that is taken (by a file, a folder or a symbolic link,
dangling or not, even one another run made a moment ago), ``X_release_2.jpg``, ``_3``...
"""

from __future__ import annotations

import functools
import json
import os
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, ImageCms

from .. import atomic
from ..errors import CoverError
from . import DEFAULT_SIZE, MAX_BYTES, MAX_SIZE, PREVIEW_SIZE
from .check import RECORD_KEY, Rule, check_cover, open_image, profile_name, record, upright
from .typography import AUTO, check_text, set_text
from .upscale import UpscaleSettings, upscale_cover

QUALITIES = (95, 92, 90, 85, 80, 75, 70, 60, 50, 40, 30)
SEGMENT = 65533  # bytes of data a JPEG marker segment holds
SUFFIX = "_release"
EXIF_DESCRIPTION, EXIF_ARTIST, EXIF_SOFTWARE = 0x010E, 0x013B, 0x0131


@dataclass(frozen=True)
class TextOptions:
    """What is written on the cover and how (``position``/``color``: ``auto`` or a choice, see typography)."""

    title: str = ""
    artist: str = ""
    font: Path | None = None
    position: str = AUTO
    color: str = AUTO


@dataclass(frozen=True)
class FinishResult:
    path: Path
    rules: list[Rule] = field(default_factory=list)
    quality: int = 0

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)


# The ICC header's creation date (bytes 24-35: year, month, day, hour, minute, second as big-endian uInt16; ICC.1
# section 7.2.1). LittleCMS stamps the time the profile is made; a fixed one keeps a finished cover's bytes the same
# from run to run. The header has no profile ID (bytes 84-99 are zero), so no checksum covers the date.
PROFILE_DATE = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)


@functools.cache
def srgb_profile() -> bytes:
    """Pillow's built-in sRGB ICC profile (LittleCMS's), as embedded in every release cover, dated
    :data:`PROFILE_DATE` whenever it is made."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile[:24] + PROFILE_DATE + profile[36:]


PROFILE_MODES = {"RGB ": "RGB", "GRAY": "L", "CMYK": "CMYK", "Lab ": "LAB"}  # ICC colour space -> Pillow mode


def load_cover(path: str | Path) -> tuple[Image.Image, dict]:
    """An RGB sRGB image and the generation record in it ({} if none).

    In order: the EXIF orientation is applied; 16-bit, 32-bit and float images are scaled to 8 bits
    (:func:`.check.to_8bit`); transparency is flattened onto white; an embedded ICC profile other than sRGB
    converts the pixels, in their own mode (grey, RGB, CMYK, Lab), to sRGB. Raises CoverError for a missing or
    unreadable file, or a profile that does not fit the pixels or that littleCMS cannot use."""
    path = Path(path)
    with open_image(path, "image") as opened:
        image, info = upright(opened), record(opened)
        icc, profile = opened.info.get("icc_profile"), profile_name(opened)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
        image = flat.convert("L" if image.mode == "LA" else "RGB")
    elif image.mode in ("P", "1"):
        image = image.convert("RGB" if image.mode == "P" else "L")
    if icc and "srgb" not in profile.lower():
        image = to_srgb(image, icc, f"image '{path}'")
    return image.convert("RGB"), info


def to_srgb(image: Image.Image, icc: bytes, label: str) -> Image.Image:
    """``image`` (mode L, RGB, CMYK or LAB) converted from the ICC profile ``icc`` to sRGB, mode RGB. A grey
    image under an RGB profile is read as RGB; any other mismatch, or a profile littleCMS cannot build a
    transform from, is a CoverError naming ``label``."""
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        space = source.profile.xcolor_space
        mode = PROFILE_MODES.get(space)
        if mode == "RGB" and image.mode == "L":
            image = image.convert("RGB")
        if mode != image.mode:
            raise CoverError(
                f"{label}: its ICC profile describes {space.strip()} colours but the pixels are {image.mode}; "
                "save it without the profile or with one that fits"
            )
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError) as exc:
        raise CoverError(f"{label}: its ICC profile cannot convert the colours to sRGB ({exc})") from exc


def release_path(source: Path, out_dir: Path | None = None) -> Path:
    """``<out_dir or source's folder>/<stem>_release.jpg``, or ``_release_2``, ``_3``... when taken (see
    :func:`next_free`). Another run may take it before it is written: :func:`write_release` then moves on."""
    folder = out_dir or source.parent
    return next_free(folder / f"{source.stem}{SUFFIX}.jpg")


def numbered(first: Path, n: int) -> Path:
    """``first`` for n <= 1, else ``<stem>_<n><suffix>`` (``x_release.jpg`` -> ``x_release_2.jpg``)."""
    return first if n <= 1 else first.with_name(f"{first.stem}_{n}{first.suffix}")


def number_of(first: Path, path: Path) -> int:
    """The n of :func:`numbered` that gives ``path`` (1 for ``first`` or any other name)."""
    tail = path.stem.removeprefix(first.stem + "_")
    return int(tail) if path.stem != first.stem and tail.isdigit() else 1


def next_free(first: Path, after: Path | None = None) -> Path:
    """The first of ``first``, ``first_2``... (after ``after`` when given) that names nothing, not even a dangling
    symbolic link (``os.path.lexists``)."""
    n = 1 if after is None else number_of(first, after) + 1
    while os.path.lexists(numbered(first, n)):
        n += 1
    return numbered(first, n)


def xmp_packet(title: str, artist: str) -> bytes:
    """An XMP packet with the title (dc:title) and artist (dc:creator), UTF-8, for any script."""
    title, artist = escape(title), escape(artist)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/"><xmp:CreatorTool>No-Pain-No-GAN</xmp:CreatorTool>'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>'
        f"<dc:creator><rdf:Seq><rdf:li>{artist}</rdf:li></rdf:Seq></dc:creator>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
    ).encode()


def comment_segments(data: bytes) -> bytes:
    """``data`` as consecutive JPEG COM marker segments (``FF FE``, length, up to :data:`SEGMENT` bytes each), for
    Pillow's ``extra``: readers join them in file order (:func:`.check.record`)."""
    parts = [data[i : i + SEGMENT] for i in range(0, len(data), SEGMENT)]
    return b"".join(b"\xff\xfe" + (len(part) + 2).to_bytes(2, "big") + part for part in parts)


def encode_jpeg(image: Image.Image, info: dict) -> tuple[bytes, int]:
    """JPEG bytes under :data:`MAX_BYTES` with the sRGB profile and ``info`` as metadata, and the quality used.

    Title and artist go into XMP (any script; left out, with the record keeping them, in the unlikely case they
    exceed one segment) and, when plain ASCII, EXIF ImageDescription and Artist too. The record goes into COM
    segments whatever its length. Raises CoverError when even the lowest quality stays over 10 MB."""
    exif = Image.Exif()
    text = info.get("text", {})
    for tag, value in ((EXIF_DESCRIPTION, text.get("title", "")), (EXIF_ARTIST, text.get("artist", ""))):
        if value and value.isascii():
            exif[tag] = value
    exif[EXIF_SOFTWARE] = "No-Pain-No-GAN"
    xmp = xmp_packet(text.get("title", ""), text.get("artist", ""))
    xmp = xmp if len(xmp) <= SEGMENT - 29 else b""  # 29: the XMP namespace header in the segment
    comment = comment_segments(json.dumps({RECORD_KEY: info}, ensure_ascii=False).encode("utf-8"))
    # comment=b"": not the COM the source image carried (Pillow would copy it from image.info).
    # No optimize=True: Pillow then sizes libjpeg's output buffer at width x height bytes whatever the caller
    # asks, and a grainy 3000 px cover at high quality overflows it ("broken data stream", Pillow 13).
    rgb = image.convert("RGB")
    for quality in QUALITIES:
        buffer = BytesIO()
        try:
            rgb.save(
                buffer, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2,
                icc_profile=srgb_profile(), exif=exif, extra=comment, xmp=xmp, comment=b"",
            )  # fmt: skip
        except OSError as exc:
            raise CoverError(f"the cover could not be encoded as JPEG at quality {quality} ({exc})") from exc
        if buffer.tell() < MAX_BYTES:
            return buffer.getvalue(), quality
    raise CoverError(
        f"the {rgb.width} px cover stays over {MAX_BYTES / 1e6:.0f} MB even at JPEG quality {QUALITIES[-1]} with "
        "4:2:0 chroma (it is mostly fine noise); use a smaller --size or a less grainy picture"
    )


def write_new(dest: Path, data: bytes) -> Path:
    """Write ``data`` under ``dest`` in one step (readable as the umask allows, no temporary file left), never
    replacing anything: when the name is taken, even between choosing it and writing (two runs into one folder)
    or by a dangling symbolic link, the next free ``_N`` name (:func:`next_free`) is written instead. Returns
    the name written."""
    first = release_base(dest)
    candidate = dest if not os.path.lexists(dest) else next_free(first, dest)
    while True:
        try:
            return atomic.write_new(candidate, data)
        except FileExistsError:
            candidate = next_free(first, candidate)


def release_base(dest: Path) -> Path:
    """The first name of ``dest``'s series: ``x_release.jpg`` for ``x_release_7.jpg``, else ``dest``."""
    head, _, tail = dest.stem.rpartition("_")
    return dest.with_name(head + dest.suffix) if tail.isdigit() and head.endswith(SUFFIX) else dest


def check_size(size: object, name: str = "--size") -> int:
    """The release cover's side in pixels: an int from ``PREVIEW_SIZE`` to ``MAX_SIZE``. Raises a one-line
    CoverError naming ``name`` (the option, or a node's input) otherwise."""
    if isinstance(size, bool) or not isinstance(size, int) or not PREVIEW_SIZE <= size <= MAX_SIZE:
        raise CoverError(
            f"{name} {size!r}: expected {PREVIEW_SIZE} to {MAX_SIZE} pixels a side (stores want {DEFAULT_SIZE})"
        )
    return size


def check_options(settings: UpscaleSettings, dest: Path) -> None:
    """Fail before any slow work: size in range, output folder writable (CoverError, OutputError)."""
    check_size(settings.size)
    atomic.check_output_folder(dest.parent, "release cover", label=str(dest))


def drawn_text(info: dict | None) -> dict[str, str]:
    """The title and artist an earlier ``finish`` drew on this picture, from its record ({} when none: no
    record, or a record whose text is empty)."""
    text = (info or {}).get("text")
    if not isinstance(text, dict):
        return {}
    drawn = {key: text.get(key, "") for key in ("title", "artist")}
    return drawn if all(isinstance(v, str) for v in drawn.values()) and any(drawn.values()) else {}


def check_redraw(info: dict | None, text: TextOptions, label: str) -> dict[str, str]:
    """The text already drawn on the picture whose record is ``info`` ({} when none). Raises CoverError when
    ``text`` asks for other text on top of it (``label`` names the picture): the old letters would stay in the
    pixels while the record and the check spoke of the new ones. The same text, or none, is fine: it is not
    drawn again and the record keeps it."""
    earlier = drawn_text(info)
    wanted = {"title": text.title, "artist": text.artist}
    if earlier and any(wanted.values()) and wanted != earlier:
        shown = json.dumps(earlier, ensure_ascii=False)
        raise CoverError(
            f"{label} already has {shown} drawn on it (its record says so); drawing other text over it would "
            "leave both in the pixels: finish the cover without text (e.g. generate's PNG), or give no "
            "--title/--artist to keep the text it has"
        )
    return earlier


def finish_image(
    image: Image.Image,
    dest: Path,
    text: TextOptions = TextOptions(),
    prompt: str = "",
    settings: UpscaleSettings | None = None,
    x4: Any = None,
    model: Any = None,
    info: dict | None = None,
    note: Callable[[str], None] = print,
    sources: dict | None = None,
) -> FinishResult:
    """Upscale ``image`` to ``settings.size``, set the text, write ``dest`` (JPEG; the next free ``_N`` name when
    it is taken) and check it.

    ``x4``/``model``: loaded upscalers (see :mod:`.upscale`) or None; ``info``: the generation record to keep
    (prompt, seed...), to which the text, the upscaling settings, every stage and ``sources`` (where the
    upscalers came from: :func:`.cli.upscaler_sources`) are added. When ``info`` says text was drawn already
    (finishing a finished cover), that text is kept in the record and not drawn again; other text is refused
    (:func:`check_redraw`, CoverError)."""
    settings = settings or UpscaleSettings()
    check_options(settings, dest)
    check_text(text.title, "--title")
    check_text(text.artist, "--artist")
    earlier = check_redraw(info, text, "the cover")
    stages: list[str] = []

    def log(line: str) -> None:
        stages.append(line)
        note(line)

    big = upscale_cover(image, prompt, x4, model, settings, log)
    record_ = dict(info or {}) | {
        "prompt": prompt,
        "upscale": asdict(settings) | (sources or {}) | {"stages": stages},
    }
    if earlier:
        log(
            f"text {json.dumps(earlier, ensure_ascii=False)} is already drawn on this cover (its record says so): "
            "kept, not drawn again"
        )
        record_["text"] = earlier
        record_["layout"] = scaled_layout((info or {}).get("layout"), image.width, settings.size)
        return write_release(big, dest, record_)
    covered, layout = set_text(big, text.title, text.artist, text.font, text.position, text.color, note)
    record_["text"] = {"title": text.title, "artist": text.artist}
    if layout is not None:
        record_["layout"] = layout.record()
    return write_release(covered, dest, record_)


def scaled_layout(layout: Any, old_side: int, new_side: int) -> dict:
    """An earlier record's ``layout`` with its ``box`` scaled from ``old_side`` to ``new_side`` pixels ({} when
    there is none)."""
    if not isinstance(layout, dict):
        return {}
    box = layout.get("box")
    if isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box):
        layout = layout | {"box": [round(v * new_side / max(old_side, 1)) for v in box]}
    return layout


def write_release(image: Image.Image, dest: Path, info: dict) -> FinishResult:
    """Encode ``image`` (already at its final size, text drawn) as the release JPEG with ``info`` as its record,
    write it to ``dest`` (never replacing anything: the next free name when taken, see :func:`write_new`) and
    check it against the drawn ``info["text"]``."""
    text = info.get("text", {})
    data, quality = encode_jpeg(image, info)
    dest = write_new(dest, data)
    return FinishResult(dest, check_cover(dest, text.get("title", ""), text.get("artist", "")), quality)
