"""Where a trained fusion falls short of naming the colour: held-out diffusion MSE of fusion checkpoints on the
learnability benchmark's albums (``bench/learnability.py --work DIR``), with many noise draws, paired, and split
by timestep range.

``measure RUN ...`` evaluates each run's ``fusion.safetensors`` on the eval albums with ``--draws`` noise draws
per album (the same latent sample, noise and timestep for every condition): text only, the colour caption the
tiny UNet learnt ("A red album cover. The genre is rock.", the benchmark's oracle), the text embedding moved a
fraction of the way towards the caption (``--towards-caption``) and each fusion. It prints and
writes each condition's MSE, its change against text only with the standard error of the paired difference, its
share of the oracle's gain, the part of that change each quarter of the schedule contributes, and each run
against the first run given (paired). With 48 draws the paired difference between two runs has a standard error
of about 0.2 % of the text-only MSE, where the benchmark's own 8 draws per album leave ~15 % of the music's gain.

``train-labels --out RUN [nopaingan train options]`` trains on *perfect* music features instead of the encoder's:
each album's cached music replaced by the one-hot of its colour (plus a little per-frame noise). Measured with
``measure --label-features``, it shows what the fusion and recipe can do when the encoder is not the limit.

Run: ``python bench/fusion_mse.py measure RUN1 RUN2 --work /tmp/lbw --encoder-cache cache-clap --out R.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from learnability import FULL_SCHEDULE, colour_caption  # noqa: E402
from timing import check_new_outputs, load, machine, write_json  # noqa: E402

from nopaingan_core.checkpoint import load_fusion  # noqa: E402
from nopaingan_core.sampling import load_minisd  # noqa: E402
from training.cache import CacheReader  # noqa: E402
from training.evaluate import mse_generators  # noqa: E402
from training.train import derived_seed, diffusion_loss  # noqa: E402

QUARTERS = ((0, 250), (250, 500), (500, 750), (750, 1000))
LABEL_NOISE = 0.1  # per-frame noise of the perfect features, so the adapter's whitening has a within-song spread


def label_features(music: torch.Tensor, album: dict) -> torch.Tensor:
    """``[T, D]`` features carrying only the album's colour: its one-hot in the first 4 dimensions, plus noise."""
    gen = torch.Generator().manual_seed(derived_seed("labels", album["id"]))
    features = LABEL_NOISE * torch.randn(music.shape, generator=gen)
    features[:, album["key"]] += 1.0
    return features


def generators(album_id: str, draws: int) -> list[torch.Generator]:
    """One generator per noise draw, seeded as :func:`training.evaluate.evaluate` seeds its draws (seed 0): the
    first 8 draws are the benchmark's own."""
    return mse_generators(0, album_id, draws)


