"""Choosing and loading the 25 s clip of a long file: streaming (ours) against decoding the whole file.

Each variant runs in its own process; its peak resident memory is reported above what the process held
after its imports. Usage:
    python bench/audio_window.py --minutes 30 --out R.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from timing import check_new_outputs, write_json  # noqa: E402

VARIANTS = {
    "ours": "clip = load_audio(PATH)",
    "ours_offset": "clip = load_audio(PATH, offset=OFFSET)",
    "whole": "clip = representative_clip(decode(PATH))",
}


def run_variant(code: str, path: Path, offset: float) -> dict:
    script = (
        "import resource, time, json\n"
        "from nopaingan_core.audio import decode, load_audio, representative_clip\n"
        "baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        f"PATH, OFFSET = {str(path)!r}, {offset}\n"
        "start = time.perf_counter()\n"
        f"{code}\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps({'seconds': seconds, 'peak_mb': peak - baseline, 'offset': clip.offset}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced

    from audio_files import tone, write_audio

    rate = 44100
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.mp3"
        block = np.concatenate([tone(20, rate, f) for f in (220.0, 330.0, 440.0)], axis=1)
        repeats = int(args.minutes * 60 // 60) or 1
        write_audio(path, np.tile(block, (1, repeats)), rate)
        offset = args.minutes * 60 / 2
        results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):
            for name, code in VARIANTS.items():
                results[name].append(run_variant(code, path, offset))
    summary = {
        "file_minutes": args.minutes,
        "format": "mp3 44.1 kHz stereo",
        **{
            f"{name}_{key}": float(np.median([r[key] for r in runs]))
            for name, runs in results.items()
            for key in ("seconds", "peak_mb")
        },
    }
    summary["peak_memory_ratio_whole_vs_ours"] = summary["whole_peak_mb"] / summary["ours_peak_mb"]
    print(json.dumps(summary, indent=2))
    if args.out:
        write_json(args.out, summary)


if __name__ == "__main__":
    main()
