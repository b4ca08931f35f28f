"""``nopaingan dataset fetch``: a list of albums in, the dataset folder ``dataset import`` writes out.

Each album (artist, album; optional year and genre) is looked up in public, keyless catalogues (Deezer, then
iTunes by default, see :mod:`training.catalogues`), matched by normalised, fuzzy comparison
(:mod:`training.matching`), and its 30 s preview and cover are downloaded and checked like an imported
album's. The match score and catalogue ids go into ``metadata.jsonl``; every album not found, below the score
threshold, ambiguous or without a preview is listed with the reason in ``skipped.jsonl``.

Album lists are CSV/TSV/JSON tables, or Wikipedia's yearly album lists ("List of 2019 albums"), whose tables
``pandas.read_html`` reads (``--from-wikipedia-list``). Previews and covers are copyrighted: the data set is
for research use (docs/dataset.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from nopaingan_core.cli_args import (
    add_quiet,
    as_typed,
    existing_file,
    float_range,
    given_options,
    int_range,
    note,
    path_arg,
    positive_float,
    range_text,
)

from .candidates import AlbumCandidate, CoverRef, TrackRef
from .catalogues import (
    ANSWER_MAX_AGE,
    CATALOGUES,
    COVER_SIZE,
    DEEZER_COVER_SIZE,
    DEEZER_RATE,
    ITUNES_COVER_SIZES,
    ITUNES_RATE,
    AlbumGoneError,
    Catalogue,
    Release,
    catalogue_names,
    country_code,
    make_catalogues,
)
from .cleaning import normalise_genres, split_genres
from .covers import MIN_COVER_SIZE
from .dataset_import import ImportReport, build_dataset, check_out
from .download import RETRY_STATUSES, Downloader, default_cache_dir, web_url
from .errors import CatalogueUnavailableError, DatasetError, DownloadError, UnreachableError, count_text
from .inputs import distinct_files, distinct_urls
from .manifest import COLUMNS, MANIFEST_EXTENSIONS, parse_year, read_table
from .matching import MARGIN, MIN_SCORE, best_match, far_edition, unescape_references, year_rank, year_reason
from .split import EVAL_FRACTION

USER_AGENT = "nopaingan-dataset-fetch/0.1 (research data set; https://github.com/no-pain-no-gan/comfyui-no-pain-no-gan)"
_MISSING = {"", "nan", "none", "null", "n/a", "—", "-", "tba"}
# Wikipedia's footnote marks: [1], [a], [note 2], [nb 1], [citation needed]
_FOOTNOTE = re.compile(r"\[(?:[0-9]+|[a-z]|(?:note|nb|n)\s+[0-9]+|citation\s+needed)\]", re.IGNORECASE)
_YEAR = re.compile(r"(?<![0-9])([12][0-9]{3})(?![0-9])")
# what a saved album list is named: the lists are read by their extension
_LIST_NAME = "expected a file name ending in .csv (the list is written as CSV, and lists are read by extension)"
# A cell starting with one of these is a formula to a spreadsheet: =, +, -, @, tab and carriage return (OWASP,
# "CSV Injection"), and NUL (OWASP ASVS 5.0, V1.2.10); an apostrophe before it (TEXT_MARK) makes it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")
TEXT_MARK = "'"
_LIST_KINDS = ", ".join(MANIFEST_EXTENSIONS)  # the files an album list may be, by extension: .csv, .tsv...
MIN_SCORE_RANGE = range_text("a number", 0.0, 1.0, low_open=True)  # what --min-score accepts, in words


@dataclass(frozen=True)
class AlbumRequest:
    """One album of the list: what to look for, and where the list names it (``file:line``). A row whose year
    cannot be read keeps it as ``year_text`` and is not looked up: ``problem`` says why."""

    artist: str
    album: str
    source: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    year_text: str = ""
    problem: str = ""


def _text(value: object) -> str:
    """A cell as a name: without footnote marks, spacing collapsed, without quotes around it, empty for a word
    of :data:`_MISSING`. Its own result reads as itself (a saved list reads back as it was written): a mark
    that removing another bares (``[[1]a]``), spaces inside quotes (``" x"``) go at once."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    while (bare := _FOOTNOTE.sub("", text)) != text:
        text = bare
    text = " ".join(text.split()).strip(' "“”')
    return "" if text.casefold() in _MISSING else text


