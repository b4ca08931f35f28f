"""``nopaingan dataset import``: music folders the tests build (tagged mp3/flac/ogg/m4a with and without
embedded art, cover files, broken files), manifests with files from a local HTTP server, cleaning, split."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import unicodedata
from io import BytesIO
from pathlib import Path

import datasets
import pytest
from http_files import FileServer
from hypothesis import given, settings
from hypothesis import strategies as st
from music_library import image_bytes, make_track
from PIL import Image

from nopaingan_core.errors import AudioError
from training.cleaning import (
    album_key,
    artist_genres,
    fill_genres,
    normalise_genre,
    normalise_genres,
    split_genres,
)
from training.cli import main
from training.covers import find_cover_files, normalise_cover
from training.dataset_import import album_id, check_audio, import_dataset
from training.download import Downloader, is_url, web_url
from training.errors import CoverError, DatasetError, DownloadError
from training.manifest import parse_number, read_manifest
from training.music_folders import scan_music_folder
from training.split import assign_splits
from training.tags import embedded_picture, read_tags

RED, GREEN, BLUE, YELLOW = (220, 20, 20), (20, 200, 40), (30, 40, 220), (230, 220, 30)
CYAN, MAGENTA, WHITE, ORANGE = (20, 210, 220), (200, 30, 200), (250, 250, 250), (240, 140, 20)


def rows(out: Path) -> dict[str, dict]:
    lines = (out / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["album"]: row for row in map(json.loads, lines)}


def skipped(out: Path) -> dict[str, str]:
    lines = (out / "skipped.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["album"]: row["reason"] for row in map(json.loads, lines)}


def color_of(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as image:
        assert image.mode == "RGB"
        return image.getpixel((image.width // 2, image.height // 2))


def close(found: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(found, expected, strict=True))


def downloader(tmp_path: Path, **options) -> Downloader:
    return Downloader(tmp_path / "cache", rate_limit=None, backoff=0.01, timeout=5, **options)


# --- music folders ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fourteen album folders as people keep them: tagged and untagged, four formats, covers embedded or as
    files of various names, disc folders, a marked track, a duplicate, and five unusable albums."""
    root = tmp_path_factory.mktemp("music")
    first = {"album": "First Light", "artist": "Alpha", "year": 2001}
    make_track(
        root / "Alpha/First Light/01 Dawn.mp3",
        1.5,
        title="Dawn",
        genre="Synth Pop",
        picture=image_bytes(RED),
        **first,
    )
    make_track(root / "Alpha/First Light/02 Noon.mp3", 3.0, 550, title="Noon", genre="synth-pop", **first)
    green = image_bytes(GREEN, fmt="PNG")
    make_track(
        root / "Alpha/Second Wind/1.flac",
        2.0,
        album="Second Wind",
        artist="Alpha",
        title="Gust",
        picture=green,
    )
    make_track(
        root / "Beta/Gamma Rays/a.ogg",
        2.0,
        album="Gamma Rays",
        artist="Beta",
        title="Ray",
        genre="Hip-Hop; R&B",
        year=2010,
        picture=image_bytes(BLUE),
    )
    make_track(
        root / "Delta/Echoes/01.m4a",
        2.0,
        album="Echoes",
        album_artist="Delta",
        artist="Delta feat. X",
        title="Echo",
        genre="Jazz",
        picture=image_bytes(YELLOW),
    )
    make_track(root / "Untagged Album/03 - Quiet Song.ogg", 2.0)
    (root / "Untagged Album/AlbumArt.jpg").write_bytes(image_bytes(CYAN))
    make_track(root / "Epsilon/Loud/x.flac", 2.0)
    (root / "Epsilon/Loud/Cover.JPG").write_bytes(image_bytes(MAGENTA))
    (root / "Epsilon/Loud/folder.png").write_bytes(image_bytes(WHITE, fmt="PNG"))
    theta = {"album": "Marked", "artist": "Theta"}
    make_track(root / "Theta/Marked/long.mp3", 3.0, title="Longest", picture=image_bytes(WHITE), **theta)
    make_track(root / "Theta/Marked/short.mp3", 1.5, title="Chosen", **theta)
    (root / "Theta/Marked/nopaingan-track.txt").write_text("# the single\nChosen\n")
    make_track(root / "Iota/Double/CD1/01.mp3", 2.0, album="Double", artist="Iota")
    make_track(root / "Iota/Double/CD2/01.mp3", 2.5, album="Double", artist="Iota", title="Second Disc")
    (root / "Iota/Double/front.jpeg").write_bytes(image_bytes(ORANGE))
    (root / "Iota/Double/Scans").mkdir()
    (root / "Iota/Double/Scans/cover.png").write_bytes(image_bytes(BLUE, fmt="PNG"))  # not an album
    make_track(
        root / "Kappa Backup/First Light/01.mp3",
        2.0,
        album="first light!",
        artist="ALPHA",
        picture=image_bytes(RED),
    )
    zeta = root / "Zeta"
    (zeta / "Broken Audio").mkdir(parents=True)
    (zeta / "Broken Audio/01.mp3").write_bytes(b"ID3 not really an mp3 " * 50)
    (zeta / "Broken Audio/front.jpeg").write_bytes(image_bytes(RED))
    flac = make_track(zeta / "Truncated/01.flac", 3.0).read_bytes()
    (zeta / "Truncated/01.flac").write_bytes(flac[: len(flac) * 3 // 10])
    (zeta / "Truncated/cover.png").write_bytes(image_bytes(RED, fmt="PNG"))
    make_track(zeta / "No Cover/01.mp3", 2.0, album="No Cover", artist="Zeta")
    make_track(zeta / "Broken Image/01.mp3", 2.0)
    (zeta / "Broken Image/cover.jpg").write_bytes(image_bytes(RED)[:300])
    (zeta / "Only Images").mkdir()
    (zeta / "Only Images/cover.jpg").write_bytes(image_bytes(RED))
    (zeta / "Only Images/01 Song.wma").write_bytes(b"\x30\x26\xb2\x75" * 64)
    return root


@pytest.fixture(scope="module")
def imported(library: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("import")
    report = import_dataset([library], tmp / "DATA", downloader=downloader(tmp))
    return tmp / "DATA", report


IMPORTED = {
    "First Light",
    "Second Wind",
    "Gamma Rays",
    "Echoes",
    "Untagged Album",
    "Loud",
    "Marked",
    "Double",
}
SKIPPED = {"first light!", "Broken Audio", "Truncated", "No Cover", "Broken Image", "Only Images"}


def test_every_album_is_imported_or_listed_with_its_reason(imported) -> None:
    out, report = imported
    assert set(rows(out)) == IMPORTED
    reasons = skipped(out)
    assert set(reasons) == SKIPPED
    assert "01.mp3: not a readable audio file" in reasons["Broken Audio"]
    assert "01.flac" in reasons["Truncated"] and "truncated" in reasons["Truncated"]
    assert reasons["No Cover"].startswith("no cover: no embedded front cover")
    assert "cover.jpg: not a readable image" in reasons["Broken Image"]
    assert "no audio file in a readable format" in reasons["Only Images"] and "01 Song.wma" in reasons["Only Images"]
    assert reasons["first light!"].startswith(f"duplicate of {rows(out)['First Light']['id']}")
    train, evaluation = report.count("train"), report.count("eval")
    assert train + evaluation == 8
    expected = (
        f"imported 8 albums (train {train}, eval {evaluation}), skipped 6 (see {out / 'skipped.jsonl'}); "
        "not in tags: artist from a folder name for 1, artist unknown for 1, album from a folder name for 2, "
        "genre unknown for 4 (artist_source, album_source, genre_source in metadata.jsonl)"
    )
    assert report.summary() == expected
    sources = {album: (row["artist_source"], row["album_source"]) for album, row in rows(out).items()}
    assert sources["Untagged Album"] == ("unknown", "folder name")
    assert sources["Loud"][0] == "folder name" and sources["First Light"] == ("tags", "tags")


def test_tags_give_names_genres_and_year_else_folders_do(imported) -> None:
    albums = rows(imported[0])
    first = albums["First Light"]
    assert (first["artist"], first["year"], first["genres"], first["genre"]) == (
        "Alpha",
        2001,
        ["synthpop"],
        "synthpop",
    )
    assert albums["Gamma Rays"]["genres"] == ["hip hop", "r&b"] and albums["Gamma Rays"]["year"] == 2010
    assert albums["Echoes"]["artist"] == "Delta"  # the album artist tag wins over the track artist
    untagged = albums["Untagged Album"]
    assert (untagged["artist"], untagged["song"], untagged["genres"]) == (
        "unknown",
        "Quiet Song",
        ["unknown"],
    )
    assert albums["Loud"]["artist"] == "Epsilon"  # Artist/Album folders
    assert albums["Double"]["song"] == "Second Disc"  # CD1/CD2 are one album, its longest track stands for it


def test_missing_genre_comes_from_the_artists_other_album(imported) -> None:
    albums = rows(imported[0])
    assert albums["First Light"]["genre_source"] == "source"
    assert albums["Second Wind"]["genres"] == ["synthpop"]
    assert albums["Second Wind"]["genre_source"] == "artist"
    assert albums["Loud"]["genre_source"] == "unknown"


def test_representative_track_is_the_marked_one_else_the_longest(imported, library: Path) -> None:
    out = imported[0]
    albums = rows(out)
    first = albums["First Light"]
    assert first["song"] == "Noon" and first["duration"] == pytest.approx(3.0, abs=0.1)
    assert (out / first["audio"]).read_bytes() == (library / "Alpha/First Light/02 Noon.mp3").read_bytes()
    assert first["audio_source"] == str(library / "Alpha/First Light/02 Noon.mp3")
    marked = albums["Marked"]
    assert marked["song"] == "Chosen" and marked["duration"] == pytest.approx(1.5, abs=0.1)
    for album in IMPORTED:
        suffix = Path(albums[album]["audio_source"]).suffix
        assert albums[album]["audio"] == f"audio/{albums[album]['id']}{suffix}"


def test_covers_come_from_embedded_pictures_or_cover_files(imported) -> None:
    out = imported[0]
    albums = rows(out)
    expected = {
        "First Light": RED,  # embedded in the shorter track: the longest has none
        "Second Wind": GREEN,  # FLAC picture
        "Gamma Rays": BLUE,  # Vorbis metadata_block_picture
        "Echoes": YELLOW,  # MP4 covr
        "Untagged Album": CYAN,  # AlbumArt.jpg
        "Loud": MAGENTA,  # Cover.JPG before folder.png
        "Double": ORANGE,  # front.jpeg beside the CD1 and CD2 folders
        "Marked": WHITE,  # embedded in another track than the marked one
    }
    for album, color in expected.items():
        cover = out / albums[album]["file_name"]
        assert close(color_of(cover), color), album
        assert (albums[album]["cover_width"], albums[album]["cover_height"]) == (96, 96)
    assert albums["Second Wind"]["file_name"].endswith(".png")
    assert albums["Loud"]["file_name"].endswith(".jpg")
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    referenced = {r[k] for r in albums.values() for k in ("audio", "file_name")}
    assert files == referenced | {"metadata.jsonl", "skipped.jsonl", "README.md"}
    assert all(name.replace("/", "").replace("-", "").replace(".", "").isalnum() for name in referenced)


def test_load_dataset_reads_the_folder(imported, tmp_path: Path) -> None:
    out = imported[0]
    albums = rows(out)
    plain = datasets.load_dataset("json", data_files=str(out / "metadata.jsonl"), cache_dir=str(tmp_path))["train"]
    assert sorted(plain["album"]) == sorted(IMPORTED)
    assert plain.features["genres"].feature.dtype == "string"
    everything = datasets.load_dataset(str(out), cache_dir=str(tmp_path))["albums"]
    first = everything[everything["album"].index("First Light")]
    assert first["image"].size == (96, 96) and close(first["image"].convert("RGB").getpixel((5, 5)), RED)
    assert (out / first["audio"]).is_file()
    evaluation = datasets.load_dataset(str(out), "eval", cache_dir=str(tmp_path))["eval"]
    assert sorted(evaluation["album"]) == sorted(a for a, r in albums.items() if r["split"] == "eval")


def test_reimport_is_idempotent_keeps_albums_no_longer_in_the_sources_unless_replace(tmp_path: Path) -> None:
    music = tmp_path / "music"
    make_track(music / "A/One/1.mp3", 1.5, album="One", artist="A", genre="Rock", picture=image_bytes(RED))
    make_track(music / "B/Two/1.flac", 1.5, album="Two", artist="B", genre="Folk", picture=image_bytes(BLUE))
    out = tmp_path / "DATA"
    import_dataset([music], out, downloader=downloader(tmp_path))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    (out / "covers/.x.jpg.123.tmp").write_bytes(b"left by an interrupted run")
    import_dataset([music], out, downloader=downloader(tmp_path))
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    assert after == before
    shutil.rmtree(music / "B")
    report = import_dataset([music], out, downloader=downloader(tmp_path))
    assert [r["album"] for r in report.albums] == ["One"] and [r["album"] for r in report.kept] == ["Two"]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before
    report = import_dataset([music], out, downloader=downloader(tmp_path), replace=True)
    assert [r["album"] for r in report.albums] == ["One"] and [r["album"] for r in report.removed] == ["Two"]
    assert sorted(p.name for p in (out / "audio").iterdir()) == [Path(report.albums[0]["audio"]).name]
    assert len(list((out / "covers").iterdir())) == 1


def test_audio_is_hard_linked_unless_copy_is_asked(tmp_path: Path) -> None:
    track = make_track(tmp_path / "music/A/One/1.mp3", 1.5, album="One", artist="A", picture=image_bytes(RED))
    linked = import_dataset([tmp_path / "music"], tmp_path / "linked", downloader=downloader(tmp_path))
    copied = import_dataset([tmp_path / "music"], tmp_path / "copied", downloader=downloader(tmp_path), link=False)
    assert os.path.samefile(track, tmp_path / "linked" / linked.albums[0]["audio"])
    copy = tmp_path / "copied" / copied.albums[0]["audio"]
    assert not os.path.samefile(track, copy) and copy.read_bytes() == track.read_bytes()


def test_genre_from_audio_hook_fills_what_the_artist_cannot(tmp_path: Path) -> None:
    make_track(tmp_path / "music/Solo/Only/1.ogg", 1.5, album="Only", artist="Solo", picture=image_bytes(RED))
    make_track(
        tmp_path / "music/Duo/Tagged/1.ogg",
        1.5,
        album="Tagged",
        artist="Duo",
        genre="Folk",
        picture=image_bytes(RED),
    )
    heard: list[tuple[str, bytes]] = []

    def tagger(path: Path) -> str | None:
        heard.append((path.name, path.read_bytes()))  # staged beside DATA while the import runs
        return " Smooth_Jazz "

    out = tmp_path / "DATA"
    albums = {
        r["album"]: r
        for r in import_dataset(
            [tmp_path / "music"], out, downloader=downloader(tmp_path), genre_from_audio=tagger
        ).albums
    }
    only = out / albums["Only"]["audio"]
    assert heard == [(only.name, only.read_bytes())]
    assert (albums["Only"]["genres"], albums["Only"]["genre_source"]) == (["smooth jazz"], "audio")
    assert albums["Tagged"]["genres"] == ["folk"]


def test_output_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    make_track(tmp_path / "music/A/One/1.mp3", 1.5, album="One", artist="A")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match=r"out: expected a new, empty or dataset folder .* found also notes.txt"):
        import_dataset([tmp_path / "music"], tmp_path / "out", downloader=downloader(tmp_path))
    with pytest.raises(DatasetError, match="nowhere: no such file or folder"):
        import_dataset([tmp_path / "nowhere"], tmp_path / "new", downloader=downloader(tmp_path))
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(DatasetError, match=r"notes.md: expected a music folder or a manifest .* found a .md file"):
        import_dataset([tmp_path / "notes.md"], tmp_path / "new", downloader=downloader(tmp_path))
    (tmp_path / "notes.txt").write_text("x")  # Excel saves tables as .txt: read as one, it names what it lacks
    with pytest.raises(DatasetError, match=r"notes.txt: no albums \(expected a header row naming artist, album"):
        import_dataset([tmp_path / "notes.txt"], tmp_path / "new", downloader=downloader(tmp_path))
    with pytest.raises(DatasetError, match="eval fraction must be at least 0 and below 1, found 1.5"):
        import_dataset([tmp_path / "music"], tmp_path / "new", eval_fraction=1.5)


def test_the_dataset_inside_a_source_is_not_read_back(tmp_path: Path) -> None:
    make_track(tmp_path / "A/One/1.mp3", 1.5, album="One", artist="A", picture=image_bytes(RED))
    for _ in range(2):
        report = import_dataset([tmp_path], tmp_path / "DATA", downloader=downloader(tmp_path))
        assert [r["album"] for r in report.albums] == ["One"] and report.skipped == []


def test_folder_of_singles_is_several_albums_and_a_compilation_is_various_artists(tmp_path: Path) -> None:
    make_track(tmp_path / "Singles/a.mp3", 1.0, album="Alpha Single", artist="A", picture=image_bytes(RED))
    make_track(tmp_path / "Singles/b.mp3", 1.0, album="Beta Single", artist="Beta")
    (tmp_path / "Singles/cover.jpg").write_bytes(image_bytes(BLUE))  # whose? neither's
    make_track(tmp_path / "Mix/1.ogg", 1.0, album="Mix", artist="One")
    make_track(tmp_path / "Mix/2.ogg", 1.0, album="Mix", artist="Two")
    make_track(tmp_path / "Mix/3.ogg", 1.0, album="Mix", artist="Three")
    found = {c.album: c for c in scan_music_folder(tmp_path)}
    assert set(found) == {"Alpha Single", "Beta Single", "Mix"}
    assert [c.kind for c in found["Alpha Single"].covers] == ["embedded"]
    assert found["Beta Single"].covers == []
    assert found["Mix"].artist == "Various Artists"
    assert [t.song for t in found["Mix"].tracks] == ["1", "2", "3"]  # equal lengths: file name order


# --- tags and covers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["mp3", "flac", "ogg", "opus", "m4a"])
def test_tags_and_front_cover_of_each_format(tmp_path: Path, ext: str) -> None:
    picture = image_bytes(BLUE, fmt="PNG")
    path = make_track(
        tmp_path / f"t.{ext}",
        1.0,
        album="Alb",
        artist="Art",
        album_artist="Band",
        title="Song",
        genre="Rock; Dream Pop",
        year=1987,
        picture=picture,
    )
    tags = read_tags(path)
    assert (tags.album, tags.artist, tags.album_artist, tags.title) == ("Alb", "Art", "Band", "Song")
    assert (tags.genres, tags.year, tags.has_picture) == (("Rock", "Dream Pop"), 1987, True)
    assert tags.duration == pytest.approx(1.0, abs=0.06)
    assert embedded_picture(path) == picture


def test_back_cover_is_not_taken_for_the_front(tmp_path: Path) -> None:
    path = make_track(tmp_path / "t.flac", 1.0, album="Alb", picture=image_bytes(RED), picture_type=4)
    assert embedded_picture(path) is None and not read_tags(path).has_picture


def test_unreadable_file_gives_empty_tags_and_the_reason(tmp_path: Path) -> None:
    (tmp_path / "x.mp3").write_bytes(b"nothing" * 40)
    tags = read_tags(tmp_path / "x.mp3")
    assert tags.album is None and tags.error is not None and "tags unreadable" in tags.error


def test_cover_files_are_found_by_name_in_any_case(tmp_path: Path) -> None:
    names = [
        "AlbumArt_{7F3A}_Large.jpg",
        "AlbumArtSmall.jpg",
        "Folder.PNG",
        "front.jpeg",
        "booklet.jpg",
        "Cover.JPG",
        "notes.txt",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    found = [p.name for p in find_cover_files(tmp_path)]
    assert found == [
        "Cover.JPG",
        "front.jpeg",
        "Folder.PNG",
        "AlbumArt_{7F3A}_Large.jpg",
        "AlbumArtSmall.jpg",
    ]


def test_covers_are_normalised_to_rgb(tmp_path: Path) -> None:
    jpeg = image_bytes(RED, (80, 64))
    kept = normalise_cover(jpeg, "a.jpg")
    assert (kept.data, kept.extension, kept.width, kept.height) == (jpeg, ".jpg", 80, 64)
    rgba = normalise_cover(image_bytes((0, 0, 255, 0), fmt="PNG", mode="RGBA"), "b.png")
    assert rgba.extension == ".png" and Image.open(BytesIO(rgba.data)).getpixel((1, 1)) == (255, 255, 255)
    cmyk = normalise_cover(image_bytes((0, 255, 255, 0), fmt="JPEG", mode="CMYK"), "c.jpg")
    assert cmyk.extension == ".jpg" and Image.open(BytesIO(cmyk.data)).mode == "RGB"
    webp = normalise_cover(image_bytes(GREEN, fmt="WEBP"), "e.webp")
    assert webp.extension == ".png" and close(Image.open(BytesIO(webp.data)).getpixel((9, 9)), GREEN)
    rotated = BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown rotated by 90 degrees
    Image.new("RGB", (100, 70), GREEN).save(rotated, "JPEG", exif=exif)
    upright = normalise_cover(rotated.getvalue(), "d.jpg")
    assert (upright.width, upright.height) == (70, 100) and Image.open(BytesIO(upright.data)).size == (
        70,
        100,
    )


def test_unusable_covers_name_the_file_and_the_problem() -> None:
    with pytest.raises(CoverError, match=r"^tiny.png: cover is 40x30 px, at least 64 px on each side is needed$"):
        normalise_cover(image_bytes(RED, (40, 30), fmt="PNG"), "tiny.png")
    with pytest.raises(CoverError, match=r"^cut.jpg: not a readable image"):
        normalise_cover(image_bytes(RED)[:200], "cut.jpg")
    with pytest.raises(CoverError, match=r"^page.jpg: not a readable image"):
        normalise_cover(b"<html>not found</html>", "page.jpg")
    with pytest.raises(CoverError, match=r"^empty.jpg: image is empty \(0 bytes\)$"):
        normalise_cover(b"", "empty.jpg")


def test_check_audio_rejects_empty_and_silent_files(tmp_path: Path) -> None:
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty.mp3: file is empty \(0 bytes\)"):
        check_audio(tmp_path / "empty.mp3")
    silent = make_track(tmp_path / "silent.flac", 2.0)
    from audio_files import tone, write_audio

    write_audio(silent, tone(2.0, 44100, amplitude=0.0), 44100)
    with pytest.raises(AudioError, match="silent.flac: audio is silent"):
        check_audio(silent)
    assert check_audio(make_track(tmp_path / "ok.opus", 2.0)).duration == pytest.approx(2.0, abs=0.05)


# --- cleaning and split ----------------------------------------------------------------------------------


def test_genre_names_are_normalised() -> None:
    assert [normalise_genre(g) for g in ["Hip-Hop", "  HIP   hop ", "RnB", "Synth Pop", "Dance_Pop", "K Pop"]] == [
        "hip hop",
        "hip hop",
        "r&b",
        "synthpop",
        "dance pop",
        "k-pop",
    ]
    assert normalise_genres(["Rock", "rock", "nan", "", "Unknown", "Pop"]) == ["rock", "pop"]


def test_genres_are_read_from_lists_and_text() -> None:
    assert split_genres("pop, dance pop; r&b | soul") == ["pop", "dance pop", "r&b", "soul"]
    assert split_genres("['pop', 'dance pop']") == ["pop", "dance pop"]
    assert split_genres('["rock"]') == ["rock"]
    assert split_genres(["a", None, " b "]) == ["a", "b"]
    assert split_genres(None) == []


def test_genres_are_filled_from_the_artist_else_unknown() -> None:
    by_artist = artist_genres([("Beyoncé", ["r&b", "pop"]), ("BEYONCE", ["pop"]), ("Other", [])])
    assert by_artist == {"beyonce": ["pop", "r&b"]}
    assert fill_genres(["soul"], "Beyonce", by_artist) == (["soul"], "source")
    assert fill_genres([], "beyoncé", by_artist) == (["pop", "r&b"], "artist")
    assert fill_genres([], "Other", by_artist) == (["unknown"], "unknown")
    assert fill_genres([], "Other", by_artist, Path("a.mp3"), lambda path: None) == (["unknown"], "unknown")


def test_duplicates_are_recognised_across_case_accents_and_punctuation() -> None:
    assert album_key("Sigur Rós", "Ágætis byrjun") == album_key("SIGUR ROS", "agaetis byrjun!")
    assert album_key("Simon & Garfunkel", "Bookends") == album_key("Simon and Garfunkel", "Bookends")
    assert album_key("A", "Live") != album_key("A", "Live 2")


def seed_sized_artists() -> list[str]:
    """4899 albums by artists with one to six albums each, like the seed's."""
    rng = random.Random(7)
    artists: list[str] = []
    while len(artists) < 4899:
        artists += [f"Artist {len(artists)}"] * min(rng.choice([1, 1, 1, 2, 2, 3, 4, 6]), 4899 - len(artists))
    return artists


def test_split_matches_the_seed_and_keeps_artists_on_one_side() -> None:
    artists = seed_sized_artists()
    splits = assign_splits(artists, 0.3, seed=0)
    assert (splits.count("train"), splits.count("eval")) == (3429, 1470)
    sides: dict[str, set[str]] = {}
    for artist, split in zip(artists, splits, strict=True):
        sides.setdefault(artist, set()).add(split)
    assert all(len(s) == 1 for s in sides.values())
    assert assign_splits(["Beyoncé", "BEYONCE", "beyonce"] + [f"x{i}" for i in range(7)], 0.5).count("eval") == 5
    grouped = assign_splits(["Beyoncé", "BEYONCE", "beyonce"] + [f"x{i}" for i in range(7)], 0.5)
    assert len(set(grouped[:3])) == 1


def test_split_is_deterministic_whatever_the_row_order() -> None:
    artists = seed_sized_artists()[:500]
    first = dict(zip(artists, assign_splits(artists, 0.3, seed=3), strict=True))
    shuffled = artists[:]
    random.Random(1).shuffle(shuffled)
    again = dict(zip(shuffled, assign_splits(shuffled, 0.3, seed=3), strict=True))
    assert again == first
    other_seed = dict(zip(artists, assign_splits(artists, 0.3, seed=4), strict=True))
    assert other_seed != first
    assert assign_splits(["A"], 0.3) == ["train"]
    with pytest.raises(DatasetError, match="eval fraction must be at least 0 and below 1, found -0.1"):
        assign_splits(artists, -0.1)


def test_import_split_keeps_artists_apart(tmp_path: Path) -> None:
    for artist in range(6):
        for album in range(artist % 3 + 1):
            make_track(
                tmp_path / f"music/Artist{artist}/Album{album}/1.mp3",
                1.0,
                album=f"Album {album}",
                artist=f"Artist {artist}",
                picture=image_bytes(RED),
            )
    first = import_dataset([tmp_path / "music"], tmp_path / "one", downloader=downloader(tmp_path), seed=5)
    second = import_dataset([tmp_path / "music"], tmp_path / "two", downloader=downloader(tmp_path), seed=5)
    assert [(r["id"], r["split"]) for r in first.albums] == [(r["id"], r["split"]) for r in second.albums]
    sides: dict[str, set[str]] = {}
    for row in first.albums:
        sides.setdefault(row["artist"], set()).add(row["split"])
    assert all(len(s) == 1 for s in sides.values()) and first.count("eval") == round(0.3 * 12)


# --- manifests and downloads -----------------------------------------------------------------------------


@pytest.fixture
def server():
    with FileServer() as files:
        yield files


@pytest.fixture(scope="module")
def preview_bytes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("previews")
    return {
        name: make_track(tmp / f"{name}.mp3", 2.0, freq).read_bytes()
        for name, freq in [("a", 300), ("b", 400), ("c", 500), ("d", 600)]
    }


def test_manifest_csv_with_urls(tmp_path: Path, server: FileServer, preview_bytes: dict[str, bytes]) -> None:
    for name, data in preview_bytes.items():
        server.files[f"/preview/{name}"] = data  # no extension, as Spotify preview URLs
    server.files.update({"/c/a.jpg": image_bytes(RED), "/c/b.png": image_bytes(GREEN, fmt="PNG")})
    server.files.update({"/c/c.jpg": image_bytes(BLUE), "/c/html.jpg": b"<html>oops</html>"})
    server.failures["/preview/b"] = [(503, {"Retry-After": "0"})]  # one failure, then the file
    server.breaks["/preview/c"] = 5000  # the connection drops after 5000 bytes, once
    (tmp_path / "local.mp3").write_bytes(preview_bytes["d"])
    (tmp_path / "art").mkdir()
    (tmp_path / "art/local.png").write_bytes(image_bytes(YELLOW, fmt="PNG"))
    url = server.url
    manifest = tmp_path / "albums.csv"
    lines = [
        "Artist Name,Album,Song,Genres,Popularity,Top Emotions,preview_url,Cover URL",
        f"One,Album One,Hit,\"['pop', 'Dance Pop']\",1.2M views,joy; calm,{url('/preview/a')},{url('/c/a.jpg')}",
        f'Two,Album Two,Retry,Rock,"1,234",,{url("/preview/b")},{url("/c/b.png")}',
        f"Three,Album Three,Resume,,,,{url('/preview/c')},{url('/c/c.jpg')}",
        f"One,Album Four,Other,,5,,{url('/preview/a')},{url('/c/a.jpg')}",
        f"Four,Gone Cover,x,Jazz,,,{url('/preview/a')},{url('/c/missing.jpg')}",
        f"Five,No Preview,x,Jazz,,,,{url('/c/a.jpg')}",
        f"ONE,album one!,Hit,Pop,,,{url('/preview/a')},{url('/c/a.jpg')}",
        f"Six,Html Cover,x,,,,{url('/preview/a')},{url('/c/html.jpg')}",
        "Seven,Local Files,Here,Folk,7,,local.mp3,art/local.png",
        f"Eight,Bad Popularity,x,,lots,,{url('/preview/a')},{url('/c/a.jpg')}",
    ]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "DATA"
    report = import_dataset([manifest], out, downloader=downloader(tmp_path))
    albums, reasons = rows(out), skipped(out)
    assert set(albums) == {"Album One", "Album Two", "Album Three", "Album Four", "Local Files"}
    one = albums["Album One"]
    assert (one["song"], one["genres"], one["popularity"], one["emotions"]) == (
        "Hit",
        ["pop", "dance pop"],
        1.2e6,
        ["joy", "calm"],
    )
    assert one["audio"].endswith(".mp3")  # named after the codec: the URL has no extension
    assert one["source"] == f"{manifest}:2"
    assert albums["Album Four"]["genres"] == ["pop", "dance pop"] and albums["Album Four"]["genre_source"] == "artist"
    assert albums["Album Three"]["genres"] == ["unknown"]
    assert albums["Album Two"]["popularity"] == 1234
    assert (out / albums["Album Two"]["audio"]).read_bytes() == preview_bytes["b"]
    assert server.requests_for("/preview/b") == [None, None]  # retried after the 503
    assert (out / albums["Album Three"]["audio"]).read_bytes() == preview_bytes["c"]
    assert server.requests_for("/preview/c") == [None, "bytes=5000-"]  # resumed where it broke
    assert (out / albums["Local Files"]["audio"]).read_bytes() == preview_bytes["d"]
    assert close(color_of(out / albums["Local Files"]["file_name"]), YELLOW)
    assert close(color_of(out / albums["Album One"]["file_name"]), RED)
    assert reasons["Gone Cover"] == f"{url('/c/missing.jpg')}: download failed after 1 try (HTTP 404 Not Found)"
    assert reasons["No Preview"] == f"{manifest}:7: empty preview_url"
    assert reasons["album one!"].startswith(f"duplicate of {one['id']}")
    assert reasons["Html Cover"].startswith(f"{url('/c/html.jpg')}: not a readable image")
    assert (
        reasons["Bad Popularity"]
        == f"{manifest}:11: column Popularity: expected a number such as 1234, 1,234 or 1.2M, found 'lots'"
    )
    assert report.summary().startswith("imported 5 albums") and "skipped 5" in report.summary()
    requests = len(server.requests)
    import_dataset([manifest], tmp_path / "AGAIN", downloader=downloader(tmp_path))
    assert server.requests[requests:] == [("/c/missing.jpg", None)]  # the cache has everything else
    assert rows(tmp_path / "AGAIN") == albums


# a manifest's location: a URL to download (True) or a local path (False)
LOCATIONS = [
    ("http://example.org/p.mp3", True),
    ("HTTP://example.org/p.mp3", True),
    ("Https://example.org/p.mp3", True),
    ("hTtPs://example.org/p.mp3", True),
    ("http:///p.mp3", True),  # no host: a URL still, whose download fails naming it
    ("http://[::1/p.mp3", True),  # a broken IPv6 host: likewise
    ("ftp://example.org/p.mp3", False),
    ("file:///music/p.mp3", False),
    ("httpx://example.org/p.mp3", False),
    ("C:\\Music\\p.mp3", False),
    ("c:/Music/p.mp3", False),
    ("H:p.mp3", False),
    ("music/a:b.mp3", False),
    ("./http:p.mp3", False),
    ("p.mp3", False),
    ("/music/p.mp3", False),
    ("", False),
]


@pytest.mark.parametrize(("location", "expected"), LOCATIONS)
def test_a_manifest_location_is_a_url_by_its_scheme_in_any_case(location: str, expected: bool) -> None:
    assert is_url(location) is expected


@given(
    scheme=st.sampled_from(["http", "https"]).flatmap(
        lambda s: st.tuples(*(st.sampled_from([c, c.upper()]) for c in s))
    )
)
def test_every_spelling_of_an_http_scheme_is_a_url_to_both_checks(scheme: tuple[str, ...]) -> None:
    location = "".join(scheme) + "://example.org/p.mp3"
    assert is_url(location) and web_url(location)


def test_a_manifest_url_with_an_upper_case_scheme_is_downloaded(
    tmp_path: Path, server: FileServer, preview_bytes: dict[str, bytes]
) -> None:
    server.files.update({"/p/a": preview_bytes["a"], "/c/a.jpg": image_bytes(RED)})
    shout = server.url("").replace("http://", "HTTP://", 1).rstrip("/")
    manifest = tmp_path / "albums.csv"
    manifest.write_text(f"Artist,Album,preview,cover\nOne,Album One,{shout}/p/a,{shout}/c/a.jpg\n")
    import_dataset([manifest], tmp_path / "DATA", downloader=downloader(tmp_path))
    one = rows(tmp_path / "DATA")["Album One"]
    assert one["audio_source"] == f"{shout}/p/a"
    assert (tmp_path / "DATA" / one["audio"]).read_bytes() == preview_bytes["a"]
    assert close(color_of(tmp_path / "DATA" / one["file_name"]), RED)


def test_a_malformed_manifest_url_skips_its_album_naming_it(tmp_path: Path, preview_bytes: dict[str, bytes]) -> None:
    (tmp_path / "p.mp3").write_bytes(preview_bytes["a"])
    (tmp_path / "c.jpg").write_bytes(image_bytes(RED))
    manifest = tmp_path / "albums.csv"
    bad = "http://[::1/p.mp3"  # a broken IPv6 host: urlsplit raises ValueError on it
    manifest.write_text(f"Artist,Album,preview,cover\nOne,Broken,{bad},c.jpg\nTwo,Fine,p.mp3,c.jpg\n")
    import_dataset([manifest], tmp_path / "DATA", downloader=downloader(tmp_path))
    assert set(rows(tmp_path / "DATA")) == {"Fine"}
    assert skipped(tmp_path / "DATA")["Broken"] == (
        f"{bad}: not a URL that can be downloaded (expected an http(s) URL with a host)"
    )


def test_manifest_json_in_pandas_and_record_shapes(tmp_path: Path, preview_bytes: dict[str, bytes]) -> None:
    (tmp_path / "p.mp3").write_bytes(preview_bytes["a"])
    (tmp_path / "c.jpg").write_bytes(image_bytes(RED))
    columns = {
        "artist": {"0": "X", "1": "Y"},
        "album": {"0": "Xa", "1": "Ya"},
        "genres": {"0": ["Hip-Hop"], "1": None},
        "top_emotions": {"0": {"sad": 0.2, "calm": 0.7}, "1": [{"name": "joy", "score": 0.9}]},
        "popularity": {"0": 10, "1": None},
        "preview": {"0": "p.mp3", "1": "p.mp3"},
        "cover": {"0": "c.jpg", "1": "c.jpg"},
        "release_date": {"0": "1999-05-01", "1": None},
    }
    (tmp_path / "columns.json").write_text(json.dumps(columns))
    records = [{"Artist": "Z", "Album": "Za", "Song": "Zs", "genre": "Soul", "Preview": "p.mp3", "Cover": "c.jpg"}]
    (tmp_path / "records.json").write_text(json.dumps({"albums": records}))
    (tmp_path / "lines.jsonl").write_text(json.dumps({**records[0], "Album": "Zb"}) + "\n")
    found = [read_manifest(tmp_path / name) for name in ("columns.json", "records.json", "lines.jsonl")]
    assert [c.source for c in found[0] + found[1] + found[2]] == [
        f"{tmp_path / 'columns.json'}:index 0",
        f"{tmp_path / 'columns.json'}:index 1",
        f"{tmp_path / 'records.json'}:row 1",
        f"{tmp_path / 'lines.jsonl'}:1",
    ]
    x, y = found[0]
    assert (x.artist, x.album, x.genres, x.emotions, x.popularity, x.year) == (
        "X",
        "Xa",
        ["Hip-Hop"],
        ["calm", "sad"],
        10,
        1999,
    )
    assert (y.genres, y.emotions, y.popularity, y.year) == ([], ["joy"], None, None)
    assert x.tracks[0].location == str(tmp_path / "p.mp3") and x.covers[0].kind == "file"
    assert [(c.album, c.tracks[0].song, c.genres) for c in found[1] + found[2]] == [
        ("Za", "Zs", ["Soul"]),
        ("Zb", "Zs", ["Soul"]),
    ]
    report = import_dataset(
        [tmp_path / "columns.json", tmp_path / "records.json"],
        tmp_path / "DATA",
        downloader=downloader(tmp_path),
    )
    assert [(r["album"], r["genres"]) for r in report.albums] == [
        ("Xa", ["hip hop"]),
        ("Ya", ["unknown"]),
        ("Za", ["soul"]),
    ]


def test_manifest_without_a_required_column_names_what_it_expected(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("artist;album;cover\nA;B;c.jpg\n")
    with pytest.raises(DatasetError) as error:
        read_manifest(tmp_path / "m.csv")
    message = str(error.value)
    assert message.startswith(
        f"{tmp_path / 'm.csv'}: no column for preview (expected preview: one of preview, previewurl"
    )
    assert message.endswith("found columns ['album', 'artist', 'cover']")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"bad.json: not valid JSON"):
        read_manifest(tmp_path / "bad.json")
    (tmp_path / "bad.jsonl").write_text('{"artist": "A"}\n\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:3: not valid JSON"):
        read_manifest(tmp_path / "bad.jsonl")
    (tmp_path / "scalar.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match=r"scalar.json: expected a list of album objects"):
        read_manifest(tmp_path / "scalar.json")
    (tmp_path / "empty.csv").write_text("artist,album,preview,cover\n")
    with pytest.raises(DatasetError, match=r"empty.csv: no albums \(expected a header row naming artist, album, "):
        read_manifest(tmp_path / "empty.csv")


def test_popularity_numbers_as_scraped() -> None:
    assert [parse_number(v) for v in (12, "1,234,567", "1.2M views", "3k", "", None, float("nan"))] == [
        12.0,
        1234567.0,
        1.2e6,
        3000.0,
        None,
        None,
        None,
    ]
    with pytest.raises(ValueError, match="found 'many'"):
        parse_number("many")


def test_download_resumes_a_partial_file_and_caches(tmp_path: Path, server: FileServer) -> None:
    data = bytes(range(256)) * 400
    server.files["/big.bin"] = data
    fetcher = downloader(tmp_path)
    target = fetcher.cached_path(server.url("/big.bin"))
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(data[:40000])  # left by an interrupted run
    assert fetcher.fetch(server.url("/big.bin")).read_bytes() == data
    assert server.requests_for("/big.bin") == ["bytes=40000-"]
    assert not target.with_name(target.name + ".part").exists() and target.suffix == ".bin"
    assert fetcher.fetch(server.url("/big.bin")) == target and len(server.requests) == 1


def test_download_retries_with_backoff_then_gives_up(tmp_path: Path, server: FileServer) -> None:
    waits: list[float] = []
    server.files["/x.mp3"] = b"data"
    server.failures["/x.mp3"] = [(503, {}), (429, {"Retry-After": "7"}), (500, {}), (502, {})]
    fetcher = Downloader(tmp_path, retries=3, backoff=0.5, rate_limit=None, sleep=waits.append)
    with pytest.raises(DownloadError, match=r"x.mp3: download failed after 4 tries \(HTTP 502 Bad Gateway\)$"):
        fetcher.fetch(server.url("/x.mp3"))
    assert waits == [0.5, 7.0, 2.0]  # doubling backoff, except where the server says how long to wait
    assert fetcher.fetch(server.url("/x.mp3")).read_bytes() == b"data"


@pytest.mark.parametrize(("sent", "words"), [(0, "0 bytes"), (1, "1 byte"), (2, "2 bytes"), (9, "9 bytes")])
def test_a_broken_download_counts_the_bytes_it_got(tmp_path: Path, server: FileServer, sent: int, words: str) -> None:
    server.files[f"/cut{sent}.bin"] = bytes(10)
    server.breaks[f"/cut{sent}.bin"] = sent  # the connection drops after `sent` of the 10 bytes
    with pytest.raises(DownloadError, match=rf"after 1 try \(connection broke after {words} \("):
        downloader(tmp_path, retries=0).fetch(server.url(f"/cut{sent}.bin"))


def test_download_rate_limit_spaces_requests(tmp_path: Path, server: FileServer) -> None:
    waits: list[float] = []
    for name in "abc":
        server.files[f"/{name}"] = b"x"
    fetcher = Downloader(tmp_path, rate_limit=4.0, sleep=waits.append)
    for name in "abc":
        fetcher.fetch(server.url(f"/{name}"))
    # this sleep returns at once, so the third request is due two intervals after the first
    assert len(waits) == 2 and 0.15 < waits[0] <= 0.25 and 0.4 < waits[1] <= 0.5


# --- command line ----------------------------------------------------------------------------------------


def test_cli_imports_and_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_track(tmp_path / "music/A/One/1.mp3", 1.5, album="One", artist="A", picture=image_bytes(RED))
    make_track(tmp_path / "music/B/Two/1.mp3", 1.5, album="Two", artist="B")
    out = tmp_path / "DATA"
    argv = [
        "dataset",
        "import",
        str(tmp_path / "music"),
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert main([*argv, "--quiet", "--eval-fraction", "0", "--copy"]) == 0
    assert capsys.readouterr().out == (
        f"imported 1 album (train 1, eval 0), skipped 1 (see {out / 'skipped.jsonl'}); not in tags: "
        "genre unknown for 1 (artist_source, album_source, genre_source in metadata.jsonl)\n"
    )
    assert main(["dataset", "import", str(tmp_path / "missing"), "--out", str(out), "--quiet"]) == 2
    missing = tmp_path / "missing"
    assert capsys.readouterr().err == f"nopaingan dataset import: error: {missing}: no such file or folder\n"


@pytest.mark.parametrize("earlier", [True, False])
def test_an_unreachable_download_server_stops_the_import_and_names_its_folder(
    tmp_path: Path, server: FileServer, preview_bytes: dict[str, bytes], capsys, earlier: bool
) -> None:
    server.files.update({"/p/a": preview_bytes["a"], "/p/b": preview_bytes["b"], "/c/a.jpg": image_bytes(RED)})
    manifest, out = tmp_path / "albums.csv", tmp_path / "DATA"
    argv = ["dataset", "import", str(manifest), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    head = "Artist Name,Album,preview_url,Cover URL\n"
    manifest.write_text(head + f"One,Album One,{server.url('/p/a')},{server.url('/c/a.jpg')}\n")
    if earlier:
        assert main(argv) == 0
        capsys.readouterr()
    before = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    # the earlier album's cover changed since, a second album is new, and the server of a third does not answer
    server.files["/c/a.jpg"] = image_bytes(BLUE)
    server.failures["/p/c"] = [(503, {})] * 10
    manifest.write_text(
        head
        + f"One,Album One,{server.url('/p/a')},{server.url('/c/a.jpg')}\n"
        + f"Two,Album Two,{server.url('/p/b')},{server.url('/c/a.jpg')}\n"
        + f"Three,Album Three,{server.url('/p/c')},{server.url('/c/a.jpg')}\n"
    )
    shutil.rmtree(tmp_path / "c", ignore_errors=True)  # a fresh cache: the changed cover is downloaded again
    assert main([*argv, "--retries", "1"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err and captured.out == "", captured.err
    host = server.url("").split("//")[1].rstrip("/")
    assert lines[0].startswith(f"nopaingan dataset import: error: {host}: the download server did not answer (")
    kept = (
        f"{out} was left as it was (no file there was added, replaced or removed)"
        if earlier
        else f"no dataset was written ({out} was not created)"
    )
    assert f"after 2 tries; {kept}; try again later or raise --retries" in lines[0]
    after = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {k: v for k, v in after.items() if k.startswith("DATA")} == {
        k: v for k, v in before.items() if k.startswith("DATA")
    }
    assert out.exists() == earlier
    assert list(tmp_path.rglob(".nopaingan-*")) == []  # no staging folder left


def test_progress_says_importing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_track(tmp_path / "music/A/One/1.mp3", 1.5, album="One", artist="A", picture=image_bytes(RED))
    argv = ["dataset", "import", str(tmp_path / "music"), "--out", str(tmp_path / "DATA")]
    assert main([*argv, "--cache-dir", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "importing albums" in err and "fetching" not in err


# names as they are, and the words of their id; the hash of the album's key follows
IDS = [
    ("Sigur Rós", "Ágætis byrjun", "sigur-ros-agaetis-byrjun"),
    ("Æther Realm", "Tarot", "aether-realm-tarot"),
    ("Kaizers Orchestra", "Ompa til du dør", "kaizers-orchestra-ompa-til-du-dor"),
    ("Die Ärzte", "Straße", "die-arzte-strasse"),
    ("ẞ", "Œuvres complètes", "ss-oeuvres-completes"),
    ("Łona", "Łódź", "lona-lodz"),
    ("Đorđe Balašević", "Neki novi klinci", "dorde-balasevic-neki-novi-klinci"),
    ("Þursaflokkurinn", "Þursabit", "thursaflokkurinn-thursabit"),
    ("Mǫrð", "Ħal Ŧŋ", "mord-hal-tng"),
    ("Əlibəy Hüseynov", "Ölkə", "elibey-huseynov-olke"),  # the schwa of Azerbaijani
    ("Ɓaƙi Ɗan", "Ƴaƴa", "baki-dan-yaya"),  # Hausa's hooked letters
    ("Ɔdɔ", "Ɛyɛ", "odo-eye"),  # Akan's open o and e
    ("ƒ", "Ɨŋ ǝ Ꜳ", "f-ing-e-aa"),  # a hook, a stroke, a turned e, a ligature named after its letters
    ("Sigur Ros", "( )", "sigur-ros"),
    ("坂本龍一", "音楽図鑑", ""),  # no Latin letters: the hash alone
]


@pytest.mark.parametrize(("artist", "album", "words"), IDS)
def test_album_ids_transliterate_letters_instead_of_dropping_them(artist: str, album: str, words: str) -> None:
    name = album_id(artist, album)
    digest = hashlib.sha1(album_key(artist, album).encode("utf-8")).hexdigest()[:8]
    assert name == (f"{words}-{digest}" if words else digest)


def _ascii_album_id_before(artist: str, album: str, folder: str = "") -> str:
    """album_id as it was before letters were transliterated: ids of ASCII names must not change."""
    text = unicodedata.normalize("NFKD", f"{artist} {album}").encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60].rstrip("-")
    digest = hashlib.sha1((album_key(artist, album) + folder).encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else digest


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)), st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_names_keep_their_ids(artist: str, album: str) -> None:
    assert album_id(artist, album) == _ascii_album_id_before(artist, album)
    assert album_id(artist, album, "folder") == _ascii_album_id_before(artist, album, "folder")


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_album_ids_are_ascii_file_names(artist: str, album: str) -> None:
    name = album_id(artist, album)
    assert re.fullmatch(r"([a-z0-9]+(-[a-z0-9]+)*-)?[0-9a-f]{8}", name)
    # stable: the same id however the names are encoded (composed accents or not, compatibility forms)
    forms = ("NFC", "NFD", "NFKC", "NFKD")
    assert {album_id(unicodedata.normalize(f, artist), unicodedata.normalize(f, album)) for f in forms} == {name}


# every letter Unicode names as a Latin base letter with marks ("LATIN SMALL LETTER D WITH STROKE", đ), and that
# base letter; the two-letter ones (ǅ: "D WITH SMALL LETTER Z WITH CARON") left out
BASE_LETTER = re.compile(r"LATIN (?:SMALL |CAPITAL )?LETTER ([A-Z])(?: WITH (?!SMALL LETTER).+)?")
BASE_LETTERS = {
    char: match.group(1).lower()
    for char in map(chr, range(0x80, 0x30000))
    if unicodedata.category(char) in ("Lu", "Ll", "Lt") and (match := BASE_LETTER.fullmatch(unicodedata.name(char, "")))
}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(BASE_LETTERS)), min_size=1, max_size=6), st.sampled_from(["", "Best Of"]))
def test_no_latin_letter_is_dropped_from_an_id(letters: list[str], album: str) -> None:
    """Each Latin letter with a stroke, hook, bar or accent gives its base letter to the id's words, whether Unicode
    decomposes it (é) or not (đ, ɓ, ƒ)."""
    words = "".join(BASE_LETTERS[char] for char in letters) + ("-best-of" if album else "")
    assert album_id("".join(letters), album)[:-9] == words  # before "-" and the hash


@pytest.mark.parametrize("out", ["a/x/../DATA", "a/x/w/../../DATA", "x/../a/DATA", "a/x/../y/z/../DATA"])
def test_import_out_with_dots_after_a_missing_folder_makes_only_that_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str
) -> None:
    """--out a/x/../DATA with no a/x: the dataset goes where mkdir -p puts it (a/DATA) and no a/x is left behind
    (the check named the folder as mkdir -p does, the import wrote through the path as typed)."""
    make_track(tmp_path / "music/A/One/1.mp3", 1.5, album="One", artist="A", picture=image_bytes(RED))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_dir()}
    argv = ["dataset", "import", "music", "--out", out, "--cache-dir", "c", "--quiet", "--eval-fraction", "0"]
    assert main(argv) == 0
    data = Path(os.path.normpath(out))
    assert (tmp_path / data / "metadata.jsonl").is_file()
    made = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_dir()} - before
    assert {p for p in made if data not in (p, *p.parents) and p.parts[0] != "c"} == (
        {p for p in data.parents if p != Path(".")} - before
    )


@pytest.mark.parametrize("cache", ["a/x/../CACHE", "a/x/w/../../CACHE", "x/../a/CACHE", "a/./x/../y/../CACHE"])
def test_import_cache_dir_with_dots_after_a_missing_folder_is_the_folder_checked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: FileServer,
    preview_bytes: dict[str, bytes],
    cache: str,
) -> None:
    """--cache-dir a/x/../CACHE with no a/x: the downloads go where the check looked (a/CACHE, as mkdir -p names
    it), and no a/x is left behind (the check's result was dropped and the cache made through the path as typed)."""
    server.files.update({"/p/a": preview_bytes["a"], "/c/a.jpg": image_bytes(RED)})
    monkeypatch.chdir(tmp_path)
    Path("a").mkdir()
    Path("albums.csv").write_text(f"Artist Name,Album,preview_url,Cover URL\nA,One,{server.url('/p/a')},"
                                  f"{server.url('/c/a.jpg')}\n")  # fmt: skip
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_dir()}
    argv = ["dataset", "import", "albums.csv", "--out", "DATA", "--cache-dir", cache, "--quiet", "--eval-fraction", "0"]
    assert main(argv) == 0
    made = Path(os.path.normpath(cache))
    assert sorted(p.read_bytes() for p in made.rglob("*") if p.is_file()) == sorted([preview_bytes["a"],
                                                                                      image_bytes(RED)])  # fmt: skip
    new = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_dir()} - before
    assert {p for p in new if p.parts[0] != "DATA"} == {made, *(p for p in made.parents if p != Path("."))} - before


@pytest.mark.parametrize("again", ["same", "dot", "relative", "symlink"])
def test_a_source_named_twice_is_read_once_with_a_note(library, imported, tmp_path, capsys, monkeypatch, again):
    """`dataset import music ./music` scanned and decoded the folder twice (its albums then deduplicated): each
    file or folder is read once, however named, with a note naming both spellings; the result is the same."""
    import training.dataset_import as module

    scanned = []
    scan = module.scan_music_folder
    monkeypatch.setattr(module, "scan_music_folder", lambda root, **kw: scanned.append(root) or scan(root, **kw))
    (tmp_path / "link").symlink_to(library)
    monkeypatch.chdir(library.parent)
    spelled = {"same": str(library), "dot": f"./{library.name}", "relative": library.name, "symlink": tmp_path / "link"}
    out = tmp_path / "DATA"
    argv = ["dataset", "import", str(library), str(spelled[again]), "--out", str(out), "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"note: source {library} given again as {spelled[again]}: read once"  # as typed
    assert len(scanned) == 1
    assert lines[-1].startswith(imported[1].summary().replace(str(imported[0]), str(out)).split(" (see")[0])
