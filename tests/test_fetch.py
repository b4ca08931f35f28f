"""``nopaingan dataset fetch``: the real Deezer and iTunes clients against fake catalogues on 127.0.0.1 that
answer in the APIs' documented shapes, with rate-limit answers, missing previews, near-miss and wrong
matches, ambiguous results, an interrupted run, Wikipedia album lists; property tests of the matcher."""

from __future__ import annotations

import json
import os
import re
import socket
import string
import time
from pathlib import Path

import pytest
from catalogue_server import FakeAlbum, FakeCatalogues, FakeTrack
from http_files import FileServer
from hypothesis import given, settings
from hypothesis import strategies as st
from music_library import image_bytes, make_track

from training.catalogues import (
    ANSWER_MAX_AGE,
    ITUNES_COVER_SIZES,
    Deezer,
    catalogue_names,
    country_code,
    make_catalogues,
)
from training.cli import main
from training.download import Downloader
from training.errors import (
    CatalogueUnavailableError,
    DatasetError,
    DownloadError,
    UnreachableError,
    change_text,
    count_text,
    tries_text,
)
from training.fetch import (
    AlbumRequest,
    fetch_dataset,
    read_album_list,
    resolve,
    wikipedia_album_list,
    write_album_list,
)
from training.matching import best_match, match_score, normalise_album, normalise_artist, similarity
from training.records import read_dataset

