"""``nopaingan dataset import``: music folders and manifests in, one dataset folder out.

The folder follows the Hugging Face datasets convention (``metadata.jsonl`` beside ``covers/`` and
``audio/``); every album that is left out is listed with its reason in ``skipped.jsonl``. New and changed
files wait in a temporary folder inside the dataset folder until the run completes, then move in, and unchanged
files are left alone: an interrupted import leaves the folder as it was and can simply be run again, and a
repeated one changes nothing. A run into an earlier dataset folder adds to it: the albums it brings replace
their earlier versions, the others stay as they were (``replace`` keeps only the run's albums).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shlex
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from tqdm import tqdm

from nopaingan_core.audio import AUDIO_EXTENSIONS, AudioInfo, check_clip, decode, decoded_duration, probe
from nopaingan_core.errors import AudioError, NoPainGanError

from .atomic import LOCK_SUFFIX, StagedFiles, folder_lock, remove_stale_staging, staging_folders, write_text
from .candidates import AlbumCandidate, CoverRef, TrackRef
from .cleaning import LATIN_LETTERS, UNKNOWN, album_key, artist_genres, fill_genres, normalise_genres
from .covers import MIN_COVER_SIZE, Cover, normalise_cover
from .download import Downloader, default_cache_dir, is_url
from .errors import (
    EXPIRED_STATUSES,
    CatalogueUnavailableError,
    CoverError,
    DatasetError,
    HTTPStatusError,
    LinkExpiredError,
    UnreachableError,
    count_text,
)
from .inputs import distinct_files
from .json_text import DuplicateFieldError, parse_json
from .manifest import MANIFEST_EXTENSIONS, read_manifest
from .music_folders import VARIOUS_ARTISTS, scan_music_folder
from .split import EVAL, EVAL_FRACTION, TRAIN, assign_splits
from .tags import embedded_picture

METADATA = "metadata.jsonl"
SKIPPED = "skipped.jsonl"
CARD = "README.md"
AUDIO_DIR = "audio"
COVERS_DIR = "covers"
CHECK_SECONDS = 2.0
CACHE_DIR = "cache"  # `nopaingan dataset cache` writes here by default
_OWN_ENTRIES = {METADATA, SKIPPED, CARD, AUDIO_DIR, COVERS_DIR, CACHE_DIR}
# what an interrupted write of one of the folder's files leaves (nopaingan_core.atomic.temporary_beside)
_OWN_TEMPORARY = re.compile(r"\.(metadata\.jsonl|skipped\.jsonl|README\.md)\..+\.tmp")
# The `nopaingan dataset` commands that write a dataset folder, and what the progress bar says they do
_DOING = {"import": "importing", "fetch": "fetching"}
_DONE = {"import": "imported", "fetch": "fetched"}  # and what their summary line says they did
# in every card a run wrote (naming its command): the folder is ours
CARD_MARKS = tuple(f"Written by `nopaingan dataset {command}`" for command in _DOING)
_ROW_FIELDS = ("id", "file_name", "audio", "artist", "album", "split", "source")
_SKIPPED_FIELDS = ("source", "artist", "album", "reason")
# Notes of a run besides its report (the staging folders killed runs left, removed): warnings, so that they show with
# no logging set up, on a logger of their own, which --quiet silences (training.cli.quiet_libraries)
NOTES = logging.getLogger("training.notes")
# Decoder name prefix (PyAV names decoders "mp3float", "libopus", "pcm_s16le"...) -> file extension.
_CODEC_EXTENSIONS = {
    "mp3": ".mp3",
    "flac": ".flac",
    "vorbis": ".ogg",
    "opus": ".opus",
    "aac": ".m4a",
    "pcm_": ".wav",
}

GenreFromAudio = Callable[[Path], str | None]


@dataclass(frozen=True)
class Skipped:
    """An album left out of the dataset, and why."""

    source: str
    artist: str
    album: str
    reason: str


@dataclass(frozen=True)
class EarlierDataset:
    """What earlier runs left in a dataset folder: its ``metadata.jsonl`` and ``skipped.jsonl`` rows."""

    rows: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


@dataclass
class ImportReport:
    """What :func:`import_dataset` did: this run's albums (its rows of ``metadata.jsonl``) and the albums it left
    out, the earlier albums of the folder it kept beside them or removed (``replace``), and whether the folder's
    ``cache/`` predates the albums' changes (this run's or an earlier one's), made with ``cache_options``."""

    out: Path
    albums: list[dict] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    cache_outdated: bool = False
    cache_options: str = ""  # the `dataset cache` options the folder's cache/ was made with ("": unknown)
    command: str = "import"  # the `nopaingan dataset` command that ran: "import" or "fetch"

    def count(self, split: str, rows: Iterable[dict] | None = None) -> int:
        """This run's albums on ``split`` (or those of ``rows``)."""
        return sum(1 for row in (self.albums if rows is None else rows) if row["split"] == split)

    def summary(self) -> str:
        """The command's one-line summary."""
        line = (
            f"{_DONE[self.command]} {count_text(len(self.albums), 'album')} (train {self.count(TRAIN)}, "
            f"eval {self.count(EVAL)}), "
            f"skipped {len(self.skipped)}"
        )
        line += f" (see {self.out / SKIPPED})" if self.skipped else ""
        if self.kept:
            every = [*self.kept, *self.albums]
            line += (
                f"; kept {count_text(len(self.kept), 'earlier album')} ({len(every)} in all: "
                f"train {self.count(TRAIN, every)}, eval {self.count(EVAL, every)})"
            )
        if self.removed:
            line += f"; removed {count_text(len(self.removed), 'earlier album')} not in this run"
        line += self._listed_genres() if self.command == "fetch" else self._guesses()
        if self.cache_outdated:
            command = f"nopaingan dataset cache {shlex.quote(str(self.out))}"
            again = (
                f"run `{command} {self.cache_options}` again"
                if self.cache_options
                else f"run `{command}` again with the options it was made with"
            )
            line += f"; {self.out / CACHE_DIR} predates the albums' changes: {again} before training"
        return line

    def _guesses(self) -> str:
        """What no tag said (an import): names taken from folder names or left unknown, genres left unknown."""
        counts = {
            "artist from a folder name": sum(r.get("artist_source") == "folder name" for r in self.albums),
            "artist unknown": sum(r.get("artist_source") == UNKNOWN for r in self.albums),
            "album from a folder name": sum(r.get("album_source") == "folder name" for r in self.albums),
            "album unknown": sum(r.get("album_source") == UNKNOWN for r in self.albums),
            "genre unknown": sum(r.get("genre_source") == UNKNOWN for r in self.albums),
        }
        said = [f"{what} for {n}" for what, n in counts.items() if n]
        where = f"(artist_source, album_source, genre_source in {METADATA})"
        return f"; not in tags: {', '.join(said)} {where}" if said else ""

    def _listed_genres(self) -> str:
        """Where the genres that the album list did not give came from (a fetch: the names are the list's, and
        no album has tags): the catalogue's album, the artist's other albums, or nowhere (``genre_source``)."""
        counts = {
            "from the catalogue": sum(r.get("genre_source") == "catalogue" for r in self.albums),
            "from the artist's other albums": sum(r.get("genre_source") == "artist" for r in self.albums),
            "from the audio": sum(r.get("genre_source") == "audio" for r in self.albums),
            "unknown": sum(r.get("genre_source") == UNKNOWN for r in self.albums),
        }
        said = [f"{what} for {n}" for what, n in counts.items() if n]
        return f"; genre not in the list: {', '.join(said)} (genre_source in {METADATA})" if said else ""