def _request(where: str, artist: object, album: object, year: object = None, genres: object = None) -> AlbumRequest:
    """A list's row; an unreadable year (:func:`~training.manifest.parse_year`) makes it a request with a
    ``problem``, as an unreadable popularity does a manifest's row."""
    request = AlbumRequest(_text(artist), _text(album), where, genres=tuple(split_genres(_text(genres) or None)))
    try:
        return replace(request, year=parse_year(_text(year)))
    except ValueError as exc:
        return replace(request, year_text=_text(year), problem=f"{where}: year: {exc}")


def read_album_list(path: str | Path) -> list[AlbumRequest]:
    """Albums of a CSV/TSV/JSON table with artist and album columns (optional year and genre), named as
    ``dataset import`` manifests name them (``Artist Name``, ``Album Title``, ``Release Date``, ``Genres``...).
    A value is read as :func:`cell_text` reads a saved list's cell: ``'=1+1`` is ``=1+1``."""
    rows, columns = read_table(Path(path).expanduser(), required=("artist", "album"), kind="album list")
    fields = ("artist", "album", "year", "genres")
    return [
        _request(where, *(cell_text(row.get(columns[f])) if f in columns else None for f in fields))
        for where, row in rows
    ]


def wikipedia_album_list(url: str, downloader: Downloader, notes: list[str] | None = None) -> list[AlbumRequest]:
    """Albums of every table on a Wikipedia album list page that has artist and album columns (the yearly
    "List of 2019 albums" pages: Release date, Artist, Album, Genre, Label). A row's year is the one in its
    release date, else the one in the page's URL. An album column may be headed "Title" in a table with an artist
    column; a table with an artist column and no album column is left out with a note added to ``notes``. A copy
    of the page in the downloader's cache is used for :data:`~training.catalogues.ANSWER_MAX_AGE` seconds.
    Requires pandas and lxml (the ``train`` extra): the tables
    are read with lxml alone, never with pandas' fallback parsers (BeautifulSoup, html5lib), which the project
    does not install. A page without such a table (none at all, a JSON or text page) raises
    :class:`DatasetError` naming the URL."""
    import pandas as pd
    from lxml.etree import LxmlError

    downloader.expire(url, ANSWER_MAX_AGE)  # yearly list pages are edited daily, as catalogue answers expire
    html = downloader.fetch(url).read_text(encoding="utf-8", errors="replace")
    try:
        tables = pd.read_html(io.StringIO(html), flavor="lxml")
    except (ValueError, LxmlError):  # pandas: "No tables found"; lxml: "no text parsed from document"
        tables = []
    years = _YEAR.findall(unquote(urlsplit(url).path))
    page_year = int(years[-1]) if years else None
    albums: list[AlbumRequest] = []
    album_tables = table_rows = 0  # tables with artist and album columns, and their rows
    for number, table in enumerate(tables, 1):
        columns = _find_columns([col if isinstance(col, tuple) else (col,) for col in table.columns])
        if "artist" not in columns or "album" not in columns:
            if "artist" in columns and notes is not None:
                headers = dict.fromkeys(str(c[-1] if isinstance(c, tuple) else c) for c in table.columns)
                notes.append(
                    f"note: {url} table {number}: left out, an artist column but no album column (expected Album "
                    f"or Title, found {', '.join(headers)})"
                )
            continue
        album_tables += 1
        table_rows += len(table)
        for index, row in enumerate(table.itertuples(index=False), 1):
            value = {field: row[i] for field, i in columns.items()}
            where = f"{url} table {number} row {index}"
            request = _request(where, value["artist"], value["album"], None, value.get("genres"))
            # a release date without its own year ("January 4") is of the page's year
            match = _YEAR.search(_text(value.get("year")))
            if request.artist and request.album:
                albums.append(replace(request, year=int(match.group(1)) if match else page_year))
    if not albums:
        found = _tables_found(len(tables), album_tables, table_rows)
        raise DatasetError(
            f"{url}: no album table found: expected an HTML table with artist and album columns (e.g. Artist, "
            f"Album), found {found}"
        )
    return albums


