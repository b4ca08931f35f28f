"""AUDIO values from other packs: ComfyUI's AUDIO is a convention, not a class. Any mapping with a waveform and
a sample rate is taken, integer PCM is scaled by its type's range, and every malformed value is an AudioError
that says what was found, never another exception: in the library's encoders and in the MIR Encode and Music
Tags nodes as ComfyUI loads them."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nopaingan_core.audio import as_clip
from nopaingan_core.encoders import ENCODER_KINDS, load_encoder
from nopaingan_core.errors import AudioError


class LazyAudio(Mapping):
    """A read-only mapping that builds its waveform when first asked, as some packs' AUDIO values do."""

    def __init__(self, make, sample_rate) -> None:
        self._make, self._rate, self._wave = make, sample_rate, None

    def __getitem__(self, key):
        if key == "waveform":
            if self._wave is None:
                self._wave = self._make()
            return self._wave
        if key == "sample_rate":
            return self._rate
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("waveform", "sample_rate"))

    def __len__(self) -> int:
        return 2


DTYPES = [
    *["float32", "float16", "bfloat16", "float64", "int16", "int32", "int8", "uint8", "int64", "bool", "complex64"],
    *[">i2", ">i4", ">f4", ">f8", "longdouble", "int16 as float", "sparse", "meta"],
]
RATES = st.one_of(
    st.sampled_from([8000, 16000, 22050]),
    st.sampled_from([np.int32(16000), np.int64(8000), np.float64(16000.0), 16000.0]),
    st.sampled_from(["tensor0d", "tensor1", "tensor2"]),
    st.sampled_from([0, -8000, 12.5, float("nan"), True, "16000", None, 10**9, 10**400, -(10**400)]),
    st.sampled_from([np.longdouble(16000), np.longdouble("inf"), float("inf"), np.uint64(2**64 - 1)]),
)


def _pcm(wave: torch.Tensor, dtype: str) -> torch.Tensor | np.ndarray:
    if dtype.startswith((">", "<")):  # explicit byte order; big-endian as read from AIFF or a network stream
        return np.asarray(_pcm(wave, np.dtype(dtype).newbyteorder("=").name)).astype(dtype)
    if dtype == "longdouble":
        return torch.nan_to_num(wave).double().numpy().astype(np.longdouble)
    if dtype == "int16 as float":  # another pack did .float() on int16 PCM
        return _pcm(wave, "int16").float()
    if dtype == "sparse":
        return wave.float().to_sparse()
    if dtype == "meta":
        return wave.float().to("meta")
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        half = (int(info.max) - int(info.min) + 1) / 2
        wave = torch.nan_to_num(wave)  # integers hold no NaN
        levels = np.asarray(np.round(wave.double().numpy() * (half - 1) + info.min + half))
        return torch.from_numpy(levels.astype(dtype))
    if dtype == "bool":
        return wave > 0
    return wave.to(getattr(torch, dtype))


def _plain(value: object) -> bool:
    """A tensor with samples in memory (not sparse, not on the meta device)."""
    return isinstance(value, torch.Tensor) and value.layout == torch.strided and not value.is_meta


def _raiser(error: type[Exception]):
    def load():
        raise error("the file behind it is gone")

    return load


