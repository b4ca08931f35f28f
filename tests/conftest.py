"""Shared fixtures: tiny random models with the real architectures, built once per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules next to the tests


def pytest_configure(config) -> None:
    """One torch thread: the tiny models gain nothing from two, and when other jobs share the CPU two OpenMP
    threads wait on each other (training steps measured 6x slower)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Paths of tiny miniSD / MusicGen / MERT / CLAP folders saved with ``save_pretrained``."""
    from nopaingan_core.tiny import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def tiny_sd(tiny_models):
    from nopaingan_core.sampling import load_minisd

    return load_minisd(str(tiny_models["sd"]), prepack=True)  # as `nopaingan generate` and ComfyUI on CPU load it


@pytest.fixture(scope="session")
def tiny_sd_fp32(tiny_models):
    """``tiny_sd`` in fp32 on every CPU (``tiny_sd`` is bf16 where the CPU has native bf16, as ``--dtype auto``
    picks): for comparisons with fp32 references (diffusers' pipeline, the cache) and exactness checks."""
    from nopaingan_core.sampling import load_minisd

    return load_minisd(str(tiny_models["sd"]), dtype="fp32", prepack=True)


@pytest.fixture(scope="session")
def song():
    """Eight seconds of synthetic music."""
    from nopaingan_core.synth import synth_song

    return synth_song(seconds=8.0)


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory, tiny_models) -> Path:
    """A ComfyUI base folder (models/, input/) holding tiny models under the names the workflows use."""
    from comfy_env import install_models

    base = tmp_path_factory.mktemp("comfy-base")
    install_models(base, tiny_models)
    return base


@pytest.fixture(scope="session")
def pack(comfy_base):
    """The node pack, imported the way ComfyUI imports a custom-node folder."""
    from comfy_env import load_pack

    return load_pack(comfy_base)


@pytest.fixture(scope="session")
def cached_data(tiny_models, tmp_path_factory):
    """A tiny dataset folder (4 train, 2 eval albums, 64 px covers) with its cache, for training tests."""
    from training_data import make_dataset

    from training.cache import cache_dataset

    data = make_dataset(tmp_path_factory.mktemp("data"))
    cache_dataset(
        data, str(tiny_models["sd"]), str(tiny_models["codified-lm"]), resolution=64, shard_size=4, progress=False
    )
    return data
