"""Public, keyless music catalogues that still give 30 s preview URLs and large cover art: the Deezer API and
the iTunes Search API. Each client searches albums and lists an album's tracks with their previews.

Answers are JSON fetched through a :class:`~training.download.Downloader` of the client's own, so each
catalogue has its own rate limit, retries (with the server's ``Retry-After``) and cache: an answer is kept for
:data:`ANSWER_MAX_AGE` seconds (previews' signed URLs expire), and a re-run of an interrupted fetch asks
nothing it already asked. A client counts the answers it took from the cache (``reused``), and while ``fresh``
asks every answer anew: ``dataset fetch`` does so once for an album whose cached answer's links answered as
expired (:func:`training.fetch.resolve`). Error answers are never cached, and a cached answer that is not JSON
or not shaped as the API answers (a file cut short by a crash or a full disk, a hand edit) is dropped and asked
again: only a live answer that is not JSON means a broken API.

Documented limits, obeyed by the default rates:

- Deezer (https://developers.deezer.com/api): 50 requests per 5 seconds; over it the API answers HTTP 200 with
  ``{"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}}``, retried with backoff.
- iTunes Search API (https://performance-partners.apple.com/search-api): about 20 calls per minute; over it
  the API answers 403 or 429, retried with backoff. Apple allows previews and artwork "only to promote store
  content": the data set is for research, see docs/dataset.md.

An API still throttling, busy or out of reach after the retries raises
:class:`~training.errors.UnreachableError`, never an empty answer: ``dataset fetch`` then stops rather than
record every album as not found. Both APIs answer a search that finds nothing with HTTP 200 and an empty list
(Deezer ``{"data": [], "total": 0}``, iTunes ``{"resultCount": 0, "results": []}``); a search answered with
any other status no retry changes (404 from a wrong address, 400...) or with something that is not the API's
JSON raises :class:`~training.errors.CatalogueBrokenError`: the address is not the API, the album may well
be there.

Previews and covers are taken from an answer only as absolute http(s) URLs with a host (:func:`web_url`): a
local path, a ``file://`` or relative URL, or anything else there counts as no preview or no cover, as a
missing one does, so nothing an answer says is ever read from the local disk.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from .download import RETRY_STATUSES, Downloader, web_url
from .errors import (
    CatalogueBrokenError,
    DatasetError,
    DownloadError,
    HTTPStatusError,
    UnreachableError,
    tries_text,
)

DEEZER_API = "https://api.deezer.com"
ITUNES_API = "https://itunes.apple.com"
DEEZER_RATE = 50 / 5  # requests per second
ITUNES_RATE = 20 / 60
ANSWER_MAX_AGE = 12 * 3600.0  # seconds an answer is reused
COVER_SIZE = 1000  # iTunes artwork side in pixels
DEEZER_COVER_SIZE = 1000  # the side of Deezer's largest cover, cover_xl (cover_big: 500)
# The iTunes cover sides that can be asked for. Below: the API's own ``artworkUrl100`` (100 px) is every
# release's fallback cover, so asking for less never gives more. Above: Apple asks labels for cover art of
# 3000 x 3000 px (Apple Music's artwork requirements), and its artwork server scales that original to the
# NxN of the URL, so a larger side adds file size, not detail. Deezer's covers have fixed sizes.
ITUNES_COVER_SIZES = (100, 3000)
# The iTunes Search API's ``country``: an ISO 3166-1 alpha-2 code (US, GB, JP...), any case.
_COUNTRY = re.compile(r"[A-Za-z]{2}")
SEARCH_LIMIT = 25
# Deezer error codes worth a retry: 4 QUOTA (50 requests / 5 s), 700 SERVICE_BUSY.
_DEEZER_RETRY = {4, 700}
_DEEZER_NOT_FOUND = 800  # DATA_NOT_FOUND


@dataclass(frozen=True)
class Track:
    """A song of a catalogue album with a preview (an http(s) URL): ``popularity`` is the catalogue's rank when
    it gives one, ``duration`` the full song's length in seconds."""

    title: str
    preview: str
    popularity: float | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Release:
    """An album as a catalogue lists it; ``covers`` are http(s) URLs, largest first."""

    catalogue: str
    id: str
    artist: str
    title: str
    year: int | None = None
    url: str = ""
    covers: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    tracks: tuple[Track, ...] = field(default=(), compare=False)


