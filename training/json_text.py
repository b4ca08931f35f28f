"""JSON written or edited by users (album manifests, a dataset folder's ``metadata.jsonl``, a run's ``config.json``
and its checkpoints' ``trainer.json``), read strictly: a field given twice in one object is refused rather than
silently taking its last value, as Python's ``json`` module does (RFC 8259, section 4: names "SHOULD be unique";
what a reader does otherwise is unspecified), and an object's fields are checked against what each holds
(:func:`field_problem`), so that a hand edit is one line naming the field rather than a traceback where it is used."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable

from nopaingan_core.cli_args import range_text

from .errors import DatasetError

# A field's value in words ("a whole number of at least 1") and its test.
Field = tuple[str, Callable[[object], bool]]


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


def is_whole(value: object) -> bool:
    """Whether ``value`` is a whole number (JSON's ``true`` is not 1 here, as it is to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Whether ``value`` is a finite number, whole or not (not ``true``, ``NaN`` or ``Infinity``)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


FLAG: Field = ("true or false", lambda v: isinstance(v, bool))


def whole_field(low: int, high: int | None = None) -> Field:
    """A whole number from ``low`` (to ``high``)."""
    return range_text("a whole number", low, high), lambda v: is_whole(v) and low <= v and (high is None or v <= high)


def number_field(low: float, high: float | None = None, low_open: bool = False) -> Field:
    """A finite number from ``low`` (above it with ``low_open``) to ``high``."""

    def test(value: object) -> bool:
        return is_number(value) and (value > low if low_open else value >= low) and (high is None or value <= high)

    return range_text("a number", low, high, low_open), test


def choice_field(choices: Iterable[str]) -> Field:
    """One of the texts ``choices``."""
    names = tuple(choices)
    return "one of " + ", ".join(names), lambda v: isinstance(v, str) and v in names


def or_null(field: Field, meaning: str) -> Field:
    """``field``, or ``null``, which means ``meaning``."""
    what, test = field
    return f"{what}, or null ({meaning})", lambda v: v is None or test(v)


def shown(value: object, limit: int = 60) -> str:
    """``value`` as JSON in a message, cut to about ``limit`` characters."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_problem(obj: dict, fields: dict[str, Field], required: Collection[str] = ()) -> str | None:
    """What is wrong with the JSON object ``obj`` read against ``fields``: "expected field 'NAME' (WHAT), found
    none" where it lacks a ``required`` one, "expected field 'NAME' to be WHAT, found VALUE" where a field's value
    fails its test; None where nothing is. Fields that ``fields`` does not name are not looked at."""
    for name, (what, test) in fields.items():
        if name not in obj:
            if name in required:
                return f"expected field {name!r} ({what}), found none"
        elif not test(obj[name]):
            return f"expected field {name!r} to be {what}, found {shown(obj[name])}"
    return None
