"""The shipped workflows: every node type exists, every link joins matching types, every widget value is valid,
the notes name the model files, and each UI workflow and its API twin describe the same graph. Node
definitions are ours (the pack loaded as ComfyUI loads it, over a base folder holding the tiny models under
the names the workflows use) and ComfyUI's own (``data/comfy_core_nodes.json``). Then the API workflows run
with the pack's node functions on the tiny models, and their covers are compared with ``nopaingan generate``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from comfy_env import CHECKPOINT_FILE, FUSION_FILE, MIR_DIR, ROOT, SD_DIR, SONG_FILE
from PIL import Image

from nopaingan_core.audio import decode, load_audio
from nopaingan_core.checkpoint import load_fusion
from nopaingan_core.encoders import load_encoder
from nopaingan_core.generate import SamplerSettings, generate_covers
from nopaingan_core.prompt import album_prompt
from nopaingan_core.release.check import record
from nopaingan_core.sampling import load_minisd, to_pil
from nopaingan_core.tagging import tags_for_prompt
from training.cli import main

WORKFLOWS = ROOT / "workflows"
NAMES = [
    "album_cover_text_only",
    "album_cover_music_fusion",
    "album_cover_native_ksampler",
    "album_cover_auto_tags",
    "album_cover_release_ready",
]
CORE = json.loads((Path(__file__).parent / "data" / "comfy_core_nodes.json").read_text())
FRONTEND = CORE["frontend"]
CONTROL = "control_after_generate"  # the widget the frontend adds after a seed
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "AUDIO_UI", "AUDIOUPLOAD"}
# what the native file lists hold on the machine where the tests run these workflows
PROVIDED_FILES = {
    "checkpoints": {Path(CHECKPOINT_FILE).name, "x4-upscaler-ema.safetensors"},
    "input": {Path(SONG_FILE).name},
    "upscale_models": {"RealESRGAN_x4plus.pth"},
}
MODEL_INPUTS = {  # node type -> (its model input, the folder it reads)
    "NoPainGanMiniSDLoader": ("model", "models/diffusers/"),
    "NoPainGanMIREncoderLoader": ("model", "models/nopaingan/mir/"),
    "NoPainGanMusicTags": ("clap", "models/nopaingan/mir/"),
    "NoPainGanFusionLoader": ("fusion", "models/nopaingan/fusion/"),
    "CheckpointLoaderSimple": ("ckpt_name", "models/checkpoints/"),
    "UpscaleModelLoader": ("model_name", "models/upscale_models/"),
}


def ui(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def api(name: str) -> dict:
    return json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def defs(pack) -> dict[str, dict]:
    """Every node definition in /object_info's shape: ours from INPUT_TYPES, the native ones from the list."""
    ours = {}
    for name, cls in pack.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        inputs = {
            key: {"type": kind, "group": group, **options}
            for group in ("required", "optional")
            for key, (kind, options) in spec.get(group, {}).items()
        }
        order = {group: list(spec[group]) for group in ("required", "optional") if group in spec}
        output = {"output": list(cls.RETURN_TYPES), "output_node": getattr(cls, "OUTPUT_NODE", False)}
        ours[name] = {"inputs": inputs, "input_order": order, **output}
    return CORE["nodes"] | ours


def widgets(node_type: str, definition: dict) -> list[str]:
    """The node's widgets in the frontend's order, which ``widgets_values`` follows index by index."""
    names = []
    for group in ("required", "optional"):
        for name in definition["input_order"].get(group, []):
            spec = definition["inputs"][name]
            kind = spec["type"]
            if not spec.get("forceInput") and (isinstance(kind, (list, dict)) or kind in WIDGET_TYPES):
                names.append(name)
                if spec.get(CONTROL):
                    names.append(CONTROL)
    return names + FRONTEND["added_widgets"].get(node_type, [])


