"""``nopaingan dataset fetch``, findings of a second user trial: list rows that resolve to one catalogue album
(or one preview) are one album, the first kept and the others listed as its duplicates, and the split takes an
artist by the list's and the catalogue's names; previews and covers in a catalogue's answer are http(s) URLs
or nothing, never a local file; an edition phrase without brackets ("Nevermind Remastered") is an edition;
``genre_source`` says "catalogue" for the catalogue's genres."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import pytest
import test_fetch
from catalogue_server import FakeAlbum, FakeCatalogues, FakeTrack
from hypothesis import given, settings
from hypothesis import strategies as st
from music_library import image_bytes, make_track
from test_fetch import BLUE, GREEN, RED, TITLES, YELLOW, clients, media, rows, skipped

from training.candidates import AlbumCandidate, CoverRef, TrackRef
from training.cleaning import artist_key
from training.dataset_import import build_dataset
from training.download import Downloader, web_url
from training.fetch import AlbumRequest, fetch_dataset
from training.matching import album_numbers, best_match, match_score, normalise_album
from training.split import EVAL, TRAIN, assign_splits

audio, shop = test_fetch.audio, test_fetch.shop  # the fixtures: previews, and both fake catalogues


def _fetch(tmp_path: Path, fake: FakeCatalogues, albums: list[AlbumRequest], **options) -> Path:
    out = tmp_path / "DATA"
    fetch_dataset(albums, out, catalogues=clients(tmp_path, fake), downloader=media(tmp_path), **options)
    return out


def _requests(*albums: tuple[str, str]) -> list[AlbumRequest]:
    return [AlbumRequest(artist, album, f"list.csv:{n}") for n, (artist, album) in enumerate(albums, 2)]


def _rewrite(server, path: str, change: Callable[[dict], None]) -> None:
    """Answers of the route ``path`` passed through ``change`` (each JSON object of the answer, in place)."""
    route = server.routes[path]

    def each(value: object) -> None:
        if isinstance(value, dict):
            change(value)
        for item in value.values() if isinstance(value, dict) else value if isinstance(value, list) else []:
            each(item)

    def answer(query: dict[str, str]) -> bytes:
        data = json.loads(route(query))
        each(data)
        return json.dumps(data).encode()

    server.routes[path] = answer


# --- 1. one catalogue album is one album ------------------------------------------------------------------

# two list rows that name the shop's Deezer "Daft Punk - Discovery" (the first is kept)
SAME_ALBUM = [
    (("Daft Punk feat. Romanthony", "Discovery (Deluxe Edition)"), ("DAFT-PUNK", "discovery!")),
    (("Daft Punk", "Discovery"), ("Daft Punk feat. Romanthony", "Discovery - 2001 Remaster")),
    (("Daft Punk ft. Todd Edwards", "Discovery Remastered"), ("The Daft Punk", "Discovery [Deluxe]")),
]


@pytest.mark.parametrize(("kept", "later"), SAME_ALBUM)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rows_that_resolve_to_one_catalogue_album_are_one_album(tmp_path: Path, shop, kept, later, seed) -> None:
    server, fake = shop
    others = [("Sigur Ros", "Agaetis Byrjun"), ("The Beatles", "Abbey Road"), ("Björk", "Homogenic")]
    out = _fetch(tmp_path, fake, _requests(kept, *others, later), seed=seed, eval_fraction=0.5)
    fetched = rows(out)
    assert kept[1] in fetched and later[1] not in fetched
    row = fetched[kept[1]]
    assert sum(r["catalogue_id"] == row["catalogue_id"] for r in fetched.values()) == 1
    assert skipped(out)[later[1]] == (
        f"duplicate of {row['id']} (list.csv:2): the same deezer album {row['catalogue_id']} (Daft Punk - Discovery)"
    )


def test_rows_with_one_preview_are_one_album(tmp_path: Path, shop, audio) -> None:
    """Two catalogue albums whose tracks have the same preview URL: the second is a duplicate of the first."""
    server, fake = shop
    air = fake.add_deezer(FakeAlbum("Air", "Moon Safari", image_bytes(BLUE), [FakeTrack("Sexy Boy", audio["mp3"])]))
    preview = server.url(f"/deezer/preview/{fake.deezer[0].id}/1.mp3")  # Daft Punk's Aerodynamic

    def same_preview(item: dict) -> None:
        if item.get("type") == "track":
            item["preview"] = preview

    _rewrite(server, f"/deezer/album/{air.id}", same_preview)
    out = _fetch(tmp_path, fake, _requests(("Daft Punk", "Discovery"), ("Air", "Moon Safari")))
    daft = rows(out)["Discovery"]
    assert set(rows(out)) == {"Discovery"} and daft["audio_source"] == preview
    assert skipped(out)["Moon Safari"] == f"duplicate of {daft['id']} (list.csv:2): the same preview {preview}"


def test_a_later_run_replaces_the_same_catalogue_album_in_its_place(tmp_path: Path, shop) -> None:
    server, fake = shop
    out = _fetch(tmp_path, fake, _requests(("Daft Punk", "Discovery"), ("Björk", "Homogenic")), seed=1)
    before = rows(out)
    again = _fetch(tmp_path, fake, _requests(("Daft Punk feat. Romanthony", "Discovery (Deluxe Edition)")), seed=1)
    after = [json.loads(line) for line in (again / "metadata.jsonl").read_text().splitlines()]
    assert [r["album"] for r in after] == ["Discovery (Deluxe Edition)", "Homogenic"]  # in the earlier place
    assert after[0]["split"] == before["Discovery"]["split"] and after[1] == before["Homogenic"]
    assert sorted(p.name for p in (out / "audio").iterdir()) == sorted(Path(r["audio"]).name for r in after)


def test_the_split_takes_an_artist_by_the_lists_and_the_catalogues_names(tmp_path: Path, shop, audio) -> None:
    """'Daft Punk feat. Romanthony' and 'Daft Punk' differ in the list, not in the catalogue: one side."""
    server, fake = shop
    fake.add_deezer(FakeAlbum("Daft Punk", "Homework", image_bytes(GREEN), [FakeTrack("Da Funk", audio["mp3b"])]))
    albums = _requests(
        ("Daft Punk feat. Romanthony", "Discovery"),
        ("Daft Punk", "Homework"),
        ("Sigur Ros", "Agaetis Byrjun"),
        ("The Beatles", "Abbey Road"),
        ("Björk", "Homogenic"),
    )
    by_list_names = []
    for seed in range(6):
        out = _fetch(tmp_path, fake, albums, seed=seed, eval_fraction=0.5, replace=True)
        fetched = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
        sides = {r["album"]: r["split"] for r in fetched}
        assert len(fetched) == 5 and sides["Discovery"] == sides["Homework"]
        by_list = dict(zip(sides, assign_splits([r["artist"] for r in fetched], 0.5, seed), strict=True))
        by_list_names.append(by_list["Discovery"] != by_list["Homework"])
    assert any(by_list_names)  # the list's names alone would have split the artist for some seed


NAMES = st.sampled_from(
    ["Daft Punk", "DAFT-PUNK", "Daft Punk feat. Romanthony", "Air", "AIR!", "Björk", "Bjork", "Moby", "Beach House"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES, st.none() | NAMES), min_size=1, max_size=12), st.floats(0, 0.9), st.integers(0, 99))
def test_albums_sharing_a_name_of_their_artist_are_on_one_side(albums, fraction: float, seed: int) -> None:
    named = [(artist,) if other is None else (artist, other) for artist, other in albums]
    splits = assign_splits(named, fraction, seed)
    for (a, side_a), (b, side_b) in combinations(zip(named, splits, strict=True), 2):
        if {artist_key(n) for n in a} & {artist_key(n) for n in b}:
            assert side_a == side_b
    shuffled = list(zip(named, splits, strict=True))[::-1]
    assert assign_splits([n for n, _ in shuffled], fraction, seed) == [s for _, s in shuffled]  # any order


@settings(max_examples=200, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=12), st.floats(0, 0.9), st.integers(0, 99))
def test_one_name_per_album_splits_as_before(artists: list[str], fraction: float, seed: int) -> None:
    """Imports have no catalogue name: a name alone or in a tuple of one splits alike, and each name is its own
    artist as ever (the split of a new dataset is unchanged)."""
    splits = assign_splits(artists, fraction, seed)
    assert assign_splits([(a,) for a in artists], fraction, seed) == splits
    assert assign_splits([(a, a.upper()) for a in artists], fraction, seed) == splits
    assert set(splits) <= {TRAIN, EVAL}


# --- 2. previews and covers of an answer are http(s) URLs or nothing ---------------------------------------

# what an answer may give instead of a preview or cover URL ({local}: an audio file on this machine, {port}:
# the fake server's port, so a relative or scheme-relative URL would find a file there)
NOT_URLS = [
    "{local}",
    "file://{local}",
    "/deezer/preview/{id}/1.mp3",
    "deezer/preview/{id}/1.mp3",
    "//127.0.0.1:{port}/deezer/preview/{id}/1.mp3",
    "ftp://127.0.0.1:{port}/p.mp3",
    "http:///p.mp3",
    "http://127.0.0.1:port/p.mp3",
    " http://127.0.0.1:{port}/deezer/preview/{id}/1.mp3",
    "",
    None,
    42,
    ["http://127.0.0.1/p.mp3"],
]


def _bad(value: object, local: Path, server, album_id: int) -> object:
    if not isinstance(value, str):
        return value
    return value.format(local=local, port=server.url("").rsplit(":", 1)[1], id=album_id)


@pytest.fixture()
def local(tmp_path: Path) -> Path:
    """An audio file at the kind of path a hostile answer names."""
    return make_track(tmp_path / "x" / "a3.wav", 2.0, 700)


@pytest.mark.parametrize("value", NOT_URLS)
@pytest.mark.parametrize("catalogue", ["deezer", "itunes"])
def test_a_preview_that_is_not_a_web_url_is_no_preview(tmp_path: Path, shop, audio, local, catalogue, value) -> None:
    """The first track's preview is the bad one: the next track stands in, and nothing local is read."""
    server, fake = shop
    tracks = [FakeTrack("Sexy Boy", audio["mp3"], rank=900_000, seconds=400), FakeTrack("Kelly", audio["mp3b"])]
    album = (fake.add_deezer if catalogue == "deezer" else fake.add_itunes)(
        FakeAlbum("Air", "Moon Safari", image_bytes(BLUE), tracks)
    )
    bad = _bad(value, local, server, album.id)
    key, path = ("preview", f"/deezer/album/{album.id}") if catalogue == "deezer" else ("previewUrl", "/itunes/lookup")

    def hostile(item: dict) -> None:
        if item.get("title", item.get("trackName")) == "Sexy Boy":
            item[key] = bad

    _rewrite(server, path, hostile)
    out = _fetch(tmp_path, fake, _requests(("Air", "Moon Safari")))
    row = rows(out)["Moon Safari"]
    assert (row["catalogue"], row["song"]) == (catalogue, "Kelly")
    assert web_url(row["audio_source"]) and row["audio_source"].startswith(server.url("/"))
    assert local.stat().st_nlink == 1 and local.read_bytes() not in [p.read_bytes() for p in (out / "audio").iterdir()]