def _tables_found(tables: int, album_tables: int, rows: int) -> str:
    """What a page without albums holds, in words: ``tables`` tables, ``album_tables`` of them with artist and
    album columns, which have ``rows`` rows in all."""
    if not tables:
        return "no table"
    if not album_tables:
        return f"{count_text(tables, 'table')}, none with artist and album columns"
    with_columns = f"{count_text(album_tables, 'table')} with artist and album columns"
    if tables > album_tables:
        with_columns = f"{count_text(tables, 'table')}, {album_tables} with artist and album columns"
    return f"{with_columns} but no rows" if not rows else f"{with_columns} but no row naming both"


def _find_columns(headers: list[tuple]) -> dict[str, int]:
    """Field -> index of the first column with a header cell (tables with two header rows give several) that
    is, without case, spaces or punctuation, one of the field's :data:`~training.manifest.COLUMNS` aliases."""
    keys = [{re.sub(r"[\W_]+", "", str(cell).casefold()) for cell in header} for header in headers]
    found: dict[str, int] = {}
    for field in ("artist", "album", "year", "genres"):
        index = next((i for i, cells in enumerate(keys) if cells & set(COLUMNS[field])), None)
        if index is not None:
            found[field] = index
    if "artist" in found and "album" not in found:  # some years' lists head the album column "Title"
        index = next((i for i, cells in enumerate(keys) if "title" in cells), None)
        if index is not None:
            found["album"] = index
    return found


def check_album_list_target(path: str | Path, name: str = "album list", out: Path | None = None) -> Path:
    """``path`` (expanded, as making its folder names it: :func:`~nopaingan_core.atomic.made_path`, so
    ``a/x/../list.csv`` with no ``a/x`` is ``a/list.csv``) when a new album list can be written there: a file name
    ending in ``.csv`` that does not exist yet (nor a symbolic link of that name, even one to a missing file).
    Raises :class:`DatasetError`, one line starting with ``name`` (the command's option, ``--save-list``),
    otherwise; with the dataset folder ``out`` of the same command, the line for an existing list says how a run
    that wrote it and stopped goes on (from that list)."""
    from nopaingan_core.atomic import dangling_link, link_text, made_path

    given = Path(path).expanduser()
    path = made_path(given)
    if path.suffix.lower() != ".csv":
        raise DatasetError(f"{name}: {_LIST_NAME}, found {given}")
    named = str(given) if path == given else f"{given} (that is {path})"
    if dangling_link(path) == path:
        raise DatasetError(f"{name}: {named}: expected a new file name, found {link_text(path)}")
    if os.path.lexists(path):
        resume = f"; a run that wrote it and stopped goes on with: nopaingan dataset fetch {given} --out {out}"
        raise DatasetError(f"{name}: {named} exists already; choose a new file name{resume if out else ''}")
    return path


def spreadsheet_cell(text: str) -> str:
    """``text`` as a cell of a saved list, never a formula when a spreadsheet opens it (OWASP, "CSV Injection"):
    a text that starts with one of :data:`FORMULA_START` gets an apostrophe before it, which spreadsheets read as
    "text follows". So does one whose apostrophes come before such a character (``'=x`` is written ``''=x``), so
    that :func:`cell_text` gives every text back exactly, also a name that starts with an apostrophe."""
    return TEXT_MARK + text if _formula_like(text) else text


def cell_text(cell: object) -> object:
    """The text a cell of a saved list stands for (the inverse of :func:`spreadsheet_cell`): without the
    apostrophe written before a formula's first character; any other value as it is (``'Til Tuesday`` too)."""
    if isinstance(cell, str) and cell.startswith(TEXT_MARK) and _formula_like(cell):
        return cell[len(TEXT_MARK) :]
    return cell


