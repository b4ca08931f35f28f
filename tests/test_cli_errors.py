"""Every command, every kind of user mistake: one line on stderr, exit status 2, nothing lost, nothing left over.

``COMMANDS`` is the table: one row per command, giving a valid invocation that writes into an output location
(and, where the command loads a model, one whose model is a hub id nobody has cached). The tests drive each row
through bad arguments (every typed option of its parser, property-based), hostile output locations (an existing
file where a folder is wanted, a read-only folder, a disk that fills up mid-way) and no network. A new command
is one new row.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from catalogue_server import FakeAlbum, FakeCatalogues, FakeTrack
from http_files import FileServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nopaingan_core import cli_args
from nopaingan_core.atomic import check_output_folder
from nopaingan_core.audio import save_wav
from nopaingan_core.checkpoint import new_fusion, save_fusion
from nopaingan_core.encoders import load_encoder
from nopaingan_core.errors import OutputError
from nopaingan_core.hub import _reachable
from training.cli import build_parser, main

HUB_ID = "nobody/not-cached-anywhere"


@dataclass
class Env:
    """Inputs that valid invocations need: tiny models, a song, a fusion checkpoint, datasets."""

    models: dict[str, Path]
    song: Path
    fusion: Path
    data: Path  # a dataset folder with its cache
    music: Path  # a music folder `dataset import` reads
    cover: Path  # a square PNG `finish` reads
    albums: Path  # an album list `dataset fetch` reads
    shop: FakeCatalogues  # Deezer and iTunes on 127.0.0.1, with the albums of the list
    fetch_cache: Path  # downloads cache of `dataset fetch`, outside the tests' output folders


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    # a valid invocation writing into OUT (a folder, or the file itself when out_is_file); None: writes nothing
    run: Callable[[Env, Path], list[str]] | None
    out_is_file: bool = False
    # a valid invocation whose model is the hub id HUB_ID (not cached): must fail fast offline
    hub: Callable[[Env, Path], list[str]] | None = None
    own_folder: bool = False  # the output folder takes only the command's own files (dataset import)


def _gen(env: Env, out: Path, sd: str | None = None) -> list[str]:
    return ["generate", "--album", "A", "--genre", "pop", "--sd", sd or str(env.models["sd"]), "--steps", "2",
            "--width", "64", "--height", "64", "--num", "3", "--out", str(out), "--quiet"]  # fmt: skip


def _cache(env: Env, out: Path, sd: str) -> list[str]:
    mir = str(env.models["codified-lm"])
    return ["dataset", "cache", str(env.data), "--sd", sd, "--mir", mir, "--resolution", "64", "--out", str(out),
            "--quiet"]  # fmt: skip


def _release(env: Env, out: Path, x4: str = "none") -> list[str]:
    return [*_gen(env, out), "--release", "--size", "128", "--x4", x4]


def _finish(env: Env, out: Path, x4: str = "none") -> list[str]:
    return ["finish", str(env.cover), "--out", str(out), "--size", "128", "--x4", x4, "--quiet"]


def _fetch(env: Env, out: Path) -> list[str]:
    return ["dataset", "fetch", str(env.albums), "--out", str(out), "--cache-dir", str(env.fetch_cache),
            "--deezer-api", env.shop.deezer_url, "--itunes-api", env.shop.itunes_url, "--deezer-rate", "0",
            "--itunes-rate", "0", "--rate-limit", "0", "--eval-fraction", "0", "--quiet"]  # fmt: skip


COMMANDS = [
    Command(("generate",), _gen, hub=lambda env, out: _gen(env, out, HUB_ID)),
    Command(("generate",), _release, hub=lambda env, out: _release(env, out, HUB_ID)),  # --release: the x4 model
    Command(("finish",), _finish, hub=lambda env, out: _finish(env, out, HUB_ID)),
    Command(("check-cover",), None),
    Command(("dataset", "fetch"), _fetch, own_folder=True),
    Command(
        ("encode",),
        lambda env, out: ["encode", "--audio", str(env.song), "--mir", str(env.models["clap"]), "--out", str(out)],
        out_is_file=True,
        hub=lambda env, out: ["encode", "--audio", str(env.song), "--mir", HUB_ID, "--out", str(out)],
    ),
    Command(("tag",), None, hub=lambda env, out: ["tag", "--audio", str(env.song), "--clap", HUB_ID]),
    Command(("demo",), lambda env, out: ["demo", "--out", str(out), "--models-dir", str(env.models["sd"].parent)]),
    Command(
        ("dataset", "import"),
        lambda env, out: ["dataset", "import", str(env.music), "--out", str(out), "--copy", "--quiet"],
        own_folder=True,
        hub=lambda env, out: [
            "dataset",
            "import",
            str(env.music),
            "--out",
            str(out),
            "--fill-genres-from-audio",
            "--clap",
            HUB_ID,
            "--quiet",
        ],  # fmt: skip
    ),
    Command(
        ("dataset", "cache"),
        lambda env, out: _cache(env, out, str(env.models["sd"])),
        hub=lambda env, out: _cache(env, out, HUB_ID),
        own_folder=True,  # a cache folder holding other files is refused (test_cache.py)
    ),
    Command(
        ("train",),
        lambda env, out: ["train", "--data", str(env.data), "--out", str(out), "--max-steps", "1", "--quiet"],
        hub=lambda env, out: ["train", "--data", str(env.data), "--out", str(out), "--sd", HUB_ID, "--quiet"],
        own_folder=True,  # a run folder holding other files is refused (test_train.py)
    ),
    Command(
        ("evaluate",),
        lambda env, out: [
            "evaluate",
            "--data",
            str(env.data),
            "--fusion",
            str(env.fusion),
            "--out",
            str(out),
            "--no-images",
            "--limit",
            "1",
            "--mse-samples",
            "1",
            "--quiet",
        ],  # fmt: skip
        hub=lambda env, out: [
            "evaluate",
            "--data",
            str(env.data),
            "--fusion",
            str(env.fusion),
            "--out",
            str(out),
            "--sd",
            HUB_ID,
            "--no-images",
            "--quiet",
        ],  # fmt: skip
    ),
]
WRITERS = [c for c in COMMANDS if c.run is not None]
LOADERS = [c for c in COMMANDS if c.hub is not None]


def _id(command: Command) -> str:
    return " ".join(command.words) + (" --release" if command.run is _release else "")


def test_the_table_covers_every_command():
    assert set(cli_args.leaf_parsers(build_parser())) == {c.words for c in COMMANDS}


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_models, song, cached_data) -> Env:
    from music_library import image_bytes, make_track

    root = tmp_path_factory.mktemp("cli-errors")
    encoder = load_encoder("codified-lm", str(tiny_models["codified-lm"]))
    fusion = save_fusion(new_fusion(encoder.info, gate=1.0), root / "fusion.safetensors")
    one = make_track(root / "music/A/One/1.mp3", 1.5, album="One", artist="A", picture=image_bytes((200, 0, 0)))
    make_track(root / "music/B/Two/1.mp3", 1.5, album="Two", artist="B", picture=image_bytes((0, 200, 0)))
    cover = root / "cover.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(cover)
    albums = root / "albums.csv"
    albums.write_text("artist,album\nDaft Punk,Discovery\nNobody,Nothing Whatsoever\n")
    with FileServer() as server:
        shop = FakeCatalogues(server)
        preview = FakeTrack("Aerodynamic", one.read_bytes())
        shop.add_deezer(FakeAlbum("Daft Punk", "Discovery", image_bytes((200, 0, 0)), [preview]))
        song_path = save_wav(song, root / "song.wav")
        yield Env(tiny_models, song_path, fusion, cached_data, root / "music", cover, albums, shop, root / "fetch")


def one_error_line(capsys, *names: str) -> str:
    """The command's stderr: exactly one line, an error naming one of ``names``, no traceback."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nopaingan ") and ": error: " in lines[0], err
    assert "Traceback" not in err
    assert any(name in lines[0] for name in names), (lines[0], names)
    return lines[0]