@pytest.mark.parametrize("value", NOT_URLS[:5])
def test_an_album_without_a_web_preview_is_asked_of_the_next_catalogue(tmp_path: Path, shop, local, value) -> None:
    server, fake = shop  # Daft Punk's Discovery: Deezer's only preview made bad, iTunes has none of it
    album = fake.deezer[0]
    bad = _bad(value, local, server, album.id)

    def hostile(item: dict) -> None:
        if item.get("type") == "track":
            item["preview"] = bad

    _rewrite(server, f"/deezer/album/{album.id}", hostile)
    out = _fetch(tmp_path, fake, _requests(("Daft Punk", "Discovery"), ("Björk", "Homogenic")))
    assert set(rows(out)) == {"Homogenic"}
    assert skipped(out)["Discovery"] == (
        "not found: deezer: Daft Punk - Discovery has no track with a preview; itunes: no result"
    )
    assert local.stat().st_nlink == 1


@pytest.mark.parametrize("value", NOT_URLS)
def test_a_cover_that_is_not_a_web_url_is_no_cover(tmp_path: Path, shop, local, value) -> None:
    """Deezer's cover_xl made bad: its cover_big stands in; both bad (in the search too): iTunes' cover."""
    server, fake = shop
    album = fake.deezer[0]
    picture = local.with_suffix(".jpg")
    picture.write_bytes(image_bytes(YELLOW, size=(1200, 1200)))
    bad = _bad(value if value != "{local}" else str(picture), local, server, album.id)
    good = server.url(f"/deezer/img/{album.id}/1000x1000-000000-80-0-0.jpg")

    def one_bad(item: dict) -> None:
        if "cover_xl" in item:
            item["cover_xl"], item["cover_big"] = bad, good

    _rewrite(server, f"/deezer/album/{album.id}", one_bad)
    out = _fetch(tmp_path, fake, _requests(("Daft Punk", "Discovery")))
    assert rows(out)["Discovery"]["catalogue"] == "deezer"

    def both_bad(item: dict) -> None:
        if "cover_xl" in item:
            item["cover_xl"], item["cover_big"] = bad, bad

    for path in (f"/deezer/album/{album.id}", "/deezer/search/album"):
        _rewrite(server, path, both_bad)
    (tmp_path / "again").mkdir()
    out = _fetch(tmp_path / "again", fake, _requests(("Daft Punk", "Discovery")))
    assert skipped(out)["Discovery"] == "not found: deezer: Daft Punk - Discovery has no cover; itunes: no result"
    assert picture.stat().st_nlink == 1


