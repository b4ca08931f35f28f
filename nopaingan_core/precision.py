"""Which floating-point precision to compute in: ``auto`` picks the fastest one the hardware runs natively.

On a CPU, bf16 is only fast with native bf16 instructions (AVX512-BF16 or AMX): there it is about twice as fast
as fp32 for miniSD, while without them oneDNN emulates bf16 through fp32 and it is about three times slower
(BENCHMARKS.md). On CUDA GPUs bf16 where the GPU supports it (Ampere and later), fp16 on older ones.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import NoPainGanError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
DTYPE_CHOICES = ("auto", *DTYPES)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags of the first processor in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.split(":")[0].strip() == "flags":
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16() -> bool:
    """The CPU computes bf16 in hardware: AVX512-BF16 or AMX in its flags, or oneDNN says so (other OSes)."""
    if set(NATIVE_BF16_FLAGS) & cpu_flags():
        return True
    if Path("/proc/cpuinfo").exists():  # Linux: the flags are authoritative
        return False
    mkldnn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    # oneDNN's own check is true for AVX512 without BF16 too (emulated), so it is only a fallback
    return bool(mkldnn is not None and torch.backends.mkldnn.is_available() and mkldnn())


def auto_dtype(device: str | torch.device = "cpu") -> torch.dtype:
    """The fastest sound precision on ``device``: bf16 on CPUs with native bf16 and on CUDA GPUs that support
    it, fp16 on other CUDA GPUs, fp32 otherwise (CPUs without bf16 instructions, MPS, anything else)."""
    device = torch.device(device)
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def resolve_dtype(choice: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"`` or a torch dtype -> the torch dtype to load models in.

    Raises :class:`NoPainGanError` naming the choices for anything else."""
    if isinstance(choice, torch.dtype):
        if choice not in DTYPE_NAMES:
            raise NoPainGanError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, got {choice}")
        return choice
    if choice == "auto":
        return auto_dtype(device)
    if choice not in DTYPES:
        raise NoPainGanError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, got {choice!r}")
    return DTYPES[choice]