@st.composite
def audio_values(draw):
    """(AUDIO value, whether a valid encoder input can be expected) over dtypes, ranks, batches, channels,
    rate types, lengths, NaN, silence, empty tensors and values that are no AUDIO at all."""
    rank = draw(st.sampled_from([3, 3, 3, 2, 1, 0, 4]))
    batch, channels = draw(st.integers(0, 2)), draw(st.sampled_from([0, 1, 2, 6]))
    batch, channels = (batch, channels) if rank >= 3 else (1, channels if rank == 2 else 1)
    seconds = draw(st.sampled_from([0.0, 0.2, 0.5, 0.7, 1.0, 2.3]))
    rate = draw(RATES)
    numeric_rate = 8000 if not isinstance(rate, (int, float, np.number)) or isinstance(rate, bool) else rate
    samples = round(seconds * (numeric_rate if 1000 <= numeric_rate <= 96000 else 8000))
    t = torch.arange(samples) / 8000.0
    wave = (0.4 * torch.sin(2 * math.pi * 220.0 * t)).expand(batch, channels, samples).clone()
    if draw(st.booleans()) and wave.numel():
        wave.view(-1)[draw(st.integers(0, wave.numel() - 1))] = float("nan")
    if draw(st.integers(0, 9)) == 0:
        wave.zero_()
    wave = wave.reshape(wave.shape[3 - rank :]) if 1 <= rank <= 3 else wave[None] if rank == 4 else torch.tensor(0.3)
    value = _pcm(wave, draw(st.sampled_from(DTYPES)))
    if draw(st.integers(0, 9)) == 0:
        value = value.numpy() if _plain(value) and value.dtype != torch.bfloat16 else value
    if isinstance(rate, str) and rate.startswith("tensor"):
        rate = {"tensor0d": torch.tensor(16000), "tensor1": torch.tensor([8000]), "tensor2": torch.tensor([1, 2])}[rate]
    kind = draw(st.sampled_from(["dict", "dict", "lazy", "failing", "no rate", "list", "not audio"]))
    if kind == "lazy":
        return LazyAudio(lambda: value, rate)
    if kind == "failing":  # a lazy mapping whose loader fails
        return LazyAudio(_raiser(draw(st.sampled_from([OSError, RuntimeError, ValueError, KeyError]))), rate)
    if kind == "no rate":
        return {"waveform": value}
    if kind == "list":
        listed = value.tolist() if _plain(value) or isinstance(value, np.ndarray) else value
        return {"waveform": listed, "sample_rate": rate}
    if kind == "not audio":
        return draw(st.sampled_from([None, "song.wav", [value], 3]))
    return {"waveform": value, "sample_rate": rate}


def _embedding_or_audio_error(run, error_class, value) -> None:
    try:
        result = run(value)
    except error_class as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    features = result.features
    assert features.ndim == 3 and features.shape[0] >= 1 and torch.isfinite(features).all()


@pytest.fixture(scope="module")
def encoders(tiny_models):
    return {kind: load_encoder(kind, str(tiny_models[kind])) for kind in ENCODER_KINDS}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=audio_values())
def test_any_audio_value_gives_an_embedding_or_one_audio_error(encoders, value):
    for encoder in encoders.values():
        _embedding_or_audio_error(encoder.encode, AudioError, value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=audio_values())
def test_mir_encode_and_music_tags_nodes_take_any_audio_value(pack, mir_node, value):
    """The same values through the nodes as ComfyUI loads them: an embedding and tags, or the pack's AudioError."""
    error = pack.nopaingan_core.errors.AudioError
    encode = pack.NODE_CLASS_MAPPINGS["NoPainGanMIREncode"]()
    _embedding_or_audio_error(lambda v: encode.encode(v, mir_node)[0], error, value)
    tags = pack.NODE_CLASS_MAPPINGS["NoPainGanMusicTags"]()
    try:
        words, scores = tags.tag(value, "larger_clap_music", 2)
    except error as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(words, str) and isinstance(scores, str) and scores


@pytest.fixture(scope="module")
def mir_node(pack):
    loader = pack.NODE_CLASS_MAPPINGS["NoPainGanMIREncoderLoader"]()
    return loader.load("codified-lm", "musicgen-small", -1, "default", "fp32")[0]


@pytest.mark.parametrize("dtype", ["int16", "int32", "int8", "uint8"])
def test_integer_pcm_is_scaled_by_its_range(encoders, dtype):
    """int16 PCM of a tone is heard as the float tone it encodes, not 32768 times louder."""
    t = torch.arange(16000) / 16000.0
    wave = (0.4 * torch.sin(2 * math.pi * 330.0 * t))[None, None]
    clip = as_clip({"waveform": _pcm(wave, dtype), "sample_rate": 16000})
    assert torch.allclose(clip.waveform, wave, atol=2.0 / np.iinfo(dtype).max * 2)
    assert clip.waveform.abs().max() == pytest.approx(0.4, abs=0.01)
    encoder = encoders["mert"]
    as_float = encoder.encode({"waveform": clip.waveform, "sample_rate": 16000}).features
    as_int = encoder.encode({"waveform": _pcm(wave, dtype), "sample_rate": 16000}).features
    assert torch.equal(as_int, as_float)


