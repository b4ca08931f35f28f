"""The zero-shot music tagger and the tempo estimate, on the tiny CLAP (random weights, real architecture
and tokenizer) and on synthetic songs of known tempo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nopaingan_core import tagging
from nopaingan_core.audio import AudioClip, save_wav
from nopaingan_core.errors import AudioError, ModelLoadError, ModelNotFoundError
from nopaingan_core.prompt import album_prompt
from nopaingan_core.synth import MINOR, synth_song
from nopaingan_core.tagging import (
    LabelError,
    LabelSet,
    MusicTagger,
    Tag,
    load_label_sets,
    read_labels,
    tags_to_prompt_words,
    window_offsets,
)
from nopaingan_core.tempo import estimate_tempo
from training.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def clap(tiny_models) -> str:
    return str(tiny_models["clap"])


@pytest.fixture(scope="module")
def tagger(clap) -> MusicTagger:
    return MusicTagger(clap)


def _concat(*clips: AudioClip) -> AudioClip:
    return AudioClip(torch.cat([c.waveform for c in clips], dim=-1), clips[0].sample_rate)


@pytest.fixture(scope="module")
def halves(tmp_path_factory) -> dict[str, Path]:
    """Two 40 s songs with the same first half: "same" repeats it, "changes" turns into another song."""
    first = synth_song(20.0, sample_rate=24000, tempo=110, root_hz=220)
    other = synth_song(20.0, sample_rate=24000, tempo=160, root_hz=330, mode=MINOR, seed=3)
    folder = tmp_path_factory.mktemp("halves")
    return {
        "same": save_wav(_concat(first, first), folder / "same.wav"),
        "changes": save_wav(_concat(first, other), folder / "changes.wav"),
    }


def test_packaged_label_files_are_editable_text():
    sets = load_label_sets()
    assert [s.category for s in sets] == ["mood", "genre", "instruments", "energy"]
    by_name = {s.category: s for s in sets}
    assert "hip hop" in by_name["genre"].labels and "piano" in by_name["instruments"].labels
    assert by_name["instruments"].prompts()[0] == "This is a song with piano."
    assert by_name["mood"].prompts()[0] == "This is a happy song."
    assert all(len(set(s.labels)) == len(s.labels) > 3 for s in sets)


def test_label_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "colours.txt"
    bad.write_text("# template: A {label} song.\nred\nblue\nred\n")
    with pytest.raises(LabelError, match=r"colours.txt:4: label 'red' is listed twice"):
        read_labels(bad)
    bad.write_text("# template: A song.\nred\n")
    with pytest.raises(LabelError, match=r"colours.txt:1: template must contain \{label\}"):
        read_labels(bad)
    bad.write_text("# only comments\n\n")
    with pytest.raises(LabelError, match="no labels"):
        read_labels(bad)
    with pytest.raises(LabelError, match="found none"):
        load_label_sets(tmp_path / "missing")
    bad.write_text("# template: The {label} one.\n red \n\nblue\n")
    assert read_labels(bad) == LabelSet("colours", ("red", "blue"), "The {label} one.")


def test_windows_spread_from_start_to_end():
    assert window_offsets(60.0, 10.0, 4) == [0.0, 16.667, 33.333, 50.0]
    assert window_offsets(25.0, 10.0, 6) == [0.0, 7.5, 15.0]  # no more windows than fit side by side
    assert window_offsets(6.0, 10.0, 6) == [0.0]
    assert window_offsets(60.0, 10.0, 1) == [25.0]  # one window: the middle
    with pytest.raises(ValueError):
        window_offsets(60.0, 10.0, 0)


def test_label_matching_the_audio_ranks_first(clap):
    """With an audio embedding equal to one label's sentence embedding, that label must win."""
    labels = LabelSet("mood", ("happy", "sad", "angry", "calm"))
    tagger = MusicTagger(clap, labels=[labels])
    for target in labels.labels:
        embedding = tagger.text_embeddings([labels.template.format(label=target)])[0]
        tags = tagger.score(embedding)
        assert tags[0].label == target
        scores = [t.score for t in tags]
        assert scores == sorted(scores, reverse=True)
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)