def _formula_like(text: str) -> bool:
    """Whether ``text``, after any apostrophes it starts with, starts as a formula."""
    return text.lstrip(TEXT_MARK).startswith(FORMULA_START)


def write_album_list(albums: Sequence[AlbumRequest], path: str | Path) -> Path:
    """Write ``albums`` as a CSV (artist, album, year, genre) that :func:`read_album_list` reads back; never
    over an existing file (:func:`check_album_list_target` raises :class:`DatasetError`). Every cell is quoted
    and none is a formula (OWASP's "CSV Injection": :func:`spreadsheet_cell`)."""
    from nopaingan_core.atomic import write_new

    path = check_album_list_target(path)
    out = io.StringIO()
    # quoted, a cell is one cell whatever separator a spreadsheet takes (a ";" in a name starts no new cell)
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["artist", "album", "year", "genre"])
    for album in albums:
        cells = [album.artist, album.album, str(album.year or album.year_text), ", ".join(album.genres)]
        writer.writerow([spreadsheet_cell(cell) for cell in cells])
    try:  # never over a file that appeared since the check (another run writing the same list)
        write_new(path, out.getvalue().encode("utf-8"))
    except FileExistsError:
        raise DatasetError(f"album list: {path} exists already; choose a new file name") from None
    return path


def resolve(
    request: AlbumRequest,
    catalogues: Sequence[Catalogue],
    *,
    min_score: float = MIN_SCORE,
    margin: float = MARGIN,
) -> AlbumCandidate:
    """The album as a candidate for the dataset (:func:`_resolve`). One that a catalogue's cached answer gave
    (an answer is kept :data:`~training.catalogues.ANSWER_MAX_AGE`) can be asked for anew: its ``refresh`` asks
    that catalogue again, every answer fresh, once the answer's preview or cover links answer as expired
    (:data:`~training.errors.EXPIRED_STATUSES`; signed links such as Deezer's ``hdnea=exp=`` expire before the
    answer does). The fresh answers replace the cached ones, through the catalogue's own rate limit."""
    reused = {id(catalogue): catalogue.reused for catalogue in catalogues}
    candidate = _resolve(request, catalogues, min_score=min_score, margin=margin)
    source = next((c for c in catalogues if c.name == candidate.extra.get("catalogue")), None)
    if source is not None and source.reused > reused[id(source)]:

        def refresh() -> AlbumCandidate:
            source.fresh = True
            try:
                return _resolve(request, catalogues, min_score=min_score, margin=margin)
            finally:
                source.fresh = False

        candidate.refresh = refresh
    return candidate


def _resolve(
    request: AlbumRequest,
    catalogues: Sequence[Catalogue],
    *,
    min_score: float,
    margin: float,
) -> AlbumCandidate:
    """The album as a candidate for the dataset: from the first catalogue with a clear match that has
    previews (tracks best first, covers largest first), or with ``problem`` saying what each catalogue
    answered. A catalogue that cannot be asked (no connection, timeouts, 5xx, throttling or quota errors after
    the retries) raises :class:`CatalogueUnavailableError`: its silence says nothing about the album; so does
    one whose address answers searches but not as the API (:class:`~training.errors.CatalogueBrokenError`).
    Of the matched album's editions, the one released in the list's year is taken when there is one."""
    # an album left out still lends the list's genres to the artist's other albums
    candidate = AlbumCandidate(
        request.artist, request.album, request.source, genres=list(request.genres), year=request.year
    )
    if not request.artist or not request.album:
        candidate.problem = f"{request.source}: empty {'artist' if not request.artist else 'album'}"
        return candidate
    if request.problem:
        candidate.problem = request.problem
        return candidate
    reasons = []
    for catalogue in catalogues:
        try:
            # the catalogue is asked with the names' characters (a list's &amp; is searched as &)
            found = catalogue.search(unescape_references(request.artist), unescape_references(request.album))
            match = best_match(
                request.artist,
                request.album,
                [(r, r.artist, r.title, r.year) for r in found],
                year=request.year,
                min_score=min_score,
                margin=margin,
            )
            if match.item is None:
                reasons.append(f"{catalogue.name}: {match.reason}")
                continue
            release, seen = _edition(catalogue, match.editions, request.year)
            far = far_edition(seen, request.year, lambda r: (r.year, r.title))
            if far is not None:
                named = f"{far.artist} - {far.title}"
                reasons.append(f"{catalogue.name}: {year_reason(named, match.score, far.year, request.year)}")
                continue
        except UnreachableError as exc:
            raise CatalogueUnavailableError(catalogue.name, exc.reason, exc.tries) from exc
        except DownloadError as exc:
            reasons.append(f"{catalogue.name}: {exc}")
            continue
        missing = "track with a preview" if not release.tracks else "cover" if not release.covers else ""
        if missing:
            reasons.append(f"{catalogue.name}: {release.artist} - {release.title} has no {missing}")
            continue
        return _candidate(request, release, match.score)
    candidate.problem = "not found: " + "; ".join(reasons)
    return candidate


