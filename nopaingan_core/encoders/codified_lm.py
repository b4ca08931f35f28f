"""The seed's MIR module with a model that fits a laptop: a codified audio language model (JukeMIR's idea).

MusicGen-small's EnCodec turns 32 kHz audio into 4 streams of discrete codes at 50 Hz; MusicGen's
transformer decoder reads them and the hidden states of a middle layer are the embedding (JukeMIR took
layer 36 of Jukebox's 72). Only the layers up to that one are kept and run.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelLoadError
from ..hub import check_weights_loaded, from_pretrained
from .base import MusicEncoder

DEFAULT_MODEL = "facebook/musicgen-small"


class CodifiedLMEncoder(MusicEncoder):
    kind = "codified-lm"

    def __init__(
        self, model: str = DEFAULT_MODEL, layer: int | None = None, device: str = "cpu", dtype=torch.float32
    ) -> None:
        from transformers import MusicgenForConditionalGeneration

        # The composite repo holds the EnCodec, the text encoder and the decoder. Loading only the decoder
        # class from it silently returns random weights, so load the whole and keep two parts.
        composite, loading = from_pretrained(
            MusicgenForConditionalGeneration,
            model,
            "MusicGen model",
            "--mir",
            kind="MusicGen",
            output_loading_info=True,
        )
        hint = "; expected a full MusicgenForConditionalGeneration checkpoint such as facebook/musicgen-small"
        check_weights_loaded(model, loading, "MusicGen", hint)
        self.codec = composite.audio_encoder.eval()
        decoder = composite.decoder.model.decoder
        total = len(decoder.layers)
        layer = total // 2 if layer is None else layer
        if not 1 <= layer <= total:
            raise ModelLoadError(f"{model}: layer must be between 1 and {total}, found {layer}")
        decoder.layers = decoder.layers[:layer]
        decoder.layer_norm = nn.Identity()  # the embedding is the residual stream after `layer`, unnormalised
        self.decoder = decoder.eval()
        self.config = composite.decoder.config
        self._delay = composite.decoder.build_delay_pattern_mask
        self.num_codebooks = self.config.num_codebooks
        self.bos = (
            self.config.decoder_start_token_id
            if self.config.decoder_start_token_id is not None
            else (self.config.pad_token_id)
        )
        del composite
        codec_cfg = self.codec.config
        super().__init__(model, layer, self.config.hidden_size, codec_cfg.frame_rate, codec_cfg.sampling_rate)
        self.to(device, dtype)

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    def to(self, device, dtype=None) -> CodifiedLMEncoder:
        self.codec.to(device)  # EnCodec stays float32: its quantiser compares distances
        self.decoder.to(device, dtype)
        return self

    def codes(self, wave: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` audio -> ``[B, K, frames]`` EnCodec codes."""
        out = self.codec.encode(wave[:, None].float(), return_dict=True)
        codes = out.audio_codes[0]
        if codes.shape[1] != self.num_codebooks:
            raise ModelLoadError(
                f"{self.info.model}: EnCodec gives {codes.shape[1]} codebooks, decoder expects {self.num_codebooks}"
            )
        return codes

    def delayed(self, codes: torch.Tensor) -> torch.Tensor:
        """The decoder's training input: BOS then codes, codebook k shifted right by k (MusicGen's delay
        pattern). ``build_delay_pattern_mask`` returns ids cut at the first free slot; its full-length
        pattern is the whole delayed sequence, ``frames + K`` long."""
        bsz, k, frames = codes.shape
        bos = torch.full((bsz, k, 1), self.bos, dtype=codes.dtype, device=codes.device)
        ids = torch.cat([bos, codes], dim=-1).reshape(bsz * k, frames + 1)
        _, pattern = self._delay(ids, pad_token_id=self.bos, max_length=frames + k)
        return pattern

    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        codes = self.codes(wave)
        frames = codes.shape[-1]
        hidden = self.decoder(input_ids=self.delayed(codes), encoder_hidden_states=None, use_cache=False)
        # Position k + t is the first that has read every codebook of frame t: keep one state per frame.
        k = self.num_codebooks
        return hidden.last_hidden_state[:, k : k + frames]