RED, GREEN, BLUE, YELLOW, CYAN = (220, 20, 20), (20, 200, 40), (30, 40, 220), (230, 220, 30), (20, 210, 220)
QUOTA = json.dumps({"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}}).encode()


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Previews as the catalogues serve them: MP3 (Deezer) and AAC in M4A (iTunes)."""
    tmp = tmp_path_factory.mktemp("previews")
    return {
        "mp3": make_track(tmp / "a.mp3", 2.0, 330).read_bytes(),
        "mp3b": make_track(tmp / "b.mp3", 2.0, 550).read_bytes(),
        "m4a": make_track(tmp / "c.m4a", 2.0, 440).read_bytes(),
    }


@pytest.fixture()
def shop(audio: dict[str, bytes]):
    """Both catalogues with the albums the tests ask for, and near misses around them."""
    with FileServer() as server:
        fake = FakeCatalogues(server)
        mp3, mp3b, m4a = audio["mp3"], audio["mp3b"], audio["m4a"]
        # the most popular track has no preview: the next one with a preview stands in
        fake.add_deezer(
            FakeAlbum(
                "Daft Punk",
                "Discovery",
                image_bytes(RED),
                [FakeTrack("One More Time", None, rank=900_000), FakeTrack("Aerodynamic", mp3, rank=800_000)],
                year=2001,
                genre="Electro",
            )
        )
        # accents, a remaster suffix and a "The" prefix away from the request
        fake.add_deezer(
            FakeAlbum("Sigur Rós", "Ágætis byrjun (Remastered)", image_bytes(GREEN), [FakeTrack("Svefn-g-englar", mp3)])
        )
        fake.add_deezer(
            FakeAlbum(
                "Beatles",
                "Abbey Road - 2019 Remaster",
                image_bytes(BLUE),
                [FakeTrack("Come Together", mp3b)],
                year=1969,  # the catalogues date the Beatles' remasters by the first release
            )
        )
        # the same title by another artist only: no match
        fake.add_deezer(FakeAlbum("Tribute Band", "Bleach", image_bytes(RED), [FakeTrack("Blew", mp3)]))
        # two different albums equally close to the request: ambiguous (titles of more than two words: shorter
        # ones match only the same words)
        fake.add_deezer(FakeAlbum("Velvet", "Songs for Mirror Balls", image_bytes(RED), [FakeTrack("a", mp3)]))
        fake.add_deezer(FakeAlbum("Velvet", "Songs for Mirror Hall", image_bytes(RED), [FakeTrack("b", mp3)]))
        # on Deezer without any preview, on iTunes with them: the other catalogue stands in
        fake.add_deezer(FakeAlbum("Björk", "Homogenic", image_bytes(YELLOW), [FakeTrack("Jóga", None)]))
        fake.add_itunes(
            FakeAlbum(
                "Björk",
                "Homogenic",
                image_bytes(CYAN, size=(120, 120)),
                [FakeTrack("Hunter", m4a, seconds=250), FakeTrack("Jóga", m4a, seconds=305)],
                year=1997,
                genre="Alternative",
            )
        )
        for title, year in (("Songs for Mirror Balls", 1999), ("Songs for Mirror Hall", 2003)):
            fake.add_itunes(FakeAlbum("Velvet", title, image_bytes(RED), [FakeTrack("a", m4a)], year=year))
        yield server, fake


def clients(tmp: Path, fake: FakeCatalogues, waits: list[float] | None = None, names=("deezer", "itunes")):
    def downloader(rate: float, statuses: frozenset[int]) -> Downloader:
        sleep = waits.append if waits is not None else (lambda s: None)
        return Downloader(
            tmp / "cache" / "api", rate_limit=None, backoff=0.5, timeout=5, retry_statuses=statuses, sleep=sleep
        )

    return make_catalogues(list(names), downloader, deezer_api=fake.deezer_url, itunes_api=fake.itunes_url)


def media(tmp: Path) -> Downloader:
    return Downloader(tmp / "cache", rate_limit=None, backoff=0.01, timeout=5)


REQUESTS = [
    AlbumRequest("Daft Punk", "Discovery", "list.csv:2"),
    AlbumRequest("Sigur Ros", "Agaetis Byrjun", "list.csv:3", genres=("post-rock",)),
    AlbumRequest("The Beatles", "Abbey Road", "list.csv:4", year=1969),
    AlbumRequest("Nirvana", "Bleach", "list.csv:5"),
    AlbumRequest("Velvet", "Songs for Mirror Ball", "list.csv:6"),
    AlbumRequest("Björk", "Homogenic", "list.csv:7"),
    AlbumRequest("Nobody", "Nothing Whatsoever", "list.csv:8"),
]


def rows(out: Path) -> dict[str, dict]:
    return {r["album"]: r for r in map(json.loads, (out / "metadata.jsonl").read_text().splitlines())}


def skipped(out: Path) -> dict[str, str]:
    return {r["album"]: r["reason"] for r in map(json.loads, (out / "skipped.jsonl").read_text().splitlines())}


def test_fetch_writes_the_import_dataset_folder_and_lists_what_it_left_out(tmp_path: Path, shop) -> None:
    server, fake = shop
    out = tmp_path / "DATA"
    report = fetch_dataset(REQUESTS, out, catalogues=clients(tmp_path, fake), downloader=media(tmp_path))
    albums = rows(out)
    assert set(albums) == {"Discovery", "Agaetis Byrjun", "Abbey Road", "Homogenic"}
    daft = albums["Discovery"]
    assert (daft["catalogue"], daft["match_score"], daft["song"]) == ("deezer", 1.0, "Aerodynamic")
    assert (daft["year"], daft["genres"], daft["catalogue_album"]) == (2001, ["electro"], "Discovery")
    assert daft["audio"].endswith(".mp3") and "/deezer/preview/" in daft["audio_source"]
    assert albums["Agaetis Byrjun"]["catalogue_album"] == "Ágætis byrjun (Remastered)"
    assert albums["Agaetis Byrjun"]["match_score"] == 1.0 and albums["Agaetis Byrjun"]["genres"] == ["post-rock"]
    assert albums["Abbey Road"]["catalogue_artist"] == "Beatles" and albums["Abbey Road"]["year"] == 1969
    bjork = albums["Homogenic"]
    assert (bjork["catalogue"], bjork["song"], bjork["year"]) == ("itunes", "Jóga", 1997)  # longest track
    assert bjork["audio"].endswith(".m4a") and bjork["cover_width"] == 120
    assert any(path.endswith("/1000x1000bb.jpg") for path, _ in server.requests)  # the large iTunes cover
    reasons = skipped(out)
    assert set(reasons) == {"Bleach", "Songs for Mirror Ball", "Nothing Whatsoever"}
    assert reasons["Bleach"].startswith("not found: deezer: no match: best was Tribute Band - Bleach")
    assert "deezer: ambiguous: Velvet - Songs for Mirror Balls" in reasons["Songs for Mirror Ball"]
    assert "itunes: ambiguous" in reasons["Songs for Mirror Ball"]
    assert reasons["Nothing Whatsoever"] == "not found: deezer: no result; itunes: no result"
    assert len(read_dataset(out)) == 4  # what `dataset cache` and training read
    assert report.summary() == (
        f"fetched 4 albums (train {report.count('train')}, eval {report.count('eval')}), skipped 3 (see "
        f"{out / 'skipped.jsonl'}); genre not in the list: from the catalogue for 3 (genre_source in metadata.jsonl)"
    )


def test_itunes_cover_is_asked_at_the_large_size(tmp_path: Path, shop) -> None:
    server, fake = shop
    request = AlbumRequest("Björk", "Homogenic", "x")
    candidate = resolve(request, clients(tmp_path, fake, names=("itunes",)))
    assert [c.location.rsplit("/", 1)[-1] for c in candidate.covers] == ["1000x1000bb.jpg", "100x100bb.jpg"]
    big = make_catalogues(
        ["itunes"],
        lambda rate, statuses: media(tmp_path),
        itunes_api=fake.itunes_url,
        cover_size=3000,
    )
    assert resolve(request, big).covers[0].location.endswith("/3000x3000bb.jpg")


def test_rate_limit_answers_are_retried_after_the_wait_the_server_asks(tmp_path: Path, shop) -> None:
    server, fake = shop
    server.failures["/deezer/search/album"] = [(200, {"Content-Type": "application/json"}, QUOTA)] * 2
    server.failures["/itunes/search"] = [(429, {"Retry-After": "7"}), (403, {})]
    waits: list[float] = []
    catalogues = clients(tmp_path, fake, waits)
    assert [r.title for r in catalogues[0].search("Daft Punk", "Discovery")] == ["Discovery"]
    assert waits == [0.5, 1.0]  # Deezer's quota error: doubling backoff, and not cached as the answer
    assert [r.title for r in catalogues[1].search("Björk", "Homogenic")] == ["Homogenic"]
    assert waits[2:] == [7.0, 1.0]  # iTunes: 429 with Retry-After, then 403 (Apple's throttling)
    searches = [p for p, _ in server.requests if p.startswith("/deezer/search")]
    assert len(searches) == 3
    catalogues[0].search("Daft Punk", "Discovery")  # the good answer is cached
    assert len([p for p, _ in server.requests if p.startswith("/deezer/search")]) == 3


def test_quota_errors_beyond_the_retries_stop_instead_of_leaving_the_album_out(tmp_path: Path, shop) -> None:
    server, fake = shop
    server.failures["/deezer/search/album"] = [(200, {}, QUOTA)] * 10
    with pytest.raises(CatalogueUnavailableError, match="Deezer error 4: Quota limit exceeded") as error:
        resolve(AlbumRequest("Daft Punk", "Discovery", "x"), clients(tmp_path, fake, names=("deezer",)))
    assert (error.value.catalogue, error.value.tries) == ("deezer", 4)  # the first try and 3 retries


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _staging_left(folder: Path) -> list[Path]:
    """Staging folders of a run (in its dataset folder) under ``folder`` that were not removed."""
    return list(folder.rglob(".nopaingan-*"))


def _quick_fetch(tmp_path: Path, albums: str) -> tuple[list[str], Path]:
    """``dataset fetch`` arguments for an album list (CSV rows after the header) into ``tmp_path/DATA``, without
    waits and with one retry, and that folder."""
    path, out = tmp_path / "albums.csv", tmp_path / "DATA"
    path.write_text("artist,album\n" + albums)
    fast = ["--deezer-rate", "0", "--itunes-rate", "0", "--rate-limit", "0", "--backoff", "0", "--quiet"]
    return ["dataset", "fetch", str(path), "--out", str(out), *fast, "--retries", "1"], out


def _earlier_dataset(tmp_path: Path, fake: FakeCatalogues, capsys, albums: str) -> tuple[list[str], Path, dict]:
    """A first fetch of ``albums`` (as for :func:`_quick_fetch`) through the fake catalogues, with a cache of its
    own; the arguments of the next fetch (without the API addresses and the cache), its folder and its files."""
    argv, out = _quick_fetch(tmp_path, albums)
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url]
    assert main([*argv, *apis, "--cache-dir", str(tmp_path / "first")]) == 0
    capsys.readouterr()
    return argv, out, _files(out)


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err and captured.out == "", captured.err
    return lines[0]


# Daft Punk from Deezer, Homogenic from iTunes (no preview on Deezer), the third found nowhere
THREE_ALBUMS = "Daft Punk,Discovery\nBjörk,Homogenic\nNobody,Nothing Whatsoever\n"
# (catalogue that fails, how, what the one line names); the retries are 1, so each failure is met twice
UNREACHABLE = [
    ("deezer", "refused", "ConnectionError"),
    ("deezer", (500, {}), "HTTP 500"),
    ("deezer", (429, {"Retry-After": "0"}), "HTTP 429"),
    ("deezer", (200, {"Content-Type": "application/json"}, QUOTA), "Deezer error 4: Quota limit exceeded"),
    ("itunes", "refused", "ConnectionError"),
    ("itunes", (500, {}), "HTTP 500"),
    ("itunes", (429, {"Retry-After": "0"}), "HTTP 429"),
    ("itunes", (403, {}), "HTTP 403"),  # Apple's throttling
]


@pytest.mark.parametrize(("name", "failure", "reason"), UNREACHABLE)
def test_an_unreachable_catalogue_stops_the_fetch_and_keeps_the_earlier_dataset(
    tmp_path: Path, shop, capsys, name: str, failure, reason: str
) -> None:
    server, fake = shop
    # Daft Punk is on Deezer; Homogenic has no preview there, so iTunes is asked for it
    argv, out, before = _earlier_dataset(tmp_path, fake, capsys, THREE_ALBUMS)
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url]
    assert set(rows(out)) == {"Discovery", "Homogenic"} and "Nothing Whatsoever" in skipped(out)

    if failure == "refused":
        base = f"http://127.0.0.1:{_closed_port()}/{name}"
        apis[apis.index(f"--{name}-api") + 1] = base
    else:
        server.failures["/deezer/search/album" if name == "deezer" else "/itunes/search"] = [failure] * 10
    asked = len(server.requests)
    assert main([*argv, *apis, "--cache-dir", str(tmp_path / "fresh")]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"nopaingan dataset fetch: error: {name}: the catalogue did not answer (")
    assert reason in line and "after 2 tries" in line and "try again later or raise --retries" in line
    assert f"{out} was left as it was (no file there was added, replaced or removed)" in line
    assert _files(out) == before  # metadata, skipped list, card, audio and covers byte for byte
    assert _staging_left(tmp_path) == []
    if failure != "refused":
        assert len(server.requests) > asked  # the server was asked, and said no


@pytest.mark.parametrize("failure", [(500, {}), (429, {"Retry-After": "0"})])
def test_an_unreachable_preview_server_stops_the_fetch_and_keeps_the_earlier_dataset(
    tmp_path: Path, shop, capsys, failure
) -> None:
    server, fake = shop
    argv, out, before = _earlier_dataset(tmp_path, fake, capsys, "Daft Punk,Discovery\n")
    argv += ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url]
    for path in [p for p in fake.previews.files if p.startswith(("/deezer/preview/", "/itunes/preview/"))]:
        server.failures[path] = [failure] * 10
    assert main([*argv, "--cache-dir", str(tmp_path / "fresh")]) == 2
    line = _one_line(capsys)
    assert "the download server did not answer (" in line and "after 2 tries" in line
    assert f"{out} was left as it was" in line
    assert _files(out) == before


def _stop_at_homogenic(server, fake: FakeCatalogues, stop: str) -> None:
    """The next fetch stops at Björk's Homogenic (Deezer has no preview of it, so iTunes is asked): its catalogue
    or the server of its previews does not answer."""
    if stop == "catalogue":
        server.failures["/itunes/search"] = [(500, {})] * 10
        return
    for path in [p for p in server.files if p.startswith(f"/itunes/preview/{fake.itunes[0].id}/")]:
        server.failures[path] = [(503, {})] * 10


@pytest.mark.parametrize("stop", ["catalogue", "download server"])
def test_a_stop_after_albums_that_change_files_leaves_the_earlier_folder_byte_for_byte(
    tmp_path: Path, shop, capsys, audio, stop: str
) -> None:
    server, fake = shop
    argv, out, before = _earlier_dataset(tmp_path, fake, capsys, "Daft Punk,Discovery\n")
    argv += ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url]
    # the catalogue's cover and preview of Discovery changed since; Sigur Rós is new; then the stop
    daft = fake.deezer[0]
    server.files[f"/deezer/img/{daft.id}/1000x1000-000000-80-0-0.jpg"] = image_bytes(GREEN)
    server.files[f"/deezer/preview/{daft.id}/1.mp3"] = audio["mp3b"]
    (tmp_path / "albums.csv").write_text(
        "artist,album\nDaft Punk,Discovery\nSigur Ros,Agaetis Byrjun\nBjörk,Homogenic\n"
    )
    _stop_at_homogenic(server, fake, stop)
    assert main([*argv, "--cache-dir", str(tmp_path / "second")]) == 2
    line = _one_line(capsys)
    assert f"the {stop} did not answer" in line
    assert f"{out} was left as it was (no file there was added, replaced or removed)" in line
    assert _files(out) == before and _staging_left(tmp_path) == []
    # once it answers, the same fetch does replace both files, and adds the new albums
    server.failures.clear()
    assert main([*argv, "--cache-dir", str(tmp_path / "second")]) == 0
    after, discovery = _files(out), rows(out)["Discovery"]
    assert after[discovery["file_name"]] != before[discovery["file_name"]]
    assert after[discovery["audio"]] == audio["mp3b"] != before[discovery["audio"]]
    assert set(rows(out)) == {"Discovery", "Agaetis Byrjun", "Homogenic"} and _staging_left(tmp_path) == []


@pytest.mark.parametrize("stop", ["catalogue", "download server"])
def test_a_stop_into_a_new_folder_writes_nothing_and_says_so(tmp_path: Path, shop, capsys, stop: str) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\nBjörk,Homogenic\n")
    argv += ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    _stop_at_homogenic(server, fake, stop)
    assert main(argv) == 2
    line = _one_line(capsys)
    assert f"the {stop} did not answer" in line and f"; no dataset was written ({out} was not created);" in line
    assert "as before" not in line and "left as it was" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["albums.csv", "c"]  # no DATA, no staging folder


# (option, value, what the one line says after "nopaingan dataset fetch: error: ")
COUNTRY = "--country: expected a two-letter ISO 3166-1 country code such as US or GB, found"
NAMES = "--catalogues: expected some of deezer, itunes, each at most once, found"
REFUSED = [
    ("--cover-size", "100000", "argument --cover-size: got '100000', expected a whole number from 100 to 3000"),
    ("--cover-size", "3001", "argument --cover-size: got '3001', expected a whole number from 100 to 3000"),
    ("--cover-size", "99", "argument --cover-size: got '99', expected a whole number from 100 to 3000"),
    ("--country", "ZZZ", f"{COUNTRY} 'ZZZ'"),
    ("--country", "u", f"{COUNTRY} 'u'"),
    ("--country", "1A", f"{COUNTRY} '1A'"),
    ("--country", "ÜS", f"{COUNTRY} 'ÜS'"),
    ("--country", "", f"{COUNTRY} ''"),
    ("--catalogues", "deezer,deezer", f"{NAMES} deezer twice"),
    ("--catalogues", "itunes,deezer,itunes", f"{NAMES} itunes twice"),
    ("--catalogues", "deezer,spotify", f"{NAMES} unknown 'spotify'"),
    ("--catalogues", " , ", f"{NAMES} none"),
]  # fmt: skip
URL_EXPECTED = "expected an http(s) URL with a host, e.g. https://en.wikipedia.org/wiki/List_of_2019_albums"
REFUSED += [
    ("--from-wikipedia-list", url, f"argument --from-wikipedia-list: got {url!r}, {URL_EXPECTED}")
    for url in ["not-a-url", "en.wikipedia.org/wiki/List_of_2019_albums", "ftp://example.org/list", "http://", "https:///wiki/x"]
]  # fmt: skip


@pytest.mark.parametrize(("option", "value", "message"), REFUSED)
def test_bad_fetch_options_are_refused_before_any_work(
    tmp_path: Path, shop, capsys, option: str, value: str, message: str
) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    argv += ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, option, value]) == 2
    assert _one_line(capsys) == f"nopaingan dataset fetch: error: {message}"
    assert server.requests == [] and not out.exists() and not (tmp_path / "c").exists()


ITUNES_ONLY = "sets what iTunes is asked (Deezer's covers are 1000 px); expected --catalogues with itunes, found"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--catalogues", "deezer", "--cover-size", "3000"], "--cover-size"),
        (["--catalogues", "deezer", "--cover-size", "1000"], "--cover-size"),  # the default, given all the same
        (["--country", "GB", "--catalogues", "deezer"], "--country"),
        (["--catalogues", "deezer,", "--country", "US"], "--country"),
        (["--catalogues", "deezer", "--cover-size", "600", "--country", "gb"], "--country"),
    ],
)
def test_itunes_options_without_itunes_are_refused(tmp_path: Path, shop, capsys, options, named) -> None:
    """--country and --cover-size only change what iTunes is asked: given (even at their defaults) without it, they
    would do nothing, so they are refused before any request."""
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    argv += ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, *options]) == 2
    assert _one_line(capsys) == f"nopaingan dataset fetch: error: {named}: {ITUNES_ONLY} --catalogues deezer"
    assert server.requests == [] and not out.exists() and not (tmp_path / "c").exists()


ALL_LEFT_OUT = {
    "itunes": "--cover-size {size} is below --min-cover-size {least}: every iTunes cover would be left out",
    "deezer": "--min-cover-size {least} is above Deezer's 1000 px covers: every Deezer cover would be left out; "
    "expected at most 1000, or --catalogues itunes",
}


# (--catalogues, --cover-size, --min-cover-size, the catalogue all of whose covers would be left out or None)
COVER_SIZES = [
    ("deezer", None, 1000, None),
    ("deezer", None, 1001, "deezer"),
    ("deezer", None, 3000, "deezer"),
    ("itunes", 3000, 3000, None),
    ("itunes", 2000, 3000, "itunes"),
    ("itunes", None, 1001, "itunes"),  # the default --cover-size, 1000
    ("itunes", 300, 300, None),
    ("itunes,deezer", 1500, 1200, "deezer"),
    ("deezer,itunes", 200, 300, "itunes"),
    ("deezer,itunes", 300, 300, None),
]


@pytest.mark.parametrize(("names", "size", "least", "left_out"), COVER_SIZES)
def test_a_least_cover_size_above_what_a_catalogue_serves_is_refused(
    tmp_path: Path, shop, capsys, names: str, size: int | None, least: int, left_out: str | None
) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    argv += ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    argv += ["--catalogues", names, "--min-cover-size", str(least), *(["--cover-size", str(size)] if size else [])]
    assert main(argv) == (2 if left_out else 0)
    if left_out:
        message = ALL_LEFT_OUT[left_out].format(size=size or 1000, least=least)
        assert _one_line(capsys) == f"nopaingan dataset fetch: error: {message}"
        assert server.requests == [] and not out.exists()


def test_the_country_is_asked_in_capitals_and_the_cover_at_the_size_limits(tmp_path: Path, shop) -> None:
    server, fake = shop
    for size in ITUNES_COVER_SIZES:
        itunes = make_catalogues(
            ["itunes"],
            lambda rate, statuses: media(tmp_path),
            itunes_api=fake.itunes_url,
            country="gb",
            cover_size=size,
        )
        assert (
            resolve(AlbumRequest("Björk", "Homogenic", "x"), itunes)
            .covers[0]
            .location.endswith(f"/{size}x{size}bb.jpg")
        )
    asked = [path for path, _ in server.requests if path.startswith(("/itunes/search", "/itunes/lookup"))]
    assert asked and all("country=GB" in path for path in asked)
    low, high = ITUNES_COVER_SIZES
    for size in (low - 1, high + 1, 100000):
        with pytest.raises(DatasetError, match=f"^--cover-size: expected {low} to {high} px, found {size}$"):
            make_catalogues(["itunes"], lambda rate, statuses: media(tmp_path), cover_size=size)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=4))
def test_a_country_is_any_two_ascii_letters(text: str) -> None:
    if len(text) == 2 and all(c in string.ascii_letters for c in text):
        assert country_code(text) == text.upper()
    else:
        with pytest.raises(DatasetError, match=f"^--country: expected a two-letter .*, found {re.escape(repr(text))}$"):
            country_code(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["deezer", "itunes", "spotify", "Deezer", ""]), max_size=4))
def test_catalogue_names_are_known_and_each_given_once(names: list[str]) -> None:
    """A list's names as given; a comma-separated text (the option's value) without its empty ones."""
    for value, meant in ((names, names), (",".join(names), [n for n in names if n])):
        if meant and len(set(meant)) == len(meant) and set(meant) <= {"deezer", "itunes"}:
            assert catalogue_names(value) == meant
        else:
            with pytest.raises(DatasetError, match="^--catalogues: expected some of deezer, itunes, each at most once"):
                catalogue_names(value)


@pytest.mark.parametrize(
    "url",
    ["not-a-url", "http://", "ftp://example.org/x", "http://exa mple.org/", "http://[::1/x", "http://h:port/x"],
)
def test_a_url_that_cannot_be_downloaded_is_not_retried(tmp_path: Path, url: str) -> None:
    waits: list[float] = []
    fetcher = Downloader(tmp_path, retries=3, rate_limit=None, sleep=waits.append)
    with pytest.raises(DownloadError, match="not a URL that can be downloaded") as error:
        fetcher.fetch(url)
    assert not isinstance(error.value, UnreachableError) and waits == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_fetch_says_fetching_and_counts_in_words(tmp_path: Path, shop, capsys) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    argv.remove("--quiet")  # the progress bar, on stderr
    saved = tmp_path / "list.csv"
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, *apis, "--eval-fraction", "0", "--save-list", str(saved)]) == 0
    captured = capsys.readouterr()
    assert "fetching albums" in captured.err and "importing" not in captured.err
    assert captured.out == (
        f"wrote 1 album to {saved}\nfetched 1 album (train 1, eval 0), skipped 0; genre not in the list: from the "
        "catalogue for 1 (genre_source in metadata.jsonl)\n"
    )


@pytest.mark.parametrize(
    ("count", "words", "text"),
    [
        (0, ("album",), "0 albums"),
        (1, ("album",), "1 album"),
        (2, ("album",), "2 albums"),
        (1, ("try", "tries"), "1 try"),
        (4, ("try", "tries"), "4 tries"),
        (1, ("file",), "1 file"),
        (12, ("file",), "12 files"),
    ],
)
def test_counts_read_as_english(count: int, words: tuple[str, ...], text: str) -> None:
    assert count_text(count, *words) == text
    if words == ("try", "tries"):
        assert tries_text(count) == text


@settings(max_examples=300, deadline=None)
@given(st.floats(-10.0, 10.0, allow_nan=False), st.integers(0, 3))
def test_a_relative_change_reads_as_its_rounded_percentage_and_never_minus_zero(fraction: float, digits: int) -> None:
    text = change_text(fraction, digits)
    number, unit = text.split(" ")
    assert unit == "%" and number[0] in "+-" and float(number) == round(100 * fraction, digits)
    assert number.lstrip("+-").strip("0.") or number[0] == "+"  # a change that rounds to zero is +0.0, not -0.0
    assert len(number.partition(".")[2]) == digits


@pytest.mark.parametrize(("fraction", "text"), [(-0.00004, "+0.0 %"), (-0.1234, "-12.3 %"), (0.5, "+50.0 %")])
def test_relative_changes_as_printed(fraction: float, text: str) -> None:
    assert change_text(fraction) == text


def test_a_catalogue_that_answers_no_result_still_leaves_the_album_out(tmp_path: Path, shop) -> None:
    server, fake = shop
    request = AlbumRequest("Nobody", "Nothing Whatsoever", "x")
    candidate = resolve(request, clients(tmp_path, fake))
    assert candidate.problem == "not found: deezer: no result; itunes: no result"
    server.failures["/itunes/lookup"] = [(404, {})]  # a definite answer, not an outage: no retry, not found
    candidate = resolve(AlbumRequest("Björk", "Homogenic", "y"), clients(tmp_path / "other", fake))
    assert candidate.problem.startswith("not found: deezer: Björk - Homogenic has no track with a preview; itunes:")
    assert "HTTP 404" in candidate.problem


def test_other_deezer_errors_are_not_retried(tmp_path: Path, shop) -> None:
    server, fake = shop
    error = json.dumps({"error": {"type": "ParameterException", "message": "Wrong parameter", "code": 500}})
    server.failures["/deezer/search/album"] = [(200, {}, error.encode())]
    deezer = clients(tmp_path, fake, names=("deezer",))[0]
    with pytest.raises(DownloadError, match="Deezer error 500: Wrong parameter"):
        deezer.search("a", "b")


def test_an_album_gone_since_the_search_asks_the_next_catalogue(tmp_path: Path, shop) -> None:
    server, fake = shop
    gone = json.dumps({"error": {"type": "DataException", "message": "no data", "code": 800}}).encode()
    server.failures[f"/deezer/album/{fake.deezer[0].id}"] = [(200, {}, gone)]
    candidate = resolve(AlbumRequest("Daft Punk", "Discovery", "x"), clients(tmp_path, fake))
    assert candidate.problem == (
        f"not found: deezer: Daft Punk - Discovery (album {fake.deezer[0].id}) is gone from the catalogue: its search "
        "lists it, its album page answers error 800 (no data); itunes: no result"
    )


def test_interrupted_fetch_resumes_without_asking_or_downloading_again(tmp_path: Path, shop) -> None:
    server, fake = shop
    catalogues = clients(tmp_path, fake)
    deezer = catalogues[0]
    search = deezer.search
    calls = []

    def interrupted(artist: str, album: str):
        calls.append(album)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return search(artist, album)

    deezer.search = interrupted
    out = tmp_path / "DATA"
    with pytest.raises(KeyboardInterrupt):
        fetch_dataset(REQUESTS, out, catalogues=catalogues, downloader=media(tmp_path))
    assert not out.exists() and _staging_left(tmp_path) == []  # the two albums fetched wait in the cache
    first = list(server.requests)
    deezer.search = search
    fetch_dataset(REQUESTS, out, catalogues=catalogues, downloader=media(tmp_path))
    again = server.requests[len(first) :]
    assert not set(again) & set(first)  # nothing asked or downloaded twice
    clean = tmp_path / "clean"
    fetch_dataset(REQUESTS, clean, catalogues=clients(tmp_path / "other", fake), downloader=media(tmp_path / "other"))
    assert rows(out) == rows(clean) and skipped(out) == skipped(clean)


def test_a_preview_that_fails_to_download_gives_way_to_the_next_track(tmp_path: Path, shop, audio) -> None:
    server, fake = shop
    album = fake.add_deezer(
        FakeAlbum(
            "Air",
            "Moon Safari",
            image_bytes(BLUE),
            [FakeTrack("La femme d'argent", audio["mp3"], rank=9), FakeTrack("Sexy Boy", audio["mp3b"], rank=5)],
        )
    )
    del server.files[f"/deezer/preview/{album.id}/0.mp3"]  # listed by the API, gone from the CDN
    out = tmp_path / "DATA"
    request = AlbumRequest("Air", "Moon Safari", "x")
    fetch_dataset([request], out, catalogues=clients(tmp_path, fake), downloader=media(tmp_path))
    assert rows(out)["Moon Safari"]["song"] == "Sexy Boy"


def test_cached_answers_expire_so_preview_links_stay_fresh(tmp_path: Path, shop) -> None:
    server, fake = shop
    deezer = clients(tmp_path, fake, names=("deezer",))[0]
    deezer.search("Daft Punk", "Discovery")
    deezer.search("Daft Punk", "Discovery")
    assert len([p for p, _ in server.requests if p.startswith("/deezer/search")]) == 1
    for answer in (tmp_path / "cache" / "api").iterdir():
        os.utime(answer, (0, 0))  # older than ANSWER_MAX_AGE
    deezer.search("Daft Punk", "Discovery")
    assert len([p for p, _ in server.requests if p.startswith("/deezer/search")]) == 2


# cut short, emptied, not text; and valid JSON that no answer of the APIs is (a hand edit, another tool's file)
@pytest.mark.parametrize("damage", [b"", b'{"data": [{"id": 3', b"\xff\xfe not text", b"null", b"[1, 2]", b'"x"'])
def test_damaged_cached_answers_are_asked_again_in_one_run(tmp_path: Path, shop, capsys, damage: bytes) -> None:
    """Cached answers cut short (a crash, a full disk) or not shaped as the API answers are no broken catalogue:
    the next run asks the catalogue again for each of them and writes the same dataset, in one run."""
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\nBjörk,Homogenic\nNobody,Nothing Whatsoever\n")
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, *apis]) == 0
    first = _files(out)
    answers = sorted((tmp_path / "c" / "api").iterdir())
    assert len(answers) >= 5
    for answer in answers:
        answer.write_bytes(damage)
    asked = len(server.requests)
    assert main([*argv, *apis]) == 0, capsys.readouterr().err
    assert _files(out) == first
    assert len(server.requests) - asked == len(answers)  # every damaged answer asked again, nothing else
    assert all(json.loads(answer.read_bytes()) for answer in answers)  # and kept whole


def test_album_lists_read_csv_with_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "albums.csv"
    path.write_text(
        'Artist Name;Album Title;Release Date;Genres\nDaft Punk;Discovery;2001-03-12;"house, electro"\n'
        "Björk;Homogenic;;\n;Untitled;;\n"
    )
    albums = read_album_list(path)
    assert albums[0] == AlbumRequest("Daft Punk", "Discovery", f"{path}:2", 2001, ("house", "electro"))
    assert albums[1] == AlbumRequest("Björk", "Homogenic", f"{path}:3")
    resolved = resolve(albums[2], [])
    assert resolved.problem == f"{path}:4: empty artist"
    (tmp_path / "bad.csv").write_text("band,record\nA,B\n")
    with pytest.raises(DatasetError, match="no column for artist, album"):
        read_album_list(tmp_path / "bad.csv")
    written = write_album_list(albums[:2], tmp_path / "copy.csv")
    assert [(a.artist, a.album, a.year, a.genres) for a in read_album_list(written)] == [
        (a.artist, a.album, a.year, a.genres) for a in albums[:2]
    ]
    with pytest.raises(DatasetError, match=f"^album list: {re.escape(str(written))} exists already; choose a new"):
        write_album_list(albums, written)


WIKIPEDIA = """<html><head><title>List of 2019 albums - Wikipedia</title></head><body>
<h2>January</h2>
<table class="wikitable plainrowheaders">
<tr><th>Release date</th><th>Artist</th><th>Album</th><th>Genre</th><th>Label</th><th>Ref.</th></tr>
<tr><th rowspan="2">January 4</th><td>Daft Punk</td><td><i>Discovery</i></td><td>House, electro</td>
<td>Virgin</td><td>[1]</td></tr>
<tr><td>Sigur Rós</td><td><i>Ágætis byrjun</i><sup>[a]</sup></td><td>Post-rock</td><td>Fat Cat</td><td>[2]</td></tr>
</table>
<table class="wikitable"><tr><th>Month</th><th>Count</th></tr><tr><td>January</td><td>2</td></tr></table>
<h2>February</h2>
<table class="wikitable">
<tr><th rowspan="2">Release date</th><th colspan="2">Release</th><th rowspan="2">Genre</th>
<th rowspan="2">Label</th></tr>
<tr><th>Artist</th><th>Album</th></tr>
<tr><td>February 1, 2018</td><td>Björk</td><td>Homogenic</td><td></td><td>One Little Indian</td></tr>
</table>
<h2>March</h2>
<table class="wikitable">
<tr><th>Release date</th><th>Artist(s)</th><th>Title</th><th>Genre(s)</th></tr>
<tr><td>March 8</td><td>Air</td><td><i>Moon Safari</i></td><td>Electronic</td></tr>
</table>
<table class="wikitable"><tr><th>Artist</th><th>Tour</th></tr><tr><td>Muse</td><td>Simulation Theory</td></tr></table>
</body></html>"""


def test_wikipedia_yearly_list_becomes_an_album_list(tmp_path: Path, shop, capsys) -> None:
    server, _ = shop
    server.files["/wiki/List_of_2019_albums"] = WIKIPEDIA.encode()
    url = server.url("/wiki/List_of_2019_albums")
    albums = wikipedia_album_list(url, media(tmp_path))
    assert [(a.artist, a.album, a.year, a.genres) for a in albums] == [
        ("Daft Punk", "Discovery", 2019, ("House", "electro")),
        ("Sigur Rós", "Ágætis byrjun", 2019, ("Post-rock",)),
        ("Björk", "Homogenic", 2018, ()),  # the release date's own year wins over the page's
        ("Air", "Moon Safari", 2019, ("Electronic",)),  # an album column headed Title
    ]
    assert albums[0].source == f"{url} table 1 row 1"
    saved = tmp_path / "list.csv"
    assert (
        main(
            [
                "dataset",
                "fetch",
                "--from-wikipedia-list",
                url,
                "--save-list",
                str(saved),
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        f"note: {url} table 5: left out, an artist column but no album column (expected Album or Title, found "
        "Artist, Tour)",
        f"wrote 4 albums to {saved}",
    ]
    assert [a.album for a in read_album_list(saved)] == ["Discovery", "Ágætis byrjun", "Homogenic", "Moon Safari"]
    # the page named again (a link to one of its sections, the host in capitals) is read once, with a note
    again = url.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "#March"
    argv = ["dataset", "fetch", "--from-wikipedia-list", url, "--from-wikipedia-list", again, "--save-list"]
    assert main([*argv, str(tmp_path / "twice.csv"), "--cache-dir", str(tmp_path / "c")]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"note: --from-wikipedia-list {url} given again as {again}: read once",
        f"note: {url} table 5: left out, an artist column but no album column (expected Album or Title, found "
        "Artist, Tour)",
    ]
    assert [a.album for a in read_album_list(tmp_path / "twice.csv")] == [a.album for a in read_album_list(saved)]
    # the page is edited: a copy younger than ANSWER_MAX_AGE is read from the cache, an older one anew
    server.files["/wiki/List_of_2019_albums"] = WIKIPEDIA.replace("Homogenic", "Vespertine").encode()
    assert [a.album for a in wikipedia_album_list(url, media(tmp_path))][2] == "Homogenic"
    cached = media(tmp_path).cached_path(url)
    old = time.time() - ANSWER_MAX_AGE - 60
    os.utime(cached, (old, old))
    assert [a.album for a in wikipedia_album_list(url, media(tmp_path))][2] == "Vespertine"
    server.files["/wiki/empty"] = b"<html><table><tr><th>Month</th></tr><tr><td>May</td></tr></table></html>"
    with pytest.raises(
        DatasetError, match="no album table found: .*, found 1 table, none with artist and album columns"
    ):
        wikipedia_album_list(server.url("/wiki/empty"), media(tmp_path))


def test_cli_fetches_with_api_addresses_from_the_environment(tmp_path: Path, shop, capsys, monkeypatch) -> None:
    server, fake = shop
    albums = tmp_path / "albums.csv"
    albums.write_text("artist,album\nDaft Punk,Discovery\nBjörk,Homogenic\nNobody,Nothing Whatsoever\n")
    monkeypatch.setenv("NOPAINGAN_DEEZER_API", fake.deezer_url)
    monkeypatch.setenv("NOPAINGAN_ITUNES_API", fake.itunes_url)
    out = tmp_path / "DATA"
    argv = ["dataset", "fetch", str(albums), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    fast = ["--deezer-rate", "0", "--itunes-rate", "0", "--rate-limit", "0", "--eval-fraction", "0"]
    assert main([*argv, *fast]) == 0
    assert capsys.readouterr().out == (
        f"fetched 2 albums (train 2, eval 0), skipped 1 (see {out / 'skipped.jsonl'}); genre not in the list: from "
        "the catalogue for 2 (genre_source in metadata.jsonl)\n"
    )
    assert set(rows(out)) == {"Discovery", "Homogenic"}
    assert main(["dataset", "fetch", str(albums)]) == 2
    assert "the following arguments are required: --out DATA (the dataset folder to write" in capsys.readouterr().err
    assert main([*argv, "--cover-size", "200", "--min-cover-size", "300"]) == 2
    assert "--cover-size 200 is below --min-cover-size 300" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes/todo.txt").write_text("x")
    assert main(["dataset", "fetch", str(albums), "--out", str(tmp_path / "notes")]) == 2
    assert "expected a new, empty or dataset folder" in capsys.readouterr().err


def test_deezer_falls_back_to_plain_words_when_the_field_query_finds_nothing(tmp_path: Path, shop) -> None:
    server, fake = shop
    deezer = clients(tmp_path, fake, names=("deezer",))[0]
    assert isinstance(deezer, Deezer)
    assert [r.artist for r in deezer.search("The Beatles", "Abbey Road")] == ["Beatles"]
    queries = [p for p, _ in server.requests if p.startswith("/deezer/search")]
    assert len(queries) == 2 and "artist%3A%22The+Beatles%22" in queries[0]


# --- matcher ----------------------------------------------------------------------------------------------


def test_normalisation_removes_editions_featuring_and_the() -> None:
    assert normalise_album("The Wall (Remastered 2011)") == "wall"
    assert normalise_album("Abbey Road - 2019 Remaster") == "abbey road"
    assert normalise_album("Lemonade [Deluxe Edition]") == "lemonade"
    assert normalise_album("Homogenic - EP") == "homogenic"  # a single is another release: a mark, kept
    assert normalise_album("Deluxe") == "deluxe"  # a title that is only such a word keeps it
    assert normalise_album("Greatest Hits II") != normalise_album("Greatest Hits")
    assert normalise_artist("Beyoncé feat. Jay-Z") == "beyonce"
    assert normalise_artist("Simon & Garfunkel") == normalise_artist("simon and garfunkel")
    assert normalise_artist("The The") == "the"


def test_best_match_cases() -> None:
    found = [("a", "Velvet", "Songs for Mirror Balls", 1999), ("b", "Velvet", "Songs for Mirror Hall", 2003)]
    assert best_match("Velvet", "Songs for Mirror Ball", found).reason.startswith("ambiguous")
    assert best_match("Velvet", "Songs for Mirror Ball", found, year=1999).item == "a"  # the year decides
    assert best_match("Velvet", "Songs for Mirror Ball", found, year=2010).item is None
    editions = [("x", "Joni Mitchell", "Blue", 1971), ("y", "Joni Mitchell", "Blue (Deluxe Edition)", 2021)]
    assert best_match("Joni Mitchell", "Blue", editions).item == "x"  # editions of one album are not rivals
    assert best_match("Nirvana", "Bleach", [("z", "Tribute Band", "Bleach", None)]).item is None
    assert best_match("a", "b", []).reason == "no result"


WORDS = st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=8).filter(
    lambda w: w not in {"the", "feat", "ft", "featuring", "and"} and normalise_album(f"x ({w})") != "x"
)
TITLES = st.lists(WORDS, min_size=1, max_size=4).map(" ".join)
ACCENTS = str.maketrans({"a": "á", "e": "è", "o": "ö", "u": "ü", "n": "ñ", "c": "ç"})


@settings(max_examples=150, deadline=None)
@given(TITLES, TITLES, st.sampled_from(["", " (Deluxe Edition)", " - 2011 Remaster", " [Remastered]", " - EP"]))
def test_same_album_in_any_spelling_scores_one(artist: str, album: str, suffix: str) -> None:
    variants = [
        (artist.upper(), album.title() + suffix),
        (artist.translate(ACCENTS), album.translate(ACCENTS) + suffix),
        (f"The {artist}", f"{album}!" + suffix),
        (artist.replace(" ", " & ") if " " in artist else artist, album + suffix),
    ]
    for found_artist, found_album in variants:
        expected = artist if "&" not in found_artist else artist.replace(" ", " and ")
        assert match_score(expected, album, found_artist, found_album) == 1.0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30))
def test_similarity_is_symmetric_bounded_and_one_only_when_equal(a: str, b: str) -> None:
    x, y = normalise_album(a), normalise_album(b)
    score = similarity(x, y)
    assert 0.0 <= score <= 1.0 and score == similarity(y, x)
    assert (score == 1.0) == (x == y)


@settings(max_examples=100, deadline=None)
@given(TITLES, TITLES, TITLES)
def test_a_different_artist_is_no_match_whatever_the_album(artist: str, other: str, album: str) -> None:
    if similarity(normalise_artist(artist), normalise_artist(other)) < 0.85:
        assert best_match(artist, album, [(0, other, album, None)]).item is None


def test_a_full_disk_while_downloading_stops_instead_of_retrying(tmp_path: Path, shop, monkeypatch) -> None:
    """ENOSPC writing a preview is the disk, not the connection: no retry, no album skipped as 'broken'."""
    import errno
    import io

    import training.download

    server, fake = shop
    server.files["/preview.mp3"] = b"x" * 5000

    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training.download, "open", lambda *a, **k: FullDisk(), raising=False)
    with pytest.raises(OSError) as caught:
        Downloader(tmp_path / "cache", rate_limit=None, backoff=0.01, retries=3).fetch(server.url("/preview.mp3"))
    assert caught.value.errno == errno.ENOSPC and not isinstance(caught.value, DownloadError)
    assert len(server.requests_for("/preview.mp3")) == 1
