"""Downloading previews and covers: a cache keyed by URL (a re-run downloads nothing twice), retries with
exponential backoff on errors a retry can fix, a rate limit (the seed stayed under Spotify's), and resuming
an interrupted download from its ``.part`` file with an HTTP Range request."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3
from requests.exceptions import InvalidSchema, InvalidURL, MissingSchema

from nopaingan_core.atomic import describe_os_error
from nopaingan_core.hub import cache_home

from .errors import DownloadError, HTTPStatusError, UnreachableError, count_text, tries_text

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_WAIT = 60.0
_CHUNK = 1 << 16
_ERROR_BODY = 4096  # bytes of an error answer kept for its message


_WEB_SCHEMES = ("http", "https")


def is_url(location: str) -> bool:
    """Whether ``location`` names an http(s) URL rather than a local path: a manifest's location to download.

    The scheme is read in any case (``HTTP://``, ``Https://``: RFC 3986 3.1 makes it case-insensitive). A
    malformed URL (no host, a port that is not a number) is still one: its download fails, naming it, where
    reading it as a file name would fail for a file the user never meant. A Windows drive (``C:\\...``) or a
    relative path with a colon further on (``./a:b.mp3``) names no scheme."""
    scheme, colon, _ = location.partition(":")
    return bool(colon) and scheme.lower() in _WEB_SCHEMES


def web_url(location: object) -> bool:
    """Whether ``location`` is an absolute http(s) URL (:func:`is_url`) with a host and nothing around it: the
    only previews and covers taken from a catalogue's answer (a local path, a ``file://`` or relative URL there
    is no preview or cover at all)."""
    if not isinstance(location, str) or location != location.strip() or not is_url(location):
        return False
    try:
        parts = urlsplit(location)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return False
    return bool(parts.hostname)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nopaingan/downloads``, i.e. ``~/.cache/nopaingan/downloads`` by default."""
    return cache_home("downloads")


class _Incomplete(Exception):
    """The connection ended before the whole body arrived; the ``.part`` file keeps what did."""


