"""Timing helpers shared by the benchmarks: interleaved repeats, medians with their spread, the machine.

Other jobs share this machine's two cores, so every comparison runs its candidates interleaved (A B A B ...)
and reports the median and the spread over repeats, and each result records the load average it ran under.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def cpuinfo(key: str) -> str:
    """A field of /proc/cpuinfo's first processor ('' where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine() -> dict:
    return {
        "cpu": cpuinfo("model name") or platform.processor(),
        "cpu_model_number": cpuinfo("model"),
        # Without these the CPU has no bf16 arithmetic and oneDNN emulates it through fp32.
        "native_bf16": sorted({"avx512_bf16", "amx_bf16"} & set(cpuinfo("flags").split())),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def load() -> float:
    """The 1-minute load average: above the core count means other jobs took part of the CPU."""
    return round(os.getloadavg()[0], 2)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def summary(times: list[float]) -> dict:
    """Median seconds and the spread around it."""
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "runs": [round(t, 4) for t in times],
    }


def interleaved(candidates: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every candidate ``warmup`` times untimed, then ``repeats`` rounds of one call each, in turn."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            times[name].append(timed(fn)[0])
    return times


def write_json(path: str | os.PathLike, result: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