def import_dataset(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    downloader: Downloader | None = None,
    eval_fraction: float = EVAL_FRACTION,
    seed: int = 0,
    link: bool = True,
    min_cover_size: int = MIN_COVER_SIZE,
    genre_from_audio: GenreFromAudio | None = None,
    replace: bool = False,
    progress: bool = False,
) -> ImportReport:
    """Build the dataset folder ``out`` from music folders and manifests (CSV, TSV, JSON, JSON lines), or add
    to the one an earlier run wrote there (see :func:`build_dataset`; ``replace`` keeps only this run's albums).

    Albums keep the order of ``sources``; the first of several with the same artist and album is kept, and a
    source named twice (``music ./music``, a link to it) is read once (:func:`~training.inputs.distinct_files`).
    URLs are fetched by ``downloader`` (by default one caching under ``~/.cache/nopaingan/downloads``).
    Audio is hard-linked into ``out`` when ``link`` and the file system allow, else copied.
    ``genre_from_audio`` is asked for the genre of an album that has none of its own and whose artist has
    no other album with one; it gets the album's audio file (still in a staging folder in ``out`` while the
    import runs) and returns a genre or None.
    """
    out = Path(out).expanduser()
    if not sources:
        raise DatasetError("no sources given: expected music folders or manifests")
    _check_options(out, eval_fraction, replace)
    sources = distinct_files([Path(src) for src in sources])[0]  # a folder named twice is read once
    candidates = [album for src in sources for album in _read_source(src.expanduser(), out, progress)]
    return build_dataset(
        candidates,
        out,
        downloader=downloader,
        eval_fraction=eval_fraction,
        seed=seed,
        link=link,
        min_cover_size=min_cover_size,
        genre_from_audio=genre_from_audio,
        replace=replace,
        progress=progress,
    )


