"""Release-ready covers in ComfyUI: the title and artist set on the cover, and the JPEG a distributor accepts.
Both nodes call ``nopaingan_core.release``, the code behind ``nopaingan finish``."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import torch
from PIL import Image

from ..nopaingan_core.errors import CoverError
from ..nopaingan_core.release import DEFAULT_SIZE, MAX_SIZE, PREVIEW_SIZE
from ..nopaingan_core.release.finish import check_size, release_path, write_release
from ..nopaingan_core.release.typography import AUTO, POSITIONS, DrawnText, set_text
from ..nopaingan_core.release.upscale import to_image, to_tensor
from . import bridge
from .handles import CATEGORY

LABELS = ("Cover Title: title", "Cover Title: artist")  # errors name the node's inputs, not the CLI's options
COVER_TEXT = "NOPAINGAN_COVER_TEXT"  # what Cover Title drew, for Save Release Cover's record and check


def _images(batch: torch.Tensor, label: str) -> list:
    """ComfyUI IMAGE ``[B, H, W, 3]`` in [0, 1] -> PIL images. Raises a one-line CoverError starting with
    ``label`` for anything else (a mask, an RGBA or grey tensor, an empty batch)."""
    shape = list(batch.shape) if isinstance(batch, torch.Tensor) else None
    if shape is None or len(shape) != 4 or shape[3] != 3 or 0 in shape:
        found = f"a tensor {shape}" if shape is not None else f"a {type(batch).__name__}"
        raise CoverError(f"{label}: image is {found}; expected a ComfyUI IMAGE [B, H, W, 3] (RGB, B, H, W >= 1)")
    return [to_image(image.permute(2, 0, 1)[None].float().cpu()) for image in batch]


def check_prefix(prefix: str, label: str = "Save Release Cover") -> str:
    """``filename_prefix`` as ComfyUI's save nodes take it (``folder/name`` inside ``output/``). Raises a
    one-line CoverError for an empty or absolute prefix, a ``.`` or ``..`` part, or one ending in a folder
    separator: ComfyUI would name such a file after a folder, possibly outside ``output/``."""
    parts = prefix.replace("\\", "/").split("/")
    absolute = PurePosixPath(prefix).is_absolute() or bool(PureWindowsPath(prefix).drive)
    if not prefix.strip() or absolute or any(part in (".", "..") for part in parts) or not parts[-1].strip():
        raise CoverError(
            f"{label}: filename_prefix {prefix!r}: expected a name inside output/, optionally in folders, such as "
            "'nopaingan/cover' (not empty, not absolute, no '.' or '..' parts, not ending in '/')"
        )
    return prefix


class NoPainGanCoverTitle:
    DESCRIPTION = (
        "Sets the release title and the artist on the cover, exactly as typed: a font with every glyph (the "
        "shipped Inter Display, OFL, or yours), in the calmest band of the picture inside safe margins, sized to "
        "fit, white or black for a WCAG contrast of at least 4.5:1 against every pixel next to the letters "
        "(outlined when any falls short). Any image size. Put it after the upscalers, at the final resolution, "
        "and connect its cover_text to Save Release Cover, which records and checks exactly this text. Apply it "
        "once per cover: the IMAGE keeps no record of text already on it, so a second Cover Title draws its text "
        "over the first and only the second is recorded."
    )
    CATEGORY = f"{CATEGORY}/release"
    RETURN_TYPES = ("IMAGE", COVER_TEXT)
    RETURN_NAMES = ("image", "cover_text")
    OUTPUT_TOOLTIPS = (
        "The cover with its text.",
        "The title and artist exactly as drawn, and where: connect it to Save Release Cover.",
    )
    FUNCTION = "draw"

    @classmethod
    def INPUT_TYPES(cls):
        text = {"dynamicPrompts": False}
        return {
            "required": {
                "image": (
                    "IMAGE",
                    {
                        "tooltip": "The cover (any size; square for a release), already upscaled, without text: one "
                        "Cover Title per cover (a second one's text is drawn over, and recorded instead of, the first)."
                    },
                ),
                "title": ("STRING", {**text, "default": "", "tooltip": "Title as in the metadata; empty: none."}),
                "artist": ("STRING", {**text, "default": "", "tooltip": "Artist as in the metadata; empty: none."}),
                "position": (
                    [AUTO, *POSITIONS],
                    {"tooltip": "auto: the band with the least detail behind the text; or a fixed place."},
                ),
                "font": (
                    "STRING",
                    {**text, "default": "", "tooltip": "Path of a .ttf/.otf; empty: Inter Display SemiBold (OFL)."},
                ),
                "text_color": (
                    "STRING",
                    {**text, "default": AUTO, "tooltip": "auto (white or black, 4.5:1 contrast), a name or #rrggbb."},
                ),
            }
        }

    def draw(self, image: torch.Tensor, title: str, artist: str, position: str, font: str, text_color: str):
        font_path = Path(font) if font.strip() else None
        out, layouts = [], []
        for picture in _images(image, "Cover Title"):
            bridge.throw_if_interrupted()
            drawn, layout = set_text(picture, title, artist, font_path, position, text_color, lambda _: None, LABELS)
            out.append(to_tensor(drawn)[0].permute(1, 2, 0))
            layouts.append(layout)
        return torch.stack(out).to(bridge.intermediate_device()), DrawnText(title, artist, tuple(layouts))


class NoPainGanSaveReleaseCover:
    DESCRIPTION = (
        "Writes each image as a release-ready JPEG in the output folder: resized (Lanczos) to the target size, "
        "sRGB with its ICC profile, under 10 MB, with the title and artist Cover Title drew (its cover_text) in "
        "its metadata. Then checks it against the distributors' rules (square, 3000-6000 px, RGB, sRGB profile, "
        "JPEG, size, sharpness, pixelation, text) and shows the result, saying where the text came from; a soft "
        "picture fails sharpness: upscale it with a model first."
    )
    CATEGORY = f"{CATEGORY}/release"
    RETURN_TYPES = ()
    RETURN_NAMES = ()
    OUTPUT_TOOLTIPS = ()
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The finished cover (after Cover Title)."}),
                "filename_prefix": ("STRING", {"default": "nopaingan/cover", "tooltip": "Folder/name in output/."}),
                "size": (
                    "INT",
                    {
                        "default": DEFAULT_SIZE,
                        "min": PREVIEW_SIZE,
                        "max": MAX_SIZE,
                        "step": 8,
                        "tooltip": "Pixels a side.",
                    },
                ),
            },
            "optional": {
                "cover_text": (
                    COVER_TEXT,
                    {"tooltip": "Cover Title's cover_text: the text it drew, recorded and checked. None: no text."},
                ),
            },
        }

    def save(self, images: torch.Tensor, filename_prefix: str, size: int, cover_text: DrawnText | None = None):
        import folder_paths

        label = "Save Release Cover"
        pictures = _images(images, label)
        size = check_size(size, f"{label}: size")
        drawn = DrawnText.received(cover_text, len(pictures), label)
        source = (
            f"text: as Cover Title drew it, title {drawn.title!r}, artist {drawn.artist!r}"
            if cover_text is not None
            else "text: none connected (cover_text), recorded and checked as a cover without text"
        )
        output = Path(folder_paths.get_output_directory()).resolve()
        folder, name, _, subfolder, _ = folder_paths.get_save_image_path(
            check_prefix(filename_prefix, label), str(output), size, size
        )
        if not (Path(folder) / name).resolve().is_relative_to(output):  # after check_prefix: a link in output/
            raise CoverError(f"{label}: filename_prefix {filename_prefix!r} leads outside {output}; use folder/name")
        shown, report = [], []
        for index, picture in enumerate(pictures):
            if picture.width != picture.height:
                raise CoverError(f"{label}: the image is {picture.width}x{picture.height}, not square")
            final = picture.resize((size, size), Image.Resampling.LANCZOS)
            info = drawn.record(index, size / picture.width) | {"size": size}
            result = write_release(final, release_path(Path(folder) / name), info)
            shown.append({"filename": result.path.name, "subfolder": subfolder, "type": "output"})
            lines = [source, *(rule.line() for rule in result.rules)]
            report.append(f"{result.path.name}:\n" + "\n".join(lines))
        return {"ui": {"images": shown, "text": report}}
