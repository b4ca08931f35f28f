"""The pack and its workflows inside a real ComfyUI, through its HTTP API, as a user's browser drives it.

Set COMFYUI_DIR to a ComfyUI checkout and run pytest with a Python that has ComfyUI's requirements and this
pack's installed (ComfyUI is started with the same interpreter):

    COMFYUI_DIR=~/ComfyUI ~/ComfyUI/venv/bin/python -m pytest tests/test_comfyui_live.py

The checkout is not modified: ComfyUI runs with ``--base-directory`` on a temporary folder that links this
repository into ``custom_nodes/`` and holds tiny models under the names the workflows use (its database is a
file there too, no bytecode written).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
from comfy_env import CHECKPOINT_FILE, ROOT, SD_DIR, install_models, install_release_models
from PIL import Image
from sd1_checkpoint import write_sd1_checkpoint

pytestmark = pytest.mark.skipif(
    not os.environ.get("COMFYUI_DIR"),
    reason="COMFYUI_DIR is not set: point it at a ComfyUI checkout to run the workflows in a real ComfyUI",
)

PACK = "comfyui-no-pain-no-gan"  # the folder name a git clone gives
WORKFLOWS = [
    "album_cover_text_only",
    "album_cover_music_fusion",
    "album_cover_native_ksampler",
    "album_cover_auto_tags",
]
RELEASE = "album_cover_release_ready"  # run by its own test: it needs the x4 upscaler and an upscale model
TEMPLATES = [*WORKFLOWS, RELEASE]
RELEASE_SKETCH = 64  # the miniSD cover's side in the release test: x4 diffusion -> 256, model x4 -> 1024
RELEASE_STEPS = 4  # the x4 sampler's steps there (the workflow's 20 repeat the same step: ~3.6 s each on the CPU)
STARTUP_SECONDS = 300
RUN_SECONDS = 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, data: dict | None = None):
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if response.headers.get_content_type() == "application/json" else raw


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory, tiny_models):
    base = tmp_path_factory.mktemp("comfyui-base")
    install_models(base, tiny_models)
    write_sd1_checkpoint(base / CHECKPOINT_FILE)
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK).symlink_to(ROOT, target_is_directory=True)
    port = free_port()
    log_path = base / "server.log"
    command = [sys.executable, "-B", "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port)]
    # a file database: with an in-memory one SQLAlchemy logs tracebacks when a pooled connection is
    # collected in the prompt-executing thread (sqlite objects are bound to the thread that made them)
    command += [
        "--base-directory",
        str(base),
        "--database-url",
        f"sqlite:///{base / 'comfyui.db'}",
        "--disable-auto-launch",
    ]
    # one torch thread, as conftest gives this process: thread counts change float sums in the last bits
    # unbuffered: the log is current when a test reads it
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=os.environ["COMFYUI_DIR"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                stats = call(f"{url}/system_stats")
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"ComfyUI did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        print(f"ComfyUI {stats['system']['comfyui_version']} at {url}, log {log_path}")
        yield SimpleNamespace(url=url, base=base, log=log_path, version=stats["system"]["comfyui_version"])
    finally:
        server.terminate()
        server.wait(timeout=60)


def queue(comfyui, prompt: dict, client_id: str = "") -> str:
    try:
        answer = call(f"{comfyui.url}/prompt", {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex})
    except urllib.error.HTTPError as exc:
        pytest.fail(f"ComfyUI refused the prompt: {exc.read().decode()}")
    assert answer["node_errors"] == {}
    return answer["prompt_id"]


def wait(comfyui, prompt_id: str) -> dict:
    """The prompt's history entry, which appears once it has finished (with success, an error or a cancel)."""
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        history = call(f"{comfyui.url}/history/{prompt_id}")
        if prompt_id in history:
            return history[prompt_id]
        time.sleep(1)
    pytest.fail(f"prompt {prompt_id} did not finish in {RUN_SECONDS} s")


def workflow(name: str) -> dict:
    return json.loads((ROOT / "workflows" / "api" / f"{name}.json").read_text())


def fetch_image(comfyui, image: dict) -> np.ndarray:
    query = urllib.parse.urlencode(image)
    path = comfyui.base / "fetched.png"
    path.write_bytes(call(f"{comfyui.url}/view?{query}"))
    return np.asarray(Image.open(path).convert("RGB"))