def leftovers(folder: Path) -> list[Path]:
    """Temporary files and folders our writers use, anywhere under ``folder``."""
    if not folder.exists():
        return []
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith((".tmp-", ".nopaingan-"))]


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


# --- bad arguments: a property of every typed option of every command ----------------------------------------

PARSERS = cli_args.leaf_parsers(build_parser())
TYPED = [
    (words, action)
    for words, parser in PARSERS.items()
    for action in parser._actions
    if action.option_strings and (action.type not in (None, str, Path) or action.choices)
]
NOT_A_NUMBER = ["", "abc", "nan", "inf", "-inf", "1e999", "-1", "-0.5", "0x10", "3.5", "99999999999", "cuda:99"]


@pytest.mark.parametrize("words,action", TYPED, ids=[f"{' '.join(w)} {a.option_strings[-1]}" for w, a in TYPED])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.sampled_from(NOT_A_NUMBER), st.text(max_size=12), st.integers().map(str)))
def test_a_bad_value_is_one_line_naming_the_option(words, action, value, capsys, a_dataset):
    """Whatever the value, parsing accepts it or stops with one line naming the option and the value."""
    parser = PARSERS[words]
    option = action.option_strings[-1]
    required = _required_args(parser, skip=action, dataset=a_dataset)
    try:
        parser.parse_args([*required, f"{option}={value}"])
    except SystemExit as exc:
        assert exc.code == 2
        line = one_error_line(capsys, option)
        assert line.startswith(f"nopaingan {' '.join(words)}: error: argument {option}")
    else:
        assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def a_dataset(tmp_path_factory) -> Path:
    """A folder that parses as a dataset folder (it holds metadata.jsonl)."""
    folder = tmp_path_factory.mktemp("a-dataset")
    (folder / "metadata.jsonl").write_text("")
    return folder


def _required_args(parser: argparse.ArgumentParser, skip: argparse.Action, dataset: Path) -> list[str]:
    """Values for the required options and positionals, so only the option under test can fail."""
    args = []
    for action in parser._actions:
        if action is skip or isinstance(action, argparse._HelpAction):
            continue
        kind = getattr(action.type, "__name__", None)
        value = {"folder": str(Path(__file__).parent), "dataset_folder": str(dataset)}.get(kind, __file__)
        if not action.option_strings:
            args.append(value)
        elif action.required:
            args += [action.option_strings[-1], value]
    return args


NUMERIC = [(w, a) for w, a in TYPED if getattr(a.type, "__name__", None) in ("int", "float")]


def _expected(parse: Callable[[str], object], text: str) -> str | None:
    """What ``parse`` says it expects when it refuses ``text``; None when it accepts it."""
    try:
        parse(text)
    except argparse.ArgumentTypeError as exc:
        got, _, expected = str(exc).partition(", expected ")
        assert got == f"got {text!r}", str(exc)
        return expected
    return None


@pytest.mark.parametrize("words,action", NUMERIC, ids=[f"{' '.join(w)} {a.option_strings[-1]}" for w, a in NUMERIC])
@settings(max_examples=40, deadline=None)
@given(number=st.one_of(st.integers(), st.floats(), st.sampled_from(["0", "-0", "1e-300", "1e999", "-1", "4097"])))
def test_a_numeric_option_states_one_range_for_every_mistake(words, action, number):
    """A value of the wrong kind and a number outside the range get the same words: the range accepted."""
    expected = _expected(action.type, "abc")
    assert expected and expected.startswith(("a number", "a whole number", "a multiple of")), expected
    assert _expected(action.type, str(number)) in (None, expected)