def _edition(catalogue: Catalogue, editions: Sequence[Release], year: int | None) -> tuple[Release, list[Release]]:
    """The edition to take of the matched album (``editions`` in :func:`best_match`'s order), with its tracks,
    and the editions whose years it knows (as searched, or looked up). The edition taken is the one whose release
    year fits the list's ``year`` best (:func:`~training.matching.year_rank`: the list's year within
    :data:`~training.matching.YEAR_SLACK`, then unknown, then within :data:`~training.matching.YEAR_LIMIT`, closest
    first; a 2012 album, not its 2021 reissue; then a later edition marked as one, closest first), else the first.
    Deezer's search gives no release years: editions of unknown year are looked up, one by one, until one has
    the list's year. The edition taken may still not be the list's album
    (:func:`~training.matching.far_edition` of the editions known): the caller refuses it."""
    best = catalogue.album(editions[0])
    seen = [best, *(edition for edition in editions[1:] if edition.year is not None)]

    def rank(release: Release) -> tuple[int, int]:
        return year_rank(release.year, year, release.title)

    if year is None or rank(best)[0] == 0:
        return best, seen
    for edition in editions[1:]:
        if edition.year is not None and rank(edition) >= rank(best):
            continue  # a known year no better than the one in hand: not looked up
        try:
            full = catalogue.album(edition)
        except AlbumGoneError:  # that edition is gone: the others stand
            continue
        seen.append(full)
        if rank(full)[0] == 0:
            return full, seen
        if rank(full) < rank(best):
            best = full
    return best, seen


def _candidate(request: AlbumRequest, release: Release, score: float) -> AlbumCandidate:
    """The album as the list names it, with the catalogue's previews and covers (only http(s) URLs: a
    catalogue's answer is never read as a local path) and genres: the list's, else the catalogue's."""
    listed = bool(normalise_genres(request.genres))
    return AlbumCandidate(
        artist=request.artist,
        album=request.album,
        source=request.source,
        tracks=[TrackRef(t.preview, t.title) for t in release.tracks if web_url(t.preview)],
        covers=[CoverRef("url", url) for url in release.covers if web_url(url)],
        genres=list(request.genres if listed else release.genres),
        genre_source="source" if listed else "catalogue",
        year=request.year or release.year,
        remote=True,
        extra={
            "catalogue": release.catalogue,
            "catalogue_id": release.id,
            "catalogue_url": release.url,
            "catalogue_artist": release.artist,
            "catalogue_album": release.title,
            "catalogue_year": release.year,
            "match_score": round(score, 4),
        },
    )


