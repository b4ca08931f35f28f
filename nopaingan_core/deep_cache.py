"""DeepCache: reuse the UNet's deep features between adjacent denoising steps (Ma, Fang and Wang, "DeepCache:
Accelerating Diffusion Models for Free", CVPR 2024, arXiv:2312.00858).

A UNet's deep, low-resolution features change little from one step to the next; its outermost level (the
first down block and the last up block, at full latent resolution) carries the details that do. Every
``interval`` steps the whole UNet runs and the input of its last up block is kept; on the steps between, only
``conv_in``, the first down block, the last up block (on the kept input and the fresh skip connections) and
the output layers run. This is the paper's shallowest branch taken at block granularity, on diffusers'
``UNet2DConditionModel`` (as the DeepCache repo's ``DeepCacheSDHelper`` patches it, without patching it).
For SD 1.x at 32x32 latents a shallow call costs about a fifth of a full one (BENCHMARKS.md).
"""

from __future__ import annotations

import torch

from .errors import NoPainGanError

# Config values that add inputs the shallow path does not compute (class labels, image embeddings...).
_PLAIN_CONFIG = {
    "center_input_sample": False,
    "class_embed_type": None,
    "addition_embed_type": None,
    "time_embedding_act_fn": None,
    "encoder_hid_dim_type": None,
    "time_cond_proj_dim": None,
}


def check_deep_cache(unet: torch.nn.Module, interval: int) -> None:
    """Raise :class:`NoPainGanError` unless ``interval`` >= 1 and ``unet`` (unless None: the interval only) is
    a plain text-conditioned diffusers ``UNet2DConditionModel`` (SD 1.x/2.x style) the shallow path can run."""
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise NoPainGanError(f"deep_cache must be a whole number of steps >= 1 (1: off), got {interval!r}")
    if interval == 1 or unet is None:
        return
    config = getattr(unet, "config", None)
    if config is None or not hasattr(unet, "down_blocks") or not hasattr(unet, "up_blocks"):
        raise NoPainGanError(f"deep_cache needs the torch backend's diffusers UNet, got {type(unet).__name__}")
    for key, plain in _PLAIN_CONFIG.items():
        if config.get(key, plain) != plain:
            raise NoPainGanError(f"deep_cache supports text-conditioned SD UNets; this one has {key}={config[key]}")


class DeepCacheUNet:
    """Denoise with ``unet`` in full every ``interval`` steps and with its outer level only in between.

    Call it as ``noise = cached(sample, t, context, step)`` with ``sample`` ``[B, C, h, w]`` and ``context``
    ``[B, L, D]``; ``step`` is the index in the schedule (0, 1, ...). A full call gives exactly the UNet's
    output. If the batch shrinks between a full and a shallow call (guidance cut-off: ``[uncond, cond]`` ->
    ``[cond]``), the kept features' last ``B`` rows are used. ``full_calls`` and ``shallow_calls`` count."""

    def __init__(self, unet: torch.nn.Module, interval: int) -> None:
        check_deep_cache(unet, interval)
        self.unet, self.interval = unet, interval
        self.features: torch.Tensor | None = None  # the input of the last up block at the last full step
        self.full_calls = self.shallow_calls = 0

    def __call__(self, sample: torch.Tensor, t: torch.Tensor, context: torch.Tensor, step: int) -> torch.Tensor:
        reuse = self.features is not None and step % self.interval and self.features.shape[0] >= sample.shape[0]
        if not reuse:
            self.full_calls += 1
            return self._full(sample, t, context)
        self.shallow_calls += 1
        return self._shallow(sample, t, context, self.features[-sample.shape[0] :])

    def _full(self, sample: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if self.interval == 1:
            return self.unet(sample, t, encoder_hidden_states=context, return_dict=False)[0]

        def keep(module, args, kwargs) -> None:
            self.features = kwargs["hidden_states"]

        hook = self.unet.up_blocks[-1].register_forward_pre_hook(keep, with_kwargs=True)
        try:
            return self.unet(sample, t, encoder_hidden_states=context, return_dict=False)[0]
        finally:
            hook.remove()

    def _shallow(
        self, sample: torch.Tensor, t: torch.Tensor, context: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        """``UNet2DConditionModel.forward`` with the down blocks after the first, the middle block and the up
        blocks before the last replaced by ``features``."""
        unet = self.unet
        emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=t), None)
        hidden = unet.conv_in(sample)
        first, last = unet.down_blocks[0], unet.up_blocks[-1]
        if getattr(first, "has_cross_attention", False):
            _, skips = first(hidden_states=hidden, temb=emb, encoder_hidden_states=context)
        else:
            _, skips = first(hidden_states=hidden, temb=emb)
        # The last up block takes the first skip connections: conv_in's and the first down block's layers
        # (the first block's downsampler output goes to the next up block, which is not run).
        skips = ((hidden, *skips))[: len(last.resnets)]
        if getattr(last, "has_cross_attention", False):
            out = last(hidden_states=features, temb=emb, res_hidden_states_tuple=skips, encoder_hidden_states=context)
        else:
            out = last(hidden_states=features, temb=emb, res_hidden_states_tuple=skips)
        if unet.conv_norm_out is not None:
            out = unet.conv_act(unet.conv_norm_out(out))
        return unet.conv_out(out)