class _Status(Exception):
    """An HTTP error status, its headers and the start of its body (an API's error message)."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.status = response.status_code
        self.reason = response.reason
        self.headers = response.headers
        try:
            self.body = response.raw.read(_ERROR_BODY, decode_content=True) or b""
        except (urllib3.exceptions.HTTPError, OSError):
            self.body = b""


class Downloader:
    """Fetches URLs into ``cache_dir``; :meth:`fetch` returns the local file.

    ``retries`` more attempts follow a failed one, after ``backoff * 2**n`` seconds (or the server's
    ``Retry-After``, at most 60 s); ``retry_statuses`` are the HTTP statuses worth a retry (an API may
    answer 403 when it throttles). ``rate_limit`` is the most requests started per second to each host
    (None or 0: no limit), retries included.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        retries: int = 3,
        rate_limit: float | None = 2.0,
        timeout: float = 30.0,
        backoff: float = 1.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
    ) -> None:
        if retries < 0:
            raise DownloadError(f"retries must be 0 or more, found {retries}")
        if rate_limit is not None and rate_limit < 0:
            raise DownloadError(f"rate limit must be 0 or more requests per second, found {rate_limit}")
        self.cache_dir = Path(cache_dir)
        self.retries = retries
        self.interval = 1.0 / rate_limit if rate_limit else 0.0
        self.timeout = timeout
        self.backoff = backoff
        self.session = session or requests.Session()
        self.retry_statuses = retry_statuses
        self._sleep = sleep
        self._next_start: dict[str, float] = {}  # host -> when its next request may start

    def cached_path(self, url: str) -> Path:
        """Where ``url`` is kept: a hash of the URL, plus its file extension when it has a short one."""
        suffix = Path(urlsplit(url).path).suffix.lower()
        suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
        return self.cache_dir / (hashlib.sha256(url.encode("utf-8")).hexdigest()[:32] + suffix)

    def expire(self, url: str, max_age: float | None) -> Path:
        """Drop the kept copy of ``url`` when it is older than ``max_age`` seconds (any copy with None), so that the
        next :meth:`fetch` downloads it anew; returns where it is kept (:meth:`cached_path`)."""
        path = self.cached_path(url)
        if path.is_file() and (max_age is None or time.time() - path.stat().st_mtime > max_age):
            path.unlink()
        return path

    def fetch(self, url: str) -> Path:
        """The local copy of ``url``, downloaded unless the cache has it already; :class:`DownloadError` at once
        for a location that is no http(s) URL with a host (:func:`web_url`), which no retry could download."""
        if not web_url(url):
            raise DownloadError(f"{url}: not a URL that can be downloaded (expected an http(s) URL with a host)")
        path = self.cached_path(url)
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        error = ""
        refusal: _Status | None = None  # a status no retry changes: the server's definite answer
        wait = 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(wait)
            wait = min(MAX_WAIT, self.backoff * 2**attempt)
            try:
                self._download(url, part)
            except _Incomplete as exc:
                error = str(exc)
                continue
            except _Status as exc:
                error = f"HTTP {exc.status} {exc.reason}"
                if exc.status not in self.retry_statuses:
                    refusal = exc
                    break
                wait = _retry_after(exc.headers, wait)
                continue
            except (MissingSchema, InvalidSchema, InvalidURL) as exc:
                raise DownloadError(f"{url}: not a URL that can be downloaded ({exc})") from exc  # no retry helps
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            os.replace(part, path)
            return path
        message = f"{url}: download failed after {tries_text(attempt + 1)} ({error})"
        if refusal is None:
            raise UnreachableError(message, error, attempt + 1, url)
        raise HTTPStatusError(message, refusal.status, url, refusal.body)

    def wait_before_retry(self, attempt: int) -> None:
        """Sleep as :meth:`fetch` does before retry ``attempt + 1``: ``backoff * 2**attempt``, at most 60 s.
        For answers a caller finds wrong after a successful download (an API's quota error in a 200)."""
        self._sleep(min(MAX_WAIT, self.backoff * 2**attempt))

    def _throttle(self, url: str) -> None:
        """Wait until ``interval`` has passed since the previous request to the same host started."""
        host = urlsplit(url).netloc
        now = time.monotonic()
        start = self._next_start.get(host, 0.0)
        self._next_start[host] = max(now, start) + self.interval
        if start - now > 0:
            self._sleep(start - now)

    def _download(self, url: str, part: Path) -> None:
        """One attempt: continue ``part`` from its end when the server honours Range, else start over."""
        have = part.stat().st_size if part.is_file() else 0
        # identity: byte counts and Range offsets then refer to the file itself, not to a gzip stream
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
        self._throttle(url)
        with self.session.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code == 416:  # the part is not a prefix the server knows: start over
                part.unlink(missing_ok=True)
                raise _Incomplete("server refused to resume (HTTP 416)")
            if response.status_code >= 400:
                raise _Status(response)
            resumed = response.status_code == 206
            if resumed and _range_start(response) != have:
                part.unlink(missing_ok=True)
                found = response.headers.get("Content-Range")
                raise _Incomplete(f"server resumed at {found!r}, not at byte {have}")
            expected = response.headers.get("Content-Length")
            received = 0
            with open(part, "ab" if resumed else "wb") as out:
                try:  # read1 hands over what arrived, so a dropped connection loses nothing received
                    while chunk := response.raw.read1(_CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    if isinstance(exc, OSError) and describe_os_error(exc) is not None:
                        raise  # the disk (full, read-only), not the connection: retrying cannot help
                    raise _Incomplete(f"connection broke after {count_text(received, 'byte')} ({exc})") from exc
            if expected is not None and expected.isdigit() and received < int(expected):
                raise _Incomplete(f"got {received} of {count_text(int(expected), 'byte')}")


def _range_start(response: requests.Response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _retry_after(headers: Mapping[str, str], default: float) -> float:
    """The server's ``Retry-After`` in seconds (at most 60) when it gives one, else ``default``."""
    value = headers.get("Retry-After", "").strip()
    return min(MAX_WAIT, float(value)) if value.isdigit() else default
