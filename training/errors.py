"""Errors of the training tools. They subclass the core's :class:`NoPainGanError`, so the CLI prints them as
one line naming the file, what was expected and what was found."""

from __future__ import annotations

from nopaingan_core.errors import NoPainGanError


class DatasetError(NoPainGanError):
    """A dataset source, album or option that cannot be used as given."""


class DownloadError(DatasetError):
    """A URL that could not be fetched, after retries where retrying could help."""


def count_text(count: int, noun: str, plural: str = "") -> str:
    """``count`` and ``noun`` in words, the noun plural unless the count is one: ``count_text(1, "album")`` is
    "1 album", ``count_text(3, "try", "tries")`` "3 tries" (``plural`` defaults to ``noun + "s"``)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def change_text(fraction: float, digits: int = 1) -> str:
    """A relative change as a signed percentage rounded to ``digits``: ``change_text(-0.1234)`` is "-12.3 %"; a
    change that rounds to zero is "+0.0 %", never "-0.0 %" (which Python's format gives for small negatives)."""
    value = round(100 * fraction, digits) + 0.0  # adding 0.0 turns -0.0 into 0.0
    return f"{value:+.{digits}f} %"


def tries_text(tries: int) -> str:
    """How many times a download or API call was made, in words: 1 try, 3 tries."""
    return count_text(tries, "try", "tries")


class HTTPStatusError(DownloadError):
    """A server's definite answer that no retry changes: an HTTP ``status`` such as 404 or 400 for ``url``, and
    the start of the answer's ``body`` (an API's JSON error message, when it gives one)."""

    def __init__(self, message: str, status: int, url: str, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.body = body


class UnreachableError(DownloadError):
    """A server that gave no usable answer after every try, for reasons a later try may fix: no connection, a
    timeout, a broken transfer, a busy or throttling status (5xx, 429), an API's quota error. ``reason`` is the
    last failure, ``tries`` how many were made."""

    def __init__(self, message: str, reason: str = "", tries: int = 1, url: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message
        self.tries = tries
        self.url = url


class CatalogueUnavailableError(DatasetError):
    """A catalogue or download server that could not be asked (see :class:`UnreachableError`): no album can be
    told "not found" there, so the fetch or import stops without writing its dataset folder."""

    def __init__(self, catalogue: str, reason: str, tries: int, kind: str = "catalogue") -> None:
        super().__init__(catalogue, reason, tries)
        self.catalogue, self.reason, self.tries, self.kind = catalogue, reason, tries, kind
        # the dataset folder, and whether it existed before the run: set by build_dataset, which knows both
        self.out: object = None
        self.existed = False

    def kept(self) -> str:
        """What became of the dataset folder, as the end of the message: "" until :attr:`out` is set."""
        if self.out is None:
            return ""
        if self.existed:
            return f"; {self.out} was left as it was (no file there was added, replaced or removed)"
        return f"; no dataset was written ({self.out} was not created)"

    def __str__(self) -> str:
        return (
            f"{self.catalogue}: the {self.kind} did not answer ({self.reason}) after "
            f"{tries_text(self.tries)}{self.kept()}; try again later or raise --retries"
        )


class CatalogueBrokenError(CatalogueUnavailableError):
    """A catalogue address that answers, but not as the catalogue's API: its album search was refused (HTTP 404,
    400 or another status that is neither a result nor a throttling answer) or answered with something that is
    not the API's JSON, or the address cannot be requested at all. Its answer says nothing about the album, so
    the fetch stops as for a catalogue that does not answer. ``base`` is the address, ``origin`` what set it
    (``--deezer-api``, ``$NOPAINGAN_DEEZER_API``; "" for the public API), ``public`` the public API's address."""

    def __init__(self, catalogue: str, reason: str, base: str, origin: str, public: str) -> None:
        super().__init__(catalogue, reason, 1)
        self.base, self.origin, self.public = base, origin, public

    def __str__(self) -> str:
        if self.origin:
            where = f"the catalogue at {self.base} (set by {self.origin})"
            hint = f"check {self.origin}: the public API is {self.public}"
        else:
            where = f"the catalogue at {self.base}"
            hint = "the API may have moved or changed; see docs/dataset.md"
        return f"{self.catalogue}: {where} is not a working catalogue API ({self.reason}){self.kept()}; {hint}"


# Statuses a signed download link answers once it has expired (Deezer's preview links carry ``hdnea=exp=...``):
# 403 Forbidden, 410 Gone (RFC 9110, 15.5.4 and 15.5.11).
EXPIRED_STATUSES = frozenset({403, 410})


class LinkExpiredError(DatasetError):
    """An album none of whose previews (or covers) could be downloaded, one of them refused with a status of
    :data:`EXPIRED_STATUSES`: the links may be a cached catalogue answer's that have expired."""


class CoverError(DatasetError):
    """A cover image that is missing, unreadable or too small to train on."""
