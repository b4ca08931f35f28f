"""Manifests in the seed's shape: one album per row with artist, album, song, genres, popularity, top
emotions, a preview and a cover (local paths, relative to the manifest, or URLs), as CSV or JSON.

Lenient where scraped tables vary: column names in any case and spacing, several usual names per field, genres
and emotions as lists or as ``"a, b; c"`` text, JSON as records, JSON lines, or any of pandas' orients.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Iterator
from pathlib import Path

from .candidates import AlbumCandidate, CoverRef, TrackRef
from .cleaning import split_genres
from .download import is_url
from .errors import DatasetError
from .json_text import parse_json, shown

# Delimited text: CSV, TSV, and Excel's "Unicode Text" and "Text (Tab delimited)", saved as .txt.
DELIMITED_EXTENSIONS = (".csv", ".tsv", ".txt")
MANIFEST_EXTENSIONS = (*DELIMITED_EXTENSIONS, ".json", ".jsonl")

# Accepted column names per field, compared without case, spaces or punctuation; the first present wins.
COLUMNS: dict[str, tuple[str, ...]] = {
    "artist": ("artist", "artistname", "albumartist", "artists", "performer"),
    "album": ("album", "albumname", "albumtitle"),
    "song": ("song", "songname", "mostpopularsong", "popularsong", "topsong", "track", "trackname", "title"),
    "genres": ("genres", "genre", "genrelist", "spotifygenres"),
    "popularity": ("popularity", "views", "youtubeviews", "viewcount", "plays", "playcount"),
    "emotions": ("topemotions", "emotions", "topkemotions", "emotion", "moods", "mood"),
    "preview": (
        "preview",
        "previewurl",
        "previewpath",
        "previewfile",
        "songpreview",
        "audio",
        "audiourl",
        "audiopath",
        "audiofile",
        "mp3",
        "clip",
    ),  # fmt: skip
    "cover": (
        "cover",
        "coverurl",
        "coverpath",
        "coverfile",
        "coverart",
        "albumcover",
        "albumcoverurl",
        "albumart",
        "artwork",
        "artworkurl",
        "image",
        "imageurl",
        "imagepath",
    ),  # fmt: skip
    "year": ("year", "releaseyear", "releasedate", "date"),
}
REQUIRED = ("artist", "album", "preview", "cover")
_MISSING = {"", "nan", "none", "null", "n/a"}
_MULTIPLIERS = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}
YEARS = (1860, 2100)  # the years a table's year column may give: from the first recordings on
_YEAR_FORMS = "a year such as 2019, 2019-03-15 or March 15, 2019"
# A time of day after a date ("2019-03-15 00:00:00", "2001-03-12T00:00:00.000", "...Z", "...+01:00"), as
# Python's str(datetime), ISO 8601 and pandas' to_json(date_format="iso") write it: not part of the year.
_TIME_OF_DAY = re.compile(
    r"(?<=[0-9])(?:T|\s+)[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[-+][0-9]{2}:?[0-9]{2})?$"
)
# a sign (not a dash between a date's numbers), an exponent: a number, not a date
_NOT_A_DATE = re.compile(r"^[-−+]|(?<![0-9])[-−+]\s*[0-9]|[0-9][eE][-+]?[0-9]")
_NUMBER = re.compile(r"([0-9][0-9,_]*(?:\.[0-9]+)?)\s*([kmb]?)(?:\s*(?:views|plays|streams))?")


def _key(name: str) -> str:
    return re.sub(r"[\W_]+", "", str(name).casefold())


def read_manifest(path: Path) -> list[AlbumCandidate]:
    """The albums a manifest lists, in its order. A manifest that cannot be read or lacks a required column
    raises :class:`DatasetError`; a row with a bad value becomes an album whose ``problem`` says so."""
    rows, columns = read_table(path)
    return [_candidate(Path(path), where, row, columns) for where, row in rows]


def read_table(
    path: Path, required: tuple[str, ...] = REQUIRED, kind: str = "manifest"
) -> tuple[list[tuple[str, dict]], dict[str, str]]:
    """The rows of a CSV, TSV, JSON or JSON-lines table as ``(where, {column: value})`` (``where`` is
    ``file:line`` or ``file:row N``), and the column found for each field of :data:`COLUMNS`. A table that
    cannot be read (:func:`read_table_text`), has no rows or lacks a column for a ``required`` field raises
    :class:`DatasetError`, one line naming the file and saying what the ``kind`` of table (``manifest``,
    ``album list``) was expected to hold."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MANIFEST_EXTENSIONS:
        found = f"{suffix!r}" if suffix else "no extension"
        raise DatasetError(
            f"{path}: expected {_article(kind)} ending in {', '.join(MANIFEST_EXTENSIONS)}, found {found}"
        )
    text = read_table_text(path, kind)
    if not text.strip():  # blank: no header either
        rows = []
    else:
        rows = list(_csv_rows(path, text) if suffix in DELIMITED_EXTENSIONS else _json_rows(path, text))
    if not rows:
        raise DatasetError(f"{path}: no albums ({_expected_rows(path, required, text)})")
    columns = _match_columns(path, {name for _, row in rows for name in row}, required)
    _check_values(rows, columns)
    _check_one_line_names(rows, columns)
    return rows, columns


