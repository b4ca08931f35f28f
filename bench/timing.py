"""Timing helpers shared by the benchmarks: interleaved repeats, medians with their spread, the machine.

Other jobs share this machine's two cores, so every comparison runs its candidates interleaved (A B A B ...)
and reports the median and the spread over repeats, and each result records the load average it ran under.

A benchmark never replaces an earlier result: :func:`check_new_outputs` refuses an ``--out`` whose files exist
before any slow work starts (one line, exit status 2, as ``nopaingan``'s commands refuse a user's mistake), and
:func:`write_json` writes a new file only, unless told to update the run's own file.
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
from typing import NoReturn

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # nopaingan_core.atomic for the writes below


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


def usage_error(message: str) -> NoReturn:
    """A user's mistake: one line on stderr (``SCRIPT: error: message``) and exit status 2."""
    print(f"{Path(sys.argv[0]).name}: error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(2)


def check_new_outputs(option: str, out: str | os.PathLike | None, *others: str | os.PathLike) -> None:
    """Before any slow work: :func:`usage_error` when ``out`` (the value of ``option``; None: nothing to check)
    or one of ``others`` (files the run derives from it, e.g. ``R_grid.png`` beside ``R.json``) already exists
    (an earlier result is never replaced: another ``option`` is asked for), is a folder, or cannot be written."""
    from nopaingan_core.atomic import check_output_file
    from nopaingan_core.errors import NoPainGanError

    if out is None:
        return
    for path in (out, *others):
        path = Path(path)
        if path.exists() and not path.is_dir():
            whose = "an earlier result" if path == Path(out) else f"{path}, an earlier run's"
            usage_error(f"{option} {out}: expected a new result, found {whose}; choose another {option}")
        try:
            check_output_file(path, option, overwrite=True)
        except NoPainGanError as exc:
            usage_error(str(exc))


def write_json(path: str | os.PathLike, result: dict, replace: bool = False, indent: int = 2) -> Path:
    """``result`` as JSON in one step; returns the file written. A file already at ``path`` is replaced only with
    ``replace`` (a run updating its own result as it goes); otherwise, one that appeared since
    :func:`check_new_outputs` (another run) is kept and the result goes to the first free ``name-N.json``."""
    from nopaingan_core.atomic import write_bytes, write_unique

    path = Path(path)
    data = (json.dumps(result, indent=indent) + "\n").encode()
    if replace:
        return write_bytes(path, data)
    written = write_unique(path, data)
    if written != path:
        print(f"{path} appeared during the run and is kept: wrote {written}", file=sys.stderr)
    return written
