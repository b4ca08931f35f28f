"""The seed's album prompt."""

from __future__ import annotations

DEFAULT_TEMPLATE = "Create an album cover for the album {album}. The genre is {genre}."


def album_prompt(
    album: str,
    genre: str,
    artist: str = "",
    extra: str = "",
    template: str = DEFAULT_TEMPLATE,
) -> str:
    """Fill the template; ``{album}``, ``{genre}`` and ``{artist}`` may appear in it, extra words follow."""
    album, genre, artist, extra = (s.strip() for s in (album, genre, artist, extra))
    if not album:
        raise ValueError("album name is empty")
    try:
        text = template.format(album=album, genre=genre or "unknown", artist=artist)
    except (KeyError, IndexError) as exc:
        raise ValueError(
            f"prompt template {template!r} has an unknown field {exc}; use {{album}}, {{genre}}, {{artist}}"
        ) from exc
    if artist and "{artist}" not in template:
        text = f"{text} By {artist}."
    if extra:
        text = f"{text} {extra}"
    return " ".join(text.split())
