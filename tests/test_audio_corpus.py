"""A generated corpus of audio files as they arise in the wild: every container, sample format, rate and channel
layout the pack reads, lengths from the 0.5 s minimum to minutes, tags in foreign encodings, files joined
byte for byte. Each decodes to its length (within one codec packet) at one rate, or is refused with one line
naming the file."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
import torch
from audio_corpus import CODECS, TAG_VALUES, Spec, id3v1, id3v22, join, riff_info, signal, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nopaingan_core import audio
from nopaingan_core.audio import MIN_SECONDS
from nopaingan_core.errors import AudioError
from training.cli import main

LOSSY = ("libmp3lame", "vorbis", "libopus", "aac")
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def specs(draw, shortest: float = MIN_SECONDS, longest: float = 4.0):
    ext = draw(st.sampled_from(sorted(CODECS)))
    codec = draw(st.sampled_from(sorted(CODECS[ext][1])))
    formats, rates, layouts = CODECS[ext][1][codec]
    return Spec(
        ext,
        codec,
        draw(st.sampled_from(formats)),
        draw(st.sampled_from(rates)),
        draw(st.sampled_from(layouts)),
        round(draw(st.floats(shortest, longest)), 3),
    )


def decoded_rate(spec: Spec) -> int:
    return 48000 if spec.codec == "libopus" else spec.rate  # Opus always decodes at 48 kHz


def check_decodes(path, seconds: float, rate: int, tolerance: float) -> audio.AudioClip:
    clip = audio.decode(path)
    assert clip.sample_rate == rate
    assert clip.duration == pytest.approx(seconds, abs=tolerance)
    features = audio.second_features(path)
    assert features.shape[0] in (math.floor(clip.duration), math.ceil(clip.duration))
    assert torch.isfinite(features).all()
    return clip


@FAST
@given(spec=specs(), encoding=st.sampled_from(["utf-8", "cp1252", "latin-1", "utf-16"]))
def test_every_format_decodes_to_its_length_at_one_rate(tmp_path_factory, spec, encoding):
    path = tmp_path_factory.mktemp("corpus") / f"song.{spec.ext}"
    write(path, spec, metadata=TAG_VALUES, metadata_encoding=encoding)
    clip = check_decodes(path, spec.seconds, decoded_rate(spec), spec.frame_seconds)
    assert clip.waveform.shape[1] == av.AudioLayout(spec.layout).nb_channels
    if clip.duration > 1.5:  # a window taken by seeking is that window of the whole decode
        rate = clip.sample_rate
        part = audio.decode(path, 1.0, 0.4).waveform[0, 0]
        whole = clip.waveform[0, 0, rate : rate + part.shape[0]]
        assert part.shape[0] == round(0.4 * rate)
        if spec.codec in LOSSY:
            assert torch.corrcoef(torch.stack([part, whole]))[0, 1] > 0.9
        else:
            assert torch.allclose(part, whole, atol=1e-5)
    offset = audio.representative_offset(audio.second_features(path), 25.0)
    if clip.waveform.shape[-1] < math.floor(MIN_SECONDS * clip.sample_rate):  # a lossy codec ended it early
        with pytest.raises(AudioError, match="at least 0.5 s"):
            audio.load_audio(path)
    else:
        assert audio.load_audio(path).offset == offset == 0.0  # shorter than the window: used whole


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=specs(1.0, 3.0), second=specs(1.0, 3.0))
def test_joined_mp3_and_chained_ogg_decode_whole_at_the_first_rate(tmp_path_factory, first, second):
    """mp3 joiners and Ogg stream rips put whole files one after another, with other rates and channels."""
    kind = first.ext if first.ext in ("mp3", "ogg", "opus") else "mp3"
    first, second = (
        _like(first, kind, 0),
        _like(second, kind, 1),
    )
    folder = tmp_path_factory.mktemp("joined")
    a, b = write(folder / f"a.{kind}", first), write(folder / f"b.{kind}", second)
    path = join(folder / f"joined.{kind}", a, b)
    # the second file's encoder delay and padding are audio now: its header, which told a decoder to trim them,
    # is in the middle of the stream
    tolerance = first.frame_seconds + 3 * second.frame_seconds
    check_decodes(path, first.seconds + second.seconds, decoded_rate(first), tolerance)
    # a window after the joint is found by counting samples, whatever the timestamps say
    part = audio.decode(path, first.seconds + 0.2, 0.5)
    assert part.sample_rate == decoded_rate(first) and part.duration == pytest.approx(0.5, abs=1e-3)


def _like(spec: Spec, ext: str, index: int) -> Spec:
    """``spec`` moved to container ``ext``: its codec's formats, rates and layouts, chosen from what was drawn."""
    codec = spec.codec if spec.ext == ext else sorted(CODECS[ext][1])[0]
    formats, rates, layouts = CODECS[ext][1][codec]
    pick = spec.rate // 1000 + 3 * index + len(spec.sample_fmt)
    fmt, rate, layout = formats[pick % len(formats)], rates[pick % len(rates)], layouts[pick % len(layouts)]
    return Spec(ext, codec, fmt, rate, layout, spec.seconds)


