"""The node pack as ComfyUI loads it: registration, every node's contract, and what each node does on tiny
models (native types in and out, fusion of any conditioning, sampling, errors, progress and cancel)."""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from comfy_env import ROOT, SONG_FILE, fake_folder_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nopaingan_core.audio import decode, load_audio
from nopaingan_core.encoders import load_encoder
from nopaingan_core.sampling import load_minisd, sample

DISPLAY_NAMES = {
    "NoPainGanLoadAudio": "Load Audio (No-Pain-No-GAN)",
    "NoPainGanMusicTags": "Music Tags",
    "NoPainGanAlbumPrompt": "Album Prompt",
    "NoPainGanMIREncoderLoader": "MIR Encoder Loader",
    "NoPainGanMIREncode": "MIR Encode",
    "NoPainGanFusionLoader": "Fusion Loader",
    "NoPainGanMusicAdapter": "Music Adapter",
    "NoPainGanFusionConditioning": "Music-Text Fusion Conditioning",
    "NoPainGanMiniSDLoader": "miniSD Loader",
    "NoPainGanMiniSDTextEncode": "miniSD Text Encode",
    "NoPainGanMiniSDSampler": "miniSD Sampler",
    "NoPainGanCoverTitle": "Cover Title",
    "NoPainGanSaveReleaseCover": "Save Release Cover",
}
NATIVE = {"AUDIO", "CONDITIONING", "IMAGE", "LATENT", "STRING", "INT", "FLOAT", "BOOLEAN"}
UI_ONLY = {"AUDIO_UI", "AUDIOUPLOAD"}  # the frontend's audio player and upload button


def node(pack, name: str):
    return pack.NODE_CLASS_MAPPINGS[name]()


def errors(pack):
    return pack.nopaingan_core.errors


def test_registered_as_comfyui_registers_a_folder(pack):
    assert pack.__name__ == str(ROOT).replace(".", "_x_")  # ComfyUI names a pack after its path
    assert pack.nodes.__name__ == f"{pack.__name__}.nodes"  # not ComfyUI's own top-level `nodes`
    assert sys.modules["nodes"] is not pack.nodes
    assert pack.NODE_DISPLAY_NAME_MAPPINGS == DISPLAY_NAMES
    assert set(pack.NODE_CLASS_MAPPINGS) == set(DISPLAY_NAMES)
    assert all(cls.__name__ == name for name, cls in pack.NODE_CLASS_MAPPINGS.items())