def test_an_itunes_artwork_that_is_not_a_web_url_is_no_cover(tmp_path: Path, shop, local) -> None:
    server, fake = shop

    def hostile(item: dict) -> None:
        if item.get("wrapperType") == "collection":
            item["artworkUrl100"] = f"file://{local}"

    _rewrite(server, "/itunes/search", hostile)
    out = _fetch(tmp_path, fake, _requests(("Björk", "Homogenic")))
    assert skipped(out)["Homogenic"] == (
        "not found: deezer: Björk - Homogenic has no track with a preview; itunes: Björk - Homogenic has no cover"
    )


def test_a_remote_album_names_no_local_file_but_an_import_may(tmp_path: Path, local) -> None:
    """Behind the catalogues' check: an album marked ``remote`` (every fetched one) has its local paths refused;
    the same album from a manifest (not remote) reads them, as imports do."""
    cover = tmp_path / "cover.png"
    cover.write_bytes(image_bytes(RED, fmt="PNG"))

    def album(remote: bool, covers: list[CoverRef]) -> AlbumCandidate:
        return AlbumCandidate("Air", "Moon Safari", "list.csv:2", [TrackRef(str(local))], covers, remote=remote)

    downloader = Downloader(tmp_path / "cache", rate_limit=None, retries=0)
    out = tmp_path / "DATA"
    build_dataset([album(True, [CoverRef("file", str(cover))])], out, downloader=downloader)
    expected = f"{str(local)!r}: expected an http(s) URL, found none: not read as a local file"
    assert skipped(out)["Moon Safari"] == expected and local.stat().st_nlink == 1
    assert not (out / "audio").exists() or not any((out / "audio").iterdir())
    build_dataset([album(True, [CoverRef("embedded", str(local))])], out, downloader=downloader, replace=True)
    assert skipped(out)["Moon Safari"] == expected  # the track's path, refused before the cover is looked at
    build_dataset([album(False, [CoverRef("file", str(cover))])], out, downloader=downloader, replace=True)
    assert rows(out)["Moon Safari"]["audio_source"] == str(local)