def test_pack_loads_without_errors_or_warnings(comfyui):
    log = comfyui.log.read_text()
    [line] = [line for line in log.splitlines() if line.strip().endswith(f"custom_nodes/{PACK}")]
    assert "IMPORT FAILED" not in line, log
    for problem in ("Cannot import", "Skip", "Unable to parse pyproject.toml", "Traceback"):
        assert problem not in log, log
    info = call(f"{comfyui.url}/object_info")
    ours = {name: node for name, node in info.items() if node["python_module"] == f"custom_nodes.{PACK}"}
    assert len(ours) == 13 and all(name.startswith("NoPainGan") for name in ours)
    assert {node["category"].split("/")[0] for node in ours.values()} == {"No-Pain-No-GAN"}
    assert all(node["description"] for node in ours.values())
    templates = call(f"{comfyui.url}/workflow_templates")
    assert sorted(templates[PACK]) == sorted(TEMPLATES)  # listed in the template browser


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_runs(comfyui, name):
    entry = wait(comfyui, queue(comfyui, workflow(name)))
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    outputs = entry["outputs"]
    [images] = [out["images"] for out in outputs.values() if "images" in out]
    cover = fetch_image(comfyui, images[0])
    assert cover.shape == (256, 256, 3) and cover.std() > 0
    kinds = {key for out in outputs.values() for key in out}
    assert "text" in kinds  # Preview Any showed the prompt (and the checkpoint info or the tag scores)
    if name != "album_cover_text_only":
        assert "audio" in kinds  # Preview Audio played the song


def test_text_only_cover_is_the_library_cover(comfyui):
    """ComfyUI's image is the CLI's (packed on the CPU, as both load it): SaveImage stores floor(255 x image)."""
    from nopaingan_core.generate import SamplerSettings, generate_covers
    from nopaingan_core.prompt import album_prompt
    from nopaingan_core.sampling import load_minisd

    prompt = workflow("album_cover_text_only")
    entry = wait(comfyui, queue(comfyui, prompt))
    [images] = [out["images"] for out in entry["outputs"].values() if "images" in out]
    nodes = {node["class_type"]: node["inputs"] for node in prompt.values()}
    a, s = nodes["NoPainGanAlbumPrompt"], nodes["NoPainGanMiniSDSampler"]
    text = album_prompt(a["album"], a["genre"], a["artist"], a["extra"], a["template"])
    settings = SamplerSettings(s["scheduler"], s["steps"], s["cfg"], s["seed"], 1, s["width"], s["height"])
    expected = generate_covers(load_minisd(str(comfyui.base / SD_DIR), prepack=True), text, "", settings=settings)
    pixels = np.clip(255.0 * expected[0].numpy(), 0, 255).astype(np.uint8)
    assert np.array_equal(fetch_image(comfyui, images[0]), pixels)


async def _progress_then_cancel(comfyui, prompt: dict, node: str) -> list[tuple[str, dict]]:
    import aiohttp  # one of ComfyUI's requirements

    client_id = uuid.uuid4().hex
    events = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{comfyui.url}/ws?clientId={client_id}") as ws:
        await asyncio.to_thread(queue, comfyui, prompt, client_id)
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(message.data)
            events.append((event["type"], event["data"]))
            if event["type"] == "progress" and event["data"]["node"] == node and event["data"]["value"] == 2:
                await session.post(f"{comfyui.url}/interrupt")
            if event["type"] in ("execution_interrupted", "execution_error", "execution_success"):
                break
    return events


def test_sampler_shows_progress_and_stops_on_cancel(comfyui):
    prompt = workflow("album_cover_text_only")
    [node] = [key for key, n in prompt.items() if n["class_type"] == "NoPainGanMiniSDSampler"]
    prompt[node]["inputs"]["steps"] = 500  # far longer than the test waits
    events = asyncio.run(asyncio.wait_for(_progress_then_cancel(comfyui, prompt, node), RUN_SECONDS))
    progress = [data for kind, data in events if kind == "progress" and data["node"] == node]
    assert [p["value"] for p in progress[:2]] == [1, 2] and progress[0]["max"] >= 500  # the node's progress bar
    kind, data = events[-1]
    assert kind == "execution_interrupted" and data["node_id"] == node and data["node_type"] == "NoPainGanMiniSDSampler"
    assert len(progress) < 500