def test_import_loads_neither_models_nor_heavy_libraries(tmp_path):
    script = (
        "import json, sys; from pathlib import Path; from comfy_env import load_pack; "
        f"pack = load_pack(Path({str(tmp_path)!r})); "
        "heavy = sorted(m for m in ('diffusers', 'transformers', 'huggingface_hub') if m in sys.modules); "
        "print(json.dumps({'nodes': len(pack.NODE_CLASS_MAPPINGS), 'heavy': heavy}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == {"nodes": len(DISPLAY_NAMES), "heavy": []}


@pytest.mark.parametrize("name", sorted(DISPLAY_NAMES))
def test_node_contract(pack, name):
    cls = pack.NODE_CLASS_MAPPINGS[name]
    spec = cls.INPUT_TYPES()
    assert spec["required"] and set(spec) <= {"required", "optional"}
    inputs = {**spec["required"], **spec.get("optional", {})}
    for input_name, (kind, options) in inputs.items():
        assert isinstance(kind, list) or kind in NATIVE | UI_ONLY or kind.startswith("NOPAINGAN_"), input_name
        assert options["tooltip"].strip(), f"{name}.{input_name} has no tooltip"
    assert cls.CATEGORY.split("/")[0] == "No-Pain-No-GAN"
    assert len(cls.DESCRIPTION) > 50
    assert cls.RETURN_TYPES or cls.OUTPUT_NODE  # an output node may return nothing
    assert all(t in NATIVE or t.startswith("NOPAINGAN_") for t in cls.RETURN_TYPES)
    assert len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
    assert all(tip.strip() for tip in cls.OUTPUT_TOOLTIPS)
    # ComfyUI calls FUNCTION(**inputs): exactly the declared inputs, defaults for the optional ones only
    params = dict(inspect.signature(getattr(cls, cls.FUNCTION)).parameters)
    assert params.pop("self").kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert set(params) == set(inputs)
    for param in params.values():
        required = param.name in spec["required"]
        assert (param.default is inspect.Parameter.empty) == required, param.name


def test_dtype_widgets_offer_the_library_s_dtypes_in_the_ui_s_order(pack):
    library, bridge = pack.nopaingan_core.precision, pack.nodes.bridge
    ordered = list(bridge.DTYPES.items())  # a dict's == ignores the order the widget shows
    assert ordered == [("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)]
    assert all(dtype is library.DTYPES[name] for name, dtype in ordered)
    encoder = pack.NODE_CLASS_MAPPINGS["NoPainGanMIREncoderLoader"].INPUT_TYPES()["required"]["dtype"]
    minisd = pack.NODE_CLASS_MAPPINGS["NoPainGanMiniSDLoader"].INPUT_TYPES()["required"]["dtype"]
    assert (encoder[0], encoder[1]["default"]) == (["fp32", "fp16", "bf16"], "fp32")
    assert (minisd[0], minisd[1]["default"]) == (["auto", "fp32", "fp16", "bf16"], "auto")
    assert set(minisd[0]) == set(library.DTYPE_CHOICES)  # every name the library takes, no other


def test_our_types_flow_from_node_to_node_and_native_types_at_the_edges(pack):
    classes = pack.NODE_CLASS_MAPPINGS.values()
    produced = {t for cls in classes for t in cls.RETURN_TYPES}
    consumed = {
        kind
        for cls in classes
        for kind, _ in {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}.values()
        if isinstance(kind, str)
    }
    assert {t for t in consumed if t.startswith("NOPAINGAN_")} <= produced

    def types(name: str, group: str = "required") -> dict[str, str]:
        return {k: v[0] for k, v in pack.NODE_CLASS_MAPPINGS[name].INPUT_TYPES()[group].items()}

    get = pack.NODE_CLASS_MAPPINGS
    assert get["NoPainGanLoadAudio"].RETURN_TYPES == ("AUDIO",)
    assert types("NoPainGanMIREncode")["audio"] == types("NoPainGanMusicTags")["audio"] == "AUDIO"
    assert types("NoPainGanFusionConditioning")["conditioning"] == "CONDITIONING"
    assert get["NoPainGanFusionConditioning"].RETURN_TYPES == get["NoPainGanMiniSDTextEncode"].RETURN_TYPES
    assert get["NoPainGanMiniSDTextEncode"].RETURN_TYPES == ("CONDITIONING",)
    assert get["NoPainGanMiniSDSampler"].RETURN_TYPES == ("IMAGE", "LATENT")
    assert get["NoPainGanMusicTags"].RETURN_TYPES == ("STRING", "STRING")
    assert types("NoPainGanAlbumPrompt")["extra"] == types("NoPainGanMiniSDTextEncode")["text"] == "STRING"


def test_model_folders_are_registered_and_merged_with_extra_model_paths(pack, comfy_base):
    folder_paths = sys.modules["folder_paths"]
    for key, sub in (("nopaingan_mir", "nopaingan/mir"), ("nopaingan_fusion", "nopaingan/fusion")):
        assert folder_paths.get_folder_paths(key) == [str(comfy_base / "models" / sub)]
    # extra_model_paths.yaml is applied before custom nodes load: its folders are kept, ours added once
    other = fake_folder_paths(comfy_base)
    other.folder_names_and_paths["nopaingan_fusion"] = (["/data/fusion"], set())
    paths = pack.nodes.paths
    original = paths.folder_paths
    paths.folder_paths = other
    try:
        paths.register_model_folders()
        paths.register_model_folders()
    finally:
        paths.folder_paths = original
    dirs, extensions = other.folder_names_and_paths["nopaingan_fusion"]
    assert dirs == ["/data/fusion", str(comfy_base / "models" / "nopaingan" / "fusion")]
    assert extensions == {".safetensors"}


def test_load_audio_lists_the_input_folder_and_outputs_native_audio(pack, comfy_base):
    cls = pack.NODE_CLASS_MAPPINGS["NoPainGanLoadAudio"]
    files, options = cls.INPUT_TYPES()["required"]["audio"]
    assert files == ["song.mp3"] and options["audio_upload"] is True
    assert list(cls.INPUT_TYPES()["optional"]) == ["audioUI", "upload"]  # the player before the button
    path = comfy_base / SONG_FILE
    (audio,) = cls().load("song.mp3", True, 0.0, 25.0)
    assert set(audio) == {"waveform", "sample_rate"} and audio["sample_rate"] == 44100
    assert audio["waveform"].dtype == torch.float32 and audio["waveform"].shape[:2] == (1, 2)
    assert torch.equal(audio["waveform"], load_audio(path).waveform)  # a 12 s song: all of it
    (window,) = cls().load("song.mp3", automatic_window=True, start=0.0, duration=5.0)
    assert torch.equal(window["waveform"], load_audio(path, None, 5.0).waveform)
    (part,) = cls().load("song.mp3", automatic_window=False, start=2.0, duration=5.0)
    assert part["waveform"].shape[-1] == 5 * 44100
    assert torch.equal(part["waveform"], decode(path, 2.0, 5.0).waveform)
    assert cls.VALIDATE_INPUTS("song.mp3") is True
    assert "nothere.wav" in cls.VALIDATE_INPUTS("nothere.wav")
    assert cls.IS_CHANGED("song.mp3") == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mir(pack):
    return node(pack, "NoPainGanMIREncoderLoader").load("codified-lm", "musicgen-small", -1, "default", "fp32")[0]


@pytest.fixture(scope="module")
def song_audio(pack):
    return node(pack, "NoPainGanLoadAudio").load("song.mp3", True, 0.0, 25.0)[0]


def test_mir_encoder_loader_and_encode(pack, mir, song_audio, tiny_models):
    models = pack.NODE_CLASS_MAPPINGS["NoPainGanMIREncoderLoader"].INPUT_TYPES()["required"]["model"][0]
    assert models == ["default", "larger_clap_music", "musicgen-small"]
    assert mir.device == torch.device("cpu") and mir.model.info.kind == "codified-lm"
    (embedding,) = node(pack, "NoPainGanMIREncode").encode(song_audio, mir)
    expected = load_encoder("codified-lm", str(tiny_models["codified-lm"])).encode(song_audio)
    assert embedding.features.shape == expected.features.shape and embedding.features.shape[-1] == mir.model.info.dim
    assert torch.equal(embedding.features, expected.features)
    with pytest.raises(errors(pack).ModelLoadError, match="holds a clap model, but kind is codified-lm"):
        node(pack, "NoPainGanMIREncoderLoader").load("codified-lm", "larger_clap_music", -1, "cpu", "fp32")


@pytest.fixture(scope="module")
def tokens(pack, mir, song_audio):
    fusion, info = node(pack, "NoPainGanFusionLoader").load(mir, "fusion-musicgen-small.safetensors")
    assert info.startswith("encoder: codified-lm") and "untrained" in info  # random weights, no training summary
    (embedding,) = node(pack, "NoPainGanMIREncode").encode(song_audio, mir)
    (music_tokens,) = node(pack, "NoPainGanMusicAdapter").adapt(embedding, fusion)
    return music_tokens


def test_fusion_loader_lists_files_and_builds_an_untrained_identity(pack, mir):
    choices = pack.NODE_CLASS_MAPPINGS["NoPainGanFusionLoader"].INPUT_TYPES()["required"]["fusion"][0]
    assert choices == ["none (untrained)", "fusion-musicgen-small.safetensors"]
    fusion, info = node(pack, "NoPainGanFusionLoader").load(mir, "none (untrained)")
    assert fusion.encoder == mir.model.info and "unchanged" in info
    text = torch.randn(1, 77, 768)
    features = torch.randn(1, 50, mir.model.info.dim)
    embedding = pack.nopaingan_core.encoders.MusicEmbedding(features, mir.model.info, 0.0, 1.0)
    (music_tokens,) = node(pack, "NoPainGanMusicAdapter").adapt(embedding, fusion)
    (fused,) = node(pack, "NoPainGanFusionConditioning").apply([[text, {}]], music_tokens, 1.0)
    assert torch.equal(fused[0][0], text)


def test_music_adapter_gives_text_shaped_tokens(tokens):
    assert tokens.tokens.shape == (1, 16, 768)
    assert tokens.fusion.trained is False and torch.isfinite(tokens.tokens).all()


def test_fusion_conditioning_keeps_options_lengths_entries_and_batches(pack, tokens):
    apply = node(pack, "NoPainGanFusionConditioning").apply
    control = object()  # e.g. a ControlNet: carried along untouched
    conditioning = [
        [torch.randn(1, 77, 768), {"pooled_output": torch.randn(1, 768), "strength": 0.5, "control": control}],
        [torch.randn(1, 154, 768), {"pooled_output": torch.randn(1, 768), "area": (8, 8, 0, 0)}],  # long prompt
        [torch.randn(2, 231, 768), {}],  # a batch of two, three 77-token chunks
        [torch.randn(1, 77, 768).half(), {"start_percent": 0.2}],
    ]
    before = [text.clone() for text, _ in conditioning]
    (out,) = apply(conditioning, tokens, 1.0)
    assert len(out) == len(conditioning)
    for (text, options), (fused, kept), original in zip(conditioning, out, before, strict=True):
        assert fused.shape == text.shape and fused.dtype == text.dtype
        assert kept is not options and kept.keys() == options.keys()
        assert all(kept[k] is options[k] for k in options)
        assert torch.equal(text, original)  # the input is not modified
        assert torch.equal(fused, tokens.fusion.fuse(text, tokens.tokens, 1.0))
        assert (fused.float() - text.float()).abs().mean() > 1e-3
    (zero,) = apply(conditioning, tokens, 0.0)
    assert all(torch.equal(z[0], text) for z, (text, _) in zip(zero, conditioning, strict=True))
    two_songs = SimpleNamespace(tokens=tokens.tokens.expand(2, -1, -1), fusion=tokens.fusion)
    (batched,) = apply([[torch.randn(1, 77, 768), {}]], two_songs, 1.0)
    assert batched[0][0].shape == (2, 77, 768)
    with pytest.raises(errors(pack).NoPainGanError, match="batch of 3 text embeddings with a batch of 2"):
        apply([[torch.randn(3, 77, 768), {}]], two_songs, 1.0)


@pytest.fixture(scope="module")
def minisd(pack):
    return node(pack, "NoPainGanMiniSDLoader").load("miniSD-diffusers", "default", "fp32")[0]


def test_minisd_text_encode_gives_native_conditioning(pack, minisd, tiny_models):
    models = pack.NODE_CLASS_MAPPINGS["NoPainGanMiniSDLoader"].INPUT_TYPES()["required"]["model"][0]
    assert models == ["miniSD-diffusers", "lambdalabs/miniSD-diffusers"]
    (conditioning,) = node(pack, "NoPainGanMiniSDTextEncode").encode(minisd, "a neon city")
    [[embedding, options]] = conditioning
    assert embedding.shape == (1, 77, 768) and options["pooled_output"].shape == (1, 768)
    assert torch.equal(embedding, load_minisd(str(tiny_models["sd"]), dtype="fp32").encode_prompt(["a neon city"]))


def test_minisd_sampler_is_the_core_sampler(pack, minisd):
    sd = minisd.model
    positive = [[torch.randn(1, 154, 768), {"pooled_output": torch.randn(1, 768)}]]  # a long native prompt
    negative = [[torch.randn(1, 77, 768), {"pooled_output": torch.randn(1, 768)}]]
    settings = {"seed": 5, "steps": 2, "cfg": 7.5, "scheduler": "ddim", "width": 64, "height": 64, "batch_size": 2}
    images, latent = node(pack, "NoPainGanMiniSDSampler").generate(minisd, positive, negative, **settings)
    assert images.shape == (2, 64, 64, 3) and images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    uncond = negative[0][0].repeat(1, 2, 1)  # ComfyUI's rule: repeat to the common length
    latents = sample(sd, positive[0][0], uncond, scheduler="ddim", steps=2, seed=5, num=2, width=64, height=64)
    assert torch.equal(images, sd.decode(latents))
    assert torch.equal(latent["samples"], latents / sd.vae.config.scaling_factor)  # ComfyUI's unscaled latents
    unguided, _ = node(pack, "NoPainGanMiniSDSampler").generate(
        minisd, positive, negative + negative, **settings | {"cfg": 1.0}
    )
    assert unguided.shape == images.shape  # without guidance the negative is not used
    with pytest.raises(errors(pack).NoPainGanError, match="positive conditioning has 2 entries"):
        node(pack, "NoPainGanMiniSDSampler").generate(minisd, positive + positive, negative, **settings)


class FakeInterrupt(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


def test_sampler_reports_progress_and_stops_on_cancel_inside_comfyui(pack, minisd, monkeypatch):
    bars, checks = [], []

    class ProgressBar:
        def __init__(self, total):
            bars.append([total])

        def update_absolute(self, value, total=None):
            bars[-1].append((value, total))

    def throw_if_interrupted():
        checks.append(1)
        if cancel_after is not None and len(checks) > cancel_after:
            raise FakeInterrupt()

    cpu = torch.device("cpu")
    mm = SimpleNamespace(
        get_torch_device=lambda: cpu,
        unet_offload_device=lambda: cpu,
        intermediate_device=lambda: cpu,
        throw_exception_if_processing_interrupted=throw_if_interrupted,
    )
    bridge = pack.nodes.bridge
    monkeypatch.setattr(bridge, "mm", mm)
    monkeypatch.setattr(bridge, "comfy_utils", SimpleNamespace(ProgressBar=ProgressBar))
    text = [[torch.randn(1, 77, 768), {}]]
    settings = {"seed": 0, "steps": 4, "cfg": 7.5, "scheduler": "ddim", "width": 64, "height": 64, "batch_size": 1}
    cancel_after = None
    node(pack, "NoPainGanMiniSDSampler").generate(minisd, text, text, **settings)
    assert bars == [[4, (1, 4), (2, 4), (3, 4), (4, 4)]]
    checks.clear()
    cancel_after = 2  # the user presses Cancel during the third step
    with pytest.raises(FakeInterrupt):
        node(pack, "NoPainGanMiniSDSampler").generate(minisd, text, text, **settings)
    assert len(checks) == 3 and bars[-1] == [4, (1, 4), (2, 4)]


def test_album_prompt_and_music_tags(pack, song_audio, tiny_models):
    (words, scores) = node(pack, "NoPainGanMusicTags").tag(song_audio, "larger_clap_music", 2)
    tagging = pack.nopaingan_core.tagging
    assert (words, scores) == tagging.tags_for_prompt(song_audio, clap=str(tiny_models["clap"]), top_k=2)
    assert words.startswith("Mood: ") and " Instruments: " in words
    assert scores.splitlines()[-1].startswith("tempo")
    build = node(pack, "NoPainGanAlbumPrompt").build
    (prompt,) = build("Blue Hour", "jazz", "", words, pack.nopaingan_core.prompt.DEFAULT_TEMPLATE)
    assert prompt == f"Create an album cover for the album Blue Hour. The genre is jazz. {words}"
    (custom,) = build("Blue Hour", "jazz", "Mina", "", "{artist} presents {album}, a {genre} record.")
    assert custom == "Mina presents Blue Hour, a jazz record."
    with pytest.raises(ValueError, match="album name is empty"):
        build(" ", "jazz", "", "", "{album}")


def test_user_errors_are_one_clear_line(pack, comfy_base, mir, tiny_models):
    errs = errors(pack)
    bad_song = comfy_base / "input" / "tests" / "broken.mp3"
    bad_song.parent.mkdir(exist_ok=True)
    bad_song.write_bytes(b"this is not audio")
    bad_fusion = comfy_base / "models" / "nopaingan" / "fusion" / "tests" / "not-a-fusion.safetensors"
    bad_fusion.parent.mkdir(exist_ok=True)
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, str(bad_fusion))
    mert = SimpleNamespace(model=load_encoder("mert", str(tiny_models["mert"])), device=torch.device("cpu"))
    cases = [
        (lambda: node(pack, "NoPainGanLoadAudio").load("tests/broken.mp3", True, 0, 25), errs.AudioError, "broken.mp3"),
        (
            lambda: node(pack, "NoPainGanFusionLoader").load(mir, "tests/not-a-fusion.safetensors"),
            errs.CheckpointError,
            "not-a-fusion.safetensors",
        ),
        (
            lambda: node(pack, "NoPainGanFusionLoader").load(mert, "fusion-musicgen-small.safetensors"),
            errs.CheckpointError,
            "expects a",
        ),
        (
            lambda: node(pack, "NoPainGanMIREncoderLoader").load("mert", "MERT-v1-95M", -1, "cpu", "fp32"),
            errs.ModelNotFoundError,
            "MERT-v1-95M",
        ),
    ]
    try:
        for call, kind, named in cases:
            with pytest.raises(kind) as caught:
                call()
            message = str(caught.value)
            assert named in message and "\n" not in message, message
    finally:  # the base folder is shared by the session: leave its lists as they were
        bad_song.unlink()
        bad_fusion.unlink()


# --- release: Cover Title -> Save Release Cover ------------------------------------------------------------------

TEXTS = st.text(st.characters(codec="latin-1", categories=("Lu", "Ll", "Nd")), min_size=1, max_size=10)


def release_record(comfy_base: Path, shown: dict) -> dict:
    from nopaingan_core.release.check import record

    with Image.open(comfy_base / "output" / shown["subfolder"] / shown["filename"]) as image:
        return record(image)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, st.one_of(st.just(""), TEXTS), st.integers(1, 2))
def test_save_records_and_checks_exactly_the_text_cover_title_drew(pack, comfy_base, title, artist, batch):
    # the reviewer's case: Save used to check its own fields, whatever Cover Title drew; now the text flows
    picture = torch.rand(batch, 1, 1, 3).expand(batch, 256, 256, 3).contiguous()  # a miniSD cover
    titled, drawn = node(pack, "NoPainGanCoverTitle").draw(picture, title, artist, "auto", "", "auto")
    assert (drawn.title, drawn.artist, len(drawn.layouts)) == (title, artist, batch)
    result = node(pack, "NoPainGanSaveReleaseCover").save(titled, "nopaingan/flow", 64, cover_text=drawn)
    for shown, report in zip(result["ui"]["images"], result["ui"]["text"], strict=True):
        saved = release_record(comfy_base, shown)
        assert saved["text"] == {"title": title, "artist": artist}
        x0, y0, x1, y1 = saved["layout"]["box"]
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64  # drawn at 96 px, recorded at the saved 64 px
        assert report.splitlines()[1] == f"text: as Cover Title drew it, title {title!r}, artist {artist!r}"
        assert "PASS  text" in report


def test_save_without_cover_text_says_so_and_records_no_text(pack, comfy_base):
    result = node(pack, "NoPainGanSaveReleaseCover").save(torch.rand(1, 64, 64, 3), "nopaingan/plain", 64)
    [shown], [report] = result["ui"]["images"], result["ui"]["text"]
    assert release_record(comfy_base, shown)["text"] == {"title": "", "artist": ""}
    assert "text: none connected" in report.splitlines()[1]


@pytest.mark.parametrize(
    ("cover_text", "message"),
    [(" Bad\ntitle ", "cover_text is a str"), ("bad_title", "control characters"), ("bad_artist", "leading/trail"),
     ("two", "describes 2 images but 1")],
)  # fmt: skip
def test_save_refuses_text_the_cli_refuses_in_one_line(pack, cover_text, message):
    DrawnText = pack.nopaingan_core.release.typography.DrawnText  # the pack's own copy, as Cover Title makes it
    value = {
        "bad_title": DrawnText(" Bad\ntitle ", "", (None,)),
        "bad_artist": DrawnText("Album", " Band", (None,)),
        "two": DrawnText("Album", "", (None, None)),
    }.get(cover_text, cover_text)
    with pytest.raises(errors(pack).CoverError, match=f"^Save Release Cover: .*{message}") as caught:
        node(pack, "NoPainGanSaveReleaseCover").save(torch.rand(1, 64, 64, 3), "nopaingan/bad", 64, cover_text=value)
    assert "\n" not in str(caught.value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([1, 2, 8, 30, 64, 200, 256, 300]), st.sampled_from([1, 2, 8, 30, 64, 200, 256, 300]))
def test_cover_title_sets_text_on_any_image_shape_or_says_in_one_line_it_is_too_small(pack, h, w):
    image = torch.full((1, h, w, 3), 0.2)
    try:
        titled, drawn = node(pack, "NoPainGanCoverTitle").draw(image, "X", "", "auto", "", "auto")
    except errors(pack).CoverError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"Cover Title: title: a {w}x{h} px image is too small")
        assert min(w, h) < 30
        return
    assert titled.shape == image.shape and not torch.equal(titled, image)  # the X is there
    assert drawn.layouts[0] is not None


@pytest.mark.parametrize("prefix", ["", ".", "..", " ", "../escape", "a/../../escape", "/tmp/abs", "nopaingan/", "./x"])
def test_save_refuses_a_prefix_that_would_name_the_file_after_a_folder_or_leave_output(pack, comfy_base, prefix):
    # the reviewer's case: "" or "." became the name ".", and Path(folder) / "." wrote output_release.jpg beside output/
    before = {p for p in comfy_base.rglob("*") if p.is_file()}
    with pytest.raises(errors(pack).CoverError, match="^Save Release Cover: filename_prefix .*expected a name") as e:
        node(pack, "NoPainGanSaveReleaseCover").save(torch.rand(1, 64, 64, 3), prefix, 64)
    assert "\n" not in str(e.value)
    assert {p for p in comfy_base.rglob("*") if p.is_file()} == before  # nothing written anywhere


def test_save_writes_inside_output_for_a_plain_name_and_a_folder_name(pack, comfy_base):
    output = (comfy_base / "output").resolve()
    for prefix in ("plainname", "nopaingan/inside/cover"):
        [shown] = node(pack, "NoPainGanSaveReleaseCover").save(torch.rand(1, 64, 64, 3), prefix, 64)["ui"]["images"]
        path = (output / shown["subfolder"] / shown["filename"]).resolve()
        assert path.is_file() and path.is_relative_to(output) and path.name.startswith(prefix.split("/")[-1])


@pytest.mark.parametrize("size", [63, 6001, 0, -8, 64.0, True])
def test_save_called_directly_refuses_a_size_outside_the_cli_range_in_one_line(pack, size):
    with pytest.raises(errors(pack).CoverError, match=r"^Save Release Cover: size .*expected 64 to 6000 pixels") as e:
        node(pack, "NoPainGanSaveReleaseCover").save(torch.rand(1, 64, 64, 3), "nopaingan/size", size)
    assert "\n" not in str(e.value)


def test_save_size_limits_are_the_cli_limits(pack):
    release = pack.nopaingan_core.release
    limits = node(pack, "NoPainGanSaveReleaseCover").INPUT_TYPES()["required"]["size"][1]
    assert (limits["min"], limits["max"]) == (release.PREVIEW_SIZE, release.MAX_SIZE) == (64, 6000)


@pytest.mark.parametrize(
    "image", [torch.rand(1, 64, 64, 4), torch.rand(1, 64, 64, 1), torch.rand(64, 64, 3), torch.rand(0, 64, 64, 3)]
)
@pytest.mark.parametrize("which", ["NoPainGanSaveReleaseCover", "NoPainGanCoverTitle"])
def test_release_nodes_refuse_an_image_that_is_not_rgb_b_h_w_3_in_one_line(pack, image, which):
    label = "Save Release Cover" if which == "NoPainGanSaveReleaseCover" else "Cover Title"
    shape = rf"^{label}: image is a tensor \[.*expected a ComfyUI IMAGE"
    with pytest.raises(errors(pack).CoverError, match=shape) as e:
        if which == "NoPainGanSaveReleaseCover":
            node(pack, which).save(image, "nopaingan/shape", 64)
        else:
            node(pack, which).draw(image, "X", "", "auto", "", "auto")
    assert "\n" not in str(e.value) and str(list(image.shape)) in str(e.value)


def test_cover_title_says_it_is_applied_once_per_cover(pack):
    cover_title = node(pack, "NoPainGanCoverTitle")
    assert "once per cover" in cover_title.DESCRIPTION
    assert "one Cover Title per cover" in cover_title.INPUT_TYPES()["required"]["image"][1]["tooltip"]
