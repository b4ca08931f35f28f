"""JSON written or edited by users (album manifests, a dataset folder's ``metadata.jsonl``), read strictly: a
field given twice in one object is refused rather than silently taking its last value, as Python's ``json``
module does (RFC 8259, section 4: names "SHOULD be unique"; what a reader does otherwise is unspecified)."""

from __future__ import annotations

import json

from .errors import DatasetError


class DuplicateFieldError(DatasetError):
    """A JSON object that names a field twice."""


def parse_json(text: str, where: str) -> object:
    """``text`` parsed as JSON. Raises :class:`DatasetError`, one line starting with ``where`` (a file, or a
    file and line), for text that is not JSON, and :class:`DuplicateFieldError` for an object that names a field
    twice."""

    def unique(pairs: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateFieldError(f"{where}: expected each field once in an object, found {key!r} twice")
            seen.add(key)
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not valid JSON ({exc})") from exc