def build_dataset(
    candidates: Iterable[AlbumCandidate],
    out: str | Path,
    *,
    downloader: Downloader | None = None,
    eval_fraction: float = EVAL_FRACTION,
    seed: int = 0,
    link: bool = True,
    min_cover_size: int = MIN_COVER_SIZE,
    genre_from_audio: GenreFromAudio | None = None,
    replace: bool = False,
    progress: bool = False,
    total: int | None = None,
    command: str = "import",
) -> ImportReport:
    """Write the dataset folder ``out`` from albums as sources describe them (see :func:`import_dataset`).

    ``out`` must be new, empty or a dataset folder a run of this function wrote (:func:`check_out`). Into such a
    folder the run adds: its albums replace their earlier versions (same album: same artist and album after
    normalisation, or the same catalogue album), the folder's other albums stay as they were (row, files and
    side of the split), and an artist already there keeps its side (:func:`~training.split.assign_splits`,
    which takes a fetched album's artist by the list's and the catalogue's name). With ``replace`` the folder
    holds this run's albums only, as a new one would.

    Of the run's albums that are one album, the first is kept and the others are listed as its duplicates:
    the same artist and album after normalisation, the same catalogue album (``extra``'s ``catalogue`` and
    ``catalogue_id``: two spellings a catalogue resolves alike), or, for ``remote`` (catalogue) albums, the
    same preview URL.

    ``candidates`` may be a lazy iterable (``total`` is then its length for the progress bar, which says what
    ``command`` does: ``importing albums``): each album is checked and staged as it comes, so a source that looks
    albums up one by one interleaves with the downloads. ``command`` (``import`` or ``fetch``) is named in the
    dataset card. A candidate's ``extra`` fields are added to its metadata row. Nothing goes into ``out`` before
    every album has been through: a server or catalogue that does not answer (:class:`CatalogueUnavailableError`,
    naming ``out``) or an interruption leaves it as it was.
    While it runs, ``out`` is locked (:func:`~training.atomic.folder_lock`): a second run into it is refused.
    """
    out = Path(out).expanduser()
    with folder_lock(out):  # another run into out refused while this one runs
        earlier = _check_options(out, eval_fraction, replace)
        existed = out.exists()
        _remove_leftover_staging(out)
        downloader = downloader or Downloader(default_cache_dir())
        staged = StagedFiles(out)
        seen: list[AlbumCandidate] = []
        seen_keys: set[str] = set()
        imported: list[tuple[AlbumCandidate, dict]] = []
        skipped: list[Skipped] = []
        first: dict[str, str] = {}  # album key or catalogue album -> the first album of this run that is it
        previews: dict[str, str] = {}  # preview URL -> the first album of this run with it
        doing = _DOING[command]
        bar = tqdm(candidates, desc=f"{doing} albums", unit="album", disable=not progress, total=total)
        try:
            for candidate in bar:
                seen.append(candidate)
                key = _album_key(candidate.artist, candidate.album, candidate.source)
                seen_keys.add(key)
                same = _catalogue_key(candidate.extra)
                try:
                    if candidate.problem:
                        raise DatasetError(candidate.problem)
                    if key in first:
                        raise DatasetError(f"duplicate of {first[key]}: the same artist and album after normalisation")
                    if same in first:
                        raise DatasetError(f"duplicate of {first[same]}: the same {_catalogue_album(candidate.extra)}")
                    try:
                        row = _import_album(candidate, staged, downloader, link, min_cover_size, previews)
                    except LinkExpiredError as exc:
                        if candidate.refresh is None:
                            raise
                        candidate = seen[-1] = _asked_anew(candidate, exc)
                        try:
                            row = _import_album(candidate, staged, downloader, link, min_cover_size, previews)
                        except (UnreachableError, CatalogueUnavailableError):
                            raise
                        except NoPainGanError as again:
                            raise DatasetError(
                                f"{again} (asked anew: the cached answer's links had expired)"
                            ) from again
                except CatalogueUnavailableError:  # asking anew found the catalogue out of reach: stop
                    raise
                except UnreachableError as exc:  # not the album's fault: stop before anything goes into out
                    host = urlsplit(exc.url).netloc or "a download server"
                    raise CatalogueUnavailableError(host, exc.reason, exc.tries, kind="download server") from exc
                except NoPainGanError as exc:
                    skipped.append(Skipped(candidate.source, candidate.artist, candidate.album, str(exc)))
                    continue
                kept_as = f"{row['id']} ({candidate.source})"
                first |= {k: kept_as for k in (key, same) if k}
                if candidate.remote:
                    previews[row["audio_source"]] = kept_as
                imported.append((candidate, row))
            _fill_genres(imported, seen, staged, genre_from_audio)
            rows = [row for _, row in imported]
            new = {k: r for r in rows for k in _identities(r)}
            replaced = [r for r in earlier.rows if any(k in new for k in _identities(r))]
            others = [r for r in earlier.rows if not any(k in new for k in _identities(r))]
            kept, removed = ([], others) if replace else (others, [])
            splits = assign_splits(
                [_artist_names(r) for r in rows],
                eval_fraction,
                seed,
                kept=[(_artist_names(r), r["split"]) for r in kept],
                earlier=[] if replace else [(_artist_names(r), r["split"]) for r in replaced],
            )
            for row, split in zip(rows, splits, strict=True):
                row["split"] = split
            every = rows if replace else _merge(earlier.rows, rows, new)
            left_out = [] if replace else [s for s in earlier.skipped if _row_key(s) not in seen_keys]
            left_out += [asdict(s) for s in skipped]
            # first: whatever moves in after it, the folder is recognisably a dataset's
            write_text(out / CARD, dataset_card(command))
            moved = staged.move_in()
        except CatalogueUnavailableError as exc:
            exc.out, exc.existed = out, existed
            raise
        finally:
            staged.discard()

        write_text(out / METADATA, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in every))
        write_text(out / SKIPPED, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in left_out))
        _remove_stale(out, {r["audio"] for r in every} | {r["file_name"] for r in every})
        changed = bool(moved) or _albums(earlier.rows) != _albums(every)
        outdated, options = _cache_state(out, changed)
        return ImportReport(
            out, rows, skipped, kept, removed, cache_outdated=outdated, cache_options=options, command=command
        )