WEB_URLS = [
    ("https://cdn-preview-1.dzcdn.net/stream/c-1.mp3?hdnea=exp=1", True),
    ("HTTP://Example.org/p.m4a", True),
    ("http://127.0.0.1:8080/p.mp3", True),
    ("http://[::1]/p.mp3", True),
    ("file:///tmp/x/a3.wav", False),
    ("/tmp/x/a3.wav", False),
    ("/m/p1.mp3", False),
    ("//cdn.example.org/p.mp3", False),
    ("http:///p.mp3", False),
    ("http://host:port/p.mp3", False),
    ("https://example.org/p.mp3 ", False),
    ("ftp://example.org/p.mp3", False),
    ("data:audio/mpeg;base64,AAAA", False),
    ("", False),
    (None, False),
    (3, False),
]


@pytest.mark.parametrize(("location", "expected"), WEB_URLS)
def test_web_urls_are_absolute_http_urls_with_a_host(location: object, expected: bool) -> None:
    assert web_url(location) is expected


# --- 3. edition phrases without brackets ------------------------------------------------------------------

# (the list's title, the catalogue's): one album
SAME_EDITIONS = [
    ("Nevermind Remastered", "Nevermind (Remastered)"),
    ("Nevermind", "Nevermind 2009 Remaster"),
    ("Nevermind - Remastered", "Nevermind [Remastered 2011]"),
    ("Nevermind Remastered 2011", "Nevermind"),
    ("Blue Deluxe Edition", "Blue"),
    ("Rumours Expanded Edition", "Rumours (Super Deluxe)"),
    ("Thriller 25th Anniversary Edition", "Thriller"),
    ("Born to Run 30th Anniversary", "Born to Run"),
    ("OK Computer Anniversary Edition", "OK Computer"),
    ("Purple Rain Deluxe", "Purple Rain - Deluxe Expanded Edition"),
    ("Kid A Bonus Track Version", "Kid A"),
    ("1989 Deluxe", "1989"),
    ("Led Zeppelin IV Remastered", "Led Zeppelin IV (Deluxe Edition)"),
    ("Abbey Road Super Deluxe Edition", "Abbey Road - 2019 Mix"),
]