LIST_FIELDS = ("genres",)  # fields a JSON table may give as a list of text (emotions: any shape, see _emotions)


def _check_values(rows: list[tuple[str, dict]], columns: dict[str, str]) -> None:
    """Refuse a JSON value no field takes, in one line naming the row, the column and the value: a list or an
    object but for the genres (``["rock", "pop"]``, a list of text) and the emotions (lists or scores:
    :func:`_emotions`), and true or false anywhere (a name or a number is never one). Numbers stay (an album titled
    1989, a year)."""
    for where, row in rows:
        for field, column in columns.items():
            value = row.get(column)
            if field == "emotions":
                continue
            listed = field in LIST_FIELDS
            if listed and isinstance(value, list) and all(isinstance(item, str) for item in value):
                continue
            if isinstance(value, bool | list | dict):
                expected = "text or a list of text" if listed else "text or a number"
                raise DatasetError(f"{where}: column {column!r}: expected {expected}, found {shown(value)}")


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _expected_rows(path: Path, required: tuple[str, ...], text: str) -> str:
    """What a table without albums was expected to hold, and what it holds, in words."""
    suffix = path.suffix.lower()
    if suffix in DELIMITED_EXTENSIONS:
        found = "an empty file" if not text.strip() else "the header row only"
        return f"expected a header row naming {', '.join(required)} and at least one album row, found {found}"
    if suffix == ".jsonl":
        return "expected one album object per line, found " + ("an empty file" if not text.strip() else "none")
    fields = ", ".join(f'"{field}": ...' for field in required)
    return f"expected a list of album objects such as [{{{fields}}}], found an empty list"


# Byte order marks and the encodings they announce (the Unicode Standard, 23.8 "Specials", U+FEFF): UTF-32's
# before UTF-16's, whose little-endian mark begins UTF-32's. Excel's "Unicode Text" saves UTF-16 with a mark,
# its "CSV UTF-8" UTF-8 with one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_SAVE_AS_UTF8 = "save it as UTF-8 (in a spreadsheet: Save As, CSV UTF-8)"


