"""Convolution weights packed once into oneDNN's blocked layout, for CPU inference.

PyTorch's eager ``conv2d`` on the CPU reorders the weight into oneDNN's blocked layout on every call. For
miniSD's UNet at 256x256 (32x32 latents, weights up to 1280x2560x3x3) that reorder costs as much as the
convolution itself in the deep blocks. Packing each weight once, as ``torch.compile``'s freezing does, runs
the same oneDNN kernels without the reorder (bench/sampling_ablation.py measures it). The packed modules
have no autograd, so only inference may use them: training keeps the plain UNet.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
from pathlib import Path

import torch
from torch import nn

_MADV_DONTNEED = 4


def _file_mappings() -> list[tuple[int, int]]:
    """Address ranges of this process's private file-backed mappings (Linux; empty elsewhere)."""
    ranges = []
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return ranges
    for line in lines:
        fields = line.split()
        # start-end perms offset dev inode [path]: private (p), backed by a file (inode != 0)
        if len(fields) >= 6 and fields[1].endswith("p") and fields[4] != "0":
            start, end = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((start, end))
    return ranges


def release_file_pages(tensors: list[torch.Tensor]) -> int:
    """Drop the resident pages of tensors that are views of a file mapping (weights that safetensors loaded
    lazily from disk) and that were copied elsewhere; returns the bytes released.

    diffusers maps the weight files into memory; converting a weight (channels-last, packed) leaves its original
    pages resident, counted in the process's memory, as long as any other weight of the same file is in use,
    so the process held both copies (BENCHMARKS.md, memory). The pages are clean copies of the file: dropping
    them loses nothing (a later read would fetch them from the file again). Only whole pages inside a private
    file-backed mapping are touched; anything else (e.g. weights in ordinary memory) is left alone."""
    if not sys.platform.startswith("linux"):
        return 0
    mappings = _file_mappings()
    libc = ctypes.CDLL(None, use_errno=True)
    released = 0
    for tensor in tensors:
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        mapped = any(lo <= start and end <= hi for lo, hi in mappings)
        if not mapped or not tensor.is_contiguous():
            continue
        first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
        last = end // mmap.PAGESIZE * mmap.PAGESIZE
        if last > first and libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED) == 0:
            released += last - first
    return released


def to_channels_last(module: nn.Module) -> None:
    """``module.to(memory_format=torch.channels_last)`` holding one copy of the converted weights: the file
    pages of the originals are released (:func:`release_file_pages`)."""
    originals = [p.detach() for p in module.parameters() if p.dim() == 4]
    module.to(memory_format=torch.channels_last)
    release_file_pages(originals)


def can_prepack(module: nn.Module) -> bool:
    """oneDNN is built in, the module is on the CPU, and its weights are fp32, or bf16 on a CPU where oneDNN
    can reorder bf16 weights (torch's ``_is_mkldnn_bf16_supported``: AVX512BW/VL/DQ or AVX-NE-CONVERT; on
    other CPUs the reorder raises, so such modules stay unpacked and run torch's own bf16 path)."""
    param = next(module.parameters(), None)
    if not (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
        and param is not None
        and param.device.type == "cpu"
    ):
        return False
    if param.dtype == torch.bfloat16:
        supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return supported is not None and bool(supported())
    return param.dtype == torch.float32


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
            original = self.weight
            self.weight = torch.ops.mkldnn._reorder_convolution_weight(original, *self.conv_args, list(x.shape))
            self.packed = True
            release_file_pages([original])  # one copy of the weight: the packed one
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
