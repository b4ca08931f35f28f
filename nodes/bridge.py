"""ComfyUI's runtime services for the nodes: devices, memory, the progress bar and the cancel button.

Inside ComfyUI these come from ``comfy.model_management`` and ``comfy.utils``. Outside it (the tests, a
script calling node functions) those modules are absent and the same calls fall back to the CPU, no
progress bar and no cancel button, so the nodes run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..nopaingan_core import precision

try:
    import comfy.model_management as mm
    import comfy.utils as comfy_utils
except ImportError:  # not running inside ComfyUI
    mm = None
    comfy_utils = None

DEVICES = ("default", "cpu")
# The dtype widget's choices in the order the UI shows them; the torch dtypes are precision.py's.
DTYPES = {name: precision.DTYPES[name] for name in ("fp32", "fp16", "bf16")}


def device_inputs(auto: bool = False) -> dict:
    """The device and dtype widgets of the loaders; ``auto`` offers (and defaults to) the device's fastest
    native precision (``precision.auto_dtype``)."""
    dtype_tooltip = "Weight precision; fp32 gives the same results as the CLI with --dtype fp32."
    if auto:
        dtype_tooltip += (
            " auto: bf16 on CPUs with native bf16 (AVX512-BF16, AMX) and on GPUs that support it, fp16 on other "
            "GPUs, else fp32."
        )
    dtypes = ["auto", *DTYPES] if auto else list(DTYPES)
    return {
        "device": (
            list(DEVICES),
            {
                "tooltip": "default: ComfyUI's compute device (the GPU when there is one) while the node runs; the "
                "model waits on the offload device in between. cpu: always on the CPU."
            },
        ),
        "dtype": (dtypes, {"default": dtypes[0], "tooltip": dtype_tooltip}),
    }


def compute_device(choice: str = "default") -> torch.device:
    """Where models run: ComfyUI's compute device (the GPU when there is one), or the CPU if asked."""
    if choice == "cpu" or mm is None:
        return torch.device("cpu")
    return mm.get_torch_device()


def offload_device() -> torch.device:
    """Where models wait between runs: ComfyUI's offload device (the CPU unless --highvram/--gpu-only)."""
    return torch.device("cpu") if mm is None else mm.unet_offload_device()


def intermediate_device() -> torch.device:
    """Where IMAGE, LATENT and CONDITIONING tensors passed between nodes live."""
    return torch.device("cpu") if mm is None else mm.intermediate_device()


def _modules(obj: Any) -> list[torch.nn.Module]:
    if isinstance(obj, torch.nn.Module):
        return [obj]
    return [value for value in vars(obj).values() if isinstance(value, torch.nn.Module)]


def _bytes(objs: list[Any]) -> int:
    return sum(p.numel() * p.element_size() for obj in objs for m in _modules(obj) for p in m.parameters())


@contextmanager
def on_device(objs: list[Any], device: torch.device) -> Iterator[None]:
    """Move models (anything with ``.to(device)``) to ``device`` for the block, then back to the offload
    device, first asking ComfyUI to free that much memory from its own models."""
    home = offload_device()
    if device == home:
        yield
        return
    if mm is not None:
        mm.free_memory(_bytes(objs), device)
    try:
        for obj in objs:
            obj.to(device)
        yield
    finally:
        for obj in objs:
            obj.to(home)
        if mm is not None:
            mm.soft_empty_cache()


def throw_if_interrupted() -> None:
    """Stop here if the user pressed Cancel (raises ComfyUI's own interruption, which is not an error)."""
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


def cancel_requested() -> bool:
    """The core's ``cancel`` hook: raises ComfyUI's interruption directly, so it never returns True."""
    throw_if_interrupted()
    return False


def progress(total: int) -> Callable[[int, int], None]:
    """The core's ``callback(step, total)`` hook, drawn as the node's progress bar."""
    if comfy_utils is None:
        return lambda step, total: None
    bar = comfy_utils.ProgressBar(total)
    return lambda step, total: bar.update_absolute(step, total)
