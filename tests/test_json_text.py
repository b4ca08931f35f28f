"""Users' JSON (album manifests, a dataset folder's metadata.jsonl) is read strictly: a field named twice in one
object is refused with one line naming the file, the line and the field, wherever the object is nested."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.errors import DatasetError
from training.json_text import DuplicateFieldError, parse_json
from training.manifest import read_manifest
from training.records import read_dataset

KEYS = st.text(min_size=0, max_size=6)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_json_without_repeated_fields_reads_as_python_s_json(value: object) -> None:
    text = json.dumps(value)
    assert parse_json(text, "f") == json.loads(text)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=4), st.data(), st.integers(0, 3))
def test_a_field_named_twice_at_any_depth_is_refused_naming_it(obj: dict, data, depth: int) -> None:
    key = data.draw(st.sampled_from(sorted(obj)))
    pairs = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items()]
    pairs.append(f"{json.dumps(key)}: {json.dumps(data.draw(VALUES))}")  # the same field again, any value
    text = "{" + ", ".join(pairs) + "}"
    for _ in range(depth):  # inside lists and other objects
        text = data.draw(st.sampled_from(['{"albums": %s}', "[%s]", '[1, {"x": %s}]'])) % text
    with pytest.raises(DuplicateFieldError) as raised:
        parse_json(text, "albums.json:3")
    assert str(raised.value) == f"albums.json:3: expected each field once in an object, found {key!r} twice"


def test_text_that_is_not_json_is_one_line_naming_where() -> None:
    with pytest.raises(DatasetError, match=r"^m.json: not valid JSON \(Expecting"):
        parse_json("{oops", "m.json")


ROW = {"id": "a", "file_name": "covers/a.png", "audio": "audio/a.mp3", "album": "A", "split": "train"}
TWICE = '{"id": "a", "file_name": "covers/a.png", "audio": "audio/a.mp3", "album": "A", "split": "train", "album": "B"}'


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("m.jsonl", TWICE + "\n", "m.jsonl:1"),
        ("m.jsonl", json.dumps(ROW) + "\n\n" + TWICE + "\n", "m.jsonl:3"),
        ("m.json", "[" + TWICE + "]", "m.json"),
        ("m.json", '{"albums": [' + TWICE + "]}", "m.json"),
    ],
)
def test_a_manifest_that_names_a_field_twice_is_refused(tmp_path: Path, name: str, text: str, where: str) -> None:
    (tmp_path / name).write_text(text)
    expected = f"{tmp_path / where}: expected each field once in an object, found 'album' twice"
    with pytest.raises(DatasetError, match=f"^{re.escape(expected)}$"):
        list(read_manifest(tmp_path / name))


def test_a_dataset_row_that_names_a_field_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "metadata.jsonl").write_text("\n" + TWICE + "\n")
    expected = f"{tmp_path / 'metadata.jsonl'}:2: expected each field once in an object, found 'album' twice"
    with pytest.raises(DatasetError, match=f"^{re.escape(expected)}$"):
        read_dataset(tmp_path)