def fetch_dataset(
    albums: Sequence[AlbumRequest],
    out: str | Path,
    *,
    catalogues: Sequence[Catalogue],
    downloader: Downloader,
    min_score: float = MIN_SCORE,
    margin: float = MARGIN,
    eval_fraction: float = EVAL_FRACTION,
    seed: int = 0,
    min_cover_size: int = MIN_COVER_SIZE,
    replace: bool = False,
    progress: bool = False,
) -> ImportReport:
    """Look up ``albums`` in ``catalogues`` and write the dataset folder ``out`` (as
    :func:`training.dataset_import.import_dataset` does: adding to an earlier dataset there, or with ``replace``
    keeping only these albums), downloading previews and covers with ``downloader``.

    Albums are looked up and downloaded one after the other; an interrupted fetch is run again with the same
    cache: answers and files it has are not asked or downloaded again. A catalogue that cannot be asked stops
    the fetch with :class:`CatalogueUnavailableError` before anything is written into ``out``: an earlier
    dataset there is left as it was (what was downloaded before the stop stays in the cache, for the next run).
    """
    if not albums:
        raise DatasetError("no albums to fetch: the album lists are empty")
    if not catalogues:
        raise DatasetError(f"no catalogue given; expected some of {', '.join(CATALOGUES)}")
    if not 0.0 < min_score <= 1.0:
        raise DatasetError(f"--min-score: expected {MIN_SCORE_RANGE}, found {min_score:g}")
    # lazy: build_dataset checks out (and its earlier albums) before it asks for the first album
    candidates: Iterator[AlbumCandidate] = (
        resolve(album, catalogues, min_score=min_score, margin=margin) for album in albums
    )
    return build_dataset(
        candidates,
        out,
        downloader=downloader,
        eval_fraction=eval_fraction,
        seed=seed,
        min_cover_size=min_cover_size,
        replace=replace,
        progress=progress,
        total=len(albums),
        command="fetch",
    )