@pytest.mark.parametrize(("listed", "offered"), SAME_EDITIONS)
def test_an_edition_phrase_without_brackets_is_an_edition(listed: str, offered: str) -> None:
    assert match_score("Nirvana", listed, "Nirvana", offered) == 1.0
    assert album_numbers(listed) == album_numbers(offered)
    assert best_match("Nirvana", listed, [(0, "Nirvana", offered, None)]).item == 0


# titles that are, or end in, such words and are no edition of a shorter title: (title, as compared)
TITLES_KEPT = [
    ("Remastered", "remastered"),
    ("Remaster", "remaster"),
    ("Deluxe", "deluxe"),
    ("Deluxe Edition", "deluxe edition"),
    ("Expanded Edition", "expanded edition"),
    ("Anniversary Edition", "anniversary edition"),
    ("Bonus Track Version", "bonus track version"),
    ("The Remaster", "remaster"),
    ("Special Edition", "special edition"),
    ("Live 1986 Remastered", "live 1986"),  # a year before "Remastered" may be the title's: kept
    ("Another Version", "another version"),  # a plain "Version" or "Edition" may be the title's
    ("Second Edition", "second edition"),
    ("Happy Anniversary", "happy anniversary"),
    ("Red Taylor's Version", "red taylor s version"),
]


@pytest.mark.parametrize(("title", "compared"), TITLES_KEPT)
def test_a_title_made_of_edition_words_keeps_them(title: str, compared: str) -> None:
    assert normalise_album(title) == compared
    assert match_score("Nirvana", title, "Nirvana", title) == 1.0
    assert best_match("Nirvana", title, [(0, "Nirvana", f"Nevermind {title}", None)]).item is None


PHRASES = [
    "Remastered",
    "Remaster",
    "2009 Remaster",
    "Remastered 2011",
    "Deluxe",
    "Super Deluxe",
    "Deluxe Edition",
    "Super Deluxe Edition",
    "Expanded Edition",
    "Anniversary Edition",
    "25th Anniversary Edition",
    "20th Anniversary Deluxe Edition",
    "Bonus Track Version",
    "Special Edition",
    "Legacy Edition",
    "Collector's Edition",
]
FORMS = ["{} ({})", "{} [{}]", "{} - {}", "{} {}"]


