"""``--dtype auto``: bf16 only where the hardware computes it natively, fp32 on CPUs that would emulate it."""

from __future__ import annotations

import argparse

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from nopaingan_core import precision
from nopaingan_core.errors import NoPainGanError
from nopaingan_core.precision import DTYPE_CHOICES, auto_dtype, cpu_flags, resolve_dtype

AVX2_ONLY = {"fpu", "sse2", "avx", "avx2", "fma"}  # an AMD EPYC without AVX-512
AVX512_NO_BF16 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512_vnni"}  # emulates bf16 through fp32


def flags(monkeypatch, cpu: set[str]) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda *a, **k: set(cpu))


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        (AVX2_ONLY, torch.float32),
        (AVX512_NO_BF16, torch.float32),
        (AVX512_NO_BF16 | {"avx512_bf16"}, torch.bfloat16),
        (AVX512_NO_BF16 | {"amx_bf16", "amx_tile"}, torch.bfloat16),
    ],
)
def test_auto_on_the_cpu_follows_the_bf16_flags(monkeypatch, cpu, expected):
    flags(monkeypatch, cpu)
    assert auto_dtype("cpu") == expected
    assert resolve_dtype("auto", "cpu") == expected


def test_auto_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device", lambda device: torch.device("cpu"))  # a no-op context manager
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert auto_dtype("cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert auto_dtype("cuda:1") == torch.float16


def test_auto_elsewhere_is_fp32(monkeypatch):
    flags(monkeypatch, AVX512_NO_BF16 | {"avx512_bf16"})
    assert auto_dtype("meta") == torch.float32


def test_cpu_flags_reads_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize(("name", "dtype"), list(precision.DTYPES.items()))
def test_explicit_choices_are_kept(monkeypatch, name, dtype):
    flags(monkeypatch, AVX2_ONLY)
    assert resolve_dtype(name) == dtype
    assert resolve_dtype(dtype) == dtype


@given(st.text(max_size=12).filter(lambda s: s not in DTYPE_CHOICES))
def test_unknown_dtype_is_one_line_naming_the_choices(name):
    with pytest.raises(NoPainGanError, match="dtype must be one of auto, fp32, bf16, fp16"):
        resolve_dtype(name)


def test_unsupported_torch_dtype_is_refused():
    with pytest.raises(NoPainGanError, match="dtype"):
        resolve_dtype(torch.int8)


def test_generate_defaults_to_auto_other_commands_to_fp32(monkeypatch):
    from nopaingan_core.cli import add_device_options, device_from_args

    gen, other = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_device_options(gen, dtype_default="auto")
    add_device_options(other)
    assert gen.parse_args([]).dtype == "auto" and other.parse_args([]).dtype == "fp32"
    flags(monkeypatch, AVX512_NO_BF16 | {"amx_bf16"})
    assert device_from_args(gen.parse_args(["--device", "cpu"])) == (torch.device("cpu"), torch.bfloat16)
    flags(monkeypatch, AVX2_ONLY)
    assert device_from_args(gen.parse_args(["--device", "cpu"])) == (torch.device("cpu"), torch.float32)
    assert device_from_args(other.parse_args(["--device", "cpu", "--dtype", "bf16"]))[1] == torch.bfloat16


def test_load_minisd_auto_follows_the_cpu(monkeypatch, tiny_models):
    from nopaingan_core.sampling import load_minisd

    flags(monkeypatch, AVX2_ONLY)
    assert load_minisd(str(tiny_models["sd"])).dtype == torch.float32
    flags(monkeypatch, AVX2_ONLY | {"avx512_bf16"})
    sd = load_minisd(str(tiny_models["sd"]))
    assert sd.dtype == sd.vae.dtype == sd.text_encoder.dtype == torch.bfloat16


def test_bf16_generates_on_any_cpu_prepacked_only_where_onednn_can(tiny_models, tmp_path):
    """`nopaingan generate --dtype bf16` prepacks like fp32, but oneDNN's bf16 weight reorder needs
    AVX512BW/VL/DQ or AVX-NE-CONVERT (raised a RuntimeError on AVX2-only CPUs): elsewhere the UNet stays
    unpacked and torch's own bf16 path draws the cover."""
    from nopaingan_core.prepack import PackedConv2d, can_prepack
    from nopaingan_core.sampling import load_minisd
    from training.cli import main

    sd = load_minisd(str(tiny_models["sd"]), dtype="bf16", prepack=True)
    onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert can_prepack(sd.unet) is onednn_bf16
    assert any(isinstance(m, PackedConv2d) for m in sd.unet.modules()) is onednn_bf16
    out = tmp_path / "covers"
    args = ["generate", "--sd", str(tiny_models["sd"]), "--album", "A", "--genre", "rock", "--dtype", "bf16"]
    assert main([*args, "--steps", "2", "--out", str(out), "--quiet"]) == 0
    assert len(list(out.glob("*.png"))) == 1