def _cache_state(out: Path, changed: bool) -> tuple[bool, str]:
    """Whether ``out``'s ``cache/`` predates its albums (this run ``changed`` them, or the cache lacks albums as
    they are now: an earlier run's changes not cached yet) and the options it was made with ("": unknown)."""
    folder = out / CACHE_DIR
    if not folder.is_dir():
        return False, ""
    from .cache import cache_behind, cache_options  # torch: only for a folder with a cache

    spec, behind = cache_behind(out, folder)
    return changed or bool(behind), cache_options(spec) if spec is not None else ""


def _remove_leftover_staging(out: Path) -> None:
    """Remove what runs into ``out`` that were killed left in their staging folders, saying so in one line."""
    removed = remove_stale_staging(out)
    if removed:
        NOTES.warning(
            "removed %s that %s into %s left when %s killed: %s",
            count_text(len(removed), "staging folder"),
            "a run" if len(removed) == 1 else "runs",
            out,
            "it was" if len(removed) == 1 else "they were",
            ", ".join(str(p) for p in removed),
        )


def _album_key(artist: str, album: str, source: str) -> str:
    """An album's key for duplicates and replacements: an album without a name is no known duplicate of
    another, its folder (``source``) tells it apart."""
    return album_key(artist, album if album != UNKNOWN else source)


def _row_key(row: dict) -> str:
    """:func:`_album_key` of a metadata or skipped row."""
    return _album_key(row["artist"], row["album"], row["source"])


def _catalogue_key(fields: dict) -> str:
    """The catalogue album a fetched album is (its catalogue and id), or "" for an album not from a catalogue:
    albums listed under different names that resolve to one catalogue album are one album."""
    catalogue, number = fields.get("catalogue"), fields.get("catalogue_id")
    return f"catalogue\x1f{catalogue}\x1f{number}" if catalogue and number else ""


def _catalogue_album(fields: dict) -> str:
    """A catalogue album in words: ``deezer album 302 (Daft Punk - Discovery)``."""
    named = fields.get("catalogue_album")
    names = f" ({fields.get('catalogue_artist')} - {named})" if named else ""
    return f"{fields['catalogue']} album {fields['catalogue_id']}{names}"


def _identities(row: dict) -> list[str]:
    """What makes a metadata row the same album as another: its id, its key and its catalogue album (if any)."""
    return [k for k in (row["id"], _row_key(row), _catalogue_key(row)) if k]


def _artist_names(row: dict) -> tuple[str, ...]:
    """The names a row's artist goes by, for the split: the source's, and the catalogue's for a fetched album
    (the same artist spelt two ways in a list is one artist when the catalogue names both alike)."""
    named = row.get("catalogue_artist")
    return (row["artist"], named) if isinstance(named, str) and named else (row["artist"],)