@settings(max_examples=300, deadline=None)
@given(
    TITLES,
    TITLES,
    st.sampled_from(PHRASES),
    st.sampled_from(FORMS),
    st.lists(st.tuples(TITLES, TITLES, st.none() | st.integers(1950, 2030)), max_size=5),
    st.none() | st.integers(1950, 2030),
)
def test_adding_an_edition_phrase_never_changes_the_match(artist, album, phrase, form, found, year) -> None:
    edition = form.format(album, phrase)
    assert normalise_album(edition) == normalise_album(album) and album_numbers(edition) == album_numbers(album)
    items = [(i, a, t, y) for i, (a, t, y) in enumerate([*found, (artist, album, None)])]
    plain = best_match(artist, album, items, year=year)
    asked = best_match(artist, edition, items, year=year)  # the list adds the phrase
    assert (asked.item, asked.score, asked.reason) == (plain.item, plain.score, plain.reason)
    offered = [(i, a, t if i != len(found) else edition, y) for i, a, t, y in items]  # the catalogue adds it
    assert (best_match(artist, album, offered, year=year).item, plain.score) == (plain.item, plain.score)


@pytest.mark.parametrize(
    ("listed", "offered"), [("Nevermind Remastered", "Nevermind (Remastered)"), ("Nevermind", "Nevermind Remastered")]
)
def test_nevermind_remastered_is_fetched_as_an_exact_match(tmp_path: Path, shop, audio, listed, offered) -> None:
    server, fake = shop
    fake.add_deezer(FakeAlbum("Nirvana", offered, image_bytes(BLUE), [FakeTrack("Lithium", audio["mp3"])], 1991))
    row = rows(_fetch(tmp_path, fake, _requests(("Nirvana", listed))))[listed]
    assert (row["catalogue_album"], row["match_score"]) == (offered, 1.0)


# --- 4. genre_source --------------------------------------------------------------------------------------

# (the list's genre of Nevermind, the catalogue's, the list's genre of In Utero): Nevermind's genres, source, and
# what the summary line says of it
GENRES = [
    (("grunge",), "Rock", (), ["grunge"], "source", ""),
    ((), "Rock", (), ["rock"], "catalogue", "; genre not in the list: from the catalogue for 1"),
    (("unknown",), "Alternative Rock", (), ["alternative rock"], "catalogue",  # "unknown" says no genre
     "; genre not in the list: from the catalogue for 1"),
    ((), "", ("grunge",), ["grunge"], "artist",  # In Utero's, listed beside it
     "; genre not in the list: from the artist's other albums for 1"),
    ((), "", (), ["unknown"], "unknown", "; genre not in the list: unknown for 1"),
]  # fmt: skip


@pytest.mark.parametrize(("listed", "catalogue", "other", "genres", "source", "said"), GENRES)
def test_genre_source_says_where_the_genre_came_from(
    tmp_path: Path, shop, audio, listed, catalogue, other, genres, source, said
) -> None:
    server, fake = shop
    track = [FakeTrack("Lithium", audio["mp3"])]
    fake.add_deezer(FakeAlbum("Nirvana", "Nevermind", image_bytes(BLUE), track, 1991, genre=catalogue))
    fake.add_deezer(FakeAlbum("Nirvana", "In Utero", image_bytes(RED), [FakeTrack("x", b"")], 1993, genre=""))
    albums = [
        AlbumRequest("Nirvana", "Nevermind", "list.csv:2", genres=listed),
        AlbumRequest("Nirvana", "In Utero", "list.csv:3", genres=other),  # no preview: left out, its genre counts
    ]
    out = tmp_path / "DATA"
    report = fetch_dataset(albums, out, catalogues=clients(tmp_path, fake), downloader=media(tmp_path))
    row = rows(out)["Nevermind"]
    assert (row["genres"], row["genre_source"]) == (genres, source)
    # a fetched album has no tags: the summary says where the genres the list did not give came from
    where = " (genre_source in metadata.jsonl)" if said else ""
    assert report.summary() == (
        f"fetched 1 album (train {report.count('train')}, eval {report.count('eval')}), skipped 1 "
        f"(see {out / 'skipped.jsonl'}){said}{where}"
    )