def test_user_error_reaches_the_ui_as_one_line(comfyui):
    (comfyui.base / "input" / "broken.mp3").write_bytes(b"not an mp3 at all")
    prompt = workflow("album_cover_music_fusion")
    [node] = [key for key, n in prompt.items() if n["class_type"] == "NoPainGanLoadAudio"]
    prompt[node]["inputs"]["audio"] = "broken.mp3"
    entry = wait(comfyui, queue(comfyui, prompt))
    [error] = [data for kind, data in entry["status"]["messages"] if kind == "execution_error"]
    assert error["node_type"] == "NoPainGanLoadAudio" and error["exception_type"].endswith("AudioError")
    message = error["exception_message"].strip()
    assert "broken.mp3: not a readable audio file" in message and "\n" not in message


@pytest.fixture(scope="module")
def release_models(comfyui):
    """The tiny x4 upscaler checkpoint and ESRGAN network, dropped into the running ComfyUI's model folders (it
    rescans a folder whose modification time changed, as when a user adds a model), removed afterwards."""
    paths = install_release_models(comfyui.base)
    yield paths
    for path in paths:
        path.unlink()


def test_release_workflow_writes_a_checked_release_jpeg(comfyui, release_models):
    """album_cover_release_ready end to end with ComfyUI's own x4 upscaler nodes (checkpoint, SD_4XUpscale_
    Conditioning, KSampler, VAE Decode) and upscale-model nodes (spandrel). For the CPU the miniSD cover is 64 px
    instead of 256 (the x4 stage's latent is 64x64, not 256x256) and the x4 sampler takes 4 steps instead of 20;
    everything else, the 3000 px release size included, is the shipped workflow. Preview nodes on the two
    upscalers' outputs show each one enlarged 4x."""
    from io import BytesIO

    from PIL import ImageCms

    from nopaingan_core.release.check import check_cover

    prompt = workflow(RELEASE)
    nodes = {node["class_type"]: (key, node["inputs"]) for key, node in prompt.items()}
    nodes["NoPainGanMiniSDSampler"][1].update(width=RELEASE_SKETCH, height=RELEASE_SKETCH)
    nodes["KSampler"][1]["steps"] = RELEASE_STEPS
    for upscaler in ("VAEDecode", "ImageUpscaleWithModel"):
        prompt[f"preview_{upscaler}"] = {"class_type": "PreviewImage", "inputs": {"images": [nodes[upscaler][0], 0]}}
    save_key, save = nodes["NoPainGanSaveReleaseCover"]

    logged = len(comfyui.log.read_text())  # the other tests' deliberate errors are before this
    entry = wait(comfyui, queue(comfyui, prompt))
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    for upscaler, side in (("VAEDecode", 4 * RELEASE_SKETCH), ("ImageUpscaleWithModel", 16 * RELEASE_SKETCH)):
        [image] = entry["outputs"][f"preview_{upscaler}"]["images"]
        pixels = fetch_image(comfyui, image)
        assert pixels.shape == (side, side, 3) and pixels.std() > 0

    shown = entry["outputs"][save_key]
    [image], [report] = shown["images"], shown["text"]
    assert image["type"] == "output" and image["filename"].endswith("_release.jpg")
    path = comfyui.base / "output" / image["subfolder"] / image["filename"]
    data = call(f"{comfyui.url}/view?{urllib.parse.urlencode(image)}")
    assert data == path.read_bytes()
    with Image.open(BytesIO(data)) as jpeg:
        assert (jpeg.format, jpeg.mode, jpeg.size) == ("JPEG", "RGB", (save["size"], save["size"]))
        profile = ImageCms.ImageCmsProfile(BytesIO(jpeg.info["icc_profile"]))
        assert "srgb" in ImageCms.getProfileDescription(profile).lower()
    # the UI shows what `nopaingan check-cover` says about the file
    title = nodes["NoPainGanCoverTitle"][1]  # typed once there; Save Release Cover gets it through cover_text
    rules = check_cover(path, title["title"], title["artist"])
    source = f"text: as Cover Title drew it, title {title['title']!r}, artist {title['artist']!r}"
    assert report == f"{image['filename']}:\n{source}\n" + "\n".join(rule.line() for rule in rules)
    verdicts = {rule.name: rule.passed for rule in rules}
    for name in ("format", "square", "size", "colour mode", "ICC profile", "file size", "text"):
        assert verdicts[name], report  # sharpness and pixelation judge random weights' pictures: not asserted

    log = comfyui.log.read_text()[logged:]
    assert "Requested to load SD_X4Upscaler" in log  # ComfyUI recognised the checkpoint as the x4 upscaler
    for problem in ("Traceback", "clip missing", "unet missing", "Missing VAE keys", "!!! Exception", "ERROR"):
        assert problem not in log, log[-5000:]