@pytest.mark.parametrize(
    "rate", [np.int64(16000), np.int32(16000), torch.tensor(16000), torch.tensor([16000]), 16000.0, np.float32(16000)]
)
def test_sample_rate_of_any_integer_type(rate):
    clip = as_clip(LazyAudio(lambda: torch.randn(1, 2, 16000) * 0.1, rate))
    assert clip.sample_rate == 16000 and type(clip.sample_rate) is int


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ({"waveform": torch.randn(1, 1, 8000)}, "found 'waveform'"),
        ({"waveform": [0.1] * 8000, "sample_rate": 8000}, "found list"),
        ({"waveform": torch.randn(1, 1, 8000), "sample_rate": "8000"}, "found '8000' (str)"),
        ({"waveform": torch.randn(1, 1, 8000), "sample_rate": 8000.5}, "found 8000.5"),
        ({"waveform": torch.randn(1, 1, 8000), "sample_rate": torch.tensor([1, 2])}, "shape [2]"),
        ({"waveform": torch.randn(2, 1, 1, 8000), "sample_rate": 8000}, "found shape [2, 1, 1, 8000]"),
        ({"waveform": torch.randn(1, 8000, 2), "sample_rate": 8000}, "8000 channels"),
        ({"waveform": torch.ones(1, 1, 8000, dtype=torch.bool), "sample_rate": 8000}, "torch.bool"),
        ({"waveform": torch.randn(1, 0, 8000), "sample_rate": 8000}, "empty"),
        (None, "found NoneType"),
    ],
)
def test_malformed_values_say_what_was_found(value, found):
    with pytest.raises(AudioError) as err:
        as_clip(value)
    assert found in str(err.value)


def _tone(seconds: float = 1.0, rate: int = 16000) -> torch.Tensor:
    t = torch.arange(round(seconds * rate)) / rate
    return (0.4 * torch.sin(2 * math.pi * 330.0 * t))[None, None]


@pytest.mark.parametrize("dtype", [">i2", ">i4", ">f4", ">f8", "<i2", "<f4", "longdouble"])
def test_foreign_byte_orders_and_long_double_are_read_as_their_values(dtype):
    wave = _tone()
    native = np.dtype(dtype).newbyteorder("=").name if dtype != "longdouble" else "float64"
    expected = as_clip({"waveform": _pcm(wave, native), "sample_rate": 16000}).waveform
    clip = as_clip({"waveform": _pcm(wave, dtype), "sample_rate": 16000})
    assert torch.equal(clip.waveform, expected)
    assert clip.waveform.abs().max() == pytest.approx(0.4, abs=0.01)


def test_sparse_tensors_are_made_dense():
    wave = _tone()
    assert torch.equal(as_clip({"waveform": wave.to_sparse(), "sample_rate": 16000}).waveform, wave)


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ({"waveform": torch.tensor([[[0, 13000, -13000] * 4000]]), "sample_rate": 8000}, "64-bit integer PCM"),
        ({"waveform": torch.tensor([[[0, 1, 2] * 4000]], dtype=torch.uint64), "sample_rate": 8000}, "torch.uint64"),
        ({"waveform": _pcm(_tone(), "int16").float(), "sample_rate": 16000}, "integer PCM cast to float"),
        ({"waveform": _tone() * 6, "sample_rate": 16000}, "peaks at 2.4"),
        ({"waveform": _tone().to("meta"), "sample_rate": 16000}, "'meta' device"),
        ({"waveform": _tone(), "sample_rate": 10**400}, "found a 401-digit number"),
        ({"waveform": _tone(), "sample_rate": np.longdouble("inf")}, "whole number"),
        (LazyAudio(_raiser(OSError), 16000), "reading 'waveform' failed (OSError: the file behind it is gone)"),
    ],
)
def test_ambiguous_and_unreadable_values_say_why(value, found):
    with pytest.raises(AudioError) as err:
        as_clip(value)
    assert found in str(err.value) and "\n" not in str(err.value)
