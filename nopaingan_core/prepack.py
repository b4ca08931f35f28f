"""Convolution weights packed once into oneDNN's blocked layout, for CPU inference.

PyTorch's eager ``conv2d`` on the CPU reorders the weight into oneDNN's blocked layout on every call. For
miniSD's UNet at 256x256 (32x32 latents, weights up to 1280x2560x3x3) that reorder costs as much as the
convolution itself in the deep blocks. Packing each weight once, as ``torch.compile``'s freezing does, runs
the same oneDNN kernels without the reorder (bench/sampling_ablation.py measures it). The packed modules
have no autograd, so only inference may use them: training keeps the plain UNet.
"""

from __future__ import annotations

import torch
from torch import nn


def can_prepack(module: nn.Module) -> bool:
    """oneDNN is built in, the module is on the CPU, and its weights are fp32 or bf16."""
    param = next(module.parameters(), None)
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
        and param is not None
        and param.device.type == "cpu"
        and param.dtype in (torch.float32, torch.bfloat16)
    )


class PackedConv2d(nn.Module):
    """An inference-only ``Conv2d`` whose weight is reordered on its first call, for that call's input size
    (oneDNN picks the layout from it; other sizes still compute correctly)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.register_buffer("weight", conv.weight.detach())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach())
        self.conv_args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        self.packed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError(
                "this model was prepacked for inference and cannot backpropagate; load it without prepack"
            )
        x = x.contiguous(memory_format=torch.channels_last)  # the layout the packed kernels expect
        if not self.packed:
            self.weight = torch.ops.mkldnn._reorder_convolution_weight(self.weight, *self.conv_args, list(x.shape))
            self.packed = True
        return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, *self.conv_args, "none", [], "")


def prepack_convolutions(module: nn.Module) -> int:
    """Replace ``module``'s zero-padded ``Conv2d`` layers by :class:`PackedConv2d` in place (after any
    ``.to()``: packed weights cannot move); returns how many were replaced, 0 where oneDNN cannot run."""
    if not can_prepack(module):
        return 0
    count = 0
    for name, child in list(module.named_modules()):
        if type(child) is nn.Conv2d and child.padding_mode == "zeros" and not isinstance(child.padding, str):
            parent, _, attr = name.rpartition(".")
            setattr(module.get_submodule(parent) if parent else module, attr, PackedConv2d(child))
            count += 1
    return count