def ui_to_api(workflow: dict, defs: dict) -> dict:
    """What the frontend sends to /prompt for a UI workflow, without its browser-only widgets."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND["virtual_nodes"]:
            continue
        values = node.get("widgets_values", [])
        inputs = {
            name: values[i]
            for i, name in enumerate(widgets(node["type"], defs[node["type"]]))
            if name != CONTROL and name not in FRONTEND["ui_only_widgets"]
        }
        for slot in node["inputs"]:
            if slot["link"] is not None:
                link = links[slot["link"]]
                inputs[slot["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def test_every_workflow_has_an_api_twin_and_shows_in_the_template_browser():
    # ComfyUI lists <pack>/workflows/*.json (UI format) in its template browser; API twins sit one level down
    assert sorted(p.stem for p in WORKFLOWS.glob("*.json")) == sorted(NAMES)
    assert sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json")) == sorted(NAMES)
    for name in NAMES:
        assert ui(name)["version"] == 0.4 and ui(name)["nodes"] and ui(name)["links"]


@pytest.mark.parametrize("name", NAMES)
def test_node_types_exist(defs, name):
    for node in ui(name)["nodes"]:
        assert node["type"] in defs or node["type"] in FRONTEND["virtual_nodes"], node["type"]
    for node in api(name).values():
        assert node["class_type"] in defs, node["class_type"]  # no browser-only node in an API prompt
    assert any(defs[n["class_type"]]["output_node"] for n in api(name).values())


@pytest.mark.parametrize("name", NAMES)
def test_links_join_matching_types(defs, name):
    workflow = ui(name)
    nodes = {node["id"]: node for node in workflow["nodes"]}
    for link_id, source, slot, target, target_slot, kind in workflow["links"]:
        assert defs[nodes[source]["type"]]["output"][slot] == kind, link_id
        socket = nodes[target]["inputs"][target_slot]
        assert socket["link"] == link_id and socket["type"] in (kind, "*")
        accepts = defs[nodes[target]["type"]]["inputs"][socket["name"]]["type"]
        assert accepts in (kind, "*"), f"link {link_id}: {kind} into {socket['name']} ({accepts})"
        assert link_id in nodes[source]["outputs"][slot]["links"]


def check_value(name: str, spec: dict, value) -> None:
    kind = spec["type"]
    if isinstance(kind, dict):
        assert value in PROVIDED_FILES[kind["files"]], f"{name}: {value!r}"
    elif isinstance(kind, list):
        assert value in kind, f"{name}: {value!r} not in {kind}"
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), name
    elif kind == "STRING":
        assert isinstance(value, str), name
    else:
        assert isinstance(value, int if kind == "INT" else (int, float)) and not isinstance(value, bool), name
        assert spec.get("min", -np.inf) <= value <= spec.get("max", np.inf), f"{name}: {value} out of range"


@pytest.mark.parametrize("name", NAMES)
def test_widget_values_are_valid(defs, name):
    for node in ui(name)["nodes"]:
        if node["type"] in FRONTEND["virtual_nodes"]:
            assert isinstance(node["widgets_values"][0], str) and node["widgets_values"][0]
            continue
        definition = defs[node["type"]]
        for i, widget in enumerate(widgets(node["type"], definition)):
            if widget == CONTROL:
                assert node["widgets_values"][i] == "fixed"  # reproducible examples
            elif widget not in FRONTEND["ui_only_widgets"]:
                check_value(f"{node['type']}.{widget}", definition["inputs"][widget], node["widgets_values"][i])


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_twins_are_the_same_graph(defs, name):
    twin = {key: {"class_type": n["class_type"], "inputs": n["inputs"]} for key, n in api(name).items()}
    assert ui_to_api(ui(name), defs) == twin


@pytest.mark.parametrize("name", NAMES)
def test_notes_say_which_model_files_to_get_and_where(name):
    workflow = ui(name)
    notes = " ".join(n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in FRONTEND["virtual_nodes"])
    for node in api(name).values():
        if node["class_type"] in MODEL_INPUTS:
            model_input, folder = MODEL_INPUTS[node["class_type"]]
            assert folder in notes and node["inputs"][model_input] in notes, node["class_type"]
    assert "hf download" in notes and "Press **R**" in notes


def topological(prompt: dict) -> list[str]:
    done: list[str] = []

    def visit(key: str) -> None:
        if key in done:
            return
        for value in prompt[key]["inputs"].values():
            if isinstance(value, list):
                visit(value[0])
        done.append(key)

    for key in prompt:
        visit(key)
    return done


def execute(pack, prompt: dict, base: Path) -> dict[str, dict]:
    """Run an API prompt as ComfyUI's executor does, node by node in dependency order, with the pack's node
    functions. ComfyUI's native nodes are stood in for: output nodes record what they receive, and Load
    Audio decodes the whole file with PyAV as ComfyUI's does."""
    results: dict[str, tuple] = {}
    received: dict[str, dict] = {}
    for key in topological(prompt):
        node = prompt[key]
        kwargs = {
            name: results[value[0]][value[1]] if isinstance(value, list) else value
            for name, value in node["inputs"].items()
        }
        kind = node["class_type"]
        if kind in pack.NODE_CLASS_MAPPINGS:
            cls = pack.NODE_CLASS_MAPPINGS[kind]
            results[key] = getattr(cls(), cls.FUNCTION)(**kwargs)
        elif kind == "LoadAudio":
            song = decode(base / "input" / kwargs["audio"])
            results[key] = ({"waveform": song.waveform, "sample_rate": song.sample_rate},)
        else:
            assert CORE["nodes"][kind]["output_node"], kind
            received[key] = kwargs
            results[key] = ()
    return received


