"""Seconds per 25 s clip for each music encoder, on the real architectures with random weights.

Each model (musicgen-small, MERT-v1-95M, larger_clap_music; see ``real_models.py``) is saved once with
``save_pretrained`` and loaded through ``nopaingan_core.encoders.load_encoder``, so the timed call is the
library's own ``encode``: mono mix, resampling from 44.1 kHz, the model. The encoders run interleaved. For
codified-lm the default middle layer (12 of 24) is compared with running all 24 layers.

    python bench/encoders.py --out R.json            # full size, 3 repeats (~5 min on 2 cores)
    python bench/encoders.py --out R.json --quick    # tiny models, a smoke run
"""

from __future__ import annotations

import json
import statistics

import real_models  # noqa: F401  (puts the worktree's library first on sys.path)
import torch
from timing import check_new_outputs, interleaved, load, machine, summary, timed, write_json

from nopaingan_core.encoders import load_encoder
from nopaingan_core.synth import synth_song

CLIP_SECONDS = 25.0
SOURCE_RATE = 44100  # a CD-rate file: every encoder resamples, as it would for a real song


def main() -> None:
    parser = real_models.parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed clips per encoder")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny models, 1 repeat: a smoke run")
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.quick:
        from nopaingan_core.tiny import build_tiny_models

        paths = build_tiny_models(args.cache / "tiny")
        args.repeats = 1
    else:
        paths = {kind: real_models.model_path(kind, args.cache) for kind in ("codified-lm", "mert", "clap")}
    music = paths["codified-lm"]
    total = json.loads((music / "config.json").read_text())["decoder"]["num_hidden_layers"]
    encoders = {
        "codified-lm": load_encoder("codified-lm", str(music)),  # default: the middle layer
        f"codified-lm, all {total} layers": load_encoder("codified-lm", str(music), layer=total),
        "mert": load_encoder("mert", str(paths["mert"])),
        "clap": load_encoder("clap", str(paths["clap"])),
    }
    clip = synth_song(seconds=CLIP_SECONDS, sample_rate=SOURCE_RATE)
    shapes = {}

    def encode(name: str):
        def run() -> None:
            shapes[name] = list(encoders[name].encode(clip).features.shape)

        return run

    load_before = load()
    times = interleaved({name: encode(name) for name in encoders}, args.repeats, warmup=1)
    load_after = load()

    # Where codified-lm's time goes: EnCodec tokenisation of the clip vs the transformer layers.
    codified = encoders["codified-lm"]
    wave = clip.mono().resample(codified.sample_rate).waveform[:, 0]
    with torch.no_grad():
        codes = [timed(lambda: codified.codes(wave))[0] for _ in range(args.repeats)]

    result: dict = {"machine": machine(), "clip_seconds": CLIP_SECONDS, "repeats": args.repeats}
    result["encoders"] = {
        name: {
            "seconds_per_clip": round(statistics.median(times[name]), 3),
            **summary(times[name]),
            "layer": encoders[name].info.layer,
            "features": shapes[name],
            "model": encoders[name].info.model,
        }
        for name in encoders
    }
    middle = statistics.median(times["codified-lm"])
    full = statistics.median(times[f"codified-lm, all {total} layers"])
    result["codified_lm_encodec_s"] = round(statistics.median(codes), 3)
    result["codified_lm_truncation_saves"] = round(1 - middle / full, 4)
    result["load_avg"] = [load_before, load_after]
    for name, row in result["encoders"].items():
        print(f"{name}: {row['seconds_per_clip']} s per {CLIP_SECONDS:g} s clip, features {row['features']}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
