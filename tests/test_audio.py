"""Audio in: every format round-trips, windows are chosen without decoding everything, bad input is named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from audio_files import FORMATS, tone, write_audio

from nopaingan_core import audio
from nopaingan_core.errors import AudioError


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_every_format_round_trips(tmp_path, ext):
    rate = FORMATS[ext][2]
    path = write_audio(tmp_path / f"song.{ext}", tone(3.0, rate, 440.0), rate)
    info = audio.probe(path)
    assert info.sample_rate == rate and info.channels == 2
    assert info.duration == pytest.approx(3.0, abs=0.1)
    clip = audio.decode(path, 1.0, 1.0)
    assert clip.waveform.shape == (1, 2, rate)
    assert clip.offset == 1.0 and clip.source == str(path)
    # the decoded tone is the tone that was written: same frequency, similar level
    spectrum = torch.fft.rfft(clip.waveform[0, 0]).abs()
    assert spectrum.argmax().item() == pytest.approx(440, abs=2)
    assert clip.waveform[0, 0].abs().max().item() == pytest.approx(0.5, abs=0.08)


def test_decode_seeks_to_the_offset(tmp_path):
    rate = 16000
    wave = np.concatenate([tone(10, rate, 300.0, channels=1), tone(10, rate, 1200.0, channels=1)], axis=1)
    path = write_audio(tmp_path / "two.flac", wave, rate)
    clip = audio.decode(path, 12.0, 2.0)
    spectrum = torch.fft.rfft(clip.waveform[0, 0]).abs()
    assert spectrum.argmax().item() / 2.0 == pytest.approx(1200, abs=2)
    assert torch.allclose(clip.waveform[0, 0], torch.from_numpy(wave[0, 12 * rate : 14 * rate]), atol=1e-3)


def test_representative_window_skips_intro_and_silence(tmp_path):
    """A song of 20 s quiet intro, 60 s of its main sound, then 20 s of silence: the 25 s window chosen
    lies in the main part, and the decision reads the file as a stream of per-second features."""
    rate = 8000
    intro = tone(20, rate, 200.0, channels=1, amplitude=0.05)
    body = tone(60, rate, 600.0, channels=1) + tone(60, rate, 900.0, channels=1, amplitude=0.2)
    outro = np.zeros((1, 20 * rate), np.float32)
    path = write_audio(tmp_path / "song.wav", np.concatenate([intro, body, outro], axis=1), rate)
    features = audio.second_features(path)
    assert features.shape == (100, 33)
    offset = audio.representative_offset(features, 25.0)
    assert 20.0 <= offset <= 80.0 - 25.0
    clip = audio.load_audio(path)
    assert clip.offset == offset and clip.duration == pytest.approx(25.0)
    assert audio.load_audio(path).offset == offset  # deterministic


def test_long_file_is_not_decoded_whole(tmp_path, monkeypatch):
    """Taking 25 s at an offset decodes about 25 s, not the whole file."""
    rate = 8000
    path = write_audio(tmp_path / "long.wav", tone(600, rate, 300.0, channels=1), rate)
    decoded = []
    frames = audio._frames

    def counting(*args, **kwargs):
        for position, data, r in frames(*args, **kwargs):
            decoded.append(data.shape[-1])
            yield position, data, r

    monkeypatch.setattr(audio, "_frames", counting)
    clip = audio.load_audio(path, offset=500.0)
    assert clip.duration == pytest.approx(25.0)
    assert sum(decoded) < 30 * rate


def test_short_file_is_used_whole(tmp_path):
    path = write_audio(tmp_path / "short.wav", tone(3, 8000, 300.0), 8000)
    clip = audio.load_audio(path)
    assert clip.offset == 0.0 and clip.duration == pytest.approx(3.0)


def test_comfy_audio_layout_round_trips():
    wave = torch.randn(2, 2, 8000) * 0.1
    clip = audio.as_clip({"waveform": wave, "sample_rate": 8000})
    assert torch.equal(clip.to_comfy()["waveform"], wave) and clip.to_comfy()["sample_rate"] == 8000
    assert audio.as_clip(wave[0, 0], 8000).waveform.shape == (1, 1, 8000)
    assert clip.mono().waveform.shape == (2, 1, 8000)
    assert clip.resample(16000).waveform.shape == (2, 2, 16000)


def test_representative_clip_of_a_whole_song_in_memory(song):
    assert audio.representative_clip(song, 30.0) is song
    part = audio.representative_clip(song, 3.0)
    assert part.duration == pytest.approx(3.0) and 0 <= part.offset <= 5.0


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"this is not audio at all" * 100, "not a readable audio file")],
)
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.mp3"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as err:
        audio.load_audio(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        audio.load_audio(tmp_path / "nope.wav")


def test_truncated_file_gives_what_survives_or_a_clear_error(tmp_path):
    path = write_audio(tmp_path / "song.mp3", tone(5.0, 44100), 44100)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    clip = audio.load_audio(cut, offset=0.0)  # documented: a truncated file yields the audio that is there
    assert 1.5 < clip.duration < 3.5
    tiny = tmp_path / "tiny.mp3"
    tiny.write_bytes(data[:200])
    with pytest.raises(AudioError, match=str(tiny)):
        audio.load_audio(tiny, offset=0.0)


def test_non_audio_container(tmp_path):
    from PIL import Image

    path = tmp_path / "cover.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(AudioError, match="no audio stream|not a readable audio file"):
        audio.load_audio(path)


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        (torch.zeros(1, 1, 16000), "silent"),
        (torch.full((1, 1, 16000), float("nan")), "NaN"),
        (torch.randn(1, 1, 100) * 0.1, "at least"),
        (torch.zeros(1, 1, 0), "empty"),
    ],
)
def test_unusable_waveforms(wave, message):
    with pytest.raises(AudioError, match=message):
        audio.as_clip({"waveform": wave, "sample_rate": 16000})


def test_offset_past_the_end(tmp_path):
    path = write_audio(tmp_path / "s.wav", tone(2.0, 8000), 8000)
    with pytest.raises(AudioError, match=r"no audio at offset 10.00 s \(file is 2.00 s long\)"):
        audio.load_audio(path, offset=10.0)


def test_save_wav_round_trip(tmp_path, song):
    path = audio.save_wav(song, tmp_path / "song.wav")
    back = audio.decode(path)
    assert back.sample_rate == song.sample_rate
    assert torch.allclose(back.waveform, song.waveform, atol=1e-6)