def fast(prompt: dict, steps: int = 2) -> dict:
    """The same graph with fewer sampling steps, so the suite stays quick on CPU."""
    for node in prompt.values():
        if node["class_type"] == "NoPainGanMiniSDSampler":
            node["inputs"]["steps"] = steps
    return prompt


def by_type(prompt: dict, kind: str) -> dict:
    [inputs] = [node["inputs"] for node in prompt.values() if node["class_type"] == kind]
    return inputs


def settings_of(prompt: dict) -> SamplerSettings:
    s = by_type(prompt, "NoPainGanMiniSDSampler")
    return SamplerSettings(s["scheduler"], s["steps"], s["cfg"], s["seed"], s["batch_size"], s["width"], s["height"])


def saved_image(received: dict) -> torch.Tensor:
    [images] = [kwargs["images"] for kwargs in received.values() if "images" in kwargs]
    assert images.shape == (1, 256, 256, 3) and images.dtype == torch.float32
    assert torch.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0
    return images


def cli_cover(tmp_path: Path, prompt: dict, base: Path, music: bool) -> np.ndarray:
    """The PNG ``nopaingan generate`` writes for the workflow's album, prompt template and sampler settings."""
    a, s = by_type(prompt, "NoPainGanAlbumPrompt"), settings_of(prompt)
    args = ["generate", "--sd", str(base / SD_DIR), "--album", a["album"], "--genre", a["genre"]]
    args += ["--prompt-template", a["template"], "--scheduler", s.scheduler, "--steps", str(s.steps)]
    args += ["--guidance", str(s.guidance), "--seed", str(s.seed), "--width", str(s.width), "--height", str(s.height)]
    args += ["--out", str(tmp_path), "--device", "cpu", "--dtype", by_type(prompt, "NoPainGanMiniSDLoader")["dtype"]]
    if music:
        strength = by_type(prompt, "NoPainGanFusionConditioning")["strength"]
        args += ["--fusion", str(base / FUSION_FILE), "--audio", str(base / SONG_FILE), "--mir", str(base / MIR_DIR)]
        args += ["--strength", str(strength)]
    assert main(args) == 0
    [png] = tmp_path.glob("*.png")
    return np.asarray(Image.open(png).convert("RGB"))


@pytest.fixture(scope="module")
def sd(comfy_base):
    """miniSD as the workflows' loader node and ``nopaingan generate`` load it on the CPU: the precision is
    ``auto`` in every workflow, as in the CLI (bf16 on CPUs with native bf16)."""
    loaders = [n["inputs"] for name in NAMES for n in api(name).values() if n["class_type"] == "NoPainGanMiniSDLoader"]
    assert loaders and {inputs["dtype"] for inputs in loaders} == {"auto"}
    return load_minisd(str(comfy_base / SD_DIR), dtype="auto", prepack=True)


def test_text_only_workflow_runs_and_matches_the_cli(pack, comfy_base, sd, tmp_path):
    prompt = fast(api("album_cover_text_only"))
    received = execute(pack, prompt, comfy_base)
    image = saved_image(received)
    a = by_type(prompt, "NoPainGanAlbumPrompt")
    text = album_prompt(a["album"], a["genre"], a["artist"], a["extra"], a["template"])
    assert [kw["source"] for kw in received.values() if "source" in kw] == [text]  # Preview Any shows the prompt
    assert torch.equal(image, generate_covers(sd, text, "", settings=settings_of(prompt)))  # bit for bit
    assert np.array_equal(np.asarray(to_pil(image)[0]), cli_cover(tmp_path, prompt, comfy_base, music=False))