def _albums(rows: list[dict]) -> dict[str, dict]:
    """The rows by id, without where their albums were listed (a list's line may change, the album not)."""
    return {r["id"]: {k: v for k, v in r.items() if k != "source"} for r in rows}


def _merge(earlier: list[dict], rows: list[dict], new: dict[str, dict]) -> list[dict]:
    """The earlier rows, each replaced in its place by this run's row of the same album (``new``: by id, key and
    catalogue album, :func:`_identities`), then this run's other albums in their order: a repeated run leaves
    ``metadata.jsonl`` as it was."""
    merged: list[dict] = []
    placed: set[str] = set()
    for row in earlier:
        replacement = next((new[k] for k in _identities(row) if k in new), None)
        if replacement is None:
            merged.append(row)
        elif replacement["id"] not in placed:
            merged.append(replacement)
            placed.add(replacement["id"])
    return merged + [r for r in rows if r["id"] not in placed]


def _check_options(out: Path, eval_fraction: float, replace: bool) -> EarlierDataset:
    if not 0.0 <= eval_fraction < 1.0:
        raise DatasetError(f"eval fraction must be at least 0 and below 1, found {eval_fraction}")
    return check_out(out, replace)


def _fill_genres(
    imported: list[tuple[AlbumCandidate, dict]],
    candidates: list[AlbumCandidate],
    staged: StagedFiles,
    genre_from_audio: GenreFromAudio | None,
) -> None:
    """Normalised genres for each row; missing ones come from the artist's other albums (every album the
    sources list counts, also those left out), else from ``genre_from_audio``, else "unknown".
    "Various Artists" and unknown artists are no one artist, so nothing is filled from them."""
    anonymous = (VARIOUS_ARTISTS, UNKNOWN)
    by_artist = artist_genres((c.artist, normalise_genres(c.genres)) for c in candidates if c.artist not in anonymous)
    for candidate, row in imported:
        genres, origin = fill_genres(
            normalise_genres(candidate.genres),
            candidate.artist,
            by_artist if candidate.artist not in anonymous else {},
            staged.path(row["audio"]),
            genre_from_audio,
            candidate.genre_source,
        )
        row.update(genres=genres, genre=genres[0], genre_source=origin)


def check_out(out: Path, replace: bool = False) -> EarlierDataset:
    """Refuse an output folder that a dataset run did not write, and return what earlier runs left there.

    The folder must be new, empty, or hold only what :func:`build_dataset` writes, with its dataset card: a run
    replaces files there (and with ``replace`` removes those of the albums it does not bring), so a folder of
    unknown origin (a hand-made dataset without the card, other files) is not written into. Every album of
    ``metadata.jsonl`` must have its files, unless ``replace`` (then none of them stays). The staging folders of
    runs into it (:func:`~training.atomic.staging_folders`: of a run in progress, or a killed run's) and the lock
    of a run into it whose folder's parent is not writable (:func:`~training.atomic.folder_lock`) do not count."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: output must be a folder, found a file")
    staging = set(staging_folders(out))
    lock_files = (LOCK_SUFFIX, f"{LOCK_SUFFIX}.json")
    entries = sorted(p for p in out.iterdir() if p not in staging and p.name not in lock_files) if out.is_dir() else []
    if not entries:
        return EarlierDataset()
    names = [f"{p.name}/" if p.is_dir() else p.name for p in entries]
    expected = f"{out}: expected a new, empty or dataset folder written by `nopaingan dataset import` or `fetch`"
    another = "choose another --out (a run replaces and removes files in its folder)"
    foreign = [n for p, n in zip(entries, names, strict=True) if p.name not in _OWN_ENTRIES | {*_temporary(out)}]
    if foreign:
        more = f" (and {len(foreign) - 5} more)" if len(foreign) > 5 else ""
        raise DatasetError(
            f"{expected} (metadata.jsonl, skipped.jsonl, README.md, audio/, covers/, cache/), found also "
            f"{', '.join(foreign[:5])}{more}; {another}"
        )
    card = out / CARD
    if not card.is_file() or not any(mark in card.read_text(encoding="utf-8", errors="replace") for mark in CARD_MARKS):
        found = "a README.md that is not its dataset card" if card.exists() else f"{', '.join(names)} but no {CARD}"
        raise DatasetError(f"{expected} (with its {CARD} dataset card), found {found}; {another}")
    rows = _read_rows(out / METADATA, _ROW_FIELDS)
    for number, row in enumerate(rows, 1):
        for field_name, folder in (("audio", AUDIO_DIR), ("file_name", COVERS_DIR)):
            name = row[field_name]
            if PurePosixPath(name).parent != PurePosixPath(folder) or name.endswith(("/", "/..", "/.")):
                raise DatasetError(
                    f"{out / METADATA} line {number}: expected {field_name} to name a file in {folder}/ as "
                    f"`dataset import` writes, found {name!r}; choose another --out"
                )
            if not replace and not (out / name).is_file():
                raise DatasetError(
                    f"{out / METADATA} line {number}: expected the files of every album in {out}, found "
                    f"{name} of {row['id']} missing; put it back, or run with --replace to keep only this run's "
                    "albums"
                )
    return EarlierDataset(rows, _read_rows(out / SKIPPED, _SKIPPED_FIELDS))


def _temporary(out: Path) -> list[str]:
    """Temporary files an interrupted write of the folder's own files left in it (removed by the next run)."""
    return [p.name for p in out.iterdir() if _OWN_TEMPORARY.fullmatch(p.name) and p.is_file()]