def read_table_text(path: Path, kind: str = "manifest") -> str:
    """The text of a table file: UTF-8, or UTF-8, UTF-16 or UTF-32 after a byte order mark saying so. Any other
    encoding (a list saved as Windows-1252 or Latin-1) raises :class:`DatasetError`, one line naming the file,
    the line and byte offset of the first byte that is not text in that encoding, that byte (and the character it
    is in Windows-1252, the usual other encoding), and asking for the file saved as UTF-8: names are never read
    as guesses. So does a NUL byte in the first line, which no header has (UTF-16 without a byte order mark)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read {kind} ({exc.strerror or exc})") from exc
    codec, name = next(((codec, name) for bom, codec, name in _BOMS if raw.startswith(bom)), ("utf-8", "UTF-8"))
    first_line = raw.split(b"\n", 1)[0]
    # a NUL in the first line (a header, "[" or "{"): UTF-16, whose ASCII characters are each a NUL and a byte (a
    # name may hold one further on: a saved list writes every name back). Before decoding: UTF-16's first non-ASCII
    # character is no UTF-8 either.
    if name == "UTF-8" and b"\0" in first_line:
        offset = raw.index(b"\0")
        line = raw[:offset].count(b"\n") + 1
        raise DatasetError(
            f"{path}:{line}: expected {name} text, found a NUL byte at byte offset {offset}: the {kind} is saved in "
            f"another encoding (UTF-16 without a byte order mark?); {_SAVE_AS_UTF8}"
        )
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].decode(codec, errors="replace").count("\n") + 1
        if exc.reason in ("unexpected end of data", "truncated data"):  # UTF-8's and UTF-16/32's words for it
            raise DatasetError(
                f"{path}:{line}: expected {name} text, found the file ending inside a character at byte offset "
                f"{exc.start}: the {kind} was cut short; save it again as UTF-8"
            ) from exc
        byte = raw[exc.start]
        seen = _windows_1252(byte) if name == "UTF-8" else ""
        raise DatasetError(
            f"{path}:{line}: expected {name} text, found byte 0x{byte:02X} at byte offset {exc.start}{seen}: the "
            f"{kind} is saved in another encoding; {_SAVE_AS_UTF8}"
        ) from exc
    return text


def _windows_1252(byte: int) -> str:
    """`` ('é' in Windows-1252)`` for a byte that is a character there, else ""."""
    try:
        return f" ({bytes([byte]).decode('cp1252')!r} in Windows-1252)"
    except UnicodeDecodeError:
        return ""


def _check_one_line_names(rows: list[tuple[str, dict]], columns: dict[str, str]) -> None:
    """An artist or album over several lines is a quote closed lines after it opened: the rows between would be
    read as part of one name and lost without a word, so it is refused (:class:`DatasetError` naming the row)."""
    for where, row in rows:
        for field in ("artist", "album"):
            value = row.get(columns.get(field, ""))
            if isinstance(value, str) and "\n" in value.strip():
                lines = value.strip().count("\n") + 1
                raise DatasetError(
                    f"{where}: expected the {columns[field]!r} value on one line, found it over {lines} lines "
                    f"({value.strip()[:40]!r}); a quote closed lines after it opened?"
                )


# Excel's delimiter hint: a first line ``sep=;`` (any one character) says which character separates the cells,
# and is no row of the table. Not in RFC 4180: a convention of Microsoft Excel, which reads it (and writes it in
# some exports), as LibreOffice and pandas users meet it; quoted (``"sep=;"``) or padded (``sep=,,,``) by tools
# that write it as a row.
_SEPARATOR_HINT = re.compile(r'"?sep=([^"\r\n])"?\1*[ \t]*\r?$', re.IGNORECASE)
# The delimiters by name, for messages.
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar", " ": "space"}


def _csv_rows(path: Path, text: str) -> Iterator[tuple[str, dict]]:
    """The rows of a CSV, TSV or delimited .txt table. The delimiter is the one Excel's hint ``sep=X`` on the
    first line names (:data:`_SEPARATOR_HINT`; that line is then skipped), else tab for ``.tsv``, else the one of
    ``,;\\t`` used most in the header line (values may hold commas or semicolons of their own). A row with more cells
    than the header raises :class:`DatasetError` (:func:`_check_cells`); a row with fewer gives the missing
    cells as empty."""
    first, _, rest = text.partition("\n")
    hint = _SEPARATOR_HINT.fullmatch(first.strip(" "))
    if hint:
        delimiter, text, skipped = hint.group(1), rest, 1
    else:
        delimiter, skipped = "\t" if path.suffix.lower() == ".tsv" else max(",;\t", key=first.count), 0
    opened = _unclosed_quote(text, delimiter)
    if opened is not None:
        raise DatasetError(
            f"{path}:{opened + skipped}: a quote opens a value here that no quote closes (the rest of the file would "
            'be that one value); expected a closing " or none'
        )
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    names = reader.fieldnames or []
    _check_header(path, names)
    for row in reader:
        where = f"{path}:{reader.line_num + skipped}"
        _check_cells(where, names, row.get(None) or [], delimiter)
        yield where, {k: v for k, v in row.items() if k is not None}


def _check_cells(where: str, names: list[str], extra: list[str], delimiter: str) -> None:
    """:class:`DatasetError` for a row with more cells than the header (``extra``, those past the header's
    ``names``), unless every one of them is empty: spreadsheets pad rows with empty cells (a trailing ``,``), but a
    cell of text past the header is most often a name with the delimiter in it that is not quoted (``Earth, Wind &
    Fire``), which the csv module would split and cut without a word (RFC 4180, 2.4: every record has the same
    number of fields; 2.6: a field holding the delimiter is quoted)."""
    if not any(cell.strip() for cell in extra):
        return
    name = _DELIMITER_NAMES.get(delimiter, repr(delimiter))
    raise DatasetError(
        f"{where}: expected {len(names)} cells as the header has, found {len(names) + len(extra)}: a name with an "
        f'unquoted {name} in it? Put such a name in double quotes ("Earth, Wind & Fire")'
    )


def _unclosed_quote(text: str, delimiter: str) -> int | None:
    """The line where a quoted value opens that no quote closes, or None. The csv module (not strict) reads
    the rest of the file as that value, without a word; this follows its rules: a quote opens a value only as
    its first character, and ``""`` inside a quoted value is a quote."""
    if '"' not in text:
        return None
    line, opened, state = 1, 0, "start"  # start of a value, inside an unquoted one, quoted, quote in a quoted
    for char in text:
        if state == "quoted":
            state = "quote" if char == '"' else "quoted"
        elif state == "start" and char == '"':
            state, opened = "quoted", line
        elif char in (delimiter, "\n", "\r"):
            state = "start"
        else:  # a quote after a quote is a quote; other text goes on (or starts) an unquoted value
            state = "quoted" if state == "quote" and char == '"' else "field"
        line += char == "\n"
    return opened if state == "quoted" else None


def _check_header(path: Path, names: list[str]) -> None:
    """:class:`DatasetError` for a header naming a column twice (``Artist,Album,Artist``; also in other case
    or spacing, ``Artist`` and ``artist ``): the reader would keep the last silently."""
    seen: dict[str, str] = {}
    for name in filter(_key, names):  # unnamed columns (",," in a spreadsheet's export) are never read
        if _key(name) in seen:
            first = seen[_key(name)]
            twice = f"column {name!r} twice" if first == name else f"columns {first!r} and {name!r}, one column twice"
            raise DatasetError(f"{path}: expected each column once in the header, found {twice}")
        seen[_key(name)] = name


def _json_rows(path: Path, text: str) -> Iterator[tuple[str, dict]]:
    if path.suffix.lower() == ".jsonl":
        records: list[tuple[str, object]] | None = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                records.append((f"{path}:{number}", parse_json(line, f"{path}:{number}")))
    else:
        data = parse_json(text, str(path))
        records = _records(data, path)
        if records is not None:
            records = [(f"{path}:{where}", record) for where, record in records]
    if records is None or (records and not any(isinstance(record, dict) for _, record in records)):
        raise DatasetError(
            f"{path}: expected a list of album objects (or a pandas to_json export), found another shape"
        )
    for where, record in records:  # among album objects, the one that is not
        if not isinstance(record, dict):
            raise DatasetError(f"{where}: expected an album object ({{...}}), found {shown(record)}")
    yield from records


def _records(data: object, path: Path) -> list[tuple[str, object]] | None:
    """Rows of the JSON shapes tables come in: a list of objects, ``{"albums": [...]}``, or pandas' orients
    ``split`` (columns + data), ``index`` ({row: {column: value}}), ``columns`` ({column: {row: value}}). A
    ``split`` row with more values than ``columns`` names raises :class:`DatasetError` naming ``path`` and the row
    (its values past the columns would be dropped without a word)."""
    if isinstance(data, list):
        return [(f"row {i + 1}", r) for i, r in enumerate(data)]
    if not isinstance(data, dict) or not data:
        return None
    if "columns" in data and "data" in data:
        columns = data["columns"]
        rows = [(f"row {i + 1}", r) for i, r in enumerate(data["data"])]
        longer = next(((where, r) for where, r in rows if isinstance(r, list) and len(r) > len(columns)), None)
        if longer is not None:  # as a CSV row with more cells than the header (_check_cells)
            where, row = longer
            raise DatasetError(
                f'{path}:{where}: expected {len(columns)} values as "columns" names, found {len(row)} in "data"'
            )
        return [(where, dict(zip(columns, r, strict=False))) for where, r in rows]
    lists = [v for v in data.values() if isinstance(v, list)]
    if len(data) == 1 and lists:
        return _records(lists[0], path)
    if all(isinstance(v, dict) for v in data.values()):
        known = {alias for aliases in COLUMNS.values() for alias in aliases}
        if any(_key(k) in known for k in data):  # columns orient
            index = list(dict.fromkeys(i for column in data.values() for i in column))
            return [(f"index {i}", {c: data[c].get(i) for c in data}) for i in index]
        return [(f"index {i}", r) for i, r in data.items()]
    return None


def _match_columns(path: Path, names: set[str], required: tuple[str, ...]) -> dict[str, str]:
    """Field -> the manifest's column for it."""
    by_key: dict[str, str] = {}
    for name in sorted(names):
        by_key.setdefault(_key(name), name)
    columns = {}
    for field, aliases in COLUMNS.items():
        found = [by_key[a] for a in aliases if a in by_key]
        if len(found) > 1:
            raise DatasetError(
                f"{path}: columns {found[0]!r} and {found[1]!r} both give the {field}; expected one column for it "
                "(rename or remove the other)"
            )
        if found:
            columns[field] = found[0]
    missing = [f for f in required if f not in columns]
    if missing:
        expected = "; ".join(f"{f}: one of {', '.join(COLUMNS[f])}" for f in missing)
        raise DatasetError(
            f"{path}: no column for {', '.join(missing)} (expected {expected}); found columns {sorted(names)}"
        )
    return columns


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text.casefold() in _MISSING else text