def test_tags_are_ranked_by_score_with_top_k_per_category(tagger, song):
    result = tagger.tag(song.to_comfy())
    assert result.categories == ["mood", "genre", "instruments", "energy"]
    for label_set in tagger.label_sets:
        tags = [t for t in result.tags if t.category == label_set.category]
        assert sorted(t.label for t in tags) == sorted(label_set.labels)
        assert [t.score for t in tags] == sorted((t.score for t in tags), reverse=True)
        assert sum(t.score for t in tags) == pytest.approx(1.0, abs=1e-5)
        assert result.top(label_set.category, 2) == tags[:2]
    assert [t.category for t in result.ranked(2)] == [c for c in result.categories for _ in range(2)]
    assert len(result.to_text(2).splitlines()) == 2 * 4 + 1
    again = tagger.tag(song.to_comfy())
    assert again.tags == result.tags  # deterministic


def test_windows_cover_the_whole_song(tagger, halves, monkeypatch):
    read: list[tuple[list[float], float]] = []
    real_windows = tagging.decode_windows

    def spy(path, offsets, duration):
        read.append((list(offsets), duration))
        return real_windows(path, offsets, duration)

    monkeypatch.setattr(tagging, "decode_windows", spy)
    same = tagger.tag(halves["same"], windows=4)
    assert read == [([0.0, 10.0, 20.0, 30.0], 10.0)]  # the windows cut in one pass, placed by samples counted
    assert same.windows == (0.0, 10.0, 20.0, 30.0)
    assert same.windows[-1] + same.window_seconds == pytest.approx(40.0)
    changes = tagger.tag(halves["changes"], windows=4)
    assert [t.score for t in changes.tags] != pytest.approx([t.score for t in same.tags], abs=1e-4)
    # only the windows of the first half agree between the two songs
    first, second = (tagger.song_windows(halves[k], 4) for k in ("same", "changes"))
    assert torch.allclose(tagger.audio_embedding(first[:2]), tagger.audio_embedding(second[:2]), atol=1e-5)
    assert not torch.allclose(tagger.audio_embedding(first[2:]), tagger.audio_embedding(second[2:]), atol=1e-3)


def test_file_and_in_memory_audio_give_the_same_tags(tagger, halves):
    from nopaingan_core.audio import decode

    from_file = tagger.tag(halves["changes"], windows=4)
    in_memory = tagger.tag(decode(halves["changes"]).to_comfy(), windows=4)
    assert in_memory.windows == from_file.windows
    assert [t.label for t in in_memory.tags] == [t.label for t in from_file.tags]
    assert [t.score for t in in_memory.tags] == pytest.approx([t.score for t in from_file.tags], abs=1e-4)


def test_silent_windows_are_left_out(tagger, tmp_path):
    song = synth_song(12.0, sample_rate=24000)
    silence = AudioClip(torch.zeros(1, 2, 24000 * 18), 24000)
    path = save_wav(_concat(silence, song), tmp_path / "late_start.wav")
    assert tagger.tag(path, windows=3).windows == (10.0, 20.0)  # 0-10 s is silent
    quiet = save_wav(silence, tmp_path / "silent.wav")
    with pytest.raises(AudioError, match="silent.wav: every window of the song is silent"):
        tagger.tag(quiet)


def test_prompt_words_take_top_k_moods_and_instruments():
    tags = [
        Tag("calm", "mood", 0.2),
        Tag("dreamy", "mood", 0.5),
        Tag("sad", "mood", 0.3),
        Tag("rock", "genre", 0.9),
        Tag("strings", "instruments", 0.1),
        Tag("piano", "instruments", 0.6),
    ]
    words = tags_to_prompt_words(tags, k=2)
    assert words == "Mood: dreamy, sad. Instruments: piano, strings."
    assert tags_to_prompt_words(tags, categories=("genre", "energy"), k=3) == "Genre: rock."
    prompt = album_prompt("Blue Hour", "jazz", extra=words)
    assert prompt == f"Create an album cover for the album Blue Hour. The genre is jazz. {words}"


def test_node_contract_audio_in_words_and_scores_out(clap, song):
    words, scores = tagging.tags_for_prompt(song.to_comfy(), clap=clap, top_k=2)
    result = tagging.get_tagger(clap, device="cpu").tag(song.to_comfy())
    assert tagging.get_tagger(clap) is tagging.get_tagger(clap)  # loaded once
    assert words == result.prompt_words(k=2)
    assert words.startswith("Mood: ") and " Instruments: " in words
    assert scores == result.to_text(2)
    assert scores.splitlines()[-1].startswith("tempo")