def measure(args) -> dict:
    data = args.work / "data"
    albums = [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines()]
    albums = [a for a in albums if a["split"] == "eval"]
    reader = CacheReader(data / args.encoder_cache)
    sd = load_minisd(reader.spec.sd, dtype="fp32", channels_last=False)
    scheduler = sd.scheduler("ddpm")
    fusions = {str(run): load_fusion(run / "fusion.safetensors").eval() for run in args.runs}
    losses: dict[str, list[torch.Tensor]] = defaultdict(list)
    timesteps = []
    with torch.no_grad():
        for album in albums:
            item = reader.load(album["id"])
            if args.label_features:
                item = dataclasses.replace(item, music=label_features(item.music, album))
            music = item.embedding(reader.spec.encoder)
            conds = {"text_only": item.text[None], "oracle": sd.encode_prompt([colour_caption(album)])}
            for a in args.towards_caption:
                conds[f"text + {a} (caption - text)"] = item.text[None] + a * (conds["oracle"] - item.text[None])
            conds |= {run: f.fuse(item.text[None], f.music_tokens(music)) for run, f in fusions.items()}

            items = [item] * args.draws
            for name, cond in conds.items():
                gens = generators(album["id"], args.draws)
                batch = cond.expand(args.draws, -1, -1)
                loss, drawn = diffusion_loss(
                    sd.unet, scheduler, batch, items, gens, FULL_SCHEDULE, "none", return_timesteps=True
                )
                losses[name].append(loss)
            timesteps.append(drawn)  # the same for every condition: each drew with generators seeded alike
    per_draw = {name: torch.cat(values) for name, values in losses.items()}
    steps = torch.cat(timesteps)
    text = per_draw["text_only"].mean().item()
    oracle_gain = text - per_draw["oracle"].mean().item()
    draws = len(steps)

    def change(values: torch.Tensor, against: torch.Tensor) -> dict:
        diff = values - against
        return {
            "relative_change": diff.mean().item() / text,
            "stderr": diff.std().item() / draws**0.5 / text,
        }

    conditions = {}
    for name, values in per_draw.items():
        diff = values - per_draw["text_only"]
        conditions[name] = {"mse": values.mean().item()} | change(values, per_draw["text_only"])
        conditions[name]["oracle_share"] = -diff.mean().item() / oracle_gain
        conditions[name]["change_by_timestep"] = {
            f"[{lo},{hi})": diff[(steps >= lo) & (steps < hi)].sum().item() / draws / text for lo, hi in QUARTERS
        }
    runs = list(fusions)
    against_first = {run: change(per_draw[run], per_draw[runs[0]]) for run in runs[1:]}
    return {
        "work": str(args.work),
        "cache": args.encoder_cache,
        "label_features": args.label_features,
        "eval_albums": len(albums),
        "draws": draws,
        "conditions": conditions,
        "runs_against_first": against_first,
    }


def report(result: dict) -> None:
    for name, c in result["conditions"].items():
        if name == "text_only":
            continue
        quarters = " ".join(f"{k} {100 * v:+.1f}" for k, v in c["change_by_timestep"].items())
        print(
            f"{name}: MSE {c['mse']:.6f}, {100 * c['relative_change']:+.1f} % +/- {100 * c['stderr']:.1f} vs text "
            f"only, {100 * c['oracle_share']:.0f} % of the oracle; by timestep (% of text only): {quarters}"
        )
    for run, c in result["runs_against_first"].items():
        print(f"{run} - first run: {100 * c['relative_change']:+.2f} % +/- {100 * c['stderr']:.2f} of text-only MSE")


def train_labels(args, train_options: list[str]) -> int:
    """``nopaingan train`` on the work folder's data with each album's music replaced by :func:`label_features`."""
    import training.train
    from training.cli import main

    data = args.work / "data"
    albums = {a["id"]: a for a in map(json.loads, (data / "metadata.jsonl").read_text().splitlines())}

    class LabelReader(CacheReader):
        def load(self, album_id: str):
            item = super().load(album_id)
            return dataclasses.replace(item, music=label_features(item.music, albums[album_id]))

    training.train.CacheReader = LabelReader
    cache = str(data / args.encoder_cache)
    return main(["train", "--data", str(data), "--cache", cache, "--out", str(args.out), *train_options])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="held-out MSE of runs with many noise draws")
    m.add_argument("runs", nargs="+", type=Path, help="run folders of nopaingan train (their fusion.safetensors)")
    m.add_argument("--draws", type=int, default=48, help="noise draws per eval album")
    m.add_argument("--label-features", action="store_true", help="runs trained by train-labels")
    m.add_argument("--out", type=Path, help="RESULT.json")
    m.add_argument(
        "--towards-caption", type=float, nargs="*", default=[], help="also text moved this far towards the caption"
    )
    t = sub.add_parser("train-labels", help="nopaingan train on perfect (one-hot colour) music features")
    t.add_argument("--out", type=Path, required=True, help="the run folder")
    for p in (m, t):
        p.add_argument("--work", type=Path, default=Path("/tmp/lbw"), help="bench/learnability.py --work")
        p.add_argument("--encoder-cache", default="cache-clap", help="the cache folder under WORK/data")
    args, rest = parser.parse_known_args(argv)
    if args.command == "train-labels":
        return train_labels(args, rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    torch.set_num_threads(1)
    started = load()
    result = measure(args)
    report(result)
    if args.out:
        write_json(args.out, result | {"machine": machine(), "load_average": {"start": started, "end": load()}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
