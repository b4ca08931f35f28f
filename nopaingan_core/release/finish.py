"""Cover in, ``*_release.jpg`` out: upscale, set the text, write an sRGB JPEG under 10 MB, check it.

The JPEG carries the sRGB ICC profile (Pillow's built-in ``sRGB``), the title and artist in EXIF
(ImageDescription, Artist) and the whole generation record as JSON in its comment (``{"nopaingan": {...}}``:
prompt, seed, models, text drawn, upscaling stages). Quality starts at 95 and steps down until the file is under
10 MB. It is written under a temporary name and linked into place, so an interrupted run leaves nothing and an
existing file is never replaced: ``X_release.jpg`` is taken, ``X_release_2.jpg`` is next.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, ImageCms

from .. import atomic
from ..errors import CoverError
from . import MAX_BYTES, MAX_SIZE, PREVIEW_SIZE
from .check import RECORD_KEY, Rule, check_cover, open_image, profile_name, record, upright
from .typography import AUTO, check_text, set_text
from .upscale import UpscaleSettings, upscale_cover

QUALITIES = (95, 92, 90, 85, 80, 75, 70, 60, 50)
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


def srgb_profile() -> bytes:
    """Pillow's built-in sRGB ICC profile, as embedded in every release cover."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


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
    """``<out_dir or source's folder>/<stem>_release.jpg``, or ``_release_2``, ``_3``... when taken."""
    folder = out_dir or source.parent
    stem = source.stem
    path, n = folder / f"{stem}{SUFFIX}.jpg", 2
    while path.exists():
        path, n = folder / f"{stem}{SUFFIX}_{n}.jpg", n + 1
    return path


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


def encode_jpeg(image: Image.Image, info: dict) -> tuple[bytes, int]:
    """JPEG bytes under :data:`MAX_BYTES` with the sRGB profile and ``info`` as metadata, and the quality used.

    Title and artist go into XMP (any script) and, when plain ASCII, EXIF ImageDescription and Artist too."""
    exif = Image.Exif()
    text = info.get("text", {})
    for tag, value in ((EXIF_DESCRIPTION, text.get("title", "")), (EXIF_ARTIST, text.get("artist", ""))):
        if value and value.isascii():
            exif[tag] = value
    exif[EXIF_SOFTWARE] = "No-Pain-No-GAN"
    xmp = xmp_packet(text.get("title", ""), text.get("artist", ""))
    comment = json.dumps({RECORD_KEY: info}, ensure_ascii=False).encode("utf-8")
    # No optimize=True: Pillow then sizes libjpeg's output buffer at width x height bytes whatever the caller
    # asks, and a grainy 3000 px cover at high quality overflows it ("broken data stream", Pillow 13).
    rgb = image.convert("RGB")
    for quality in QUALITIES:
        buffer = BytesIO()
        try:
            rgb.save(
                buffer, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2,
                icc_profile=srgb_profile(), exif=exif, comment=comment, xmp=xmp,
            )  # fmt: skip
        except OSError as exc:
            raise CoverError(f"the cover could not be encoded as JPEG at quality {quality} ({exc})") from exc
        if buffer.tell() < MAX_BYTES:
            return buffer.getvalue(), quality
    raise CoverError(f"the cover stays over {MAX_BYTES / 1e6:.0f} MB even at JPEG quality {QUALITIES[-1]}")


def write_new(dest: Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` in one step (readable as the umask allows, no temporary file left), refusing
    to replace an existing file (CoverError)."""
    try:
        atomic.write_new(dest, data)
    except FileExistsError:
        raise CoverError(f"'{dest}' already exists; it is left as it is") from None


def check_options(settings: UpscaleSettings, dest: Path) -> None:
    """Fail before any slow work: size in range, output folder writable (CoverError, OutputError)."""
    if not PREVIEW_SIZE <= settings.size <= MAX_SIZE:
        raise CoverError(f"--size {settings.size}: expected {PREVIEW_SIZE} to {MAX_SIZE} pixels (stores want 3000)")
    atomic.check_output_folder(dest.parent, "release cover", label=str(dest))


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
) -> FinishResult:
    """Upscale ``image`` to ``settings.size``, set the text, write ``dest`` (JPEG, must not exist) and check it.

    ``x4``/``model``: loaded upscalers (see :mod:`.upscale`) or None; ``info``: the generation record to keep
    (prompt, seed...), to which the text and upscaling settings are added.
    """
    settings = settings or UpscaleSettings()
    check_options(settings, dest)
    check_text(text.title, "--title")
    check_text(text.artist, "--artist")
    stages: list[str] = []

    def log(line: str) -> None:
        stages.append(line)
        note(line)

    big = upscale_cover(image, prompt, x4, model, settings, log)
    covered, layout = set_text(big, text.title, text.artist, text.font, text.position, text.color, note)
    record_ = dict(info or {}) | {
        "prompt": prompt,
        "upscale": asdict(settings) | {"stages": stages},
        "text": {"title": text.title, "artist": text.artist},
    }
    if layout is not None:
        record_["layout"] = {
            "position": layout.position,
            "fonts": sorted({line.font.name for line in layout.lines}),
            "color": f"#{bytes(layout.color).hex()}",
            "outline": layout.outline is not None,
            "contrast": round(layout.contrast, 2),
            "outline_contrast": round(layout.outline_contrast, 2),
            "box": list(layout.box()),
        }
    return write_release(covered, dest, record_)


def write_release(image: Image.Image, dest: Path, info: dict) -> FinishResult:
    """Encode ``image`` (already at its final size, text drawn) as the release JPEG with ``info`` as its record,
    write it to ``dest`` (never replacing a file) and check it against the drawn ``info["text"]``."""
    text = info.get("text", {})
    data, quality = encode_jpeg(image, info)
    write_new(dest, data)
    return FinishResult(dest, check_cover(dest, text.get("title", ""), text.get("artist", "")), quality)
