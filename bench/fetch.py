"""Seconds per album of ``nopaingan dataset fetch`` against fake Deezer and iTunes catalogues on 127.0.0.1.

The API, the preview host and the cover host are three local servers (as api.deezer.com, the preview CDN and
the image CDN are three hosts), answering in the APIs' documented shapes with 30 s MP3 previews and
1000x1000 JPEG covers. Four runs, each into a new dataset folder and cache:

- ``deezer_limits``: every album on Deezer, the documented rates (Deezer 50 requests / 5 s, 2 downloads / s
  per media host): the rate limiters, not our code, should set the pace;
- ``itunes_limits``: the same albums from iTunes only (about 20 calls per minute);
- ``no_limits``: Deezer with every limit off: our own overhead (JSON, matching, audio and cover checks, writes);
- ``rerun``: ``no_limits`` again with its cache: an interrupted or repeated fetch.

Each result gives the floor the limiters impose (n requests to one host take (n - 1) / rate s) beside the
measured time.

    python bench/fetch.py --albums 30 --itunes-albums 5 --out bench/results/fetch.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from catalogue_server import FakeAlbum, FakeCatalogues, FakeTrack  # noqa: E402
from http_files import FileServer  # noqa: E402
from music_library import image_bytes, make_track  # noqa: E402
from timing import check_new_outputs, load, machine, timed, write_json  # noqa: E402

from training.catalogues import DEEZER_RATE, ITUNES_RATE, make_catalogues  # noqa: E402
from training.download import Downloader  # noqa: E402
from training.fetch import AlbumRequest, fetch_dataset  # noqa: E402

MEDIA_RATE = 2.0  # `dataset fetch --rate-limit` default, downloads per second and host


def run(
    albums: list[AlbumRequest],
    fake: FakeCatalogues,
    work: Path,
    name: str,
    catalogues: list[str],
    limits: bool,
    cache: Path | None = None,
) -> dict:
    cache = cache or work / f"cache-{name}"

    def downloader(rate: float | None, statuses: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})):
        return Downloader(cache / "api", rate_limit=rate if limits else None, retry_statuses=statuses, timeout=30)

    clients = make_catalogues(catalogues, downloader, deezer_api=fake.deezer_url, itunes_api=fake.itunes_url)
    media = Downloader(cache, rate_limit=MEDIA_RATE if limits else None, timeout=30)
    requests_before = len(fake.server.requests) + len(fake.previews.requests) + len(fake.covers.requests)
    seconds, report = timed(
        lambda: fetch_dataset(albums, work / f"DATA-{name}", catalogues=clients, downloader=media, eval_fraction=0.3)
    )
    requests = len(fake.server.requests) + len(fake.previews.requests) + len(fake.covers.requests) - requests_before
    api_calls = 2 * len(albums)  # search + album (Deezer) or search + lookup (iTunes), when nothing is cached
    api_rate = DEEZER_RATE if catalogues == ["deezer"] else ITUNES_RATE
    # a limiter lets its first request go at once: n requests to a host take (n - 1) / rate seconds at least
    floor = max((api_calls - 1) / api_rate, (len(albums) - 1) / MEDIA_RATE) / len(albums) if limits else 0.0
    return {
        "run": name,
        "catalogues": catalogues,
        "limits": limits,
        "albums": len(albums),
        "fetched": len(report.albums),
        "skipped": len(report.skipped),
        "requests": requests,
        "seconds": round(seconds, 3),
        "seconds_per_album": round(seconds / len(albums), 4),
        "limiter_floor_seconds_per_album": round(floor, 4),
        "load": load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--albums", type=int, default=30, help="albums of the Deezer runs")
    parser.add_argument("--itunes-albums", type=int, default=5, help="albums of the iTunes run (3 s per call)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/fetch.json"))
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    work = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    try:
        preview = make_track(work / "preview.mp3", 30.0, 440).read_bytes()
        preview_m4a = make_track(work / "preview.m4a", 30.0, 440).read_bytes()
        cover = image_bytes((200, 60, 40), size=(1000, 1000))
        with FileServer() as api, FileServer() as previews, FileServer() as covers:
            fake = FakeCatalogues(api, (previews, covers))
            albums = []
            for i in range(args.albums):
                artist, title = f"Artist {i:03d}", f"Album Number {i:03d}"
                tracks = [FakeTrack("Intro", None, rank=900_000), FakeTrack(f"Song {i}", preview, rank=500_000)]
                fake.add_deezer(FakeAlbum(artist, f"{title} (Deluxe Edition)", cover, tracks, year=2000 + i % 20))
                fake.add_itunes(FakeAlbum(artist, title, cover, [FakeTrack(f"Song {i}", preview_m4a)]))
                albums.append(AlbumRequest(artist, title, f"bench:{i}"))
            results = [
                run(albums, fake, work, "deezer_limits", ["deezer"], True),
                run(albums[: args.itunes_albums], fake, work, "itunes_limits", ["itunes"], True),
                run(albums, fake, work, "no_limits", ["deezer"], False),
                run(albums, fake, work, "rerun", ["deezer"], False, cache=work / "cache-no_limits"),
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in results:
        print(
            f"{r['run']:14s} {r['albums']:3d} albums, {r['fetched']} fetched: {r['seconds_per_album']:.3f} s/album "
            f"(limiters' floor {r['limiter_floor_seconds_per_album']:.3f}), {r['requests']} requests, load {r['load']}"
        )
    write_json(args.out, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