def _read_rows(path: Path, fields: Sequence[str]) -> list[dict]:
    """The JSON objects of a JSON-lines file of the dataset folder (none when it does not exist), each with
    ``fields`` as strings; anything else is refused, naming the line."""
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        try:
            row = parse_json(line, f"{path} line {number}")
        except DuplicateFieldError as exc:
            raise DatasetError(f"{exc}; repair the line or choose another --out") from exc
        except DatasetError:  # not JSON: said below with the line's start
            row = None
        if not isinstance(row, dict) or not all(isinstance(row.get(f), str) for f in fields):
            raise DatasetError(
                f"{path} line {number}: expected a JSON object with {', '.join(fields)} as `dataset import` "
                f"writes, found {line[:60]!r}; repair the line or choose another --out"
            )
        if "split" in fields and row["split"] not in (TRAIN, EVAL):
            raise DatasetError(
                f"{path} line {number}: expected split {TRAIN!r} or {EVAL!r}, found {row['split']!r}; repair the "
                "line or choose another --out"
            )
        rows.append(row)
    return rows


def _read_source(source: Path, out: Path, progress: bool) -> list[AlbumCandidate]:
    if source.is_dir():
        return scan_music_folder(source, exclude=[out], progress=progress)
    if source.is_file() and source.suffix.lower() in MANIFEST_EXTENSIONS:
        return read_manifest(source)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    raise DatasetError(
        f"{source}: expected a music folder or a manifest ({', '.join(MANIFEST_EXTENSIONS)}), "
        f"found a {source.suffix or 'extensionless'} file"
    )


# Latin letters that NFKD leaves whole, named after one or two base letters: "LATIN SMALL LETTER B WITH HOOK" (ɓ),
# "... OPEN O" (ɔ), "... TURNED E" (ǝ), "... I WITH STROKE" (ɨ), "... AV" (ꜹ); and the schwa (Azerbaijani ə).
_LATIN_NAME = re.compile(r"LATIN (?:SMALL |CAPITAL )?LETTER (?:[A-Z]+ )*?([A-Z]{1,2}|SCHWA)(?: WITH .+)?")


def _ascii_letters(char: str) -> str:
    """``char`` when it is ASCII, else the base letters its Unicode name gives (:data:`_LATIN_NAME`), else ""."""
    if char.isascii():
        return char
    match = _LATIN_NAME.fullmatch(unicodedata.name(char, ""))
    if match is None:
        return ""
    return "e" if match.group(1) == "SCHWA" else match.group(1).lower()


