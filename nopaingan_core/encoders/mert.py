"""MERT-v1: a HuBERT-style music model (24 kHz, 75 frames/s, trained on 5 s excerpts).

MERT-v1 checkpoints load as a plain transformers ``HubertModel``: no remote code, which is broken on
current transformers anyway. Middle layers (5-8 of 12) carry genre, key and emotion best.
"""

from __future__ import annotations

import math

import torch

from ..errors import ModelLoadError
from ..hub import check_weights_loaded, from_pretrained
from .base import MusicEncoder

DEFAULT_MODEL = "m-a-p/MERT-v1-95M"
DEFAULT_LAYER = 6
CHUNK_SECONDS = 5.0


class MertEncoder(MusicEncoder):
    kind = "mert"

    def __init__(
        self, model: str = DEFAULT_MODEL, layer: int | None = None, device: str = "cpu", dtype=torch.float32
    ) -> None:
        from transformers import HubertModel, Wav2Vec2FeatureExtractor

        net, loading = from_pretrained(HubertModel, model, "MERT model", "--mir", kind="MERT", output_loading_info=True)
        check_weights_loaded(model, loading, "MERT")
        self.processor = from_pretrained(Wav2Vec2FeatureExtractor, model, "MERT feature extractor", "--mir")
        total = net.config.num_hidden_layers
        layer = min(DEFAULT_LAYER, total) if layer is None else layer
        if not 1 <= layer <= total:
            raise ModelLoadError(f"{model}: layer must be between 1 and {total}, found {layer}")
        net.encoder.layers = net.encoder.layers[:layer]
        self.net = net.eval()
        rate = self.processor.sampling_rate
        self.hop = math.prod(net.config.conv_stride)  # samples per frame of the convolutional front end
        super().__init__(model, layer, net.config.hidden_size, rate / self.hop, rate)
        self.to(device, dtype)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device, dtype=None) -> MertEncoder:
        self.net.to(device, dtype)
        return self

    def _run(self, chunks: torch.Tensor) -> torch.Tensor:
        inputs = self.processor(list(chunks.cpu().numpy()), sampling_rate=self.sample_rate, return_tensors="pt")
        values = inputs["input_values"].to(self.device, next(self.net.parameters()).dtype)
        return self.net(values).last_hidden_state

    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Encode in the 5 s chunks MERT was trained on and join the frames; a tail shorter than one
        chunk is encoded on its own."""
        size = round(CHUNK_SECONDS * self.sample_rate)
        bsz, length = wave.shape
        whole = length // size
        parts = []
        if whole:
            chunks = wave[:, : whole * size].reshape(bsz * whole, size)
            hidden = self._run(chunks)
            parts.append(hidden.reshape(bsz, whole * hidden.shape[1], -1))
        if length - whole * size >= self.hop * 2:
            parts.append(self._run(wave[:, whole * size :]))
        return torch.cat(parts, dim=1)