TRAIN_RANGES = [  # every numeric option of `train`, a number outside its range, and the range it states
    ("--lr", "0", "a number above 0 and at most 10"),
    ("--weight-decay", "-0.1", "a number of at least 0"),
    ("--warmup-steps", "-1", "a whole number of at least 0"),
    ("--batch-size", "0", "a whole number of at least 1"),
    ("--noise-draws", "65", "a whole number from 1 to 64"),
    ("--grad-accum", "0", "a whole number of at least 1"),
    ("--epochs", "0", "a whole number of at least 1"),
    ("--max-steps", "0", "a whole number of at least 1"),
    ("--max-timestep", "1001", "a whole number from 1 to 1000"),
    ("--tokens", "257", "a whole number from 1 to 256"),
    ("--save-every", "0", "a whole number of at least 1"),
    ("--keep-checkpoints", "-1", "a whole number of at least 0"),
    ("--eval-every", "-1", "a whole number of at least 0"),
    ("--eval-albums", "0", "a whole number of at least 1"),
    ("--seed", "-1", "a whole number from 0 to 9223372036854775807"),
    ("--workers", "-1", "a whole number of at least 0"),
    ("--gate-init", "1e39", "a number from 0 to 10"),
    ("--gate-lr-scale", "0", "a number above 0"),
]


def test_the_train_table_covers_every_numeric_option():
    assert {row[0] for row in TRAIN_RANGES} == {a.option_strings[-1] for w, a in NUMERIC if w == ("train",)}


@pytest.mark.parametrize("option,outside,expected", TRAIN_RANGES, ids=[row[0] for row in TRAIN_RANGES])
@pytest.mark.parametrize("kind", ["not a number", "outside the range"])
def test_a_bad_train_number_names_the_option_the_range_and_the_value(
    option, outside, expected, kind, a_dataset, tmp_path, capsys
):
    value = "abc" if kind == "not a number" else outside
    run = tmp_path / "run"
    assert main(["train", "--data", str(a_dataset), "--out", str(run), option, value]) == 2
    line = one_error_line(capsys, option)
    assert line == f"nopaingan train: error: argument {option}: got {value!r}, expected {expected}"
    assert not run.exists()


@pytest.mark.parametrize(
    "parse,accepted,refused,expected",
    [
        (cli_args.positive_float, ["1e-300", "3", "1e300"], ["0", "-0", "-1e-300", "inf", "nan"], "a number above 0"),
        (
            cli_args.float_range(0.0, 10.0, low_open=True),
            ["1e-9", "10"],
            ["0", "10.001"],
            "a number above 0 and at most 10",
        ),
        (cli_args.float_range(0.0, 4.0), ["0", "4"], ["-1e-9", "4.5"], "a number from 0 to 4"),
        (cli_args.float_range(0.0), ["0", "1e300"], ["-0.5", "1e999"], "a number of at least 0"),
        (cli_args.float_range(), ["-1e300", "0"], ["-inf", "nan"], "a number"),
        (cli_args.float_range(None, 1.0), ["-5", "1"], ["1.5"], "a number of at most 1"),
        (cli_args.int_range(1), ["1", "99999999999"], ["0", "1.0"], "a whole number of at least 1"),
        (cli_args.int_range(1, 256), ["1", "256"], ["0", "257"], "a whole number from 1 to 256"),
        (cli_args.int_range(0, 2**63 - 1), ["0"], ["-1", str(2**63)], f"a whole number from 0 to {2**63 - 1}"),
        (cli_args.multiple_of(8, 8, 4096), ["8", "4096"], ["0", "60", "4104", "8.0"], "a multiple of 8 from 8 to 4096"),
    ],
)
def test_numeric_types_accept_their_range_and_say_it_for_any_refusal(parse, accepted, refused, expected):
    for text in accepted:
        assert _expected(parse, text) is None, text
    for text in ["abc", "", *refused]:
        assert _expected(parse, text) == expected, text


def test_no_option_states_its_default_twice():
    """The help formatter appends ``(default: X)`` to every option whose help does not state it; such a help must
    not mention its default in words as well ("... (default); ..." once read "(default) ... (default: data)")."""
    for words, parser in PARSERS.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.help and formatter._get_help_string(action) != action.help:  # the formatter adds the default
                assert not re.search(r"\bdefault\b", action.help, re.IGNORECASE), (words, action.option_strings)


@pytest.mark.parametrize(
    "argv,option",
    [
        (["generate", "--num", "0", "--album", "A", "--genre", "g"], "--num"),
        (["generate", "--device", "tpu", "--album", "A", "--genre", "g"], "--device"),
        (["generate", "--album", "", "--genre", "g"], "--album"),
        (["generate", "--album", "A", "--genre", "g", "--prompt-template", "{album} {mood}"], "--prompt-template"),
        (["generate", "--album", "A", "--genre", "g", "--guidance", "-1"], "--guidance"),
        (["generate", "--album", "A", "--genre", "g", "--strength", "0.5"], "--strength"),  # no --fusion
        (["generate", "--album", "A", "--genre", "g", "--width", "100"], "--width"),
        (["generate", "--album", "A", "--genre", "g", "--steps", "1000"], "--steps"),
        (["generate", "--genre", "g"], "--album"),
        (["generate", "--album", "A", "--genre", "g", "--audio", "."], "--audio"),
        (["train", "--data", ".", "--out", "r", "--batch-size", "0"], "--batch-size"),
        (["dataset", "cache", "--resolution", "60", "."], "--resolution"),
        (["dataset", "cache", "."], "DATA"),  # no metadata.jsonl: said before any model is looked for
        (["generate", "--album", "A", "--genre", "g", "--out", ""], "--out"),
        (["encode", "--audio", __file__, "--out", ""], "--out"),
        (["dataset", "import", "", "--out", "d"], "SRC"),  # not the current folder
        (["finish", __file__, "--x4", ""], "--x4"),  # an empty path is not the current folder either
        (["generate", "--album", "A", "--genre", "g", "--release", "--x4", " "], "--x4"),
        (["check-cover", __file__, "--bogus"], "check-cover: error: unrecognized arguments: --bogus"),
        (["train", "--data", ".", "--out", "r", "--bogus"], "nopaingan train: error: unrecognized arguments: --bogus"),
        (["evaluate", "--data", ".", "--fusion", ".", "--grid", "-2"], "--fusion"),
    ],
)
def test_the_issue_s_examples_fail_before_any_model_loads(argv, option, capsys, monkeypatch):
    import nopaingan_core.hub as hub

    monkeypatch.setattr(hub, "is_local", lambda *a, **k: pytest.fail("a model was looked up"))
    assert main(argv) == 2
    one_error_line(capsys, option)


