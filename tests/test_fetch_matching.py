"""``nopaingan dataset fetch``, findings of a user trial: a catalogue address that answers, but not as the API
(HTTP 404/400, a web page, JSON of another shape), or is no URL at all, stops the fetch instead of recording
every album as not found; a Wikipedia page without an album table is one line, not a traceback; titles that
differ by a number are different albums, an exact title wins over near ones, the edition of the list's year is
taken; --min-score says one range; a preview that is not audio is named by its URL; names of symbols alone
(×, ÷, !!!) match, count as duplicates and get ids on their own text, never all as one empty name."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
import test_fetch
from catalogue_server import FakeAlbum, FakeTrack
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from music_library import image_bytes
from test_fetch import (
    BLUE,
    GREEN,
    RED,
    TITLES,
    _files,
    _one_line,
    _quick_fetch,
    _staging_left,
    clients,
    media,
    rows,
    skipped,
)

from training.catalogues import ITunes, make_catalogues
from training.cleaning import album_key, raw_name
from training.cli import main
from training.dataset_import import album_id
from training.download import Downloader
from training.errors import CatalogueBrokenError, DatasetError
from training.fetch import AlbumRequest, fetch_dataset, read_album_list, resolve, write_album_list
from training.manifest import parse_year, read_manifest
from training.matching import (
    MIN_SCORE,
    album_numbers,
    best_match,
    match_score,
    normalise_album,
    normalise_artist,
    recording_marks,
    refusal,
    year_matches,
)

audio, shop = test_fetch.audio, test_fetch.shop  # the fixtures: previews, and both fake catalogues

# --- 1. a catalogue address that is not the API ------------------------------------------------------------

ITUNES_400 = json.dumps({"errorMessage": "Invalid value(s) for key(s): [country]", "queryParameters": {}}).encode()
# (catalogue, how its search answers, what the one line says in the brackets)
BROKEN = [
    ("deezer", (404, {}), "its album search answered HTTP 404"),
    ("deezer", (400, {}), "its album search answered HTTP 400"),
    ("deezer", (410, {}), "its album search answered HTTP 410"),
    ("deezer", (401, {}), "its album search answered HTTP 401"),
    ("deezer", (501, {}), "its album search answered HTTP 501"),
    ("deezer", (200, {}, b"<html><body>Deezer</body></html>"), "its album search answered something that is not JSON"),
    ("deezer", (200, {}, b'{"albums": []}'), 'its album search answered {"albums": []}, without a \'data\' list'),
    ("itunes", (404, {}), "its album search answered HTTP 404"),
    ("itunes", (400, {}, ITUNES_400), "its album search answered HTTP 400: Invalid value(s) for key(s): [country]"),
    ("itunes", (405, {}), "its album search answered HTTP 405"),
    ("itunes", (200, {}, b"[]"), "its album search answered [], without a 'results' list"),
    ("itunes", (200, {}, b"\xff\xfe not text"), "its album search answered something that is not JSON"),
]  # fmt: skip


def _earlier_dataset(tmp_path: Path, fake, capsys) -> tuple[list[str], Path, dict[str, bytes]]:
    """A first fetch (Daft Punk from Deezer, Homogenic from iTunes), the arguments of the next one, its files."""
    argv, out, before = test_fetch._earlier_dataset(tmp_path, fake, capsys, test_fetch.THREE_ALBUMS)
    assert set(rows(out)) == {"Discovery", "Homogenic"}
    return argv, out, before


@pytest.mark.parametrize(("name", "answer", "reason"), BROKEN)
def test_a_search_answered_but_not_as_the_api_stops_the_fetch_and_keeps_the_folder(
    tmp_path: Path, shop, capsys, name: str, answer: tuple, reason: str
) -> None:
    server, fake = shop
    argv, out, before = _earlier_dataset(tmp_path, fake, capsys)
    server.failures["/deezer/search/album" if name == "deezer" else "/itunes/search"] = [answer] * 10
    asked = len(server.requests)
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "fresh")]
    assert main([*argv, *apis]) == 2
    base = fake.deezer_url if name == "deezer" else fake.itunes_url
    public = "https://api.deezer.com" if name == "deezer" else "https://itunes.apple.com"
    assert _one_line(capsys) == (
        f"nopaingan dataset fetch: error: {name}: the catalogue at {base} (set by --{name}-api) is not a working "
        f"catalogue API ({reason}); {out} was left as it was (no file there was added, replaced or removed); "
        f"check --{name}-api: the public API is {public}"
    )
    assert _files(out) == before and _staging_left(tmp_path) == []
    searches = [p for p, _ in server.requests[asked:] if p.startswith(f"/{name}/search")]
    assert len(searches) == 1  # a definite answer: not retried


@pytest.mark.parametrize("origin", ["option", "environment"])
@pytest.mark.parametrize("name", ["deezer", "itunes"])
def test_an_address_whose_search_is_not_found_stops_naming_what_set_it(
    tmp_path: Path, shop, capsys, monkeypatch, origin: str, name: str
) -> None:
    """A path of a live server that is not the API (every request 404): no album is recorded as not found."""
    server, fake = shop
    argv, out, before = _earlier_dataset(tmp_path, fake, capsys)
    wrong = server.url("/not-the-api/")
    apis = {"deezer": fake.deezer_url, "itunes": fake.itunes_url, name: wrong}
    argv += ["--cache-dir", str(tmp_path / "fresh")]
    if origin == "option":
        argv += [f"--{name}-api", wrong]
        set_by = f"--{name}-api"
    else:
        set_by = f"$NOPAINGAN_{name.upper()}_API"
        monkeypatch.setenv(set_by[1:], wrong)
    other = "itunes" if name == "deezer" else "deezer"
    argv += [f"--{other}-api", apis[other]]
    assert main(argv) == 2
    line = _one_line(capsys)
    assert line.startswith(
        f"nopaingan dataset fetch: error: {name}: the catalogue at {wrong.rstrip('/')} (set by {set_by}) is not a "
        "working catalogue API (its album search answered HTTP 404);"
    )
    assert line.endswith(
        f"; check {set_by}: the public API is {ITunes.public if name == 'itunes' else 'https://api.deezer.com'}"
    )
    assert _files(out) == before


def test_no_result_is_still_not_found_in_each_apis_empty_answer(tmp_path: Path, shop) -> None:
    """Both APIs answer "nothing found" with HTTP 200 and an empty list (Deezer ``{"data": [], "total": 0}``,
    iTunes ``{"resultCount": 0, "results": []}``): that is "not found", not a broken catalogue."""
    server, fake = shop
    server.failures["/deezer/search/album"] = [(200, {}, b'{"data": [], "total": 0}')] * 2
    server.failures["/itunes/search"] = [(200, {}, b'{"resultCount": 0, "results": []}')]
    candidate = resolve(AlbumRequest("Daft Punk", "Discovery", "x"), clients(tmp_path, fake))
    assert candidate.problem == "not found: deezer: no result; itunes: no result"


NOT_URLS = ["notaurl", "ftp://api.deezer.com", "http://", "https:///search", "http://exa mple.org", "api.deezer.com",
            "http://host:port"]  # fmt: skip


@pytest.mark.parametrize("value", NOT_URLS)
@pytest.mark.parametrize("name", ["deezer", "itunes"])
@pytest.mark.parametrize("origin", ["option", "environment"])
def test_a_catalogue_address_that_is_no_url_is_refused_before_any_work(
    tmp_path: Path, shop, capsys, monkeypatch, value: str, name: str, origin: str
) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    argv += ["--cache-dir", str(tmp_path / "c"), "--from-wikipedia-list", server.url("/wiki/List_of_2019_albums")]
    apis = {"deezer": fake.deezer_url, "itunes": fake.itunes_url}
    if origin == "option":
        apis[name] = value
        set_by = f"--{name}-api"
    else:
        del apis[name]
        set_by = f"$NOPAINGAN_{name.upper()}_API"
        monkeypatch.setenv(set_by[1:], value)
    for other, url in apis.items():
        argv += [f"--{other}-api", url]
    assert main(argv) == 2
    public = "https://api.deezer.com" if name == "deezer" else "https://itunes.apple.com"
    assert _one_line(capsys) == (
        f"nopaingan dataset fetch: error: {set_by}: expected an http(s) URL with a host such as {public}, "
        f"found {value!r}"
    )
    assert server.requests == [] and not out.exists() and not (tmp_path / "c").exists()


def test_an_address_is_only_checked_for_the_catalogues_asked(tmp_path: Path, shop, monkeypatch) -> None:
    server, fake = shop
    monkeypatch.setenv("NOPAINGAN_ITUNES_API", "notaurl")
    (deezer,) = make_catalogues(["deezer"], lambda rate, statuses: media(tmp_path), deezer_api=fake.deezer_url)
    assert deezer.base == fake.deezer_url
    with pytest.raises(DatasetError, match=r"^\$NOPAINGAN_ITUNES_API: expected an http\(s\) URL"):
        make_catalogues(["deezer", "itunes"], lambda rate, statuses: media(tmp_path), deezer_api=fake.deezer_url)


def test_the_library_stops_on_a_broken_search_too(tmp_path: Path, shop) -> None:
    server, fake = shop
    server.failures["/itunes/search"] = [(404, {})]
    (itunes,) = make_catalogues(["itunes"], lambda rate, statuses: media(tmp_path), itunes_api=fake.itunes_url)
    with pytest.raises(CatalogueBrokenError) as caught:
        resolve(AlbumRequest("Björk", "Homogenic", "x"), [itunes])
    error = caught.value
    assert (error.catalogue, error.base, error.origin) == ("itunes", fake.itunes_url, "--itunes-api")
    assert not list((tmp_path / "cache").rglob("*.json"))  # nothing kept as an answer


# --- 2. a Wikipedia page without an album table -----------------------------------------------------------

NO_TABLE = "expected an HTML table with artist and album columns (e.g. Artist, Album), found"
PAGES = [
    ("/wiki/no_table", b"<html><body><p>No tables here.</p></body></html>", "no table"),
    ("/wiki/page.json", json.dumps({"query": {"pages": [1, 2]}}).encode(), "no table"),
    ("/wiki/empty", b"", "no table"),
    ("/wiki/text", b"List of albums\nDaft Punk - Discovery\n", "no table"),
    ("/wiki/months", b"<table><tr><th>Month</th></tr><tr><td>May</td></tr></table>",
     "1 table, none with artist and album columns"),
    ("/wiki/header_only", b"<table><tr><th>Artist</th><th>Album</th></tr></table>",
     "1 table with artist and album columns but no rows"),
    ("/wiki/headers_only", b"<table><tr><th>Artist</th><th>Album</th></tr></table>" * 2,
     "2 tables with artist and album columns but no rows"),
    ("/wiki/some_headers", b"<table><tr><th>Month</th></tr><tr><td>May</td></tr></table>"
     b"<table><tr><th>Artist</th><th>Album</th></tr></table>",
     "2 tables, 1 with artist and album columns but no rows"),
    ("/wiki/blank_rows", b"<table><tr><th>Artist</th><th>Album</th></tr><tr><td>Daft Punk</td><td>TBA</td></tr>"
     b"</table>",
     "1 table with artist and album columns but no row naming both"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "found"), PAGES)
def test_a_page_without_an_album_table_is_one_line_naming_the_url(
    tmp_path: Path, shop, capsys, path: str, body: bytes, found: str
) -> None:
    server, _ = shop
    server.files[path] = body
    url = server.url(path)
    saved = tmp_path / "list.csv"
    argv = ["dataset", "fetch", "--from-wikipedia-list", url, "--save-list", str(saved), "--cache-dir", str(tmp_path)]
    assert main(argv) == 2
    assert _one_line(capsys) == f"nopaingan dataset fetch: error: {url}: no album table found: {NO_TABLE} {found}"
    assert not saved.exists()


# --- 3. matching: numbers, exact titles, the list's year ----------------------------------------------------

NUMBERED = [
    # (request, found titles, the title chosen or None)
    ("Peter Gabriel 1", ["Peter Gabriel 2"], None),
    ("Peter Gabriel 1", ["Peter Gabriel 2", "Peter Gabriel 1"], "Peter Gabriel 1"),
    ("Peter Gabriel 2", ["Peter Gabriel II"], "Peter Gabriel II"),  # the same number, written in roman
    ("Led Zeppelin II", ["Led Zeppelin II", "Led Zeppelin III"], "Led Zeppelin II"),
    ("Led Zeppelin II", ["Led Zeppelin III", "Led Zeppelin II"], "Led Zeppelin II"),
    ("Led Zeppelin II", ["Led Zeppelin III"], None),
    ("Led Zeppelin II", ["Led Zeppelin IV", "Led Zeppelin"], None),
    ("Led Zeppelin", ["Led Zeppelin II", "Led Zeppelin (Remastered)"], "Led Zeppelin (Remastered)"),
    ("Led Zeppelin", ["Led Zeppelin II"], None),
    ("Abbey Road", ["Abbey Road - 2019 Remaster"], "Abbey Road - 2019 Remaster"),  # an edition's year is no number
    ("Greatest Hits Vol. 2", ["Greatest Hits Vol. 3", "Greatest Hits, Vol. 2 (Deluxe)"],
     "Greatest Hits, Vol. 2 (Deluxe)"),
    ("I Am", ["I Am"], "I Am"),
    ("Mirror Ball", ["Mirror Balls", "Mirror Ball"], "Mirror Ball"),  # exact beats near
    ("Mirror Ball", ["Mirror Balls", "Mirror Hall"], None),  # two near ones, equally good: ambiguous
]  # fmt: skip


@pytest.mark.parametrize(("album", "titles", "chosen"), NUMBERED)
def test_numbers_make_different_albums_and_an_exact_title_wins(album: str, titles: list[str], chosen) -> None:
    artist = "Some Band"
    match = best_match(artist, album, [(t, artist, t, None) for t in titles])
    assert match.item == chosen, match.reason
    if chosen is None and match.reason.startswith("no match") and "its numbers are" in match.reason:
        assert f"the list's {', '.join(map(str, album_numbers(album))) or 'none'}" in match.reason


def test_the_reasons_say_why_a_close_title_is_another_album() -> None:
    found = [("2", "Peter Gabriel", "Peter Gabriel 2", 1978)]
    assert best_match("Peter Gabriel", "Peter Gabriel 1", found).reason == (
        "no match: best was Peter Gabriel - Peter Gabriel 2 (score 0.93), another album: its numbers are 2, "
        "the list's 1"
    )
    found = [("3", "Led Zeppelin", "Led Zeppelin III", 1970)]
    assert best_match("Led Zeppelin", "Led Zeppelin", found).reason.endswith("its numbers are 3, the list's none")


@pytest.mark.parametrize(
    ("title", "numbers"),
    [
        ("Peter Gabriel 1", (1,)), ("Led Zeppelin IV", (4,)), ("Vol. 02", (2,)), ("4ever", (4,)),
        ("XXXIX", (39,)), ("vi", (6,)), ("Malcolm X", (10,)), ("V", (5,)), ("I Am", ()), ("Mix", ()),
        ("Ivy", ()), ("xii and 7", (7, 12)), ("Abbey Road - 2019 Remaster", ()), ("1989 (Taylor's Version)", (1989,)),
    ],
)  # fmt: skip
def test_album_numbers(title: str, numbers: tuple[int, ...]) -> None:
    assert album_numbers(title) == numbers


RED_EDITIONS = [("dx", "Taylor Swift", "Red (Deluxe Edition)", 2021), ("old", "Taylor Swift", "Red", 2012)]
TV = ("tv", "Taylor Swift", "Red (Taylor's Version)", 2021)  # a re-recording: another album than "Red"
FAR = (
    "more than 2 years apart and not marked as a reissue (another album of that name, or a reissue that does not say "
    "so; leave the row's year empty to take it)"
)
YEARS = [
    # (found, the list's year, chosen, editions in order, or None and what the reason says)
    (RED_EDITIONS, 2012, "old", ("old", "dx")),
    (RED_EDITIONS, 2013, "old", ("old", "dx")),  # within a year: the list's year
    (RED_EDITIONS, 2014, "old", ("old", "dx")),  # two years off: still the list's album
    (RED_EDITIONS, 2021, "dx", ("dx", "old")),
    (RED_EDITIONS, 2019, "dx", ("dx", "old")),
    (RED_EDITIONS, None, "dx", ("dx", "old")),  # no year: the catalogue's first
    (RED_EDITIONS, 2016, None, f"Taylor Swift - Red (score 1.00) of 2012, the list's year is 2016: {FAR}"),
    (RED_EDITIONS, 1990, None, "Taylor Swift - Red (score 1.00) of 2012, the list's year is 1990"),  # the closest
    (RED_EDITIONS[:1], 2012, "dx", ("dx",)),  # a later edition marked as one, alone: the list's album reissued
    (RED_EDITIONS[:1], 2025, None, "Red (Deluxe Edition) (score 1.00) of 2021, the list's year is 2025"),  # earlier
    ([*RED_EDITIONS, ("?", "Taylor Swift", "Red [Deluxe Edition]", None)], 2016, "?", ("?", "dx", "old")),
    ([TV, *RED_EDITIONS], 2021, "dx", ("dx", "old")),  # never the re-recording
    ([TV, RED_EDITIONS[1]], 2021, None, "Taylor Swift - Red (score 1.00) of 2012, the list's year is 2021"),
    ([TV], None, None, "Red (Taylor's Version) (score 0.40 < 0.85)"),
]  # fmt: skip


@pytest.mark.parametrize(("found", "year", "chosen", "editions"), YEARS)
def test_the_edition_of_the_lists_year_is_preferred_and_a_far_year_refused(found, year, chosen, editions) -> None:
    match = best_match("Taylor Swift", "Red", found, year=year)
    if chosen is None:
        assert match.item is None and editions in match.reason, match.reason
    else:
        assert (match.item, match.editions, match.score) == (chosen, editions, 1.0)


@pytest.mark.parametrize("year", [None, 2021, 2012])
def test_a_re_recording_asked_for_is_taken(year) -> None:
    match = best_match("Taylor Swift", "Red (Taylor's Version)", [*RED_EDITIONS, TV], year=year)
    assert (match.item, match.score) == (("tv", 1.0) if year != 2012 else (None, 1.0)), match.reason


# (the list's year, catalogue, the album taken or None, its catalogue year or the reason's years, lookups)
EDITION_FETCHES = [
    (2012, "deezer", "Red", 2012, 2),  # Deezer's search gives no years: the editions are looked up
    (2013, "deezer", "Red", 2012, 2),
    (2014, "deezer", "Red", 2012, 2),  # two years off: still the list's album
    (2020, "deezer", "Red (Deluxe Edition)", 2021, 1),
    (None, "deezer", "Red (Deluxe Edition)", 2021, 1),
    (2016, "deezer", None, "of 2012, the list's year is 2016", 2),  # every edition too far: the closest named
    (2012, "itunes", "Red", 2012, 1),
    (2020, "itunes", "Red (Deluxe Edition)", 2021, 1),
    (2016, "itunes", None, "of 2012, the list's year is 2016", 0),  # iTunes' search gives the years
]


@pytest.mark.parametrize(("year", "catalogue", "album", "catalogue_year", "lookups"), EDITION_FETCHES)
def test_fetch_takes_the_edition_of_the_lists_year_and_records_the_catalogues_year(
    tmp_path: Path, shop, audio, year, catalogue: str, album: str | None, catalogue_year, lookups: int
) -> None:
    server, fake = shop
    add = fake.add_deezer if catalogue == "deezer" else fake.add_itunes
    preview = audio["mp3"] if catalogue == "deezer" else audio["m4a"]
    for title, released, colour in (
        ("Red (Taylor's Version)", 2021, GREEN),  # a re-recording: never taken for "Red"
        ("Red (Deluxe Edition)", 2021, RED),
        ("Red", 2012, BLUE),
    ):
        tracks = [FakeTrack("State of Grace", preview)]
        add(FakeAlbum("Taylor Swift", title, image_bytes(colour), tracks, year=released))
    out = tmp_path / "DATA"
    request = AlbumRequest("Taylor Swift", "Red", "list.csv:2", year=year)
    fetch_dataset([request], out, catalogues=clients(tmp_path, fake, names=(catalogue,)), downloader=media(tmp_path))
    if album is None:
        reason = skipped(out)["Red"]
        assert reason.startswith(f"not found: {catalogue}: no match: best was Taylor Swift - Red (score 1.00) "), reason
        assert catalogue_year in reason and reason.endswith(FAR), reason
    else:
        row = rows(out)["Red"]
        assert (row["catalogue_album"], row["catalogue_year"], row["match_score"]) == (album, catalogue_year, 1.0)
        assert row["year"] == (year or catalogue_year)  # the list's year when it gives one
    found = [p for p, _ in server.requests if p.startswith(("/deezer/album/", "/itunes/lookup"))]
    assert len(found) == lookups


ROMANS = ["ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xx", "xxxix"]
NUMBER = st.one_of(st.integers(0, 3000).map(str), st.sampled_from(ROMANS))


@settings(max_examples=150, deadline=None)
@given(TITLES, TITLES, NUMBER, NUMBER, st.booleans())
def test_a_different_or_added_number_never_matches(artist: str, title: str, a: str, b: str, add: bool) -> None:
    requested, offered = (title, f"{title} {b}") if add else (f"{title} {a}", f"{title} {b}")
    assume(album_numbers(requested) != album_numbers(offered))
    for album, other in ((requested, offered), (offered, requested)):
        match = best_match(artist, album, [(0, artist, other, None)])
        assert match.item is None and match.reason.startswith("no match")


@settings(max_examples=150, deadline=None)
@given(TITLES, TITLES, st.lists(TITLES, max_size=4), st.randoms(), st.none() | st.integers(1950, 2030))
def test_an_exact_title_always_beats_near_ones(artist, album, others, random, year) -> None:
    """Whatever else the catalogue lists (near titles of other years included), the exact title is taken."""
    near = [album + "s", album[:-1], *[f"{album} {o}" for o in others], *others]
    found = [(i, artist, t, None if year is None else year + i % 3) for i, t in enumerate(near)]
    found.append((-1, artist, album, None))
    random.shuffle(found)
    match = best_match(artist, album, found, year=year)
    assert match.score == 1.0
    assert normalise_album(dict((i, t) for i, _, t, _ in found)[match.item]) == normalise_album(album)


EDITION_MARKS = ["", " (Deluxe Edition)", " - 2011 Remaster", " [Remastered]", " (Expanded)", " - EP"]
REISSUE_MARKS = EDITION_MARKS[1:5]  # a later issue; " - EP" is a format


@settings(max_examples=150, deadline=None)
@given(
    TITLES,
    TITLES,
    st.lists(st.tuples(st.sampled_from(EDITION_MARKS), st.none() | st.integers(1990, 2030)), min_size=1, max_size=5),
    st.integers(1990, 2030),
)
def test_the_lists_year_picks_the_edition(artist, album, editions, year) -> None:
    found = [(i, artist, album + mark, released) for i, (mark, released) in enumerate(editions)]
    match = best_match(artist, album, found, year=year)

    def fit(edition: tuple) -> tuple[int, int]:
        """The list's year (one off at most), unknown, two off, a later reissue marked as one, further: closest
        first in each."""
        released = edition[3]
        if released is None:
            return (1, 0)
        apart = abs(released - year)
        if apart <= 2:
            return (0 if apart <= 1 else 2, apart)
        return (3 if released > year and editions[edition[0]][0] in REISSUE_MARKS else 4, apart)

    best = min(found, key=lambda f: (fit(f), f[0]))
    far = [f for f in found if fit(f)[0] == 4]
    if fit(best)[0] >= 3 and far:  # no edition fits but reissues, and an unmarked one dates the album elsewhere
        closest = min(far, key=lambda f: (fit(f), f[0]))
        assert match.item is None and match.reason.endswith(f"of {closest[3]}, the list's year is {year}: {FAR}")
        return
    assert (match.item, sorted(match.editions)) == (best[0], list(range(len(found))))
    assert [fit(found[i]) for i in match.editions] == sorted(fit(f) for f in found)


@settings(max_examples=100, deadline=None)
@given(
    TITLES,
    TITLES,
    st.lists(st.tuples(TITLES, TITLES, st.none() | st.integers(1950, 2030)), max_size=6),
    st.none() | st.integers(1950, 2030),
)
def test_best_match_never_takes_a_weak_contested_or_differently_numbered_result(artist, album, found, year) -> None:
    items = [(i, a, t, y) for i, (a, t, y) in enumerate(found)]
    match = best_match(artist, album, items, year=year)
    scores = [match_score(artist, album, a, t) for _, a, t, _ in items]
    kept = [not refusal(artist, album, a, t) for _, a, t, _ in items]  # not another album whatever the score
    same = [s for ok, s in zip(kept, scores, strict=True) if ok]
    if match.item is None:
        assert match.reason
        exact = [y for ok, s, (_, _, _, y) in zip(kept, scores, items, strict=True) if ok and s == 1.0]
        assert not exact or all(y is not None and year is not None and abs(y - year) > 2 for y in exact)
        return
    chosen = scores[match.item]
    assert chosen >= MIN_SCORE and match.score == chosen and kept[match.item]
    assert album_numbers(items[match.item][2]) == album_numbers(album)
    assert recording_marks(items[match.item][2]) == recording_marks(album)
    released = items[match.item][3]
    assert released is None or year is None or abs(released - year) <= 2
    assert chosen >= max(same) - 0.05
    if max(same) == 1.0:
        assert chosen == 1.0
        return
    # a different album as close as the chosen one: the list's year singled the chosen one out
    key = (normalise_artist(items[match.item][1]), normalise_album(items[match.item][2]))
    for (_, a, t, y), score in zip(items, scores, strict=True):
        near = not refusal(artist, album, a, t) and score >= max(MIN_SCORE, max(same) - 0.05)
        if near and (normalise_artist(a), normalise_album(t)) != key:
            assert year_matches(items[match.item][3], year) and not year_matches(y, year)


# --- 4. wording ------------------------------------------------------------------------------------------

MIN_SCORE_RANGE = "a number above 0 and at most 1"


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1", "nan", "inf", "x", "0.0"])
def test_min_score_says_one_range_when_parsed(tmp_path: Path, shop, capsys, value: str) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    assert main([*argv, "--deezer-api", fake.deezer_url, "--min-score", value]) == 2
    expected = f"argument --min-score: got {value!r}, expected {MIN_SCORE_RANGE}"
    assert _one_line(capsys) == f"nopaingan dataset fetch: error: {expected}"


@pytest.mark.parametrize(("value", "shown"), [(0.0, "0"), (1.5, "1.5"), (-2.0, "-2")])
def test_min_score_says_the_same_range_in_the_library(tmp_path: Path, shop, value: float, shown: str) -> None:
    server, fake = shop
    with pytest.raises(DatasetError, match=rf"^--min-score: expected {MIN_SCORE_RANGE}, found {shown}$"):
        fetch_dataset(
            [AlbumRequest("a", "b", "x")], tmp_path / "DATA", catalogues=clients(tmp_path, fake), min_score=value,
            downloader=media(tmp_path),
        )  # fmt: skip


def test_min_score_one_is_accepted(tmp_path: Path, shop, capsys) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    assert main([*argv, "--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--min-score", "1"]) == 0


def test_rate_limit_help_says_the_catalogues_keep_their_limits(capsys) -> None:
    assert main(["dataset", "fetch", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--rate-limit PER_S downloads of previews, covers and Wikipedia pages started per second and host" in text
    assert "(the catalogue APIs keep their documented limits: Deezer 10/s, iTunes 20/min)" in text
    assert "--min-score S least match score, above 0 and at most 1" in text


@pytest.mark.parametrize("body", [b"not audio at all" * 100, b"<html>gone</html>", b"\x00" * 4000])
def test_a_preview_that_is_not_audio_is_named_by_its_url(tmp_path: Path, shop, body: bytes) -> None:
    server, fake = shop
    album = fake.add_deezer(FakeAlbum("Air", "Moon Safari", image_bytes(BLUE), [FakeTrack("Sexy Boy", body)]))
    out, cache = tmp_path / "DATA", tmp_path / "cache"
    fetch_dataset(
        [AlbumRequest("Air", "Moon Safari", "x")], out, catalogues=clients(tmp_path, fake),
        downloader=Downloader(cache, rate_limit=None, backoff=0.01, timeout=5),
    )  # fmt: skip
    reason = skipped(out)["Moon Safari"]
    assert reason.startswith(server.url(f"/deezer/preview/{album.id}/0.mp3") + ": "), reason
    assert str(cache) not in reason


# --- 6. names of symbols alone (×, ÷, !!!, ???, emoji) are compared on their own text -------------------------

# (artist, album, found as (artist, album, year), the album chosen or None)
SYMBOLS = [
    ("Ed Sheeran", "×", [("Ed Sheeran", "÷", 2017), ("Ed Sheeran", "×", 2014)], "×"),
    ("Ed Sheeran", "÷", [("Ed Sheeran", "×", 2014), ("Ed Sheeran", "÷ (Deluxe)", 2017)], "÷ (Deluxe)"),
    ("Ed Sheeran", "×", [("Ed Sheeran", "÷", 2017), ("Ed Sheeran", "+", 2011)], None),
    ("Ed Sheeran", "+", [("Ed Sheeran", "+ ", 2011)], "+ "),  # spacing is no difference
    ("!!!", "Myth Takes", [("???", "Myth Takes", 2007)], None),
    ("!!!", "Myth Takes", [("???", "Myth Takes", 2007), ("!!!", "Myth Takes", 2007)], "Myth Takes"),
    ("Sigur Rós", "( )", [("Sigur Rós", "()", 2002)], None),
    ("Some Band", "🎸", [("Some Band", "🥁", 2020), ("Some Band", "🎸", 2019)], "🎸"),
    ("Some Band", "🎸", [("Some Band", "🥁", 2020)], None),
    ("Ed Sheeran", "× (Deluxe Edition)", [("Ed Sheeran", "÷ (Deluxe Edition)", 2017)], None),  # symbol and words
    ("Ed Sheeran", "The ×", [("Ed Sheeran", "The ÷", 2017), ("Ed Sheeran", "The ×", 2014)], "The ×"),
    ("Some Band", "❤", [("Some Band", "❤️", 2019)], "❤️"),  # the same heart shown as an emoji
]  # fmt: skip


@pytest.mark.parametrize(("artist", "album", "found", "chosen"), SYMBOLS)
def test_a_name_of_symbols_matches_only_itself(artist: str, album: str, found: list, chosen: str | None) -> None:
    match = best_match(artist, album, [((a, t), a, t, y) for a, t, y in found])
    if chosen is None:
        assert match.item is None and match.score < 1.0, match
    else:
        assert match.item is not None and match.item[1] == chosen and match.score == 1.0, match
        assert match.item[0] == artist


# symbols, punctuation and spacing without letters, digits or "&" (which is read as "and")
SYMBOL_NAMES = st.text(st.characters(categories=["P", "S", "Zs"], exclude_characters="&_"), min_size=1, max_size=6)


def _symbols_only(name: str) -> bool:
    return not any(c.isalnum() for c in unicodedata.normalize("NFKD", name)) and bool(raw_name(name))


def _symbols(name: str) -> str:
    """What tells two such names apart: their symbols in order (maths, currency, other: ×, ÷, +, emoji; accents and
    variation selectors aside), or their text where they have none (!!!, ???)."""
    decomposed = unicodedata.normalize("NFKD", name)
    symbols = [c for c in decomposed if unicodedata.category(c) in ("Sm", "Sc", "So") and not unicodedata.combining(c)]
    return "".join(symbols) or raw_name(name)


@settings(max_examples=300, deadline=None)
@given(SYMBOL_NAMES, SYMBOL_NAMES, st.sampled_from(["Ed Sheeran", "!!!", "🎸"]))
def test_two_different_names_of_symbols_are_never_one_album(a: str, b: str, artist: str) -> None:
    """Names without letters or digits differ when their symbols do (or, with none, their text): they never score
    1, are never duplicates of each other (album_key), never share an id; the same in other spacing, case or
    punctuation does."""
    assume(_symbols_only(a) and _symbols_only(b))
    same = _symbols(a) == _symbols(b)
    assert (match_score(artist, a, artist, b) == 1.0) == same
    assert (match_score(a, "Myth Takes", b, "Myth Takes") == 1.0) == same
    assert (album_key(artist, a) == album_key(artist, b)) == same
    assert (album_key(a, "Myth Takes") == album_key(b, "Myth Takes")) == same
    assert (album_id(artist, a) == album_id(artist, b)) == same
    if not same:
        match = best_match(artist, a, [(b, artist, b, None), (a, artist, a, None)])
        assert (match.item, match.score) == (a, 1.0)
        assert best_match(artist, a, [(b, artist, b, None)]).item is None


def test_a_list_of_both_symbol_albums_fetches_each_its_own(tmp_path: Path, shop, audio) -> None:
    server, fake = shop
    for title, released, colour in (("÷", 2017, RED), ("×", 2014, BLUE)):
        fake.add_deezer(
            FakeAlbum("Ed Sheeran", title, image_bytes(colour), [FakeTrack("Song", audio["mp3"])], year=released)
        )
    requests = [AlbumRequest("Ed Sheeran", "×", "list.csv:2"), AlbumRequest("Ed Sheeran", "÷", "list.csv:3", year=2017)]
    out = tmp_path / "DATA"
    fetch_dataset(requests, out, catalogues=clients(tmp_path, fake, names=("deezer",)), downloader=media(tmp_path))
    albums = rows(out)
    assert {a: (r["catalogue_album"], r["catalogue_year"], r["match_score"]) for a, r in albums.items()} == {
        "×": ("×", 2014, 1.0),
        "÷": ("÷", 2017, 1.0),
    }
    assert albums["×"]["id"] != albums["÷"]["id"]
    assert not (out / "skipped.jsonl").exists() or not skipped(out)


# --- 7. lists that cannot be read as written: a column twice, an open quote, a year that is none ---------------

# (the list's text, what the one line says after the file name)
BAD_LISTS = [
    ("Artist,Album,Artist\nA,B,C\n", ": expected each column once in the header, found column 'Artist' twice"),
    ("artist,album,ARTIST \nA,B,C\n", "found columns 'artist' and 'ARTIST ', one column twice"),
    ("artist;album;album\nA;B;C\n", ": expected each column once in the header, found column 'album' twice"),
    ("Artist,Album,Artist Name\nA,B,C\n", "columns 'Artist' and 'Artist Name' both give the artist"),
    ("Album Title,Artist,Album\nA,B,C\n", "columns 'Album' and 'Album Title' both give the album"),
    ("artist,album,year,release date\nA,B,2001,2001\n", "columns 'year' and 'release date' both give the year"),
    ('artist,album\nA,"B\nC,D\nE,F\n', ":2: a quote opens a value here that no quote closes"),
    ('artist,album\nA,B\nC,"D""\nE,F\n', ":3: a quote opens a value here that no quote closes"),
    ('artist,album\nA,"B, the ""best""\n', ":2: a quote opens a value here that no quote closes"),
    ('"artist,album\nA,B\n', ":1: a quote opens a value here that no quote closes"),
    ('artist,album\nA,B\n"C\n', ":3: a quote opens a value here that no quote closes"),
    ('artist\talbum\nA\t"B\n', ":2: a quote opens a value here that no quote closes"),
    # a quote closed lines later: the rows between would be one name, lost without a word
    ('artist,album\nDaft Punk,"Discovery\nBjörk,Homogenic\nX,Y"\n', ":4: expected the 'album' value on one line, "
     "found it over 3 lines ('Discovery\\nBjörk,Homogenic\\nX,Y'); a quote closed lines after it opened?"),
    ('artist,album\n"A\nB",C\n', ":3: expected the 'artist' value on one line, found it over 2 lines"),
    ('artist,album\nA,"B\nC"\nD,E\n', ":3: expected the 'album' value on one line, found it over 2 lines"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "says"), BAD_LISTS)
def test_a_list_that_cannot_be_read_as_written_is_one_line(tmp_path: Path, capsys, text: str, says: str) -> None:
    path, saved = tmp_path / "albums.csv", tmp_path / "saved.csv"
    path.write_text(text)
    assert main(["dataset", "fetch", str(path), "--save-list", str(saved), "--cache-dir", str(tmp_path / "c")]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"nopaingan dataset fetch: error: {path}") and says in line, line
    assert not saved.exists()


# (the list's text, the (artist, album) pairs read): quotes as the csv module reads them, unnamed columns
GOOD_LISTS = [
    ('artist,album\nA,"B, C"\n', [("A", "B, C")]),
    ('artist,album\nA,"B ""C"" D"\n', [("A", 'B "C" D')]),
    ('artist,album\nA,12" Single\n', [("A", '12" Single')]),  # a quote inside a value is text
    ('artist,album\nA,"B" (Live)\n', [("A", "B (Live)")]),  # text after a closing quote goes on
    ('artist,album,,\nA,B,,\n', [("A", "B")]),  # a spreadsheet's empty columns
    ("artist,album,song,title\nA,B,C,D\n", None),  # two song columns: refused, as for the album
]  # fmt: skip


@pytest.mark.parametrize(("text", "albums"), GOOD_LISTS)
def test_quotes_are_read_as_the_csv_module_reads_them(tmp_path: Path, text: str, albums) -> None:
    path = tmp_path / "albums.csv"
    path.write_text(text)
    if albums is None:
        with pytest.raises(DatasetError, match="both give the song"):
            read_album_list(path)
    else:
        assert [(a.artist, a.album) for a in read_album_list(path)] == albums


# (the year column's text, the year read or the reason the row is skipped)
YEARS_LISTED = [
    ("2014", 2014),
    ("2014-06-20", 2014),
    ("20/06/2014", 2014),
    ("June 20, 2014", 2014),
    ("2014.0", 2014),
    ("", None),
    ("n/a", None),
    ("abc", "year: expected a year such as 2019, 2019-03-15 or March 15, 2019, found 'abc'"),
    ("12345", "found '12345'"),
    ("1e3", "found '1e3'"),
    ("2014e1", "found '2014e1'"),
    ("-1999", "found '-1999'"),
    ("+1999", "found '+1999'"),
    ("1999/2000", "found '1999/2000'"),
    ("June 20", "found 'June 20'"),
    ("3000", "year: expected a year from 1860 to 2100, found '3000'"),
    ("0999", "year: expected a year from 1860 to 2100, found '0999'"),
    ("1000", "year: expected a year from 1860 to 2100, found '1000'"),  # what a JSON 1e3 gives
    ("1999-13-45", "found '1999-13-45'"),  # no month 13, no day 45
    ("1999-00-10", "found '1999-00-10'"),
    ("13/13/1999", "found '13/13/1999'"),
    ("12/31/1999", 1999),  # month first
]


@pytest.mark.parametrize(("listed", "year"), YEARS_LISTED)
def test_a_year_is_read_or_its_row_skipped_saying_why(tmp_path: Path, listed: str, year) -> None:
    path = tmp_path / "albums.csv"
    path.write_text(f'artist,album,year\nEd Sheeran,×,"{listed}"\n')
    (request,) = read_album_list(path)
    if isinstance(year, str):
        assert request.year is None and year in request.problem
        assert request.problem.startswith(f"{path}:2: year: ")
        assert resolve(request, []).problem == request.problem  # skipped with the reason, before any search
        saved = write_album_list([request], tmp_path / "saved.csv")  # the saved list keeps the text as listed
        assert [(r.year_text, r.problem.replace(str(saved), "")) for r in read_album_list(saved)] == [
            (listed, request.problem.replace(str(path), ""))
        ]
    else:
        assert (request.year, request.problem) == (year, "")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f'artist,album,preview,cover,year\nA,B,p.mp3,c.jpg,"{listed}"\n')
    (candidate,) = read_manifest(manifest)
    if isinstance(year, str):
        assert candidate.problem is not None and candidate.problem.startswith(f"{manifest}:2: column year: ")
    else:
        assert (candidate.year, candidate.problem) == (year, None)


def test_an_unreadable_year_is_skipped_and_listed_when_fetched(tmp_path: Path, shop, audio) -> None:
    server, fake = shop
    requests = read_album_list(_list(tmp_path, "artist,album,year\nDaft Punk,Discovery,-2001\n"))
    out = tmp_path / "DATA"
    fetch_dataset(requests, out, catalogues=clients(tmp_path, fake), downloader=media(tmp_path))
    assert skipped(out) == {"Discovery": f"{tmp_path / 'albums.csv'}:2: year: expected a year such as 2019, "
                            "2019-03-15 or March 15, 2019, found '-2001'"}  # fmt: skip
    assert not [p for p, _ in server.requests if "search" in p]


def _list(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "albums.csv"
    path.write_text(text)
    return path


DATE_FORMS = ["{}", "{}-06-20", "20/06/{}", "20-06-{}", "June 20, {}", "20 June {}", "{}.0", " {} "]
# with a time of day: Python's str(datetime), pandas' to_json(date_format="iso"), ISO 8601 with a zone
DATE_FORMS += ["{}-06-20 00:00:00", "{}-06-20T00:00:00.000", "{}-06-20T13:45:00Z", "{}-06-20T13:45+01:00"]


@settings(max_examples=200, deadline=None)
@given(st.integers(-5000, 99999), st.sampled_from(DATE_FORMS), st.sampled_from(["", "-", "+", "−"]))
def test_a_year_is_its_number_in_range_and_never_loses_a_sign(number: int, form: str, sign: str) -> None:
    text = sign + form.format(number).strip()
    if not sign and 1860 <= number <= 2100:
        assert parse_year(text) == number
    else:
        with pytest.raises(ValueError, match=f"found {re.escape(repr(text))}"):
            parse_year(text)


@pytest.mark.parametrize(
    ("option", "inside"),
    [("--save-list", "list.csv"), ("--save-list", "audio/list.csv"), ("--cache-dir", "."), ("--cache-dir", "cache")],
)
@pytest.mark.parametrize("earlier", [False, True], ids=["new folder", "earlier dataset"])
def test_a_list_or_cache_inside_the_dataset_folder_is_refused_first(
    tmp_path: Path, shop, capsys, option: str, inside: str, earlier: bool
) -> None:
    """A trial's --save-list DATA/list.csv was written, then refused by --out, and made every later run into DATA
    fail; a --cache-dir in DATA filled it (or its cache/) with downloads. Both are refused before any work."""
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url]
    if earlier:
        assert main([*argv, *apis, "--cache-dir", str(tmp_path / "c")]) == 0
        capsys.readouterr()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    requests = len(server.requests)
    others = ["--cache-dir", str(tmp_path / "c")] if option == "--save-list" else []
    assert main([*argv, *apis, *others, option, str(out / inside)]) == 2
    assert _one_line(capsys).endswith(
        f"error: {option}: expected a path outside --out {out} (the dataset folder holds only what fetch writes "
        f"there), found {out / inside}"
    )
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert len(server.requests) == requests


SAVED_NAMES = ["weird-saved.txt", "list.tsv", "list.json", "list.jsonl", "list", "list.csv.bak"]


@pytest.mark.parametrize("name", SAVED_NAMES)
def test_a_saved_list_must_be_a_csv_file_name(tmp_path: Path, shop, capsys, name: str) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, *apis, "--save-list", str(tmp_path / name)]) == 2
    line = _one_line(capsys)
    assert line.endswith(f"--save-list: expected a file name ending in .csv (the list is written as CSV, and lists "
                         f"are read by extension), found {tmp_path / name}"), line  # fmt: skip
    assert not server.requests and not out.exists() and not (tmp_path / name).exists()
    with pytest.raises(DatasetError) as raised:  # the Python API says the same, naming the list
        write_album_list([AlbumRequest("A", "B", "x")], tmp_path / name)
    assert str(raised.value) == "album list" + line.split("--save-list", 1)[1]
    assert main([*argv, *apis, "--save-list", str(tmp_path / "Saved.CSV")]) == 0


@pytest.mark.parametrize("name", ["saved.csv", "Saved.CSV"])
def test_a_saved_list_never_replaces_a_file(tmp_path: Path, shop, capsys, name: str) -> None:
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url, "--cache-dir", str(tmp_path / "c")]
    (tmp_path / name).write_text("mine\n")
    assert main([*argv, *apis, "--save-list", str(tmp_path / name)]) == 2
    says = f"--save-list: {tmp_path / name} exists already; choose a new file name; a run that wrote it and stopped "
    says += f"goes on with: nopaingan dataset fetch {tmp_path / name} --out {out}"  # the trial's interrupted run
    assert _one_line(capsys) == f"nopaingan dataset fetch: error: {says}"
    assert not server.requests and not out.exists() and (tmp_path / name).read_text() == "mine\n"


@pytest.mark.parametrize(
    "spelling", ["a/x/../saved.csv", "a/x/w/../../saved.csv", "x/../a/saved.csv", "a/./x/../y/../saved.csv"]
)
def test_a_saved_list_and_cache_spelled_with_dots_after_a_missing_folder(
    tmp_path: Path, shop, capsys, monkeypatch, spelling: str
) -> None:
    """--save-list a/x/../saved.csv with no a/x is a/saved.csv, for the checks and the write: an earlier
    a/saved.csv is refused and kept (it was checked as absent, then replaced), a new one is written there; the
    --cache-dir a/x/../cache spelled alike is made where it was checked; no a/x is left behind."""
    server, fake = shop
    argv, out = _quick_fetch(tmp_path, "Daft Punk,Discovery\n")
    monkeypatch.chdir(tmp_path)
    Path("a").mkdir()
    saved, cache = Path("a/saved.csv"), Path("a/cache")
    saved.write_text("mine\n")
    apis = ["--deezer-api", fake.deezer_url, "--itunes-api", fake.itunes_url]
    argv = [*argv, *apis, "--cache-dir", spelling.replace("saved.csv", "cache"), "--save-list", spelling]
    before = sorted(tmp_path.rglob("*"))
    assert main(argv) == 2
    says = f"--save-list: {Path(spelling)} (that is {saved}) exists already; choose a new file name; a run that "
    says += f"wrote it and stopped goes on with: nopaingan dataset fetch {Path(spelling)} --out {out}"
    assert _one_line(capsys) == f"nopaingan dataset fetch: error: {says}"
    assert not server.requests and sorted(tmp_path.rglob("*")) == before and saved.read_text() == "mine\n"
    saved.unlink()
    assert main(argv) == 0
    assert f"wrote 1 album to {saved}\n" in capsys.readouterr().out
    assert [a.album for a in read_album_list(saved)] == ["Discovery"] and any(cache.rglob("*"))
    made = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_dir() and out not in (p, *p.parents)}
    assert {p for p in made if cache not in p.parents} == {Path("a"), cache}