def album_id(artist: str, album: str, folder: str = "") -> str:
    """A stable, file-system-safe id: readable ASCII words of artist and album (accents dropped, letters such as
    æ, ø, ß, ł, þ, ɓ, ɔ, ə transliterated), then a hash of the album's normalised key (so names in any script, or
    differing only in punctuation, stay distinct and stable), and of ``folder`` for an album with no name."""
    text = unicodedata.normalize("NFKD", f"{artist} {album}").casefold().translate(LATIN_LETTERS)
    text = "".join(map(_ascii_letters, text))
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60].rstrip("-")
    digest = hashlib.sha1((album_key(artist, album) + folder).encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else digest


def check_audio(path: Path) -> AudioInfo:
    """Count the samples of ``path`` and decode :data:`CHECK_SECONDS` from its middle: a corrupt, silent, or
    truncated file (audio ending well before the exact length its header gives) raises :class:`AudioError`
    naming it, instead of failing later in training. The info returned has the decoded length, not the
    header's (which is an estimate for MP3 and ADTS AAC, minutes off in joined files)."""
    info = probe(path)
    length = decoded_duration(path)
    if math.isfinite(info.duration) and not info.estimated and length < info.duration - 0.25:
        raise AudioError(
            f"{path}: audio is truncated: it stops at {length:.2f} s of the {info.duration:.2f} s its header gives"
        )
    check_clip(decode(path, max(0.0, length / 2 - CHECK_SECONDS / 2), CHECK_SECONDS))
    return replace(info, duration=length)


def _import_album(
    candidate: AlbumCandidate,
    staged: StagedFiles,
    downloader: Downloader,
    link: bool,
    min_cover_size: int,
    previews: dict[str, str],
) -> dict:
    """Check the album's audio and cover, stage both for the dataset folder, and return its metadata row.
    ``previews`` are the catalogues' preview URLs of this run's albums so far, and the album each is of: a
    catalogue's album with one of them is a duplicate of that album (a list may give one URL to several)."""
    track, audio_path, info = _usable_track(candidate, downloader)
    if candidate.remote and track.location in previews:
        raise DatasetError(f"duplicate of {previews[track.location]}: the same preview {track.location}")
    cover = _usable_cover(candidate, downloader, min_cover_size)
    name = album_id(candidate.artist, candidate.album, candidate.source if candidate.album == UNKNOWN else "")
    audio = f"{AUDIO_DIR}/{name}{_audio_extension(track.location, info)}"
    cover_file = f"{COVERS_DIR}/{name}{cover.extension}"
    staged.place(audio_path, audio, link)
    staged.write(cover_file, cover.data)
    return {
        "id": name,
        "file_name": cover_file,
        "audio": audio,
        "artist": candidate.artist,
        "album": candidate.album,
        # where the names came from: "tags", "folder name" or "unknown" (music folders), "source" (manifests)
        "artist_source": candidate.name_sources.get("artist", "source"),
        "album_source": candidate.name_sources.get("album", "source"),
        "song": track.song,
        "genres": [],
        "genre": UNKNOWN,
        "genre_source": UNKNOWN,
        "year": candidate.year,
        "popularity": candidate.popularity,
        "emotions": candidate.emotions,
        "duration": round(info.duration, 3) if math.isfinite(info.duration) else None,
        "cover_width": cover.width,
        "cover_height": cover.height,
        "split": TRAIN,
        "source": candidate.source,
        "audio_source": track.location,
        **candidate.extra,
    }


def _asked_anew(candidate: AlbumCandidate, expired: LinkExpiredError) -> AlbumCandidate:
    """A catalogue's album whose cached answer's links answered as expired (``expired``), as the catalogue answers
    anew (``candidate.refresh``, asked once: the fresh album has none). :class:`DatasetError` naming both when
    the fresh answer has no such album."""
    assert candidate.refresh is not None
    fresh = candidate.refresh()
    if fresh.problem:
        raise DatasetError(f"{expired}; asked anew (the cached answer's links had expired): {fresh.problem}")
    return fresh


def _expired(error: Exception) -> bool:
    """Whether a download failed as a link that has expired does (:data:`~training.errors.EXPIRED_STATUSES`)."""
    return isinstance(error, HTTPStatusError) and error.status in EXPIRED_STATUSES


def _usable_track(candidate: AlbumCandidate, downloader: Downloader) -> tuple[TrackRef, Path, AudioInfo]:
    """The first track that decodes; only the marked one when the user marked one. When none does and one was
    refused as an expired link (:func:`_expired`), :class:`LinkExpiredError`."""
    errors = []
    expired = False
    for track in candidate.tracks:
        path = None
        try:
            path = downloader.fetch(track.location) if is_url(track.location) else _local(candidate, track.location)
            return track, path, check_audio(path)
        except UnreachableError:  # the server's silence says nothing about this track: stop (build_dataset)
            raise
        except NoPainGanError as exc:
            downloaded = path is not None and is_url(track.location)  # named by its URL, not its cache file
            errors.append(str(exc).replace(str(path), track.location) if downloaded else str(exc))
            expired = expired or _expired(exc)
        if candidate.track_marked:
            break
    if not errors:
        raise DatasetError("no audio file")
    failure = LinkExpiredError if expired else DatasetError
    if len(errors) == 1:
        raise failure(errors[0])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    raise failure(f"none of its {len(errors)} tracks is usable: {'; '.join(errors[:3])}{more}")


def _usable_cover(candidate: AlbumCandidate, downloader: Downloader, min_size: int) -> Cover:
    """The first cover, in the order the source gives them, that is a whole image of at least ``min_size``; when
    none is and one was refused as an expired link (:func:`_expired`), :class:`LinkExpiredError`."""
    errors = []
    expired = False
    for ref in candidate.covers:
        try:
            if ref.kind != "url":
                _local(candidate, ref.location)  # a remote album's cover is a URL: anything else is refused
            return normalise_cover(_cover_bytes(ref, downloader), _cover_label(ref), min_size)
        except UnreachableError:
            raise
        except NoPainGanError as exc:
            errors.append(str(exc))
            expired = expired or _expired(exc)
    if not errors:
        raise CoverError(
            f"no cover: no embedded front cover in its tracks and no image named cover, front, folder or "
            f"albumart in {candidate.source}"
        )
    raise (LinkExpiredError if expired else CoverError)("; ".join(errors))


def _local(candidate: AlbumCandidate, location: str) -> Path:
    """The local file ``location`` names; :class:`DatasetError` for a ``remote`` album (a catalogue's), whose
    tracks and covers are URLs only: nothing a catalogue answers is read from the local disk."""
    if candidate.remote:
        raise DatasetError(f"{location!r}: expected an http(s) URL, found none: not read as a local file")
    return Path(location)


def _cover_label(ref: CoverRef) -> str:
    return f"{ref.location} (embedded picture)" if ref.kind == "embedded" else ref.location


def _cover_bytes(ref: CoverRef, downloader: Downloader) -> bytes:
    if ref.kind == "url":
        return downloader.fetch(ref.location).read_bytes()
    if ref.kind == "embedded":
        data = embedded_picture(Path(ref.location))
        if data is None:
            raise CoverError(f"{_cover_label(ref)}: no front cover in the file's tags")
        return data
    try:
        return Path(ref.location).read_bytes()
    except OSError as exc:
        raise CoverError(f"{ref.location}: cannot read cover file ({exc.strerror or exc})") from exc


def _audio_extension(location: str, info: AudioInfo) -> str:
    """The source's extension when it is an audio one, else one named after the codec (preview URLs often
    have none)."""
    suffix = Path(urlsplit(location).path if is_url(location) else location).suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return suffix
    codec = info.codec.removeprefix("lib")
    return next((ext for prefix, ext in _CODEC_EXTENSIONS.items() if codec.startswith(prefix)), ".audio")


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Files of albums no longer in the dataset, and temporary files of an interrupted run."""
    for name in _temporary(out):
        (out / name).unlink(missing_ok=True)
    for folder in (AUDIO_DIR, COVERS_DIR):
        if (out / folder).is_dir():
            for path in (out / folder).iterdir():
                if f"{folder}/{path.name}" not in keep and path.is_file():
                    path.unlink()


# The dataset card: lets ``datasets.load_dataset(DATA)`` load covers as images with their metadata, all
# albums (config "default", split "albums") or one side of the split (configs "train" and "eval").
_CARD = """---
configs:
- config_name: default
  default: true
  data_files:
  - split: albums
    path: [metadata.jsonl, "covers/*"]
- config_name: train
  data_files:
  - split: train
    path: [metadata.jsonl, "covers/*"]
  filters: [["split", "==", "train"]]
- config_name: eval
  data_files:
  - split: eval
    path: [metadata.jsonl, "covers/*"]
  filters: [["split", "==", "eval"]]
---
# Album covers and music

Written by `nopaingan dataset {command}`: one album per line of `metadata.jsonl`, with its cover (`file_name`,
under `covers/`), the audio of its representative track (`audio`, under `audio/`), artist, album, song,
genres, year, popularity, top emotions and its side of the train/eval split (`split`, grouped by artist).
Albums left out are listed with the reason in `skipped.jsonl`.

{notice}

    from datasets import load_dataset
    albums = load_dataset("path/to/DATA")["albums"]      # every album, cover as a PIL image
    train = load_dataset("path/to/DATA", "train")["train"]
    evaluation = load_dataset("path/to/DATA", "eval")["eval"]
"""
# The card's copyright notice, as README.md and docs/dataset.md word it
_NOTICES = {
    "fetch": "**Copyright.** The previews and covers are copyrighted by their owners (labels, artists and designers)\n"
    "and the catalogues' terms (Deezer, iTunes) allow them only to promote the stores: this data set is for\n"
    "private research use, not for redistribution.",
    "import": "**Copyright.** The audio and covers are copyrighted by their owners (labels, artists and designers):\n"
    "this data set is for private research use, not for redistribution.",
}


def dataset_card(command: str) -> str:
    """The dataset card (README.md) a run of ``nopaingan dataset COMMAND`` (``import`` or ``fetch``) writes."""
    return _CARD.format(command=command, notice=_NOTICES[command])
