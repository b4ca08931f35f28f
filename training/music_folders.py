"""Music folders as albums: tracks are grouped by folder (disc folders such as ``CD1`` join their parent) and
by album tag, and each album gets its representative track and its possible covers in order of preference.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

from nopaingan_core.audio import AUDIO_EXTENSIONS

from .candidates import AlbumCandidate, CoverRef, TrackRef
from .cleaning import UNKNOWN, fold_name, normalise_genre
from .covers import find_cover_files
from .tags import TrackTags, read_tags

# A file in an album folder naming the track that stands for the album: its file name (or path relative to
# the album folder) or its title, on the first line that is not empty and not a # comment.
MARKER_FILE = "nopaingan-track.txt"
VARIOUS_ARTISTS = "Various Artists"

DISC_FOLDER = re.compile(r"^(cd|disc|disk)[\s._-]*\d+$", re.IGNORECASE)
# Audio the import cannot decode: a folder holding only these is reported as an album without usable audio.
UNREADABLE_AUDIO = (".wma", ".ape", ".wv", ".mpc", ".aif", ".aiff", ".aifc", ".dsf", ".dff", ".tta", ".mka")
# Folder names that say where music is kept, not who made it: never taken for an artist.
GENERIC_FOLDERS = frozenset(
    {
        "music", "my music", "musik", "musique", "música", "album", "albums", "downloads", "download",
        "audio", "songs", "tracks", "media", "itunes", "itunes media", "library", "collection", "mp3", "mp3s",
        "flac", "ogg", "opus", "m4a", "wav", "lossless", "rips", "cds", "new", "misc", "unsorted", "incoming",
        "torrents", "desktop", "documents", "home", "users", "compilations", "singles", "eps", "lps", "various",
    }
)  # fmt: skip
# Names that rippers, players and file managers give folders when they know nothing: never an artist or album.
PLACEHOLDER_FOLDER = re.compile(
    r"^(unknown( artist| album)?|untitled( folder| album)?|new folder|neuer ordner|nouveau dossier|"
    r"nuova cartella|nueva carpeta|novo pasta|nova pasta|no name|no title|sans titre|unbenannt|untitled-\d+)"
    r"([\s._-]*(\(\d+\)|\d+))?$",
    re.IGNORECASE,
)
_TRACK_NUMBER = re.compile(r"^\d{1,3}(?:[\s._-]+|$)")


def scan_music_folder(root: Path, exclude: Sequence[Path] = (), progress: bool = False) -> list[AlbumCandidate]:
    """Every album under ``root`` (which may itself be one album's folder), in folder order; folders in
    ``exclude`` (such as the dataset being written) and hidden ones are not looked into."""
    root = Path(root)
    skip = {os.path.realpath(p) for p in exclude}
    audio: dict[Path, list[Path]] = {}
    no_audio: dict[Path, list[Path]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.realpath(Path(folder, d)) not in skip)
        folder_path = Path(folder)
        is_disc = folder_path != root and DISC_FOLDER.match(folder_path.name)
        album_dir = folder_path.parent if is_disc else folder_path
        names = sorted((f for f in files if not f.startswith(".")), key=str.casefold)
        tracks = [folder_path / f for f in names if Path(f).suffix.lower() in AUDIO_EXTENSIONS]
        if tracks:
            audio.setdefault(album_dir, []).extend(tracks)
        elif find_cover_files(folder_path) or any(Path(f).suffix.lower() in UNREADABLE_AUDIO for f in names):
            no_audio[folder_path] = [folder_path / f for f in names]
    total = sum(len(t) for t in audio.values())
    with tqdm(total=total, desc="reading tags", unit="file", disable=not progress) as bar:
        tags = {}
        for album_dir, tracks in audio.items():
            tags[album_dir] = [read_tags(t) for t in tracks]
            bar.update(len(tracks))
    found = [(folder, album) for folder, tracks in tags.items() for album in _albums_in(root, folder, tracks)]
    # a folder without audio inside an album's folder ("Scans", "Artwork", an empty "CD2") is not an album
    found += [
        (folder, _no_audio(root, folder, files))
        for folder, files in no_audio.items()
        if not any(p in audio for p in (folder, *folder.parents))
    ]
    found.sort(key=lambda item: (str(item[0]).casefold(), item[1].album.casefold()))
    return [candidate for _, candidate in found]


def _no_audio(root: Path, folder: Path, files: list[Path]) -> AlbumCandidate:
    listed = ", ".join(f.name for f in files[:5]) + (", ..." if len(files) > 5 else "")
    artist = _artist_from_folders(root, folder)
    return AlbumCandidate(
        artist=artist or UNKNOWN,
        album=_folder_name(folder),
        source=str(folder),
        name_sources={"artist": "folder name" if artist else UNKNOWN, "album": "folder name"},
        problem=f"no audio file in a readable format ({', '.join(AUDIO_EXTENSIONS)}); found {listed}",
    )


def _albums_in(root: Path, album_dir: Path, tracks: list[TrackTags]) -> list[AlbumCandidate]:
    """One folder's albums: one, unless its tracks carry several album tags (a folder of singles)."""
    by_album: dict[str, list[TrackTags]] = {}
    for track in tracks:
        by_album.setdefault(fold_name(track.album) if track.album else "", []).append(track)
    tagged = {key: group for key, group in by_album.items() if key}
    if len(tagged) <= 1:
        groups = [tracks]
    else:
        groups = [tagged[key] for key in sorted(tagged)] + ([by_album[""]] if "" in by_album else [])
    marked, marker_problem = _marked_track(album_dir, tracks)
    covers = []
    if len(groups) == 1:  # a cover file in the folder belongs to its album only when the folder holds one
        subfolders = sorted({t.path.parent for t in tracks if t.path.parent != album_dir})
        covers = [CoverRef("file", str(p)) for d in [album_dir, *subfolders] for p in find_cover_files(d)]
    return [
        _album(root, album_dir, group, marked if marked in group else None, marker_problem, covers) for group in groups
    ]


def _marked_track(album_dir: Path, tracks: list[TrackTags]) -> tuple[TrackTags | None, str | None]:
    marker = album_dir / MARKER_FILE
    if not marker.is_file():
        return None, None
    lines = marker.read_text(encoding="utf-8", errors="replace").splitlines()
    wanted = next((line.strip() for line in lines if line.strip() and not line.startswith("#")), "")
    key = wanted.casefold()
    for track in tracks:
        names = {track.path.relative_to(album_dir).as_posix().casefold(), track.path.name.casefold()}
        if key and (key in names or (track.title or "").casefold() == key):
            return track, None
    listed = ", ".join(t.path.relative_to(album_dir).as_posix() for t in tracks)
    return None, f"{marker}: names track {wanted!r}, which is none of the album's tracks ({listed})"


def _album(
    root: Path,
    album_dir: Path,
    tracks: list[TrackTags],
    marked: TrackTags | None,
    marker_problem: str | None,
    folder_covers: list[CoverRef],
) -> AlbumCandidate:
    if marked is not None:
        ordered = [marked]
    else:
        # the longest track: a whole song rather than an intro, interlude or skit; ties by file name
        ordered = sorted(tracks, key=lambda t: (-t.duration, str(t.path.relative_to(album_dir)).casefold()))
    by_preference = ordered + [t for t in tracks if t not in ordered]
    tagged_artist, folder_artist = _album_artist(tracks), _artist_from_folders(root, album_dir)
    tagged_album = _most_common(t.album for t in tracks)
    folder_album = None if is_placeholder(_folder_name(album_dir)) else _folder_name(album_dir)
    sources = {
        "artist": "tags" if tagged_artist else "folder name" if folder_artist else UNKNOWN,
        "album": "tags" if tagged_album else "folder name" if folder_album else UNKNOWN,
    }
    return AlbumCandidate(
        artist=tagged_artist or folder_artist or UNKNOWN,
        album=tagged_album or folder_album or UNKNOWN,
        source=str(album_dir),
        name_sources=sources,
        tracks=[TrackRef(str(t.path), t.title or _title_from_file(t.path)) for t in ordered],
        # pictures of the chosen track first, but any track's picture is the album's cover
        covers=[CoverRef("embedded", str(t.path)) for t in by_preference if t.has_picture] + folder_covers,
        genres=_ranked(normalise_genre(g) for t in tracks for g in t.genres),
        year=_most_common_year(tracks),
        track_marked=marked is not None,
        problem=None if marked is not None else marker_problem,
    )


def _ranked(values: Iterable) -> list:
    """Distinct values, most frequent first, ties in order of first appearance."""
    counts = Counter(values)
    return sorted(counts, key=lambda v: -counts[v])


def _most_common(values: Iterable[str | None]) -> str | None:
    return next(iter(_ranked(v for v in values if v)), None)


def _most_common_year(tracks: list[TrackTags]) -> int | None:
    years = Counter(t.year for t in tracks if t.year)
    return min(years, key=lambda y: (-years[y], y), default=None)


def _album_artist(tracks: list[TrackTags]) -> str | None:
    """The album artist tag; else the only track artist, or one named on more than half the tracks; else,
    when the tracks name several artists, "Various Artists"."""
    album_artist = _most_common(t.album_artist for t in tracks)
    if album_artist:
        return album_artist
    artists = Counter(t.artist for t in tracks if t.artist)
    if not artists:
        return None
    artist = _most_common(t.artist for t in tracks)
    return artist if len(artists) == 1 or artists[artist] * 2 > len(tracks) else VARIOUS_ARTISTS


def _artist_from_folders(root: Path, album_dir: Path) -> str | None:
    """``Artist/Album`` layouts: the album folder's parent, when that is inside the scanned folder and not a
    generic name such as ``music`` or ``albums`` (:data:`GENERIC_FOLDERS`)."""
    parts = album_dir.relative_to(root).parts
    if len(parts) < 2 or parts[-2].strip().casefold() in GENERIC_FOLDERS or is_placeholder(parts[-2]):
        return None
    return parts[-2]


def is_placeholder(name: str) -> bool:
    """A folder name that names nothing: ``Unknown Artist``, ``Unknown Album`` (Windows Media Player rips),
    ``New folder (2)``, ``Untitled Folder 3`` and their translations (:data:`PLACEHOLDER_FOLDER`)."""
    return bool(PLACEHOLDER_FOLDER.match(name.strip()))


def _folder_name(folder: Path) -> str:
    return folder.name or folder.resolve().name


def _title_from_file(path: Path) -> str:
    """``01 - Song.mp3`` -> ``Song``."""
    return _TRACK_NUMBER.sub("", path.stem).strip(" -_.") or path.stem