class ApiError(DownloadError):
    """An error a catalogue API reports in its answer: its ``code``, and whether a retry may help."""

    def __init__(self, message: str, code: object = None, retry: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retry = retry


class AlbumGoneError(DownloadError):
    """An album a search found that the catalogue no longer has (Deezer's ``/album/{id}``: error 800, no data)."""


_DAMAGED = object()  # a cached answer that is not JSON


def _has_shape(answer: object, key: str | None) -> bool:
    """Whether ``answer`` has the shape of an API's answer: a JSON object, with a ``key`` list where ``key`` is
    given."""
    return isinstance(answer, dict) and (key is None or isinstance(answer.get(key), list))


class _NotJson(DownloadError):
    """An answer that is not JSON."""


def _year(date: object) -> int | None:
    match = re.match(r"([12][0-9]{3})", str(date or ""))
    return int(match.group(1)) if match else None


class Catalogue:
    """Shared JSON fetching. Subclasses implement :meth:`search` and :meth:`album`.

    ``base`` is the API's address, ``origin`` what set it (an option or environment variable, named in
    messages; "" for the public API): :class:`DatasetError` unless it is an http(s) URL with a host."""

    name = ""
    public = ""  # the public API's address

    def __init__(self, base: str, downloader: Downloader, max_age: float = ANSWER_MAX_AGE, origin: str = "") -> None:
        self.base = api_address(base, origin or f"{self.name} API address", self.public)
        self.origin = origin
        self.downloader = downloader
        self.max_age = max_age
        self.reused = 0  # answers taken from the cache so far
        self.fresh = False  # while True, every answer is asked anew (a cached one's links expired)

    def search(self, artist: str, album: str) -> list[Release]:
        """Albums the catalogue finds for ``artist`` and ``album``, in its order (no tracks yet)."""
        raise NotImplementedError

    def album(self, release: Release) -> Release:
        """``release`` with its tracks that have a preview (best first), year and genres filled in;
        :class:`AlbumGoneError` when the catalogue no longer has it."""
        raise NotImplementedError

    def _error(self, answer: object) -> ApiError | None:
        """The error an API reports inside a 200 answer, if ``answer`` is one."""
        return None

    def _url(self, path: str, params: dict[str, object]) -> str:
        return f"{self.base}{path}?{urlencode(params)}"

    def _get(self, path: str, params: dict[str, object], key: str | None = None) -> object:
        """The JSON answer to ``GET base/path?params``: cached, retried on errors the API says are passing. A
        cached answer that is not JSON, or not a JSON object (with a ``key`` list where ``key`` is given), is a
        damaged copy, dropped and asked again; a live one is returned for the caller to judge."""
        url = self._url(path, params)
        cached = self.downloader.expire(url, None if self.fresh else self.max_age)
        from_cache = cached.is_file()  # an answer kept by an earlier run, which may have been cut short
        attempt = 0
        while True:
            local = self.downloader.fetch(url)
            try:
                answer = json.loads(local.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                if not from_cache:
                    local.unlink()
                    raise _NotJson(f"{url}: the {self.name} API answered something that is not JSON") from exc
                answer = _DAMAGED
            if from_cache and not _has_shape(answer, key):  # a damaged copy says nothing about the API: ask again
                local.unlink()
                from_cache = False
                continue
            error = self._error(answer)
            if error is None:
                self.reused += from_cache
                return answer
            local.unlink()  # an error is never kept as the answer
            if not error.retry:
                raise ApiError(f"{url}: {error}", error.code)
            if attempt == self.downloader.retries:  # still over quota or busy: the API did not answer
                raise UnreachableError(f"{url}: {error} after {tries_text(attempt + 1)}", str(error), attempt + 1, url)
            self.downloader.wait_before_retry(attempt)
            attempt += 1

    def _search(self, path: str, params: dict[str, object], key: str) -> list:
        """The ``key`` list of the search answer to ``GET base/path?params``. An answer that is not a result
        (a status no retry changes, something other than the API's JSON) raises :class:`CatalogueBrokenError`:
        the address does not lead to the API, and the album may be there all the same."""
        try:
            answer = self._get(path, params, key)
        except HTTPStatusError as exc:
            said = _api_message(exc.body)
            raise self._broken(f"its album search answered HTTP {exc.status}" + (f": {said}" if said else "")) from exc
        except _NotJson as exc:
            raise self._broken("its album search answered something that is not JSON") from exc
        except (ApiError, UnreachableError):  # the API's own error answer; an outage
            raise
        except DownloadError as exc:  # an address that cannot be requested
            raise self._broken(str(exc)) from exc
        found = answer.get(key) if isinstance(answer, dict) else None
        if not isinstance(found, list):
            self.downloader.cached_path(self._url(path, params)).unlink(missing_ok=True)  # not kept as an answer
            shown = json.dumps(answer)[:80]
            raise self._broken(f"its album search answered {shown}, without a {key!r} list")
        return found

    def _broken(self, reason: str) -> CatalogueBrokenError:
        return CatalogueBrokenError(self.name, reason, self.base, self.origin, self.public)


class Deezer(Catalogue):
    """The Deezer API: ``/search/album`` (advanced query ``artist:"..." album:"..."``, else plain words) and
    ``/album/{id}`` (tracks with ``preview`` and ``rank``, ``genres``, ``release_date``, ``cover_xl``)."""

    name = "deezer"
    public = DEEZER_API

    def _error(self, answer: object) -> ApiError | None:
        error = answer.get("error") if isinstance(answer, dict) else None
        if not error:
            return None
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message", error) if isinstance(error, dict) else error
        return ApiError(f"Deezer error {code}: {message}", code, code in _DEEZER_RETRY)

    def search(self, artist: str, album: str) -> list[Release]:
        quoted = f'artist:"{_unquote(artist)}" album:"{_unquote(album)}"'
        results = self._albums(quoted) or self._albums(f"{artist} {album}")
        return [self._release(item) for item in results if isinstance(item, dict) and item.get("id")]

    def _albums(self, query: str) -> list:
        return self._search("/search/album", {"q": query, "limit": SEARCH_LIMIT}, "data")

    def _release(self, item: dict) -> Release:
        artist = item.get("artist") or {}
        covers = tuple(c for c in (item.get("cover_xl"), item.get("cover_big")) if web_url(c))
        genres = tuple(g["name"] for g in (item.get("genres") or {}).get("data", []) if g.get("name"))
        title = str(item.get("title", ""))
        if item.get("record_type") == "single" and not title.lower().endswith("single"):
            title += " - Single"  # as iTunes names one: matching tells a single from the album by it
        return Release(
            "deezer",
            str(item["id"]),
            str(artist.get("name", "")),
            title,
            _year(item.get("release_date")),
            str(item.get("link", "")),
            covers,
            genres,
        )

    def album(self, release: Release) -> Release:
        try:
            answer = self._get(f"/album/{release.id}", {})
        except ApiError as exc:
            if exc.code == _DEEZER_NOT_FOUND:  # the album went away since the search (or the search is stale)
                raise AlbumGoneError(
                    f"{release.artist} - {release.title} (album {release.id}) is gone from the catalogue: its "
                    f"search lists it, its album page answers error {_DEEZER_NOT_FOUND} (no data)"
                ) from exc
            raise
        full = self._release(answer) if isinstance(answer, dict) and answer.get("id") else release
        items = ((answer.get("tracks") or {}).get("data") or []) if isinstance(answer, dict) else []
        tracks = [
            Track(str(t.get("title", "")), t["preview"], _number(t.get("rank")), _number(t.get("duration")))
            for t in items
            if isinstance(t, dict) and web_url(t.get("preview"))
        ]
        tracks.sort(key=lambda t: -(t.popularity or 0.0))  # most popular first, as the seed chose
        return replace(
            release,
            year=full.year or release.year,
            genres=full.genres or release.genres,
            covers=full.covers or release.covers,
            tracks=tuple(tracks),
        )


class ITunes(Catalogue):
    """The iTunes Search API: ``/search?entity=album`` and ``/lookup?id=...&entity=song`` (tracks with
    ``previewUrl``); ``artworkUrl100`` rewritten to ``cover_size`` px."""

    name = "itunes"
    public = ITUNES_API

    def __init__(
        self,
        base: str,
        downloader: Downloader,
        max_age: float = ANSWER_MAX_AGE,
        origin: str = "",
        *,
        country: str = "US",
        cover_size: int = COVER_SIZE,
    ) -> None:
        super().__init__(base, downloader, max_age, origin)
        low, high = ITUNES_COVER_SIZES
        if not low <= cover_size <= high:
            raise DatasetError(f"--cover-size: expected {low} to {high} px, found {cover_size}")
        self.country = country_code(country)
        self.cover_size = cover_size

    def search(self, artist: str, album: str) -> list[Release]:
        params = {
            "term": f"{artist} {album}",
            "media": "music",
            "entity": "album",
            "limit": SEARCH_LIMIT,
            "country": self.country,
        }
        return [
            self._release(item)
            for item in self._search("/search", params, "results")
            if isinstance(item, dict) and item.get("wrapperType") == "collection" and item.get("collectionId")
        ]

    def _release(self, item: dict) -> Release:
        small = item.get("artworkUrl100") if web_url(item.get("artworkUrl100")) else ""
        size = self.cover_size
        large = re.sub(r"/\d+x\d+bb\.(?:jpg|png|webp)$", f"/{size}x{size}bb.jpg", small) if small else ""
        covers = tuple(dict.fromkeys(c for c in (large, small) if c))
        genre = item.get("primaryGenreName")
        return Release(
            "itunes",
            str(item["collectionId"]),
            str(item.get("artistName", "")),
            str(item.get("collectionName", "")),
            _year(item.get("releaseDate")),
            str(item.get("collectionViewUrl", "")),
            covers,
            (str(genre),) if genre else (),
        )

    def album(self, release: Release) -> Release:
        answer = self._get("/lookup", {"id": release.id, "entity": "song", "country": self.country}, "results")
        results = answer.get("results") if isinstance(answer, dict) else None
        tracks = [
            Track(str(t.get("trackName", "")), t["previewUrl"], None, _number(t.get("trackTimeMillis"), 1000.0))
            for t in results or []
            if isinstance(t, dict) and t.get("wrapperType") == "track" and web_url(t.get("previewUrl"))
        ]
        tracks.sort(key=lambda t: -(t.duration or 0.0))  # no popularity: the longest is rarely an intro
        return replace(release, tracks=tuple(tracks))


def _number(value: object, scale: float = 1.0) -> float | None:
    return float(value) / scale if isinstance(value, int | float) and not isinstance(value, bool) else None


def _unquote(text: str) -> str:
    return text.replace('"', " ")


def _api_message(body: bytes) -> str:
    """The message of an API's JSON error answer (iTunes: ``{"errorMessage": ...}``), or ""."""
    try:
        answer = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(answer, dict):
        return ""
    error = answer.get("error")
    message = answer.get("errorMessage") or (error.get("message") if isinstance(error, dict) else error)
    return " ".join(str(message).split())[:200] if message else ""


def api_address(text: str, origin: str, public: str) -> str:
    """``text`` as a catalogue API's address (no trailing slash); :class:`DatasetError` naming ``origin`` unless it
    is an http(s) URL with a host, checked before any request, so that a mistyped address is not mistaken for
    a catalogue without the album."""
    address = text.strip()
    if not web_url(address) or " " in address:
        raise DatasetError(f"{origin}: expected an http(s) URL with a host such as {public}, found {text!r}")
    return address.rstrip("/")


CATALOGUES = ("deezer", "itunes")
CATALOGUE_APIS = {"deezer": DEEZER_API, "itunes": ITUNES_API}  # the public addresses


def country_code(text: str) -> str:
    """``text`` as an iTunes store country, upper case; :class:`DatasetError` unless it has the shape of an ISO
    3166-1 alpha-2 code (two ASCII letters, any case). Whether the code is assigned is not checked: no library
    that knows the codes comes with the project, and the API answers an unassigned one with no result."""
    if not _COUNTRY.fullmatch(text):
        raise DatasetError(f"--country: expected a two-letter ISO 3166-1 country code such as US or GB, found {text!r}")
    return text.upper()


def catalogue_names(names: str | Sequence[str]) -> list[str]:
    """The catalogues of ``names`` (a list, or comma-separated: ``deezer,itunes``) in order; :class:`DatasetError`
    for an unknown or repeated name, or none at all."""
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in names if name not in CATALOGUES]
    twice = [name for i, name in enumerate(names) if name in names[:i]]
    if names and not unknown and not twice:
        return list(names)
    found = f"unknown {unknown[0]!r}" if unknown else f"{twice[0]} twice" if twice else "none"
    raise DatasetError(f"--catalogues: expected some of {', '.join(CATALOGUES)}, each at most once, found {found}")


def make_catalogues(
    names: Sequence[str],
    make_downloader: Callable[[float, frozenset[int]], Downloader],
    *,
    deezer_api: str | None = None,
    itunes_api: str | None = None,
    deezer_rate: float = DEEZER_RATE,
    itunes_rate: float = ITUNES_RATE,
    country: str = "US",
    cover_size: int = COVER_SIZE,
    max_age: float = ANSWER_MAX_AGE,
) -> list[Catalogue]:
    """Clients for ``names`` in order, each with a downloader from ``make_downloader(rate, retry_statuses)``.
    API base URLs default to ``$NOPAINGAN_DEEZER_API`` / ``$NOPAINGAN_ITUNES_API``, else the public ones; every
    address is checked (:func:`api_address`) before any client is made."""
    catalogue_names(names)  # unknown or repeated names, before any client is made
    clients: list[Catalogue] = []
    for name in names:
        base, origin = _address(deezer_api if name == "deezer" else itunes_api, name, CATALOGUE_APIS[name])
        if name == "deezer":
            clients.append(Deezer(base, make_downloader(deezer_rate, RETRY_STATUSES), max_age, origin))
        elif name == "itunes":
            downloader = make_downloader(itunes_rate, RETRY_STATUSES | {403})  # 403: Apple's throttling
            clients.append(ITunes(base, downloader, max_age, origin, country=country, cover_size=cover_size))
    return clients


def _address(given: str | None, name: str, public: str) -> tuple[str, str]:
    """A catalogue's address and what set it: the option (``--deezer-api``), else the environment variable
    (``$NOPAINGAN_DEEZER_API``), else the public API (origin "")."""
    variable = f"NOPAINGAN_{name.upper()}_API"
    if given is not None:
        return given, f"--{name}-api"
    if os.environ.get(variable):
        return os.environ[variable], f"${variable}"
    return public, ""