def test_genre_from_audio_respects_the_confidence_threshold(clap, halves, tmp_path):
    genres = next(s for s in load_label_sets() if s.category == "genre").labels
    assert tagging.genre_from_audio(halves["same"], clap=clap, min_score=0.0) in genres
    assert tagging.genre_from_audio(halves["same"], clap=clap, min_score=1.0) is None
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio at all")
    assert tagging.genre_from_audio(broken, clap=clap, min_score=0.0) is None


def test_folder_without_tokenizer_is_refused(tiny_models, tmp_path):
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        (tmp_path / name).symlink_to(tiny_models["clap"] / name)
    with pytest.raises(ModelLoadError, match="no CLAP tokenizer"):
        MusicTagger(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="--clap DIR"):
        MusicTagger(str(tmp_path / "absent"))


@pytest.mark.parametrize("bpm", [72, 96, 128, 150])
def test_tempo_of_synthetic_songs(bpm):
    song = synth_song(12.0, sample_rate=22050, tempo=bpm, seed=bpm)
    assert estimate_tempo(song) == pytest.approx(bpm, rel=0.02)
    assert estimate_tempo([song.crop(0, 6), song.crop(6, 6)]) == pytest.approx(bpm, rel=0.02)


def test_tempo_of_clicks_and_of_no_beat():
    rate, bpm = 16000, 100
    wave = torch.zeros(rate * 10)
    noise = 0.25 * torch.randn(200, generator=torch.Generator().manual_seed(0))  # peaks below 1
    for start in range(0, wave.numel() - 200, round(rate * 60 / bpm)):
        wave[start : start + 200] += noise
    assert estimate_tempo(wave, rate) == pytest.approx(bpm, rel=0.02)
    tone = 0.5 * torch.sin(2 * torch.pi * 440 * torch.arange(rate * 10) / rate)
    assert estimate_tempo(tone, rate) is None


def test_cli_tag_json_and_text(clap, halves, capsys):
    assert main(["tag", "--audio", str(halves["same"]), "--clap", clap, "--top-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == clap and out["windows"] == [0.0, 10.0, 20.0, 30.0]
    assert [t["category"] for t in out["tags"]] == ["mood"] * 2 + ["genre"] * 2 + ["instruments"] * 2 + ["energy"] * 2
    assert out["tempo_bpm"] == pytest.approx(110, rel=0.02)
    assert main(["tag", "--audio", str(halves["changes"]), "--clap", clap, "--top-k", "1", "--windows", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["mood", "genre", "instruments", "energy", "tempo"]
    assert all(0.0 < float(line.split()[-1]) <= 1.0 for line in lines[:-1])


def test_cli_generate_auto_tags_puts_tags_in_the_prompt(clap, tiny_models, halves, tmp_path, capsys):
    words = MusicTagger(clap).tag(halves["same"]).prompt_words(k=2)
    argv = ["generate", "--sd", str(tiny_models["sd"]), "--album", "Tiny", "--genre", "rock", "--auto-tags"]
    argv += ["--audio", str(halves["same"]), "--clap", clap, "--top-k", "2", "--steps", "1"]
    assert main([*argv, "--width", "64", "--height", "64", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"prompt: {album_prompt('Tiny', 'rock', extra=words)}\n" in out
    assert len(list(tmp_path.glob("*.png"))) == 1
    assert main(["generate", "--album", "Tiny", "--genre", "rock", "--auto-tags", "--sd", "x"]) == 2
    assert "--auto-tags needs --audio" in capsys.readouterr().err


def test_cli_missing_model_is_one_clear_line(halves):
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "training", "tag", "--audio", str(halves["same"]), "--clap", "nobody/no-such-clap"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "nopaingan tag: error: CLAP model 'nobody/no-such-clap' is not in the Hugging Face cache (HF_HUB_OFFLINE "
        "is set). Get it on a machine with internet with `hf download nobody/no-such-clap` (it lands in the "
        "Hugging Face cache; copy that cache or point HF_HOME at it), or pass a local folder with --clap DIR"
    ]