def test_messages_read_as_plain_english(capsys):
    assert main(["generate", "--from-png", str(Path(__file__).parent)]) == 2
    assert "expected a PNG cover" in one_error_line(capsys, "--from-png")
    assert main(["--help"]) == 0
    assert "``" not in capsys.readouterr().out  # reST markup stays in the docstrings


def test_existing_file_and_folder_name_what_was_found_instead(tmp_path):
    (tmp_path / "song.wav").write_bytes(b"RIFF")
    (tmp_path / "data").mkdir()
    audio, dataset = cli_args.existing_file("audio file"), cli_args.existing_folder("dataset folder")
    assert audio(str(tmp_path / "song.wav")) == tmp_path / "song.wav"
    assert dataset(str(tmp_path / "data")) == tmp_path / "data"
    for parse, text, message in [
        (audio, tmp_path / "data", "is a folder, expected an audio file"),
        (audio, tmp_path / "none.wav", ": no such file, expected an audio file"),
        (audio, os.devnull, ": no such file, expected an audio file"),  # exists, but is not a regular file
        (dataset, tmp_path / "song.wav", "is a file, expected a dataset folder"),
        (dataset, tmp_path / "none", ": no such folder, expected a dataset folder"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError) as error:
            parse(str(text))
        assert str(error.value) == f"{text}{' ' if message[0] != ':' else ''}{message}"
    assert (audio.__name__, dataset.__name__) == ("file", "folder")  # argparse names the type in its errors


def test_every_command_has_help_for_every_option_a_description_and_quiet(capsys):
    for words, parser in cli_args.leaf_parsers(build_parser()).items():
        assert parser.description, words
        assert isinstance(parser.formatter_class, type) and issubclass(parser.formatter_class, cli_args.HelpFormatter)
        options = {o for a in parser._actions for o in a.option_strings}
        assert "--quiet" in options, words
        for action in parser._actions:
            assert action.help, (words, action.dest)
        assert main([*words, "--help"]) == 0
        assert "--quiet" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nopaingan ")


LONG_OPTIONS = sorted(
    {(w, o) for w, p in PARSERS.items() for a in p._actions for o in a.option_strings if o[:2] == "--"}
)


@pytest.mark.parametrize("words,option", LONG_OPTIONS, ids=[f"{' '.join(w)} {o}" for w, o in LONG_OPTIONS])
def test_an_abbreviated_option_is_refused_in_one_line(words, option, capsys, a_dataset):
    """Every proper prefix of every long option of every command (argparse's allow_abbrev would take a unique one
    for the whole option) is an unrecognized argument, one line, exit status 2."""
    parser = PARSERS[words]
    known = {o for a in parser._actions for o in a.option_strings}
    required = _required_args(parser, skip=None, dataset=a_dataset)
    for end in range(3, len(option)):
        prefix = option[:end]
        if prefix in known:
            continue
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([*required, f"{prefix}=1"])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and prefix in err and "unrecognized arguments" in err, (prefix, err)


# --- hostile output locations --------------------------------------------------------------------------------


def _out(base: Path, command: Command) -> Path:
    return base / "emb.safetensors" if command.out_is_file else base / "out"


@pytest.mark.parametrize("command", WRITERS, ids=_id)
def test_an_existing_file_as_the_output_folder(command, env, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_bytes(b"precious")
    out = blocker if not command.out_is_file else blocker / "emb.safetensors"
    assert main(command.run(env, out)) == 2
    one_error_line(capsys, str(blocker))
    assert blocker.read_bytes() == b"precious" and leftovers(tmp_path) == []


@pytest.fixture(
    params=[
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only file system"),
        (errno.ENOENT, "its file system does not take new files"),  # /proc, /sys
    ]
)
def read_only(monkeypatch, tmp_path, request) -> tuple[Path, str]:
    """A folder nothing can be created in (no permission, a read-only mount, or a file system such as /proc that
    answers "no such file" for a new one), and the reason a message must give. Tests run as root, which ignores
    permission bits, so creating a file there fails the way it does for a user: os.open raises EACCES (os.access
    would still say yes on a read-only mount: EROFS)."""
    code, reason = request.param
    folder = tmp_path / "read-only"
    folder.mkdir()
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(os.fsdecode(path)).resolve().is_relative_to(folder):
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)
    return folder, reason


@pytest.mark.parametrize("command", WRITERS, ids=_id)
def test_a_read_only_output_folder_fails_before_any_work(command, env, read_only, capsys, monkeypatch):
    from nopaingan_core import sampling

    monkeypatch.setattr(sampling, "load_minisd", lambda *a, **k: pytest.fail("models loaded before the check"))
    folder, reason = read_only
    out = _out(folder, command)
    assert main(command.run(env, out)) == 2
    line = one_error_line(capsys, str(out))
    assert reason in line
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc on this system")
def test_a_folder_under_proc_is_refused_for_what_it_is():
    with pytest.raises(OutputError, match=r"^--out /proc/nope: cannot write in /proc: its file system does not take"):
        check_output_folder("/proc/nope", "--out")


def _tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


@pytest.mark.parametrize("itself", [True, False], ids=["the output", "on its way"])
@pytest.mark.parametrize("command", WRITERS, ids=_id)
def test_a_dangling_link_as_the_output_is_one_line_naming_it(command, env, tmp_path, capsys, itself):
    """An output that is a symbolic link to a missing target, or that goes through one: one line naming the link
    and its target, exit 2, before any work, and nothing made (no target, no folder); it was mkdir's "File exists"
    or a file that replaced the link."""
    link = tmp_path / ("emb.safetensors" if command.out_is_file and itself else "gone")
    link.symlink_to(tmp_path / "missing")
    out = link if itself else _out(link, command)
    assert main(command.run(env, out)) == 2
    line = one_error_line(capsys, str(out))
    assert line.endswith(
        f"found a symbolic link to a missing target ({link} -> {tmp_path / 'missing'})"
        + ("" if itself else " on its path")
    )
    assert _tree(tmp_path) == {link.relative_to(tmp_path)} and link.is_symlink()


def _other_outputs(env: Env, out: Path, link: Path) -> dict[str, list[str]]:
    """Commands whose other output option (a cache, a saved list, the demo's models) is ``link``, with ``--out``
    in ``out``."""
    fetch = _fetch(env, out)
    at = fetch.index("--cache-dir")
    return {
        "import --cache-dir": ["dataset", "import", str(env.music), "--out", str(out), "--cache-dir", str(link)],
        "fetch --cache-dir": [*fetch[: at + 1], str(link), *fetch[at + 2 :]],
        "fetch --save-list": [*fetch, "--save-list", str(link)],
        "fetch --save-list FOLDER": [*fetch, "--save-list", str(link / "list.csv")],
        "demo --models-dir": ["demo", "--out", str(out), "--models-dir", str(link)],
        "generate --openvino-cache": [*_gen(env, out), "--openvino-cache", str(link)],
    }


@pytest.mark.parametrize(
    "which",
    ["import --cache-dir", "fetch --cache-dir", "fetch --save-list", "fetch --save-list FOLDER", "demo --models-dir",
     "generate --openvino-cache"],
)  # fmt: skip
def test_a_dangling_link_as_another_output_is_one_line_naming_it(which, env, tmp_path, capsys):
    """The same for every other output option: one line naming the link, before any work, nothing made."""
    link = tmp_path / ("gone.csv" if which == "fetch --save-list" else "gone")
    link.symlink_to(tmp_path / "missing")
    assert main(_other_outputs(env, tmp_path / "out", link)[which]) == 2
    line = one_error_line(capsys, str(link))
    assert f"found a symbolic link to a missing target ({link} -> {tmp_path / 'missing'})" in line
    assert _tree(tmp_path) == {link.relative_to(tmp_path)}


DOTTED_FILES = ["a/x/../emb.safetensors", "a/x/w/../../emb.safetensors", "x/../a/emb.safetensors",
                "a/./x/../emb.safetensors", "a/x/../y/../emb.safetensors"]  # fmt: skip


@pytest.mark.parametrize("spelling", DOTTED_FILES)
def test_encode_out_with_dots_after_a_missing_folder_is_the_file_making_its_folder_names(
    spelling, env, tmp_path, capsys, monkeypatch
):
    """encode --out a/x/../emb.safetensors with no a/x is a/emb.safetensors, for the check and the write: an earlier
    a/emb.safetensors is refused without --overwrite (it was checked as absent and replaced), replaced with it,
    and written when absent; no a/x (nor x, y) is left behind."""
    from safetensors.torch import load_file

    monkeypatch.chdir(tmp_path)
    Path("a").mkdir()
    target = Path("a/emb.safetensors")
    target.write_bytes(b"precious")
    argv = ["encode", "--audio", str(env.song), "--mir", str(env.models["clap"]), "--out", spelling, "--quiet"]
    assert main(argv) == 2
    line = one_error_line(capsys, f"(that is {target})")
    assert line.endswith(
        f"--out {Path(spelling)} (that is {target}): file exists; choose another name or pass --overwrite"
    )
    assert target.read_bytes() == b"precious" and _tree(tmp_path) == {Path("a"), target}
    assert main([*argv, "--overwrite"]) == 0
    assert capsys.readouterr().out.startswith(f"{target}: ")
    assert "embedding" in load_file(target) and _tree(tmp_path) == {Path("a"), target}
    target.unlink()
    assert main(argv) == 0
    assert "embedding" in load_file(target) and _tree(tmp_path) == {Path("a"), target}


@pytest.fixture
def full_disk(monkeypatch, tmp_path):
    """``full_disk(folder, after=n)``: writes of files under ``folder`` fail with ENOSPC after ``n`` files."""
    state = {"folder": None, "after": 0, "files": set()}
    real_write = os.write

    def write(fd, data):
        folder = state["folder"]
        if folder is not None:
            with_path = Path(os.readlink(f"/proc/self/fd/{fd}")) if fd > 2 else None
            if with_path is not None and with_path.is_relative_to(folder):
                state["files"].add(with_path)
                if len(state["files"]) > state["after"]:
                    raise OSError(errno.ENOSPC, "No space left on device", str(with_path))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)

    def arm(folder: Path, after: int = 0) -> None:
        state.update(folder=folder.resolve(), after=after)

    return arm


