"""Album covers: finding the cover file in an album's folder, and checking and normalising an image with
Pillow so that every cover in a dataset decodes fully and is RGB."""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps

from .errors import CoverError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")

# Stems of cover files, best first, compared without case, spaces or punctuation ("Album Art" = "albumart").
# Windows Media Player's "AlbumArt_{GUID}_Large" and other names that start like these follow them.
COVER_NAMES = ("cover", "front", "folder", "albumart", "frontcover", "coverfront", "albumcover", "artwork")
COVER_PREFIXES = ("cover", "front", "folder", "albumart")

MIN_COVER_SIZE = 64
_EXIF_ORIENTATION = 0x0112


def _cover_rank(path: Path) -> tuple[int, str] | None:
    if path.suffix.lower() not in IMAGE_EXTENSIONS or path.name.startswith("."):
        return None
    stem = re.sub(r"[\W_]+", "", path.stem.casefold())
    if stem in COVER_NAMES:
        return COVER_NAMES.index(stem), path.name.casefold()
    for rank, prefix in enumerate(COVER_PREFIXES):
        if stem.startswith(prefix):
            thumbnail = len(COVER_PREFIXES) if "small" in stem else 0  # after every other candidate
            return len(COVER_NAMES) + rank + thumbnail, path.name.casefold()
    return None


def find_cover_files(directory: Path) -> list[Path]:
    """Image files in ``directory`` whose names say they are the album cover (``Cover.JPG``, ``folder.png``,
    ``front.jpeg``, ``AlbumArt.jpg``...), best first; ties in file name order."""
    ranked = [(rank, path) for path in directory.iterdir() if path.is_file() and (rank := _cover_rank(path))]
    return [path for _, path in sorted(ranked)]


@dataclass(frozen=True)
class Cover:
    """A checked cover: its bytes as written to the dataset, their extension, and its size in pixels."""

    data: bytes
    extension: str
    width: int
    height: int


def normalise_cover(data: bytes, source: str, min_size: int = MIN_COVER_SIZE) -> Cover:
    """Decode the whole image (so truncated files are caught) and return it as RGB: an RGB JPEG that needs no
    rotation keeps its bytes (no second lossy encoding); other JPEGs are re-encoded as JPEG, every other
    format (PNG, WebP, GIF...) becomes PNG. Transparency is flattened onto white."""
    if not data:
        raise CoverError(f"{source}: image is empty (0 bytes)")
    try:
        with Image.open(BytesIO(data)) as image:
            image.load()
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            upright = ImageOps.exif_transpose(image)
            width, height = upright.size
            if min(width, height) < min_size:
                raise CoverError(
                    f"{source}: cover is {width}x{height} px, at least {min_size} px on each side is needed"
                )
            if image.format == "JPEG" and image.mode == "RGB" and orientation == 1:
                return Cover(data, ".jpg", width, height)
            rgb = _to_rgb(upright)
            out = BytesIO()
            if image.format == "JPEG":
                rgb.save(out, "JPEG", quality=95)
                extension = ".jpg"
            else:
                rgb.save(out, "PNG")
                extension = ".png"
    except CoverError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise CoverError(f"{source}: not a readable image ({exc})") from exc
    return Cover(out.getvalue(), extension, width, height)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
