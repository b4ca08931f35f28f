"""Fake Deezer and iTunes catalogues on a local :class:`FileServer`, answering in each API's documented
response shapes (Deezer ``/search/album`` and ``/album/{id}``; iTunes ``/search?entity=album`` and
``/lookup?id=...&entity=song``) from albums the tests add, with previews and covers served by the same
server. Searching is loose as the real ones are: every album sharing a word with the query, most shared
words first; Deezer's ``artist:"..." album:"..."`` query finds albums whose names contain both."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field

from http_files import FileServer


@dataclass
class FakeTrack:
    title: str
    preview: bytes | None  # None: the catalogue gives no preview for this track
    rank: int = 100_000
    seconds: int = 200


@dataclass
class FakeAlbum:
    artist: str
    title: str
    cover: bytes
    tracks: list[FakeTrack] = field(default_factory=list)
    year: int = 2001
    genre: str = "Pop"
    id: int = 0
    record_type: str = "album"  # Deezer's: album, single, ep, compile


def _words(text: str) -> set[str]:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return set(re.findall(r"\w+", text))


def _loose(albums: list[FakeAlbum], query: str) -> list[FakeAlbum]:
    words = _words(query)
    scored = [(len(words & _words(f"{a.artist} {a.title}")), i, a) for i, a in enumerate(albums)]
    return [a for n, _, a in sorted(scored, key=lambda s: (-s[0], s[1])) if n]


class FakeCatalogues:
    """Deezer under ``/deezer``, iTunes under ``/itunes``; ``deezer_url`` and ``itunes_url`` are their bases.
    Previews and covers come from ``server`` too, or from ``media`` servers as the catalogues' CDN hosts."""

    def __init__(self, server: FileServer, media: tuple[FileServer, FileServer] | None = None) -> None:
        self.server = server
        self.previews, self.covers = media or (server, server)
        self.deezer: list[FakeAlbum] = []
        self.itunes: list[FakeAlbum] = []
        self.deezer_url = server.url("/deezer")
        self.itunes_url = server.url("/itunes")
        server.routes["/deezer/search/album"] = self._deezer_search
        server.routes["/itunes/search"] = self._itunes_search
        server.routes["/itunes/lookup"] = self._itunes_lookup

    def add_deezer(self, album: FakeAlbum) -> FakeAlbum:
        album.id = 300_000 + len(self.deezer)
        self.deezer.append(album)
        self.server.routes[f"/deezer/album/{album.id}"] = lambda query: self._json(self._deezer_album(album, True))
        self.covers.files[f"/deezer/img/{album.id}/1000x1000-000000-80-0-0.jpg"] = album.cover
        for number, track in enumerate(album.tracks):
            if track.preview is not None:
                self.previews.files[f"/deezer/preview/{album.id}/{number}.mp3"] = track.preview
        return album

    def add_itunes(self, album: FakeAlbum) -> FakeAlbum:
        album.id = 900_000 + len(self.itunes)
        self.itunes.append(album)
        for size in (100, 1000):
            self.covers.files[f"/itunes/img/{album.id}/{size}x{size}bb.jpg"] = album.cover
        for number, track in enumerate(album.tracks):
            if track.preview is not None:
                self.previews.files[f"/itunes/preview/{album.id}/{number}.m4a"] = track.preview
        return album

    @staticmethod
    def _json(answer: object) -> bytes:
        return json.dumps(answer).encode()

    # --- Deezer ---------------------------------------------------------------------------------------

    def _deezer_album(self, album: FakeAlbum, full: bool) -> dict:
        cover = self.covers.url(f"/deezer/img/{album.id}/1000x1000-000000-80-0-0.jpg")
        answer = {
            "id": album.id,
            "title": album.title,
            "link": f"https://www.deezer.com/album/{album.id}",
            "cover": cover.replace("1000x1000", "120x120"),
            "cover_big": cover.replace("1000x1000", "500x500"),
            "cover_xl": cover,
            "nb_tracks": len(album.tracks),
            "record_type": album.record_type,
            "tracklist": f"https://api.deezer.com/album/{album.id}/tracks",
            "explicit_lyrics": False,
            "artist": {"id": 27, "name": album.artist, "type": "artist"},
            "type": "album",
        }
        if full:
            tracks = [
                {
                    "id": album.id * 100 + number,
                    "readable": True,
                    "title": track.title,
                    "duration": track.seconds,
                    "rank": track.rank,
                    "preview": self.previews.url(f"/deezer/preview/{album.id}/{number}.mp3") if track.preview else "",
                    "type": "track",
                }
                for number, track in enumerate(album.tracks)
            ]
            answer |= {
                "genres": {"data": [{"id": 1, "name": album.genre, "type": "genre"}]},
                "release_date": f"{album.year}-03-07",
                "tracks": {"data": tracks},
            }
        return answer

    def _deezer_search(self, query: dict[str, str]) -> bytes:
        q = query.get("q", "")
        fields = dict(re.findall(r'(artist|album):"([^"]*)"', q))
        if fields:
            found = [
                a
                for a in self.deezer
                if _words(fields.get("artist", "")) <= _words(a.artist)
                and _words(fields.get("album", "")) <= _words(a.title)
            ]
        else:
            found = _loose(self.deezer, q)
        found = found[: int(query.get("limit", 25))]
        data = [self._deezer_album(a, False) for a in found]
        return self._json({"data": data, "total": len(data)})

    # --- iTunes ---------------------------------------------------------------------------------------

    def _itunes_collection(self, album: FakeAlbum) -> dict:
        return {
            "wrapperType": "collection",
            "collectionType": "Album",
            "artistId": 1,
            "collectionId": album.id,
            "artistName": album.artist,
            "collectionName": album.title,
            "collectionCensoredName": album.title,
            "collectionViewUrl": f"https://music.apple.com/us/album/{album.id}?uo=4",
            "artworkUrl60": self.covers.url(f"/itunes/img/{album.id}/60x60bb.jpg"),
            "artworkUrl100": self.covers.url(f"/itunes/img/{album.id}/100x100bb.jpg"),
            "trackCount": len(album.tracks),
            "country": "USA",
            "releaseDate": f"{album.year}-03-12T08:00:00Z",
            "primaryGenreName": album.genre,
        }

    def _itunes_search(self, query: dict[str, str]) -> bytes:
        found = _loose(self.itunes, query.get("term", ""))[: int(query.get("limit", 50))]
        return self._json({"resultCount": len(found), "results": [self._itunes_collection(a) for a in found]})

    def _itunes_lookup(self, query: dict[str, str]) -> bytes:
        album = next((a for a in self.itunes if str(a.id) == query.get("id")), None)
        if album is None:
            return self._json({"resultCount": 0, "results": []})
        tracks = [
            {
                "wrapperType": "track",
                "kind": "song",
                "collectionId": album.id,
                "trackId": album.id * 100 + number,
                "artistName": album.artist,
                "collectionName": album.title,
                "trackName": track.title,
                "trackTimeMillis": track.seconds * 1000,
                "trackNumber": number + 1,
                "discNumber": 1,
                **(
                    {"previewUrl": self.previews.url(f"/itunes/preview/{album.id}/{number}.m4a")}
                    if track.preview
                    else {}
                ),
            }
            for number, track in enumerate(album.tracks)
        ]
        results = [self._itunes_collection(album), *tracks]
        return self._json({"resultCount": len(results), "results": results})