@pytest.mark.parametrize("command", WRITERS, ids=_id)
def test_a_full_disk_keeps_what_was_written_and_leaves_no_temporary_file(command, env, tmp_path, full_disk, capsys):
    out = _out(tmp_path, command)
    folder = out.parent if command.out_is_file or command.own_folder else out
    folder.mkdir(parents=True, exist_ok=True)
    earlier = folder / "earlier.png"  # a user's earlier output in the same folder
    earlier.write_bytes(b"earlier cover")
    full_disk(tmp_path, after=0)
    assert main(command.run(env, out)) == 2
    line = one_error_line(capsys, str(tmp_path))
    assert "no space left on the device" in line
    assert earlier.read_bytes() == b"earlier cover"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("after", [1, 2])
def test_a_full_disk_mid_batch_keeps_and_names_the_covers_written(after, env, tmp_path, full_disk, capsys):
    out = tmp_path / "covers"
    full_disk(out.parent, after=after)
    assert main(_gen(env, out)) == 2
    line = one_error_line(capsys, f"a_0_{after}.png")
    kept = sorted(out.glob("*.png"))
    assert [p.name for p in kept] == [f"a_0_{i}.png" for i in range(after)]
    assert f"kept the {after} {'file' if after == 1 else 'files'} written before it: {kept[0]}" in line
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("after", [3, 4])
def test_a_full_disk_during_release_covers_keeps_the_covers_written(after, env, tmp_path, full_disk, capsys):
    """3 PNGs, then release JPEGs: the disk fills at the first (after=3) or second (after=4) JPEG."""
    out = tmp_path / "covers"
    full_disk(out.parent, after=after)
    assert main(_release(env, out)) == 2
    line = one_error_line(capsys, f"a_0_{after - 3}_release.jpg")
    assert "no space left on the device" in line and f"kept the {after} files written before it" in line
    assert len(list(out.glob("*.png"))) == 3 and len(list(out.glob("*_release.jpg"))) == after - 3
    assert leftovers(tmp_path) == []


