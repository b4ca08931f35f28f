"""Reading a dataset folder written by ``nopaingan dataset import``: one album per line of
``metadata.jsonl`` (Hugging Face datasets convention), with its cover (``file_name``) and audio (``audio``)
given relative to the folder. Caching, training and evaluation see the dataset only through
:func:`read_dataset`, so a change of schema touches this module alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nopaingan_core.prompt import DEFAULT_TEMPLATE, album_prompt

from .errors import DatasetError, count_text
from .json_text import parse_json

METADATA = "metadata.jsonl"
TRAIN = "train"
EVAL = "eval"
SPLITS = (TRAIN, EVAL)
REQUIRED = ("id", "file_name", "audio", "album", "split")


@dataclass(frozen=True)
class Album:
    """One album of the dataset; ``audio`` and ``cover`` are absolute paths."""

    id: str
    artist: str
    album: str
    song: str
    genre: str
    split: str
    audio: Path
    cover: Path

    def prompt(self, template: str = DEFAULT_TEMPLATE) -> str:
        """The seed's prompt: album name and genre (the artist only if the template asks for it)."""
        return album_prompt(self.album, self.genre, self.artist if "{artist}" in template else "", template=template)


def read_dataset(data: str | Path, split: str | None = None) -> list[Album]:
    """Albums of ``data/metadata.jsonl`` in file order, only those of ``split`` when given.

    Refuses a missing file, malformed lines, missing fields, unknown splits, duplicate ids and covers or
    audio files that are not there, naming the line and what was wrong.
    """
    data = Path(data)
    path = data / METADATA
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not path.is_file():
        raise DatasetError(f"{data}: no {METADATA}; build the dataset folder with `nopaingan dataset import`")
    albums: list[Album] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        row = parse_json(line, where)
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a JSON object, found {type(row).__name__}")
        missing = [key for key in REQUIRED if not row.get(key)]
        if missing:
            raise DatasetError(
                f"{where}: expected the fields {', '.join(REQUIRED)}, found {count_text(len(missing), 'field')} "
                f"missing or empty: {', '.join(missing)}"
            )
        if row["split"] not in SPLITS:
            raise DatasetError(f"{where}: split must be one of {', '.join(SPLITS)}, found {row['split']!r}")
        if row["id"] in seen:
            raise DatasetError(f"{where}: album id {row['id']!r} appears twice")
        seen.add(row["id"])
        album = Album(
            id=str(row["id"]),
            artist=str(row.get("artist") or ""),
            album=str(row["album"]),
            song=str(row.get("song") or ""),
            genre=_genre(row),
            split=row["split"],
            audio=data / row["audio"],
            cover=data / row["file_name"],
        )
        for what, file in (("audio", album.audio), ("cover", album.cover)):
            if not file.is_file():
                raise DatasetError(f"{where}: {what} file {file} does not exist")
        if split is None or album.split == split:
            albums.append(album)
    return albums


def _genre(row: dict) -> str:
    """``genre`` (the main one), else the first of ``genres``, else "unknown" as the import writes it."""
    if row.get("genre"):
        return str(row["genre"])
    genres = row.get("genres") or []
    return str(genres[0]) if genres else "unknown"
