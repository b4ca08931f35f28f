"""Which CPU settings make a miniSD denoising step (and the VAE decode) faster, one at a time.

The unit is one guided UNet call at 256x256 (batch 2 = both guidance branches, 32x32 latents, 77 text
tokens), which is 20 of the 21 model calls of an image, and one VAE decode. Every variant runs interleaved
with the others on the same weights and input, and its output is compared with the plain call's.

    python bench/sampling_ablation.py --out A.json                 # fp32 and bf16, 5 rounds (~10 min)
    python bench/sampling_ablation.py --out A.json --compile       # default vs prepacked vs torch.compile
    python bench/sampling_ablation.py --out A.json --quick         # tiny models, a smoke run
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Callable
from pathlib import Path

import real_models  # noqa: F401  (puts the worktree's library first on sys.path)
import torch
from timing import check_new_outputs, load, machine, summary, timed, write_json

from nopaingan_core.prepack import prepack_convolutions

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class Variant:
    """A way to call a module: which copy, input layout, grad mode, attention kernel and thread count."""

    def __init__(
        self,
        module: torch.nn.Module,
        channels_last_input: bool = False,
        grad_mode: str = "inference_mode",
        sdpa: str | None = None,
        threads: int | None = None,
        setup: Callable[[], None] | None = None,
    ) -> None:
        self.module, self.channels_last_input, self.grad_mode = module, channels_last_input, grad_mode
        self.sdpa, self.threads, self.setup = sdpa, threads, setup

    @contextlib.contextmanager
    def context(self):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        threads = torch.get_num_threads()
        if self.setup is not None:
            self.setup()
        if self.threads:
            torch.set_num_threads(self.threads)
        grad = torch.inference_mode() if self.grad_mode == "inference_mode" else torch.no_grad()
        kernel = sdpa_kernel(getattr(SDPBackend, self.sdpa)) if self.sdpa else contextlib.nullcontext()
        try:
            with grad, kernel:
                yield
        finally:
            torch.set_num_threads(threads)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(memory_format=torch.channels_last) if self.channels_last_input else x


def other_threads() -> int:
    """The thread count the thread-setting variant tries: 1 if the run uses more, else every core."""
    return 1 if torch.get_num_threads() > 1 else os.cpu_count() or 1


def unet_variants(path: Path, dtype: torch.dtype, with_compile: bool) -> dict[str, Variant]:
    """Every eager option; with ``with_compile`` only the default, prepacked and compiled UNets (three
    full-size copies at a time is what this machine's memory allows next to other jobs)."""
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    def load_unet(channels_last: bool = True) -> torch.nn.Module:
        unet = UNet2DConditionModel.from_pretrained(str(path), subfolder="unet", torch_dtype=dtype)
        unet.eval().requires_grad_(False)
        return unet.to(memory_format=torch.channels_last) if channels_last else unet

    plain = load_unet(channels_last=False)  # as StableDiffusionPipeline loads it
    packed = load_unet()
    prepack_convolutions(packed)
    if with_compile:
        import tempfile

        from torch._inductor import config as inductor

        # Freezing turns weights into constants so inductor prepacks them for oneDNN: the CPU recipe.
        inductor.freezing = True
        # A fresh cache: the compile time measured is a first run's, not a cache hit from an earlier one.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-bench-")
        return {
            "diffusers default (no_grad, NCHW, SDPA)": Variant(plain, grad_mode="no_grad"),
            "channels_last + prepacked convolutions": Variant(packed, True),
            "channels_last + torch.compile (freezing)": Variant(torch.compile(load_unet()), True),
        }
    cl = load_unet()

    def processor(proc) -> Callable[[], None]:
        return lambda: cl.set_attn_processor(proc())

    sdpa = processor(AttnProcessor2_0)
    threads = other_threads()
    return {
        "diffusers default (no_grad, NCHW, SDPA)": Variant(plain, grad_mode="no_grad"),
        "inference_mode": Variant(plain),
        "channels_last weights, NCHW input": Variant(cl, setup=sdpa),
        "channels_last weights + input": Variant(cl, channels_last_input=True, setup=sdpa),
        "channels_last + SDPA math kernel": Variant(cl, True, sdpa="MATH", setup=sdpa),
        "channels_last + classic attention (AttnProcessor)": Variant(cl, True, setup=processor(AttnProcessor)),
        "channels_last + fused QKV": Variant(cl, True, setup=cl.fuse_qkv_projections),
        "channels_last + prepacked convolutions": Variant(packed, True),
        f"channels_last + prepacked, {threads} thread(s)": Variant(packed, True, threads=threads),
    }


def vae_variants(path: Path, dtype: torch.dtype) -> dict[str, Variant]:
    from diffusers import AutoencoderKL

    def load_vae() -> torch.nn.Module:
        return AutoencoderKL.from_pretrained(str(path), subfolder="vae", torch_dtype=dtype).eval().requires_grad_(False)

    plain, cl = load_vae(), load_vae().to(memory_format=torch.channels_last)
    return {
        "diffusers default (no_grad, NCHW)": Variant(plain, grad_mode="no_grad"),
        "channels_last weights + input": Variant(cl, channels_last_input=True),
        f"channels_last, {other_threads()} thread(s)": Variant(cl, True, threads=other_threads()),
    }


def run_round(variants: dict[str, Variant], call: Callable[[Variant], torch.Tensor]) -> dict[str, tuple]:
    out = {}
    for name, variant in variants.items():
        with variant.context():
            out[name] = timed(lambda v=variant: call(v))
    return out


def ablate(variants: dict[str, Variant], call: Callable[[Variant], torch.Tensor], rounds: int) -> dict:
    """Interleaved rounds after one untimed warm-up round; diffs against the first variant's output."""
    warm = run_round(variants, call)
    times: dict[str, list[float]] = {name: [] for name in variants}
    load_before = load()
    for _ in range(rounds):
        for name, (seconds, _) in run_round(variants, call).items():
            times[name].append(seconds)
    reference = next(iter(warm.values()))[1].float()
    base = statistics.median(next(iter(times.values())))
    return {
        name: {
            **summary(times[name]),
            "vs_first": round(statistics.median(times[name]) / base, 4),
            "max_abs_diff": float((warm[name][1].float() - reference).abs().max()),
            "load_avg": [load_before, load()],
        }
        for name in variants
    }


def main() -> None:
    parser = real_models.parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument(
        "--compile", action="store_true", help="default vs prepacked vs torch.compile, and its compile time"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every variant (default: all)")
    parser.add_argument("--skip-vae", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny models, 1 round: a smoke run")
    args = parser.parse_args()
    check_new_outputs("--out", args.out)  # before any slow work: an earlier result is never replaced
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.quick:
        from nopaingan_core.tiny import build_tiny_models

        path = build_tiny_models(args.cache / "tiny")["sd"]
        args.rounds = 1
    else:
        path = real_models.model_path("sd", args.cache)
    result: dict = {"machine": machine(), "model": str(path), "rounds": args.rounds}
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 32, 32, generator=gen)
    context = torch.randn(2, 77, 768, generator=gen)
    timestep = torch.tensor(500)
    for name in args.dtypes.split(","):
        dtype = DTYPES[name]
        variants = unet_variants(path, dtype, args.compile)
        x, ctx = latents.to(dtype), context.to(dtype)

        def unet_call(v: Variant, x=x, ctx=ctx) -> torch.Tensor:
            return v.module(v.prepare(x), timestep, encoder_hidden_states=ctx, return_dict=False)[0]

        if args.compile:  # the first call compiles: timed on its own
            variant = variants["channels_last + torch.compile (freezing)"]
            with variant.context():
                result[f"{name}_compile_s"] = round(timed(lambda v=variant: unet_call(v))[0], 1)
            print(f"{name}: torch.compile's first call took {result[f'{name}_compile_s']} s", flush=True)
        result[f"{name}_unet"] = ablate(variants, unet_call, args.rounds)
        print(f"{name} unet: {result[f'{name}_unet']}", flush=True)
        del variants
        if not args.skip_vae:
            vae = vae_variants(path, dtype)
            z = latents[:1].to(dtype) / 0.18215

            def vae_call(v: Variant, z=z) -> torch.Tensor:
                return v.module.decode(v.prepare(z), return_dict=False)[0]

            result[f"{name}_vae_decode"] = ablate(vae, vae_call, args.rounds)
            print(f"{name} vae: {result[f'{name}_vae_decode']}", flush=True)
            del vae
    write_json(args.out, result)


if __name__ == "__main__":
    main()
