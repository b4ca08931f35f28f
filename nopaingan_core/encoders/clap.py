"""CLAP's audio tower (LAION's music CLAP, 48 kHz, 10 s windows): per-frame features before pooling.

The HTSAT audio encoder ends in a ``[channels, frequency, time]`` map; averaging frequency gives one
feature vector per time step. A 25 s clip is covered by 10 s windows; the last, shorter one is
repeat-padded by the processor and only its real frames are kept.
"""

from __future__ import annotations

import math

import torch

from ..errors import ModelLoadError
from ..hub import check_weights_loaded, from_pretrained
from .base import MusicEncoder

DEFAULT_MODEL = "laion/larger_clap_music"


def load_clap(model: str, what: str = "CLAP model", flag: str = "--mir"):
    """The CLAP model and its processor's feature extractor, checked for missing weights; ``flag`` is the
    CLI option named in the error when the model is missing."""
    from transformers import ClapFeatureExtractor, ClapModel

    net, loading = from_pretrained(ClapModel, model, what, flag, kind="CLAP", output_loading_info=True)
    check_weights_loaded(model, loading, "CLAP")
    features = from_pretrained(ClapFeatureExtractor, model, "CLAP feature extractor", flag)
    return net.eval(), features


class ClapEncoder(MusicEncoder):
    kind = "clap"

    def __init__(
        self, model: str = DEFAULT_MODEL, layer: int | None = None, device: str = "cpu", dtype=torch.float32
    ) -> None:
        self.net, self.processor = load_clap(model)
        config = self.net.config.audio_config
        layers = len(config.depths)
        if layer not in (None, layers):
            raise ModelLoadError(f"{model}: the CLAP encoder gives its last stage only (layer {layers}), found {layer}")
        rate = self.processor.sampling_rate
        self.window = round(self.processor.nb_max_samples)
        # HTSAT's final map: the token grid's side, times the frequency folds moved onto the time axis
        grid = config.spec_size // config.patch_stride[1] // 2 ** (layers - 1)
        frames = grid * (config.spec_size // config.num_mel_bins)
        super().__init__(model, layers, config.hidden_size, frames / (self.window / rate), rate)
        self.to(device, dtype)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device, dtype=None) -> ClapEncoder:
        self.net.to(device, dtype)
        return self

    def _window_features(self, windows: list[torch.Tensor]) -> torch.Tensor:
        inputs = self.processor([w.cpu().numpy() for w in windows], sampling_rate=self.sample_rate, return_tensors="pt")
        dtype = next(self.net.parameters()).dtype
        out = self.net.audio_model(
            input_features=inputs["input_features"].to(self.device, dtype),
            is_longer=inputs["is_longer"].to(self.device),
        )
        return out.last_hidden_state.mean(dim=2).transpose(1, 2)  # [N, time, channels]

    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        bsz, length = wave.shape
        count = math.ceil(length / self.window)
        windows = [wave[b, i * self.window : (i + 1) * self.window] for b in range(bsz) for i in range(count)]
        feats = self._window_features(windows)
        per_window = feats.shape[1]
        tail = length - (count - 1) * self.window
        keep = (count - 1) * per_window + max(1, round(per_window * tail / self.window))
        return feats.reshape(bsz, count * per_window, -1)[:, :keep]
