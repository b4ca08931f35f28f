"""Release-ready covers: from the 256 px sketch to the file a distributor accepts.

- :mod:`.upscale`: Stable Diffusion's x4 upscaler, then an ESRGAN-family model (spandrel) or Lanczos, to the
  exact target size, in tiles so memory stays bounded;
- :mod:`.typography`: the title and the artist set on the cover (font with the text's glyphs, calm band,
  WCAG contrast);
- :mod:`.check`: the stores' rules (square, 3000-6000 px, sRGB with ICC profile, JPEG/PNG under 10 MB, sharp);
- :mod:`.finish`: all three, written as ``*_release.jpg``.

Nothing heavy is imported here: torch, diffusers and spandrel load when a function needs them.
"""

DEFAULT_SIZE = 3000  # pixels a side: what the distributors recommend
MIN_SIZE = 3000
MAX_SIZE = 6000  # some stores cap the side here
PREVIEW_SIZE = 64  # the least --size: smaller than MIN_SIZE makes a preview, which check-cover fails
MAX_BYTES = 10_000_000  # "under 10 MB"; the decimal megabyte is the stricter reading