def test_checkpoint_on_a_full_disk_leaves_no_tmp_step_folder(env, tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    run.mkdir()
    full_disk(run / "checkpoints", after=1)
    argv = ["train", "--data", str(env.data), "--out", str(run), "--max-steps", "2", "--save-every", "1", "--quiet"]
    assert main(argv) == 2
    one_error_line(capsys, str(run / "checkpoints"))
    assert leftovers(run) == [] and not list((run / "checkpoints").glob(".tmp-step-*"))


# --- batch commands skip bad items and leave folders every command accepts --------------------------------


def test_dataset_cache_skips_an_unreadable_song_and_the_rest_trains(env, tmp_path, capsys):
    from training_data import make_dataset

    data = make_dataset(tmp_path / "data")
    bad = sorted((data / "audio").glob("*.wav"))[1]
    bad.write_bytes(b"not audio at all" * 100)
    argv = ["dataset", "cache", str(data), "--sd", str(env.models["sd"]), "--mir", str(env.models["codified-lm"]),
            "--resolution", "64", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "skipped 1 unreadable" in capsys.readouterr().out
    (skipped,) = [json.loads(line) for line in (data / "cache" / "skipped.jsonl").read_text().splitlines()]
    assert skipped["id"] == bad.stem and str(bad) in skipped["reason"]
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "1", "--quiet"]) == 0
    assert main(argv) == 0  # again: the bad album is tried and reported again
    assert (data / "cache" / "skipped.jsonl").read_text().count("\n") == 1
    # a hand-made dataset folder (no dataset card) is not written into, cache/ or not (test_dataset_folder.py)
    assert main(["dataset", "import", str(env.music), "--out", str(data), "--copy", "--quiet"]) == 2


# --- never overwritten, readable by others, regenerated bit for bit -----------------------------------------


def test_covers_are_never_overwritten_files_respect_the_umask_and_regenerate_bit_for_bit(env, tmp_path, capsys):
    out = tmp_path / "covers"
    argv = [*_gen(env, out), "--scheduler", "ddpm", "--fusion", str(env.fusion), "--audio", str(env.song),
            "--mir", str(env.models["codified-lm"])]  # fmt: skip
    assert main(argv) == 0
    first = sorted(out.glob("*.png"))
    before = {p: p.read_bytes() for p in first}
    assert main(argv) == 0  # the same names again: numbered, the first run's covers untouched
    assert len(list(out.glob("*.png"))) == 6 and all(p.read_bytes() == b for p, b in before.items())
    old = os.umask(0o022)
    os.umask(old)
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~old for p in out.glob("*.png"))

    record = json.loads(Image.open(first[2]).text["nopaingan"])
    assert record["index"] == 2 and record["num"] == 3 and record["image_seed"] == record["seed"] + 2
    assert record["encoder"]["kind"] == "codified-lm" and record["encoder"]["layer"] >= 0
    assert record["duration"] > 0 and record["offset"] >= 0 and len(record["fusion_sha256"]) == 64
    for key in ("scheduler", "steps", "guidance", "width", "height", "dtype", "device", "nopaingan", "sd"):
        assert key in record
    capsys.readouterr()
    again = tmp_path / "again"
    assert main(["generate", "--from-png", str(first[2]), "--out", str(again), "--quiet"]) == 0
    (made,) = again.glob("*.png")
    assert np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(first[2])))
    assert json.loads(Image.open(made).text["nopaingan"])["regenerated_from"] == str(first[2])


@pytest.fixture(scope="module")
def cover(env, tmp_path_factory) -> tuple[Path, dict]:
    """A text-only cover made by generate (image 1 of 2) and its record."""
    out = tmp_path_factory.mktemp("cover")
    assert main([*_gen(env, out), "--num", "2"]) == 0
    path = sorted(out.glob("*_1.png"))[0]
    return path, json.loads(Image.open(path).text["nopaingan"])


def _with_record(cover: Path, record: dict, dest: Path) -> Path:
    from PIL.PngImagePlugin import PngInfo

    meta = PngInfo()
    meta.add_text("nopaingan", json.dumps(record))
    Image.open(cover).save(dest, pnginfo=meta)
    return dest


REQUIRED = ["prompt", "album", "sd", "audio", "fusion", "strength", "scheduler", "steps", "guidance", "width",
            "height", "seed", "num", "index", "dtype"]  # fmt: skip
WRONG = {  # values of the wrong type or out of the range the field's CLI option accepts
    "steps": ["x", 0, 1000, 2.5, True, None, [20]],
    "scheduler": ["nope", 3, None],
    "dtype": ["fp8", None, 16],
    "width": [100, "256", -8, 8192],
    "guidance": ["high", -1, 1e999, None],
    "strength": [-0.5, 9, "1"],
    "seed": [-1, "0", 1.5],
    "num": [0, "2"],
    "index": [-1, "1"],
    "sd": ["", None, 5],
    "prompt": [None, 1],
    "cfg_cutoff": [2, "x"],
    "deep_cache": [0, "x"],
    "backend": ["tpu"],
    "device": ["tpu", 0],
    "int8_weights": ["yes"],
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    change=st.one_of(
        st.sampled_from(REQUIRED).map(lambda field: (field, "missing")),
        st.sampled_from(sorted(WRONG)).flatmap(lambda f: st.sampled_from(WRONG[f]).map(lambda v: (f, v))),
        st.just(("index", "num")),  # index >= num
        st.integers(1, 5).map(lambda d: ("image_seed", d)),  # image_seed != seed + index
        st.just(("fusion", "sha256")),  # a fusion without its hash
    )
)
def test_from_png_refuses_an_incomplete_or_invalid_record_before_any_model_loads(
    env, cover, change, tmp_path, capsys, monkeypatch
):
    from nopaingan_core import sampling

    monkeypatch.setattr(sampling, "load_minisd", lambda *a, **k: pytest.fail("models loaded before the check"))
    path, record = cover
    record = dict(record)
    field, value = change
    if value == "missing":
        del record[field]
    elif field == "index":
        record |= {"index": record["num"], "image_seed": record["seed"] + record["num"]}
    elif field == "image_seed":
        record["image_seed"] += value
    elif field == "fusion":
        record |= {"fusion": str(env.fusion), "audio": str(env.song)}
    else:
        record[field] = value
    png = _with_record(path, record, tmp_path / "bad.png")
    assert main(["generate", "--from-png", str(png), "--out", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys, str(png))
    assert "incomplete or invalid record: " in line
    expected = "fusion_sha256" if change == ("fusion", "sha256") else field
    assert f"record: {expected} " in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "option",
    [["--steps", "20"], ["--scheduler", "pndm"], ["--seed", "0"], ["--num", "1"], ["--width", "256"],
     ["--dtype", "auto"], ["--guidance", "7.5"], ["--prompt-template", "{album}"], ["--negative", ""],
     ["--sd", "x"], ["--album", "A"], ["--artist", "B"], ["--cfg-cutoff", "1"], ["--backend", "torch"]],
    ids=lambda option: option[0],
)  # fmt: skip
def test_from_png_refuses_every_other_option_even_at_its_default(cover, option, tmp_path, capsys):
    """Given, not different from the default: ``--steps 20`` with --from-png is refused like ``--steps 5``."""
    assert main(["generate", "--from-png", str(cover[0]), *option, "--out", str(tmp_path)]) == 2
    assert "--from-png takes every setting" in one_error_line(capsys, option[0])


