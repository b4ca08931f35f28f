"""Music encoders on tiny models loaded through the same code path as hub ids."""

from __future__ import annotations

import pytest
import torch

from nopaingan_core.encoders import detect_kind, load_encoder
from nopaingan_core.errors import ModelLoadError, ModelNotFoundError, NoPainGanError

KINDS = ["codified-lm", "mert", "clap"]


@pytest.fixture(scope="module")
def encoders(tiny_models):
    return {kind: load_encoder(kind, str(tiny_models[kind])) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_shape_rate_and_determinism(encoders, song, kind):
    encoder = encoders[kind]
    first = encoder.encode(song)
    second = encoder.encode(song.to_comfy())
    frames = first.features.shape[1]
    assert first.features.shape == (1, frames, encoder.dim)
    assert frames == pytest.approx(song.duration * encoder.info.frame_rate, rel=0.05)
    assert torch.equal(first.features, second.features)
    assert torch.isfinite(first.features).all()
    assert first.encoder.kind == kind and first.duration == pytest.approx(song.duration)


@pytest.mark.parametrize("kind", KINDS)
def test_batches_and_sample_rates(encoders, song, kind):
    """A batch of two equals the two encoded one by one; any input rate is resampled.

    EnCodec's nearest-code search can flip a code on a near tie between batch sizes (the tiny model's
    random codebooks have many), so for codified-lm the features must agree in direction, not to 1e-4."""
    other = torch.roll(song.waveform, 8000, dims=-1)
    batch = torch.cat([song.waveform, other])
    together = encoders[kind].encode(batch, song.sample_rate).features
    alone = encoders[kind].encode(other, song.sample_rate).features
    assert together.shape[0] == 2
    if kind == "codified-lm":
        assert torch.nn.functional.cosine_similarity(together[1], alone[0], dim=-1).min() > 0.99
    else:
        assert torch.allclose(together[1], alone[0], atol=1e-4)
    assert not torch.allclose(together[0], together[1])


def test_long_audio_is_cut_to_the_representative_window(encoders, song):
    long = torch.cat([song.waveform] * 4, dim=-1)  # 32 s
    emb = encoders["mert"].encode(long, song.sample_rate)
    assert emb.duration == pytest.approx(25.0)
    assert emb.features.shape[1] == pytest.approx(25 * 75, rel=0.02)


def test_codified_lm_uses_the_delay_pattern_with_bos(encoders, song):
    enc = encoders["codified-lm"]
    codes = enc.codes(song.resample(enc.sample_rate).mono().waveform[:, 0])
    delayed = enc.delayed(codes)
    k, frames = codes.shape[1], codes.shape[2]
    assert delayed.shape == (k, frames + k)
    for book in range(k):
        row = delayed[book]
        assert (row[: book + 1] == enc.bos).all()  # BOS, then the delay's padding
        assert torch.equal(row[book + 1 : book + 1 + frames], codes[0, book])
        assert (row[book + 1 + frames :] == enc.bos).all()


def test_codified_lm_runs_only_layers_up_to_the_chosen_one(tiny_models, song):
    """The embedding of layer 2 equals the full model's hidden state after layer 2, computed by the
    untruncated MusicGen decoder on the same delayed codes."""
    from transformers import MusicgenForConditionalGeneration

    enc = load_encoder("codified-lm", str(tiny_models["codified-lm"]), layer=2)
    assert len(enc.decoder.layers) == 2
    full = MusicgenForConditionalGeneration.from_pretrained(str(tiny_models["codified-lm"])).decoder.model.decoder
    wave = song.resample(enc.sample_rate).mono().waveform[:, 0]
    captured = {}
    full.layers[1].register_forward_hook(lambda m, i, o: captured.setdefault("h", o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():  # as encode() runs; with autograd on, other conv kernels can flip near-tie codes
        codes = enc.codes(wave)
        full(input_ids=enc.delayed(codes), encoder_hidden_states=None, use_cache=False)
    k = enc.num_codebooks
    expected = captured["h"][:, k : k + codes.shape[-1]]
    assert torch.allclose(enc.encode(song).features, expected, atol=1e-5)


def test_codified_lm_refuses_a_checkpoint_with_missing_weights(tiny_models, tmp_path):
    """MusicgenForCausalLM alone (or a damaged composite) must not load as random weights silently."""
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "musicgen"
    broken.mkdir()
    for f in tiny_models["codified-lm"].iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            (broken / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(tiny_models["codified-lm"] / "model.safetensors"))
    save_file(
        {k: v for k, v in weights.items() if not k.startswith("decoder.model.decoder.layers.0.")},
        str(broken / "model.safetensors"),
        metadata={"format": "pt"},
    )
    with pytest.raises(ModelLoadError, match="lacks .* weights"):
        load_encoder("codified-lm", str(broken))


def test_layer_out_of_range(tiny_models):
    with pytest.raises(ModelLoadError, match="layer must be between 1 and 4, found 9"):
        load_encoder("mert", str(tiny_models["mert"]), layer=9)


def test_detect_kind_from_config(tiny_models):
    for kind in KINDS:
        assert detect_kind(str(tiny_models[kind])) == kind
    assert detect_kind("facebook/musicgen-small") == "codified-lm"
    with pytest.raises(NoPainGanError, match="model type 'unet|not a supported|no config.json"):
        detect_kind(str(tiny_models["sd"] / "unet"))


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist; pass a model folder with --mir"):
        load_encoder("mert", str(tmp_path / "nowhere"))
    with pytest.raises(NoPainGanError, match="unknown encoder kind 'jukebox'"):
        load_encoder("jukebox", "x")


@pytest.mark.parametrize("layers", [2, 8])
def test_tiny_musicgen_depth_sets_the_layer_read(tmp_path, layers):
    """The benchmark's deeper tiny MusicGen: the encoder keeps and reads the middle of ``layers`` decoder layers."""
    from nopaingan_core.tiny import build_tiny_musicgen

    folder = build_tiny_musicgen(tmp_path / "musicgen", layers=layers)
    encoder = load_encoder("codified-lm", str(folder))
    assert encoder.info.layer == layers // 2 == len(encoder.decoder.layers)
    wave = torch.sin(torch.arange(32000) / 32000 * 2 * torch.pi * 220.0)
    features = encoder.encode(wave[None], 32000).features
    assert features.shape == (1, 50, 32) and torch.isfinite(features).all()
