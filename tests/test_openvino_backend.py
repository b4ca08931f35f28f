"""The OpenVINO backend on the tiny models: converted, checked against torch, cached, same images."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

openvino = pytest.importorskip("openvino", reason="OpenVINO is not installed (extra [openvino])")

from nopaingan_core.errors import NoPainGanError  # noqa: E402
from nopaingan_core.generate import SamplerSettings, generate_covers  # noqa: E402
from nopaingan_core.openvino_backend import ConversionError, _check, inference_precision, to_openvino  # noqa: E402
from nopaingan_core.sampling import load_minisd  # noqa: E402

PROMPT = "Create an album cover for the album Tests. The genre is noise."
SETTINGS = SamplerSettings(steps=4, width=64, height=64, seed=1)


@pytest.fixture(scope="module")
def torch_sd(tiny_models):
    return load_minisd(str(tiny_models["sd"]), dtype="fp32", prepack=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("openvino-cache")


@pytest.fixture(scope="module")
def ov_sd(tiny_models, cache):
    return load_minisd(str(tiny_models["sd"]), dtype="fp32", backend="openvino", cache_dir=cache)


def test_same_images_as_torch(torch_sd, ov_sd):
    assert ov_sd.precision == "openvino f32"
    expected = generate_covers(torch_sd, PROMPT, settings=SETTINGS)
    images = generate_covers(ov_sd, PROMPT, settings=SETTINGS)
    assert images.shape == expected.shape == (1, 64, 64, 3) and images.std() > 0.01
    torch.testing.assert_close(images, expected, rtol=0, atol=1e-3)


def test_music_fusion_enters_as_encoder_hidden_states(torch_sd, ov_sd):
    """Any conditioning of the UNet's shape works, e.g. the fusion's; 154 tokens (two prompt chunks) too."""
    from nopaingan_core.sampling import sample

    for tokens in (77, 154):
        cond, uncond = torch.randn(1, tokens, 768), torch.randn(1, tokens, 768)
        options = {"steps": 3, "width": 64, "height": 64, "cfg_cutoff": 0.5}
        torch.testing.assert_close(
            sample(ov_sd, cond, uncond, **options), sample(torch_sd, cond, uncond, **options), rtol=0, atol=1e-3
        )


def test_second_load_reuses_the_converted_models(tiny_models, cache, ov_sd, monkeypatch):
    import nopaingan_core.openvino_backend as backend

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(backend.require_openvino(), "convert_model", no_conversion)
    again = load_minisd(str(tiny_models["sd"]), dtype="fp32", backend="openvino", cache_dir=cache)
    assert sorted(p.name for p in next(cache.glob("*/unet.xml")).parent.glob("*.*")) == [
        "text_encoder.bin",
        "text_encoder.xml",
        "unet.bin",
        "unet.xml",
        "vae_decoder.bin",
        "vae_decoder.xml",
    ]
    torch.testing.assert_close(
        generate_covers(again, PROMPT, settings=SETTINGS), generate_covers(ov_sd, PROMPT, settings=SETTINGS)
    )


def test_compiled_once_per_shape_with_the_pipelines_options(ov_sd, cache):
    """Each model is compiled once per input shape, static, with optimum-intel's pipeline's options (one stream
    of torch's thread count, LATENCY, f32 here); a second image compiles nothing more and nothing compiled is
    written next to the IR (OpenVINO's model cache: slower to load than compiling, see compile_config)."""
    generate_covers(ov_sd, PROMPT, settings=SETTINGS)
    models = {"unet": ov_sd.unet.model, "vae_decoder": ov_sd.vae.model, "text_encoder": ov_sd.text_encoder.model}
    compiled = {name: dict(model.compiled) for name, model in models.items()}
    assert ((2, 4, 8, 8), (1,), (2, 77, 768)) in compiled["unet"]  # other tests may have added other shapes
    assert ((1, 4, 8, 8),) in compiled["vae_decoder"] and ((1, 77),) in compiled["text_encoder"]
    generate_covers(ov_sd, PROMPT, settings=SETTINGS)
    for name, model in models.items():
        assert model.compiled == compiled[name], f"{name} compiled again"
        for shapes, compiled_model in model.compiled.items():
            assert [tuple(port.get_shape()) for port in compiled_model.inputs] == list(shapes)
            assert compiled_model.get_property("INFERENCE_NUM_THREADS") == torch.get_num_threads()
            assert compiled_model.get_property("NUM_STREAMS") == 1
            assert str(compiled_model.get_property("PERFORMANCE_HINT")) == "LATENCY"
            assert compiled_model.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
            assert not compiled_model.get_property("LOADED_FROM_CACHE")
    files = [p for p in cache.rglob("*") if p.is_file() and "int8" not in p.parts]
    assert sorted(p.suffix for p in files) == [".bin"] * 3 + [".xml"] * 3, files


def test_int8_weights_stay_close(tiny_models, torch_sd, cache, ov_sd):
    pytest.importorskip("nncf", reason="NNCF is not installed (extra [openvino])")
    int8 = load_minisd(str(tiny_models["sd"]), dtype="fp32", backend="openvino", int8_weights=True, cache_dir=cache)
    assert (
        next(cache.glob("*/int8/unet.xml")).with_suffix(".bin").stat().st_size
        < 0.4 * next(cache.glob("*/unet.bin")).stat().st_size
    )
    assert int8.precision == "openvino f32 int8 weights"
    expected = generate_covers(torch_sd, PROMPT, settings=SETTINGS)
    difference = (generate_covers(int8, PROMPT, settings=SETTINGS) - expected).abs()
    assert 0 < difference.mean() < 0.02, difference.mean()


def test_a_wrong_conversion_is_refused(torch_sd):
    """The check compares with the torch module: a model that computes something else is rejected."""
    core = openvino.Core()
    x = torch.randn(1, 4, 8, 8)
    wrong = openvino.convert_model(torch.nn.Identity(), example_input=(x,))
    with pytest.raises(ConversionError, match="differs from torch's"):
        _check("vae_decoder", wrong, lambda latents: latents * 1.5, (x,), core)


def test_precision_follows_the_cpu(monkeypatch):
    import nopaingan_core.openvino_backend as backend

    class Core:
        def __init__(self, capabilities):
            self.capabilities = capabilities

        def get_property(self, device, name):
            return self.capabilities

    monkeypatch.setattr(backend, "cpu_has_native_bf16", lambda: False)
    assert inference_precision("auto", Core(["FP32", "INT8"])) == "f32"
    assert inference_precision(torch.float32, Core(["FP32", "BF16"])) == "f32"
    assert inference_precision("auto", Core(["FP32", "INT8", "BF16"])) == "bf16"
    with pytest.raises(NoPainGanError, match="--dtype bf16 with --backend openvino needs a CPU with native bf16"):
        inference_precision(torch.bfloat16, Core(["FP32", "INT8"]))


def test_options_the_backend_cannot_run_are_one_line(ov_sd, tiny_models):
    with pytest.raises(NoPainGanError, match="deep_cache needs the torch backend"):
        generate_covers(ov_sd, PROMPT, settings=SamplerSettings(steps=2, width=64, height=64, deep_cache=2))
    with pytest.raises(NoPainGanError, match="int8 weights need --backend openvino"):
        load_minisd(str(tiny_models["sd"]), int8_weights=True)
    with pytest.raises(NoPainGanError, match="backend must be one of torch, openvino"):
        load_minisd(str(tiny_models["sd"]), backend="onnx")
    with pytest.raises(NoPainGanError, match="to_openvino converts an fp32 CPU model"):
        to_openvino(load_minisd(str(tiny_models["sd"]), dtype="bf16"))


@pytest.mark.parametrize("package", ["diffusers", "transformers", "nncf", "converter", "weights"])
def test_an_upgrade_or_other_weights_convert_again(tiny_models, package, monkeypatch):
    """The converted IR is keyed by what decides it: IR converted by an earlier diffusers, transformers, NNCF or an
    earlier version of this backend's code was read back as current (the key held only OpenVINO and torch)."""
    import importlib.metadata

    import nopaingan_core.openvino_backend as backend

    torch_sd = load_minisd(str(tiny_models["sd"]), dtype="fp32")  # as to_openvino gets it: not prepacked
    before = backend.cache_key(torch_sd, "2026.0")
    assert backend.cache_key(torch_sd, "2026.0") == before and backend.cache_key(torch_sd, "2026.1") != before
    if package == "converter":
        source = Path(backend.__file__).read_bytes()
        monkeypatch.setattr(Path, "read_bytes", lambda self: source + b"\n# changed")
    elif package == "weights":
        vae = copy.deepcopy(torch_sd.vae)
        with torch.no_grad():
            next(vae.parameters())[(0,) * next(vae.parameters()).dim()] += 1.0
        torch_sd = SimpleNamespace(unet=torch_sd.unet, vae=vae, text_encoder=torch_sd.text_encoder)
    else:
        real = importlib.metadata.version
        monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.1" if name == package else real(name))
    assert backend.cache_key(torch_sd, "2026.0") != before