@pytest.mark.parametrize(
    "spec",
    [
        Spec("flac", "flac", "s16", 8000, "mono", 180.0),
        Spec("opus", "libopus", "s16", 8000, "mono", 61.7),  # an album track ending in a partial second
        Spec("wav", "pcm_u8", "u8", 8000, "mono", 95.6),
    ],
)
def test_long_files(tmp_path, spec):
    path = write(tmp_path / f"long.{spec.ext}", spec)
    check_decodes(path, spec.seconds, decoded_rate(spec), spec.frame_seconds)
    clip = audio.load_audio(path)
    assert clip.duration == pytest.approx(25.0, abs=1e-3) and clip.offset + 25.0 <= spec.seconds + 1.0


def test_tags_in_every_format_never_stop_the_audio(tmp_path):
    spec = Spec("mp3", "libmp3lame", "fltp", 44100, "stereo", 1.5)
    mp3 = write(tmp_path / "a.mp3", spec)
    raw = mp3.read_bytes()
    variants = {
        "v22.mp3": id3v22({"TP1": "Ñandú", "TAL": "Café"}) + raw,
        "stacked.mp3": id3v22({"TP1": "first"}) + id3v22({"TAL": "second"}) + raw,
        "v1.mp3": raw + id3v1("Été", "Beyoncé", "Café", "1999"),
    }
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        check_decodes(tmp_path / name, 1.5, 44100, spec.frame_seconds)
    wav = write(tmp_path / "info.wav", Spec("wav", "pcm_s16le", "s16", 16000, "mono", 1.0))
    riff_info(wav, TAG_VALUES, "cp1252")
    check_decodes(wav, 1.0, 16000, 1e-3)
    assert audio.container_tags(wav)["artist"] == "Beyoncé Ñandú"


@FAST
@given(
    seconds=st.floats(MIN_SECONDS, 130.0),
    rate=st.sampled_from([8000, 16000, 22050, 44100]),
    data=st.data(),
)
def test_any_length_and_block_layout_gives_one_row_per_second(monkeypatch, seconds, rate, data):
    """Per-second analysis of any stream cut into blocks of any size: whole seconds and a last partial one of
    at least 0.5 s; the representative window lies inside the song."""
    total = round(seconds * rate)
    cuts = sorted(data.draw(st.lists(st.integers(1, total - 1), max_size=8, unique=True)))
    wave = signal(total / rate, rate, 1)[0]
    blocks = np.split(wave, cuts)

    def frames(path, start=0.0):
        position = 0.0
        for block in blocks:
            yield position, block[None], rate
            position += block.shape[0] / rate

    with monkeypatch.context() as patch:
        patch.setattr(audio, "_frames", frames)
        features = audio.second_features("blocks", block_seconds=data.draw(st.integers(1, 60)))
    whole, rest = divmod(total, rate)
    assert features.shape == (whole + (rest >= MIN_SECONDS * rate or whole == 0), 33)
    offset = audio.representative_offset(features, 25.0)
    assert 0 <= offset <= max(0.0, features.shape[0] - 25)