def http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (a command-line type: a mistyped URL is refused when parsed,
    not retried as an unreachable server)."""
    if not web_url(text.strip()):
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected an http(s) URL with a host, e.g. https://en.wikipedia.org/wiki/List_of_2019_albums"
        )
    return text.strip()


def session() -> requests.Session:
    """An HTTP session that names the tool, as Wikimedia's and the catalogues' etiquette asks."""
    http = requests.Session()
    http.headers["User-Agent"] = USER_AGENT
    return http


# --- command line ---------------------------------------------------------------------------------------


def add_fetch_command(actions: argparse._SubParsersAction) -> None:
    """Register ``nopaingan dataset fetch`` among the ``dataset`` actions."""
    parser = actions.add_parser(
        "fetch",
        help="build a dataset folder from a list of albums, with previews and covers from Deezer and iTunes",
        description="Look up each album of a list (artist, album; optional year, genre) in public music "
        "catalogues (Deezer API, iTunes Search API), download a 30 s preview and the cover, and write the "
        "dataset folder `dataset import` writes. Albums not found or ambiguous are listed in skipped.jsonl. "
        "Previews and covers are copyrighted: for research use only. See docs/dataset.md.",
    )
    add = parser.add_argument
    add(
        "lists",
        nargs="*",
        type=as_typed(existing_file(f"album list ({_LIST_KINDS})")),  # named in notes as typed
        metavar="ALBUMS",
        help=f"album list ({_LIST_KINDS}) with artist and album",
    )
    add(
        "--from-wikipedia-list",
        action="append",
        default=[],
        type=http_url,
        metavar="URL",
        help="also take the albums of a Wikipedia album list page (e.g. List of 2019 albums)",
    )
    add("--save-list", type=path_arg, metavar="FILE", help="write the combined album list as CSV (new file)")
    add("--out", type=path_arg, metavar="DATA", help="dataset folder to write (optional with --save-list)")
    add(
        "--catalogues",
        default=",".join(CATALOGUES),
        metavar="NAMES",
        help="catalogues to ask, in order (default: %(default)s)",
    )
    add(
        "--min-score",
        type=float_range(0.0, 1.0, low_open=True),
        default=MIN_SCORE,
        metavar="S",
        help="least match score, above 0 and at most 1",
    )
    add("--country", default="US", metavar="CC", help="iTunes store: ISO 3166-1 two-letter code (default: %(default)s)")
    add(
        "--cover-size",
        type=int_range(*ITUNES_COVER_SIZES),
        default=COVER_SIZE,
        metavar="PX",
        help=f"iTunes cover side (Deezer's covers are {DEEZER_COVER_SIZE} px)",
    )
    add("--cache-dir", type=path_arg, metavar="DIR", help="downloads cache (default: ~/.cache/nopaingan/downloads)")
    add("--eval-fraction", type=float_range(0.0, 0.99), default=EVAL_FRACTION, metavar="F", help="albums in eval")
    add("--seed", type=int_range(0), default=0, metavar="N", help="seed of the artist split")
    add(
        "--rate-limit",
        type=float_range(0.0),
        default=2.0,
        metavar="PER_S",
        help="downloads of previews, covers and Wikipedia pages started per second and host, 0: any (the catalogue "
        f"APIs keep their documented limits: Deezer {DEEZER_RATE:g}/s, iTunes {ITUNES_RATE * 60:g}/min)",
    )
    add("--retries", type=int_range(0, 100), default=3, metavar="N", help="retries of a failed request")
    add("--timeout", type=positive_float, default=30.0, metavar="S", help="seconds to wait for a server")
    add("--min-cover-size", type=int_range(1), default=MIN_COVER_SIZE, metavar="PX", help="smallest cover side kept")
    add(
        "--replace",
        action="store_true",
        help="keep only this run's albums in DATA, removing earlier ones it does not bring (default: add to them)",
    )
    add_quiet(parser)
    # API endpoints and their rates, for tests and mirrors ($NOPAINGAN_DEEZER_API, $NOPAINGAN_ITUNES_API)
    add("--deezer-api", help=argparse.SUPPRESS)
    add("--itunes-api", help=argparse.SUPPRESS)
    add("--deezer-rate", type=float_range(0.0), default=DEEZER_RATE, help=argparse.SUPPRESS)
    add("--itunes-rate", type=float_range(0.0), default=ITUNES_RATE, help=argparse.SUPPRESS)
    add("--backoff", type=float_range(0.0), default=1.0, help=argparse.SUPPRESS)
    parser.set_defaults(run=run_fetch)


def _check_cover_sizes(args: argparse.Namespace, names: Sequence[str]) -> None:
    """:class:`DatasetError` for cover options that cannot do what they say with the catalogues ``names``: iTunes'
    options (``--country``, ``--cover-size``) without iTunes, and a ``--min-cover-size`` above the largest cover a
    catalogue asked serves (iTunes: ``--cover-size``; Deezer: :data:`DEEZER_COVER_SIZE`), which would leave out
    every cover it gives."""
    itunes_only = [f"--{dest.replace('_', '-')}" for dest in ("country", "cover_size") if dest in given_options(args)]
    if itunes_only and "itunes" not in names:
        raise DatasetError(
            f"{itunes_only[0]}: sets what iTunes is asked (Deezer's covers are {DEEZER_COVER_SIZE} px); expected "
            f"--catalogues with itunes, found --catalogues {','.join(names)}"
        )
    if "itunes" in names and args.cover_size < args.min_cover_size:
        raise DatasetError(
            f"--cover-size {args.cover_size} is below --min-cover-size {args.min_cover_size}: every iTunes cover "
            "would be left out"
        )
    if "deezer" in names and args.min_cover_size > DEEZER_COVER_SIZE:
        raise DatasetError(
            f"--min-cover-size {args.min_cover_size} is above Deezer's {DEEZER_COVER_SIZE} px covers: every Deezer "
            f"cover would be left out; expected at most {DEEZER_COVER_SIZE}, or --catalogues itunes"
        )


def _missing_arguments(args: argparse.Namespace) -> list[str]:
    """What the command lacks, each in argparse's words for a missing argument (``dataset import`` without a
    source says ``the following arguments are required: SRC, --out``): the albums (lists or Wikipedia pages; the
    positional argument is optional only because a page may stand in for it) and where to write them (``--out``,
    or ``--save-list`` alone)."""
    missing = []
    if not args.lists and not args.from_wikipedia_list:
        missing.append(f"ALBUMS (an album list: {_LIST_KINDS}; or --from-wikipedia-list URL)")
    if args.out is None and args.save_list is None:
        missing.append("--out DATA (the dataset folder to write; or --save-list FILE for the list alone)")
    return missing


def _check_outside(out: Path, paths: list[tuple[str, Path | None]]) -> None:
    """Refuse (:class:`DatasetError`, one line naming the option) a ``--save-list`` or ``--cache-dir`` that is
    the dataset folder ``out`` or inside it: the folder holds only what a fetch writes there, and a run into it
    refuses anything else (so a list or downloads put there would make every later run fail)."""
    folder = out.expanduser().resolve()
    for option, path in paths:
        if path is None:
            continue
        real = path.expanduser().resolve()
        if real == folder or folder in real.parents:
            raise DatasetError(
                f"{option}: expected a path outside --out {out} (the dataset folder holds only what fetch writes "
                f"there), found {path}"
            )


def run_fetch(args: argparse.Namespace) -> int:
    from nopaingan_core.atomic import check_output_file, check_output_folder

    missing = _missing_arguments(args)
    if missing:
        raise DatasetError(f"the following arguments are required: {', '.join(missing)}")
    if args.save_list is not None:
        check_album_list_target(args.save_list, "--save-list", args.out)
    country = country_code(args.country)
    names = catalogue_names(args.catalogues)
    if args.out is not None:
        args.out = check_output_folder(args.out, "--out")  # as mkdir -p names it (atomic.made_path)
        check_out(args.out, args.replace)
    _check_cover_sizes(args, names)
    if args.save_list is not None:  # written where it was checked (atomic.made_path), as --out and --cache-dir
        args.save_list = check_output_file(args.save_list, "--save-list")
    cache = check_output_folder(args.cache_dir or default_cache_dir(), "--cache-dir")  # as mkdir -p names it
    if args.out is not None:
        _check_outside(args.out, [("--save-list", args.save_list), ("--cache-dir", cache)])

    def downloader(rate: float | None, statuses: frozenset[int] = RETRY_STATUSES, folder: str = "") -> Downloader:
        return Downloader(
            cache / folder if folder else cache,
            retries=args.retries,
            rate_limit=rate,
            timeout=args.timeout,
            backoff=args.backoff,
            session=session(),
            retry_statuses=statuses,
        )

    # the catalogues' addresses are checked here, before any list is read or downloaded
    catalogues = (
        make_catalogues(
            names,
            lambda rate, statuses: downloader(rate, statuses, "api"),
            deezer_api=args.deezer_api,
            itunes_api=args.itunes_api,
            deezer_rate=args.deezer_rate,
            itunes_rate=args.itunes_rate,
            country=country,
            cover_size=args.cover_size,
            max_age=ANSWER_MAX_AGE,
        )
        if args.out is not None
        else []
    )
    media = downloader(args.rate_limit)
    # a list named twice is read once, as an album listed twice is fetched once (the first kept, the other noted)
    lists, repeated = distinct_files(args.lists)
    for again, first in repeated:
        note(args, f"note: album list {first} given again as {again}: read once")
    albums = [album for path in lists for album in read_album_list(path)]
    notes: list[str] = []
    pages, repeated_pages = distinct_urls(args.from_wikipedia_list)
    for again, first in repeated_pages:
        note(args, f"note: --from-wikipedia-list {first} given again as {again}: read once")
    albums += [album for url in pages for album in wikipedia_album_list(url, media, notes)]
    for text in notes:
        note(args, text)
    if args.save_list is not None:
        write_album_list(albums, args.save_list)
        print(f"wrote {count_text(len(albums), 'album')} to {args.save_list}")
    if args.out is None:
        return 0
    report = fetch_dataset(
        albums,
        args.out,
        catalogues=catalogues,
        downloader=media,
        min_score=args.min_score,
        eval_fraction=args.eval_fraction,
        seed=args.seed,
        min_cover_size=args.min_cover_size,
        replace=args.replace,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0
