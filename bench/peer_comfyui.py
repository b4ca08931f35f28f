"""Runner of the comfyui peer for bench/peers.py: ComfyUI's own loader, sampler and VAE, on the CPU.

ComfyUI is not a package: set ``COMFYUI_DIR`` to a checkout (as tests/test_comfyui_live.py does) and run the
worker under a Python with ComfyUI's requirements (``--peer-python comfyui=<venv>/bin/python``, see
bench/requirements-peers.txt). The worker puts the checkout on ``sys.path`` and starts ComfyUI as
``main.py --cpu --fp32-text-enc`` would: CPU device, and fp32 for the text encoder too (on the CPU ComfyUI
already keeps the UNet and VAE in fp32, but stores CLIP in fp16 unless told otherwise), so the contender is
fp32 throughout like ``diffusers-fp32``. Threads are the worker's (``torch.set_num_threads``, ``--threads``).

Loading: ``comfy.diffusers_load.load_diffusers`` on the same diffusers folder as the other contenders (what
ComfyUI's DiffusersLoader node does; it recognises the UNet as SD1.x by its shapes and renames the weights to
its own layout) for unet/ and vae/. text_encoder/ goes through ``comfy.sd.load_text_encoder_state_dicts``, the
function load_diffusers' own CLIP loading ends in, after one fix: transformers >= 5 saves CLIPTextModel's
weights without the ``text_model.`` prefix ComfyUI 0.3.64 looks for, so load_diffusers alone finds none of them
and its CLIP runs on uninitialised memory (NaN images). The folder's tokenizer/ and scheduler/ are not read:
ComfyUI tokenizes with its own SD1 CLIP BPE tokenizer (the benchmark models' tokenizer is byte-level), so the
token ids differ from the other contenders' while every shape stays the same (77 ids < 49408, 77 x 768).

One image is the graph CLIPTextEncode (prompt and "") -> EmptyLatentImage -> KSampler -> VAEDecode, called
through ComfyUI's node classes under ``torch.inference_mode`` as its executor calls them. PNDM is not one of
ComfyUI's samplers; the closest is ``ipndm`` (the same Adams-Bashforth multistep of orders 1 to 4 that PNDM with
``skip_prk_steps`` uses, on the probability-flow ODE in sigma), with the ``normal`` scheduler. It makes ``steps``
UNet calls (PNDM makes ``steps + 1``), each on a batch of 2 for classifier-free guidance, as the others. The
initial noise is the same draw as diffusers' (``torch.manual_seed(SEED)``, randn of [1, 4, 32, 32]), scaled to
ComfyUI's sigma_max.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from peers import GUIDANCE, PROMPT, SEED, SIZE

ENV = "COMFYUI_DIR"
FLAGS = ["--cpu", "--fp32-text-enc"]  # ComfyUI's own command-line options, as main.py would parse them
SAMPLER, SCHEDULER = "ipndm", "normal"


def skip_reason() -> str | None:
    """Why ComfyUI cannot run in this interpreter (unset or wrong ``COMFYUI_DIR``, or one of its requirements
    missing), or None."""
    root = os.environ.get(ENV)
    if not root:
        return (
            f"{ENV} is not set: point it at a ComfyUI checkout (>= 0.3.64) and run its worker under a Python "
            "with ComfyUI's requirements: --peer-python comfyui=PYTHON (bench/requirements-peers.txt)"
        )
    if not (Path(root) / "comfy" / "sample.py").is_file():
        return f"{ENV}={root} is not a ComfyUI checkout: expected comfy/sample.py there"
    # in a child process: importing ComfyUI here would put its top-level modules (utils, nodes, server...)
    # and its options into the benchmark's own process
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import peer_comfyui as m; "
    code += f"m._import({root!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"ComfyUI at {root} cannot be imported by {sys.executable}: {last}"
    return None


def _import(root: str) -> ModuleType:
    """ComfyUI's ``nodes`` module, after its command-line options are set to :data:`FLAGS` (before any of its
    modules reads them) and its progress bars are turned off."""
    if root not in sys.path:
        sys.path.insert(0, root)
    import comfy.cli_args

    # only the options FLAGS change, in place: ComfyUI's modules hold this object, and cli_args post-processes
    # some parsed values (--fast) when it is imported
    given, default = vars(comfy.cli_args.parser.parse_args(FLAGS)), vars(comfy.cli_args.parser.parse_args([]))
    for key in [k for k in given if given[k] != default[k]]:
        setattr(comfy.cli_args.args, key, given[key])
    import comfy.utils

    import nodes

    comfy.utils.set_progress_bar_enabled(False)
    return nodes


def load(path: str, cache_dir: str, size: int = SIZE) -> Callable[..., torch.Tensor]:
    """Load the diffusers folder ``path`` with ComfyUI's DiffusersLoader code; ``cache_dir`` is unused (nothing
    is converted). Returns ``run(steps, seed=SEED)``: one image for PROMPT and GUIDANCE at ``size`` x ``size``
    (SIZE for the benchmark), a float32 tensor [1, size, size, 3] in [0, 1] on the CPU. Raises RuntimeError when
    ComfyUI does not recognise the UNet (it knows SD1.x by its exact shapes, so smaller UNets are refused)."""
    nodes = _import(os.environ[ENV])
    import comfy.diffusers_load
    import comfy.sd
    import comfy.utils

    model, _, vae = comfy.diffusers_load.load_diffusers(path, output_clip=False)
    if model is None:
        raise RuntimeError(f"ComfyUI does not recognise the UNet in {path}/unet as a model it knows")
    # load_diffusers' own CLIP loading finds none of the weights transformers >= 5 writes: they are saved
    # without the "text_model." prefix ComfyUI looks for, and its CLIP would run on uninitialised memory (NaN)
    state = comfy.utils.load_torch_file(os.path.join(path, "text_encoder", "model.safetensors"), safe_load=True)
    if not any(key.startswith("text_model.") for key in state):
        state = comfy.utils.state_dict_prefix_replace(state, {"": "text_model."}, filter_keys=True)
    clip = comfy.sd.load_text_encoder_state_dicts([state])
    encode, sampler, decode = nodes.CLIPTextEncode(), nodes.KSampler(), nodes.VAEDecode()

    def run(steps: int, seed: int = SEED) -> torch.Tensor:
        with torch.inference_mode():  # as ComfyUI's executor runs every node (execution.py)
            (positive,) = encode.encode(clip, PROMPT)
            (negative,) = encode.encode(clip, "")
            (latent,) = nodes.EmptyLatentImage().generate(size, size, 1)
            (latent,) = sampler.sample(model, seed, steps, GUIDANCE, SAMPLER, SCHEDULER, positive, negative, latent)
            (image,) = decode.decode(vae, latent)
        return image.float().cpu()

    return run
