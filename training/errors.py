"""Errors of the training tools. They subclass the core's :class:`NoPainGanError`, so the CLI prints them as
one line naming the file, what was expected and what was found."""

from __future__ import annotations

from nopaingan_core.errors import NoPainGanError


class DatasetError(NoPainGanError):
    """A dataset source, album or option that cannot be used as given."""


class DownloadError(DatasetError):
    """A URL that could not be fetched, after retries where retrying could help."""


class CoverError(DatasetError):
    """A cover image that is missing, unreadable or too small to train on."""