def test_from_png_works_from_another_folder_the_record_holds_absolute_paths(env, tmp_path, capsys, monkeypatch):
    """Made with relative paths in one folder, regenerated from another: the record names the same files."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    for name, source in (("sd", env.models["sd"]), ("mir", env.models["codified-lm"])):
        (work / name).symlink_to(source)
    (work / "f.safetensors").write_bytes(env.fusion.read_bytes())
    (work / "song.wav").write_bytes(env.song.read_bytes())
    monkeypatch.chdir(work)
    argv = [*_gen(env, Path("covers"), "sd"), "--num", "1", "--fusion", "f.safetensors", "--audio", "song.wav",
            "--mir", "mir"]  # fmt: skip
    assert main(argv) == 0
    (made,) = (work / "covers").glob("*.png")
    record = json.loads(Image.open(made).text["nopaingan"])
    for field, name in (("sd", "sd"), ("mir", "mir"), ("fusion", "f.safetensors"), ("audio", "song.wav")):
        assert record[field] == str(work / name), field
    monkeypatch.chdir(elsewhere)
    assert main(["generate", "--from-png", str(made), "--out", "again", "--quiet"]) == 0
    (again,) = (elsewhere / "again").glob("*.png")
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(made)))
    (work / "sd").unlink()
    capsys.readouterr()
    assert main(["generate", "--from-png", str(made), "--out", "third", "--quiet"]) == 2
    assert "the record's sd" in one_error_line(capsys, str(made))
    (work / "sd").symlink_to(env.models["clap"])  # the recorded folder now holds another kind of model
    assert main(["generate", "--from-png", str(made), "--out", "third", "--quiet"]) == 2
    assert "from the record: " in one_error_line(capsys, str(made))


def test_from_png_with_release_checks_the_recorded_size_before_sampling(cover, tmp_path, capsys, monkeypatch):
    from nopaingan_core import sampling

    monkeypatch.setattr(sampling, "load_minisd", lambda *a, **k: pytest.fail("models loaded before the check"))
    png = _with_record(cover[0], cover[1] | {"width": 128}, tmp_path / "wide.png")
    assert main(["generate", "--from-png", str(png), "--release", "--x4", "none", "--out", str(tmp_path)]) == 2
    assert "square" in one_error_line(capsys, "--width 128")


@pytest.mark.parametrize(
    "option",
    [["--title", "T"], ["--size", "128"], ["--x4", "none"], ["--x4-steps", "3"], ["--upscaler-model", __file__],
     ["--font", __file__], ["--text-position", "auto"], ["--text-color", "auto"]],
    ids=lambda option: option[0],
)  # fmt: skip
def test_release_options_without_release_are_refused(env, option, tmp_path, capsys, monkeypatch):
    import nopaingan_core.hub as hub

    monkeypatch.setattr(hub, "is_local", lambda *a, **k: pytest.fail("a model was looked up"))
    assert main([*_gen(env, tmp_path), *option]) == 2
    assert "no --release" in one_error_line(capsys, option[0])


@pytest.mark.parametrize("taken", [1, 3])
def test_a_cover_name_taken_between_choosing_and_writing_is_not_replaced(env, taken, tmp_path, capsys, monkeypatch):
    """Another run creates the chosen name (and the next ones) just before this one writes: each of its files
    stays as it was and this cover takes the next free name."""
    out = tmp_path / "covers"
    real_link = os.link
    raced = []

    def racing_link(src, dst, *args, **kwargs):
        if len(raced) < taken:  # the other run wins the race for this name
            Path(dst).write_bytes(b"the other run's cover")
            raced.append(Path(dst))
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", racing_link)
    assert main([*_gen(env, out), "--num", "1"]) == 0
    assert [p.read_bytes() for p in raced] == [b"the other run's cover"] * taken
    (mine,) = set(out.glob("*.png")) - set(raced)
    assert mine.name.endswith(f"-{taken}.png") and mine.read_bytes().startswith(b"\x89PNG")
    assert capsys.readouterr().out.strip() == str(mine) and leftovers(out) == []


def test_overwrite_onto_a_folder_is_one_line(env, tmp_path, capsys):
    out = tmp_path / "covers"
    (out / "a_0_0.png").mkdir(parents=True)
    assert main([*_gen(env, out), "--num", "1", "--overwrite"]) == 2
    one_error_line(capsys, "a_0_0.png")
    assert (out / "a_0_0.png").is_dir() and leftovers(out) == []


# --- misleading messages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["e3.txt", "emb", "emb.safetensors.json", "emb.pt", ".safetensors"])
def test_encode_refuses_an_out_name_that_is_not_safetensors(env, tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["encode", "--audio", str(env.song), "--mir", str(env.models["clap"]), "--out", str(out)]) == 2
    line = one_error_line(capsys, "--out")
    assert "expected a .safetensors file name" in line and str(out) in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["emb.safetensors", "EMB.SafeTensors"])
def test_encode_accepts_a_safetensors_name_in_any_case(env, tmp_path, name):
    out = tmp_path / name
    assert main(["encode", "--audio", str(env.song), "--mir", str(env.models["clap"]), "--out", str(out)]) == 0
    assert out.is_file()


@pytest.mark.parametrize(
    ("folder", "holds"), [("mert", "MERT"), ("codified-lm", "MusicGen"), ("sd", "Stable Diffusion")]
)
def test_tag_names_what_a_wrong_clap_folder_holds(env, capsys, folder, holds):
    assert main(["tag", "--audio", str(env.song), "--clap", str(env.models[folder])]) == 2
    line = one_error_line(capsys, "--clap")
    assert f"this folder holds a {holds}" in line and "lacks" not in line, line


def test_wrong_kinds_of_folders_are_named(env, tmp_path, capsys, caplog):
    clap = str(env.models["clap"])
    assert main(["generate", "--album", "A", "--genre", "g", "--sd", clap, "--out", str(tmp_path)]) == 2
    line = one_error_line(capsys, "--sd")
    assert "this folder holds a CLAP model" in line and "unsafe" not in caplog.text
    song = str(env.song)
    assert (
        main(["encode", "--audio", song, "--mir", clap, "--kind", "mert", "--out", str(tmp_path / "e.safetensors")])
        == 2
    )
    assert "this folder holds a CLAP model" in one_error_line(capsys, "--mir")
    run = env.fusion.parent / "run"
    run.mkdir(exist_ok=True)
    (run / "fusion.safetensors").write_bytes(env.fusion.read_bytes())
    argv = [*_gen(env, tmp_path / "r"), "--num", "1", "--fusion", str(run), "--audio", song]
    assert main([*argv, "--mir", str(env.models["codified-lm"])]) == 0  # a run folder is a fusion checkpoint


def test_audio_without_fusion_says_the_song_is_not_used(env, tmp_path, capsys):
    argv = [a for a in _gen(env, tmp_path) if a != "--quiet"] + ["--audio", str(env.song), "--num", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"the song {env.song} is not used" in out and "--auto-tags" in out


def test_pndm_progress_counts_the_steps_asked_for(env, tmp_path, capsys):
    argv = [a for a in _gen(env, tmp_path) if a != "--quiet"] + ["--num", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    counts = [(int(done), int(total)) for done, total in re.findall(r"\| (\d+)/(\d+) \[", err)]
    assert counts and {total for _, total in counts} == {2} and max(done for done, _ in counts) == 2
    assert "sampling: 0step" not in err  # no bar without a total


# --- no network ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """The hub is a closed port on this machine; every connection attempt is counted."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connections are refused
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _reachable.cache_clear()
    attempts = []
    real = socket.create_connection

    def counted(address, *args, **kwargs):
        attempts.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counted)
    # huggingface_hub fetches an "agent harness" list from huggingface.co for its user agent (once per process,
    # 3 s timeout, even for cache lookups); keep tests off the network
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    yield attempts
    _reachable.cache_clear()