def test_music_fusion_workflow_runs_and_matches_the_cli(pack, comfy_base, sd, tmp_path):
    prompt = fast(api("album_cover_music_fusion"))
    received = execute(pack, prompt, comfy_base)
    image = saved_image(received)
    [audio] = [kw["audio"] for kw in received.values() if "audio" in kw]  # what Preview Audio plays
    assert torch.equal(audio["waveform"], load_audio(comfy_base / SONG_FILE).waveform)
    a = by_type(prompt, "NoPainGanAlbumPrompt")
    text = album_prompt(a["album"], a["genre"], a["artist"], a["extra"], a["template"])
    fusion = load_fusion(comfy_base / FUSION_FILE)
    music = load_encoder("codified-lm", str(comfy_base / MIR_DIR)).encode(load_audio(comfy_base / SONG_FILE))
    strength = by_type(prompt, "NoPainGanFusionConditioning")["strength"]
    expected = generate_covers(sd, text, "", music, fusion, strength, settings_of(prompt))
    assert torch.equal(image, expected)  # bit for bit
    assert np.array_equal(np.asarray(to_pil(image)[0]), cli_cover(tmp_path, prompt, comfy_base, music=True))


def test_auto_tags_workflow_runs_with_the_words_heard(pack, comfy_base, sd):
    prompt = fast(api("album_cover_auto_tags"))
    received = execute(pack, prompt, comfy_base)
    image = saved_image(received)
    tags = by_type(prompt, "NoPainGanMusicTags")
    song = decode(comfy_base / SONG_FILE)
    clap = str(comfy_base / "models" / "nopaingan" / "mir" / tags["clap"])
    words, scores = tags_for_prompt(song.to_comfy(), clap=clap, top_k=tags["top_k"])
    a = by_type(prompt, "NoPainGanAlbumPrompt")
    text = album_prompt(a["album"], a["genre"], a["artist"], words, a["template"])
    shown = [kw["source"] for kw in received.values() if "source" in kw]
    assert sorted(shown) == sorted([scores, text]) and "Mood: " in text
    assert torch.equal(image, generate_covers(sd, text, "", settings=settings_of(prompt)))


def test_release_ready_workflow_titles_and_saves_a_checked_release_cover(pack, comfy_base):
    """The pack's end of the release workflow on what the native upscalers hand it (a 1024 px image)."""
    prompt = api("album_cover_release_ready")
    title = by_type(prompt, "NoPainGanCoverTitle")
    save = by_type(prompt, "NoPainGanSaveReleaseCover")
    upscaled = torch.rand(1, 64, 64, 3).repeat_interleave(16, 1).repeat_interleave(16, 2)  # soft 1024 px stand-in
    kwargs = {k: v for k, v in title.items() if not isinstance(v, list)}
    outputs = pack.NODE_CLASS_MAPPINGS["NoPainGanCoverTitle"]().draw(image=upscaled, **kwargs)
    titled = outputs[0]
    assert titled.shape == (1, 1024, 1024, 3) and not torch.equal(titled, upscaled)
    # the title and artist are typed once, into Cover Title; Save Release Cover gets what it drew through a link
    [cover_title] = [key for key, node in prompt.items() if node["class_type"] == "NoPainGanCoverTitle"]
    assert save["images"] == [cover_title, 0] and save["cover_text"] == [cover_title, 1]
    assert not {"title", "artist"} & set(save) and (title["title"], title["artist"]) == (
        "Midnight Drive",
        "The Night Shift",
    )
    node = pack.NODE_CLASS_MAPPINGS["NoPainGanSaveReleaseCover"]()
    links = {k: outputs[v[1]] for k, v in save.items() if isinstance(v, list)}  # both from Cover Title
    result = node.save(**links, **{k: v for k, v in save.items() if not isinstance(v, list)})
    [shown] = result["ui"]["images"]
    path = comfy_base / "output" / shown["subfolder"] / shown["filename"]
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (save["size"], save["size"]) and "icc_profile" in image.info
    [report] = result["ui"]["text"]
    assert "PASS  square" in report and "PASS  ICC profile" in report and "PASS  text" in report
    assert "text: as Cover Title drew it, title 'Midnight Drive', artist 'The Night Shift'" in report
    with Image.open(path) as image:
        assert record(image)["text"] == {"title": "Midnight Drive", "artist": "The Night Shift"}
    assert "FAIL  pixelation" in report  # the blocky stand-in is caught, as a real pixelated cover would be