def parse_number(value: object) -> float | None:
    """Popularity as the seed scraped it: ``1234``, ``"1,234,567"``, ``"1.2M views"`` -> a number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, found {value!r}")
    if isinstance(value, int | float):
        return None if math.isnan(value) else float(value)
    text = _text(value)
    if text is None:
        return None
    match = _NUMBER.fullmatch(text.casefold())
    if not match:
        raise ValueError(f"expected a number such as 1234, 1,234 or 1.2M, found {text!r}")
    return float(match.group(1).replace(",", "").replace("_", "")) * _MULTIPLIERS[match.group(2)]


def parse_year(value: object) -> int | None:
    """A release year as tables give it: ``2019``, ``2019.0``, ``"2019-03-15"``, ``"15/03/2019"``, ``"March 15,
    2019"``, with a time of day after it (``"2019-03-15T00:00:00.000"``, :data:`_TIME_OF_DAY`) -> 2019; nothing
    -> None. Text with no year, a number of other length (``"12345"``, ``"1e3"``), a
    year outside :data:`YEARS`, a sign (``"-1999"``), two years or a day and month no date has (``"1999-13-45"``)
    raises :class:`ValueError` saying so."""
    if isinstance(value, bool):
        raise ValueError(f"expected {_YEAR_FORMS}, found {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _text(value)
    if text is None:
        return None
    shown, text = text, _TIME_OF_DAY.sub("", text)
    numbers = re.findall(r"[0-9]+", re.sub(r"^([0-9]{4})\.0+$", r"\1", text))  # "2019.0": a spreadsheet's number
    years = [int(n) for n in numbers if len(n) == 4]
    days = [n for n in numbers if len(n) != 4]  # a date's day and month: one or two digits
    if len(years) != 1 or not _day_and_month(days) or _NOT_A_DATE.search(text):
        raise ValueError(f"expected {_YEAR_FORMS}, found {shown!r}")
    if not YEARS[0] <= years[0] <= YEARS[1]:
        raise ValueError(f"expected a year from {YEARS[0]} to {YEARS[1]}, found {shown!r}")
    return years[0]


def _day_and_month(numbers: list[str]) -> bool:
    """Whether the numbers of a date beside its year can be its day and month, in either order (``15/03``,
    ``03-15``; one alone is a day or a month): none above 31, not both above 12, no 0, none over two digits."""
    values = [int(n) for n in numbers]
    if len(values) > 2 or any(len(n) > 2 for n in numbers) or not all(1 <= v <= 31 for v in values):
        return False
    return len(values) < 2 or min(values) <= 12


def _emotions(value: object) -> list[str]:
    """Top emotions as a list or text, or as Hume-style scores ({name: score} or [{name, score}]), best
    first."""
    if isinstance(value, dict):
        return [str(k) for k, _ in sorted(value.items(), key=lambda kv: -float(kv[1]))]
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        return [str(v["name"]) for v in sorted(value, key=lambda v: -float(v.get("score", 0)))]
    return split_genres(value)


def _location(manifest: Path, value: str) -> str:
    return value if is_url(value) else str((manifest.parent / Path(value).expanduser()).resolve())


def _candidate(manifest: Path, where: str, row: dict, columns: dict[str, str]) -> AlbumCandidate:
    def get(field: str) -> object:
        value = row.get(columns[field]) if field in columns else None
        return None if isinstance(value, float) and math.isnan(value) else value

    values = {field: _text(get(field)) for field in REQUIRED}
    candidate = AlbumCandidate(artist=values["artist"] or "", album=values["album"] or "", source=where)
    empty = [columns[field] for field, value in values.items() if not value]
    if empty:
        candidate.problem = f"{where}: empty {', '.join(empty)}"
        return candidate
    preview, cover = _location(manifest, values["preview"]), _location(manifest, values["cover"])
    candidate.tracks = [TrackRef(preview, _text(get("song")))]
    candidate.track_marked = True
    candidate.covers = [CoverRef("url" if is_url(cover) else "file", cover)]
    candidate.genres = split_genres(get("genres"))
    for field in ("year", "popularity", "emotions"):
        try:
            if field == "year":
                candidate.year = parse_year(get(field))
            elif field == "popularity":
                candidate.popularity = parse_number(get(field))
            else:
                candidate.emotions = _emotions(get(field))
        except (ValueError, TypeError) as exc:
            candidate.problem = f"{where}: column {columns[field]}: {exc}"
    return candidate
