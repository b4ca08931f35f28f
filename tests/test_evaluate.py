"""``nopaingan evaluate`` on tiny data: both columns on the same albums and noise, FID/KID with an explicit
feature extractor, CLIP score with a tiny CLIP, and the written report."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from PIL import Image
from torch import nn

from nopaingan_core.checkpoint import new_fusion, save_fusion
from nopaingan_core.encoders import EncoderInfo
from nopaingan_core.errors import CheckpointError, NoPainGanError
from nopaingan_core.tiny import _byte_vocab
from training.cache import CacheReader
from training.cli import main
from training.evaluate import EvalConfig, evaluate, load_inception


class TinyFeatures(nn.Module):
    """A stand-in for Inception: uint8 ``[N, 3, H, W]`` -> 8 features."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images.float() / 255).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    path = tmp_path_factory.mktemp("clip")
    vocab, merges = _byte_vocab()
    special = {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]}
    text = {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
    vision = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=text | special | {"num_attention_heads": 2, "pad_token_id": special["eos_token_id"]},
        vision_config=vision | {"num_attention_heads": 2},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(path)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77),
    )
    processor.save_pretrained(path)
    return path


def _fusion(cached_data, path, gate: float):
    return save_fusion(new_fusion(CacheReader(cached_data / "cache").spec.encoder, gate=gate), path)


def test_evaluate_compares_music_with_the_text_only_baseline(cached_data, tmp_path, tiny_clip):
    fusion = _fusion(cached_data, tmp_path / "open.safetensors", gate=1.0)
    config = EvalConfig(cached_data, fusion, tmp_path / "eval", steps=2, clip=str(tiny_clip), progress=False)
    result = evaluate(config, feature=TinyFeatures())
    report = result.report
    assert report["albums"] == 2 and report["split"] == "eval" and report["max_timestep"] == 1000
    for name in ("text_only", "music"):
        metrics = report["metrics"][name]
        assert set(metrics) == {"diffusion_mse", "fid", "kid_mean", "kid_std", "clip_score"}
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert set(report["metrics"]["real"]) == {"clip_score"}
    assert report["metrics"]["music"]["diffusion_mse"] != report["metrics"]["text_only"]["diffusion_mse"]
    assert result.images["real"].shape == result.images["music"].shape == (2, 64, 64, 3)
    assert not torch.equal(result.images["music"], result.images["text_only"])

    saved = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert saved["metrics"] == report["metrics"] and len(saved["per_album"]) == 2
    table = (tmp_path / "eval" / "eval.md").read_text()
    assert "| metric | text only (strength 0) | music | real covers |" in table
    assert re.search(r"\| FID \(lower is better\) \| [\d.]+ \| [\d.]+ \|", table)
    with Image.open(tmp_path / "eval" / "grid.png") as grid:
        assert grid.size == (160 + 3 * 128, 20 + 2 * 128)

    # The same albums, noise and timesteps every time: a second run measures the same MSE.
    again = evaluate(EvalConfig(cached_data, fusion, tmp_path / "again", images=False, progress=False)).report
    assert again["metrics"]["music"]["diffusion_mse"] == report["metrics"]["music"]["diffusion_mse"]
    assert again["metrics"]["text_only"]["diffusion_mse"] == report["metrics"]["text_only"]["diffusion_mse"]


def test_untrained_fusion_equals_the_baseline_and_cli_notes_skipped_metrics(cached_data, tmp_path, capsys):
    fusion = _fusion(cached_data, tmp_path / "closed.safetensors", gate=0.0)
    args = ["evaluate", "--data", str(cached_data), "--fusion", str(fusion), "--steps", "1", "--device", "cpu"]
    assert main([*args, "--quiet", "--mse-samples", "2"]) == 0
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    metrics = report["metrics"]
    assert metrics["music"]["diffusion_mse"] == metrics["text_only"]["diffusion_mse"]  # identity at gate 0
    assert any("FID/KID skipped" in n for n in report["notes"]) and "fid" not in metrics["music"]
    assert "diffusion MSE" in capsys.readouterr().out


def test_evaluate_refuses_other_encoders_and_unknown_inception_files(cached_data, tmp_path):
    other = new_fusion(EncoderInfo("mert", "m-a-p/MERT-v1-95M", 6, 768, 75.0, 24000))
    path = save_fusion(other, tmp_path / "mert.safetensors")
    with pytest.raises(CheckpointError, match="expects a 768-d mert layer-6 embedding"):
        evaluate(EvalConfig(cached_data, path, tmp_path / "eval", images=False, progress=False))
    fake = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    fake.write_bytes(b"not the weights")
    with pytest.raises(NoPainGanError, match="not torch-fidelity's pt_inception"):
        load_inception(fake)


@pytest.mark.parametrize("same_song", [False, True])
def test_the_other_music_baseline_tells_a_learnt_shift_from_the_music(
    cached_data, tiny_models, tmp_path, same_song
) -> None:
    """A fusion can lower the MSE against text only with any music (a shift of every prompt): with the same song on
    every album it does so while the music tells nothing. The MSE with another album's music in place of each
    album's own is that baseline; with one song on every album there is no other music, and the report says so
    rather than compare the music with itself (which reads as "the music adds nothing")."""
    from training.cache import cache_dataset

    data = tmp_path / "data"
    shutil.copytree(cached_data, data, ignore=shutil.ignore_patterns("cache"))
    if same_song:
        songs = sorted((data / "audio").glob("*.wav"))
        for song in songs[1:]:
            shutil.copy(songs[0], song)
    cache_dataset(data, str(tiny_models["sd"]), str(tiny_models["codified-lm"]), resolution=64, progress=False)
    fusion = _fusion(data, tmp_path / "open.safetensors", gate=1.0)
    report = evaluate(EvalConfig(data, fusion, tmp_path / "eval", images=False, progress=False)).report
    music, text = report["metrics"]["music"]["diffusion_mse"], report["metrics"]["text_only"]["diffusion_mse"]
    assert music != text  # the open gate changes the conditioning with any music
    written = (tmp_path / "eval" / "eval.md").read_text()
    if same_song:
        assert report["mse_other_music"] is report["mse_relative_change_vs_other_music"] is None
        assert [set(a) for a in report["per_album"]] == [{"id", "mse_text_only", "mse_music"}] * 2
        assert "another album's music skipped: every album has the same music" in written
    else:
        assert report["mse_other_music"] != music and report["mse_relative_change_vs_other_music"] != 0.0
        assert [set(a) for a in report["per_album"]] == [{"id", "mse_text_only", "mse_music", "mse_other_music"}] * 2
        assert "vs another album's" in written