@pytest.mark.parametrize("seconds", [0.5, 0.73, 1.0, 25.6, 31.55])
def test_partial_seconds_through_every_encoder_and_the_cli(tmp_path, tiny_models, capsys, seconds):
    spec = Spec("wav", "pcm_s16le", "s16", 16000, "mono", seconds)
    path = write(tmp_path / "short.wav", spec)
    for kind in ("codified-lm", "mert", "clap"):
        out = tmp_path / f"{kind}.safetensors"
        assert main(["encode", "--audio", str(path), "--mir", str(tiny_models[kind]), "--out", str(out)]) == 0
        assert out.is_file()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.mp3", b""),
        ("noise.mp3", bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8))),
        ("text.wav", b"RIFF not really a wave file" * 40),
        ("short.flac", None),
    ],
)
def test_unusable_files_are_one_line_naming_the_file(tmp_path, tiny_models, capsys, name, content):
    path = tmp_path / name
    if content is None:
        write(path, Spec("flac", "flac", "s16", 8000, "mono", 0.3))
    else:
        path.write_bytes(content)
    out = tmp_path / "e.safetensors"
    code = main(["encode", "--audio", str(path), "--mir", str(tiny_models["codified-lm"]), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(AudioError, match=str(path)):
        audio.load_audio(path)


def test_partial_seconds_in_generate_without_offset_and_dataset_cache(tmp_path, tiny_models):
    """The other two ways a song's window is chosen: `generate` without --offset, and `dataset cache`."""
    from training_data import make_dataset

    from training.cache import cache_dataset

    path = write(tmp_path / "short.opus", Spec("opus", "libopus", "s16", 16000, "mono", 0.73))
    sd, mir = str(tiny_models["sd"]), str(tiny_models["codified-lm"])
    argv = ["generate", "--audio", str(path), "--album", "A", "--genre", "jazz", "--sd", sd, "--mir", mir]
    argv += ["--steps", "2", "--width", "64", "--height", "64", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert list((tmp_path / "out").glob("*.png"))
    data = make_dataset(tmp_path / "data", train=1, eval=1, seconds=1.73)
    cache_dataset(data, sd, mir, resolution=64, shard_size=4, progress=False)
    assert any((data).rglob("*.safetensors"))


@pytest.mark.parametrize(
    "spec",
    [
        Spec("wav", "pcm_s16le", "s16", 16000, "7.1", 1.2),
        Spec("wav", "pcm_f32le", "flt", 8000, "hexadecagonal", 1.0),
        Spec("flac", "flac", "s16", 22050, "7.1", 1.1),
        Spec("wav", "pcm_s32le", "s32", 48000, "7.1", 0.6),
    ],
)
def test_many_channels_decode_every_channel_in_order(tmp_path, spec):
    """7.1 and 16-channel files: each channel decoded, in order (planar frames of 8+ channels crashed PyAV)."""
    path = write(tmp_path / f"wide.{spec.ext}", spec)
    channels = av.AudioLayout(spec.layout).nb_channels
    clip = check_decodes(path, spec.seconds, spec.rate, spec.frame_seconds)
    assert clip.waveform.shape[1] == channels
    if spec.codec.startswith("pcm") or spec.codec == "flac":
        written = signal(spec.seconds, spec.rate, channels)
        assert np.allclose(clip.waveform[0].numpy(), written, atol=2e-4)
    assert audio.load_audio(path).waveform.shape[1] == channels


JOINED = [  # (first, its bit rate, second, its bit rate): the header's length is far off in both directions
    (
        Spec("mp3", "libmp3lame", "fltp", 22050, "mono", 2.0),
        32000,
        Spec("mp3", "libmp3lame", "fltp", 48000, "stereo", 6.0),
        320000,
    ),
    (
        Spec("mp3", "libmp3lame", "s16p", 48000, "stereo", 2.0),
        320000,
        Spec("mp3", "libmp3lame", "fltp", 22050, "mono", 8.0),
        32000,
    ),
    (Spec("aac", "aac", "fltp", 16000, "mono", 2.0), 24000, Spec("aac", "aac", "fltp", 48000, "stereo", 6.0), 256000),
    (Spec("aac", "aac", "fltp", 48000, "stereo", 2.0), 256000, Spec("aac", "aac", "fltp", 22050, "mono", 6.0), 24000),
]


@pytest.mark.parametrize(("first", "first_rate", "second", "second_rate"), JOINED)
def test_lengths_and_windows_of_joined_files_come_from_the_samples(tmp_path, first, first_rate, second, second_rate):
    """Joined files at other bit rates: the container's length is an estimate minutes off; tag windows, import
    checks and windows cut at an offset follow the samples decoded."""
    from types import SimpleNamespace

    from nopaingan_core.tagging import MusicTagger
    from training.dataset_import import check_audio

    a = write(tmp_path / f"a.{first.ext}", first, bit_rate=first_rate)
    b = write(tmp_path / f"b.{first.ext}", second, bit_rate=second_rate)
    path = join(tmp_path / f"joined.{first.ext}", a, b)
    seconds = first.seconds + second.seconds
    tolerance = 3 * (first.frame_seconds + second.frame_seconds)  # ADTS keeps each part's priming and padding
    length = audio.decoded_duration(path)
    assert audio.probe(path).estimated and abs(audio.probe(path).duration - length) > 0.5
    assert length == pytest.approx(seconds, abs=tolerance)
    assert check_audio(path).duration == length
    whole = audio.decode(path)
    rate = whole.sample_rate
    windows = MusicTagger.song_windows(SimpleNamespace(window_seconds=1.0), path, 6)
    assert [c.offset for c in windows] == audio_offsets(length, 1.0, 6)
    assert windows[-1].offset + 1.0 > seconds - 1.5  # the windows reach the end, not only the start
    with pytest.raises(AudioError, match=f"file is {length:.2f} s long"):  # the samples', not the header's
        audio.decode(path, length + 5.0, 1.0)
    for offset in (0.3, first.seconds - 0.1, first.seconds + 0.7, length - 2.0):  # before, across, after the joint
        part = audio.decode(path, offset, 1.0).waveform
        start = round(offset * rate)
        assert torch.allclose(part, whole.waveform[..., start : start + part.shape[-1]], atol=1e-6)
        assert part.shape[-1] == round(1.0 * rate)


def audio_offsets(length: float, window: float, count: int) -> list[float]:
    from nopaingan_core.tagging import window_offsets

    return window_offsets(length, window, count)