@pytest.mark.parametrize("command", LOADERS, ids=_id)
def test_no_network_fails_after_one_probe(command, env, tmp_path, no_network, capsys):
    assert main(command.hub(env, _out(tmp_path, command))) == 2
    line = one_error_line(capsys, HUB_ID)
    assert "HF_HUB_OFFLINE=1" in line and "cannot be reached" in line
    assert len(no_network) == 1  # one short probe, no retries


def test_hf_hub_offline_is_honoured_without_any_connection(env, tmp_path, no_network, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(_gen(env, tmp_path, HUB_ID)) == 2
    assert "HF_HUB_OFFLINE is set" in one_error_line(capsys, HUB_ID)
    assert no_network == []


def test_x4_auto_is_skipped_on_the_cpu_with_a_note_and_used_on_a_gpu(env, tmp_path, no_network, monkeypatch, capsys):
    import torch

    import nopaingan_core.cli as core_cli
    from nopaingan_core.release import upscale
    from nopaingan_core.release.upscale import DEFAULT_X4

    argv = [a for a in _release(env, tmp_path / "cpu", "auto") if a != "--quiet"] + ["--num", "1", "--device", "cpu"]
    monkeypatch.setattr(upscale, "load_x4", lambda *a, **k: pytest.fail("x4 loaded on the CPU"))
    assert main(argv) == 1  # written; 128 px fails the stores' size rule
    out = capsys.readouterr().out
    assert "x4 diffusion upscaler skipped on the CPU" in out and f"--x4 {DEFAULT_X4}" in out
    assert len(list((tmp_path / "cpu").glob("*_release.jpg"))) == 1
    # on a GPU, auto means the hub's x4 upscaler: not cached here, so it stops before any PNG is written
    monkeypatch.setattr(core_cli, "device_from_args", lambda args: (torch.device("cuda"), torch.float32))
    assert main(_release(env, tmp_path / "gpu", "auto")) == 2
    assert "cannot be reached" in one_error_line(capsys, DEFAULT_X4)
    assert not (tmp_path / "gpu").exists() and len(no_network) == 1


# --- as a user sees it: a real process, a real terminal's stderr -------------------------------------------


@pytest.mark.parametrize(
    "argv,option",
    [
        (["generate", "--num", "-1", "--album", "A", "--genre", "g"], "--num"),
        (["dataset", "import", "nowhere", "--out", "/dev/null"], "/dev/null"),
        (["generate", "--album", "A", "--genre", "g", "--sd", "~no-such-user-0"], "--sd"),  # pathlib: RuntimeError
        (["tag", "--audio", "~no-such-user-0"], "--audio"),
    ],
)
def test_no_traceback_reaches_the_terminal(argv, option):
    result = subprocess.run(
        [sys.executable, "-m", "training", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and option in result.stderr and "Traceback" not in result.stderr
