"""``nopaingan dataset fetch``, a fourth user trial: a preview link of a cached catalogue answer that had expired
(signed links such as Deezer's ``hdnea=exp=`` answer 403 or 410 once expired, before the answer's 12 hours are
out) skipped the album on every rerun. A download of a cached answer's link refused so is asked anew, once: the
catalogue's fresh answer replaces the cached one. A fresh answer's refused link is not asked again."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_fetch
from catalogue_server import FakeAlbum, FakeCatalogues, FakeTrack
from http_files import FileServer
from music_library import image_bytes
from test_fetch import RED, rows, skipped

from training.cli import main

audio = test_fetch.audio  # the fixture: previews

FAST = ["--rate-limit", "0", "--backoff", "0", "--retries", "1", "--quiet", "--deezer-rate", "0", "--itunes-rate", "0"]


def _shop(server: FileServer, audio: dict[str, bytes], catalogue: str) -> tuple[FakeCatalogues, str, list[str]]:
    """One album in ``catalogue``; its album answer's path, and the paths of its preview and of its covers."""
    fake = FakeCatalogues(server)
    if catalogue == "deezer":
        album = fake.add_deezer(
            FakeAlbum("Lorde", "Pure Heroine", image_bytes(RED), [FakeTrack("Royals", audio["mp3"])])
        )
        return (
            fake,
            f"/deezer/album/{album.id}",
            [
                f"/deezer/preview/{album.id}/0.mp3",
                f"/deezer/img/{album.id}/1000x1000-000000-80-0-0.jpg",
            ],
        )
    album = fake.add_itunes(FakeAlbum("Lorde", "Pure Heroine", image_bytes(RED), [FakeTrack("Royals", audio["m4a"])]))
    return (
        fake,
        "/itunes/lookup",
        [
            f"/itunes/preview/{album.id}/0.m4a",
            f"/itunes/img/{album.id}/1000x1000bb.jpg",
            f"/itunes/img/{album.id}/100x100bb.jpg",
        ],
    )


def _asked(server: FileServer, path: str) -> int:
    """How many requests ``path`` got, whatever their query (iTunes' lookup names the album in it)."""
    return sum(asked.split("?")[0] == path for asked, _ in server.requests)


def _fetch(tmp_path: Path, fake: FakeCatalogues, catalogue: str, out: str) -> int:
    path = tmp_path / "albums.csv"
    path.write_text("artist,album\nLorde,Pure Heroine\n")
    api = ["--deezer-api", fake.deezer_url] if catalogue == "deezer" else ["--itunes-api", fake.itunes_url]
    argv = ["dataset", "fetch", str(path), "--out", str(tmp_path / out), "--catalogues", catalogue, *api]
    return main([*argv, "--cache-dir", str(tmp_path / "cache"), *FAST])


@pytest.mark.parametrize("catalogue", ["deezer", "itunes"])
@pytest.mark.parametrize("status", [403, 410])
@pytest.mark.parametrize("link", ["preview", "cover"])
def test_an_expired_link_of_a_cached_answer_is_asked_anew_once(tmp_path, audio, catalogue, status, link) -> None:
    with FileServer() as server:
        fake, answer, paths = _shop(server, audio, catalogue)
        refused = paths[:1] if link == "preview" else paths[1:]  # every cover: one left would do
        for path in refused:  # the first run's link, then the cached answer's in the second
            server.failures[path] = [(status, {}), (status, {})]
        # a fresh answer whose link is refused is the album's: skipped, the catalogue not asked again
        assert _fetch(tmp_path, fake, catalogue, "first") == 0
        assert f"HTTP {status}" in skipped(tmp_path / "first")["Pure Heroine"]
        asked = _asked(server, answer)
        assert asked == 1
        # the rerun finds the answer cached, its link refused: asked anew once, the fresh link works
        assert _fetch(tmp_path, fake, catalogue, "second") == 0
        assert "Pure Heroine" in rows(tmp_path / "second")
        assert _asked(server, answer) == asked + 1
        # the fresh answer replaced the cached one: a third run asks nothing
        assert _fetch(tmp_path, fake, catalogue, "third") == 0
        assert "Pure Heroine" in rows(tmp_path / "third")
        assert _asked(server, answer) == asked + 1


@pytest.mark.parametrize("catalogue", ["deezer", "itunes"])
@pytest.mark.parametrize("refusals", [3, 10])
def test_a_link_still_refused_after_asking_anew_skips_the_album_without_a_loop(
    tmp_path, audio, catalogue, refusals
) -> None:
    with FileServer() as server:
        fake, answer, paths = _shop(server, audio, catalogue)
        server.failures[paths[0]] = [(403, {})] * refusals
        assert _fetch(tmp_path, fake, catalogue, "first") == 0
        assert _fetch(tmp_path, fake, catalogue, "second") == 0
        reason = skipped(tmp_path / "second")["Pure Heroine"]
        assert "HTTP 403" in reason and reason.endswith("(asked anew: the cached answer's links had expired)")
        assert _asked(server, answer) == 2  # once a run, the second's once anew
        assert len(server.requests_for(paths[0])) == 3


@pytest.mark.parametrize("status", [404, 401, 400])
def test_other_refusals_are_not_asked_anew(tmp_path, audio, status) -> None:
    """Only the statuses of an expired link: a link gone for good (404) says nothing of the answer's age."""
    with FileServer() as server:
        fake, answer, paths = _shop(server, audio, "deezer")
        server.failures[paths[0]] = [(status, {})] * 2
        assert _fetch(tmp_path, fake, "deezer", "first") == 0
        assert _fetch(tmp_path, fake, "deezer", "second") == 0
        assert f"HTTP {status}" in skipped(tmp_path / "second")["Pure Heroine"]
        assert _asked(server, answer) == 1
