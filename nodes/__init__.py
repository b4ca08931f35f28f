"""The ComfyUI nodes: thin wrappers over ``nopaingan_core``, registered by the pack's ``__init__.py``.

Importing them loads no model and neither diffusers nor transformers; those load when a node runs.
"""

from .audio import NoPainGanLoadAudio
from .minisd import NoPainGanMiniSDLoader, NoPainGanMiniSDSampler, NoPainGanMiniSDTextEncode
from .music import (
    NoPainGanFusionConditioning,
    NoPainGanFusionLoader,
    NoPainGanMIREncode,
    NoPainGanMIREncoderLoader,
    NoPainGanMusicAdapter,
)
from .paths import register_model_folders
from .prompt import NoPainGanAlbumPrompt, NoPainGanMusicTags
from .release import NoPainGanCoverTitle, NoPainGanSaveReleaseCover

register_model_folders()

NODE_DISPLAY_NAMES = {
    NoPainGanLoadAudio: "Load Audio (No-Pain-No-GAN)",
    NoPainGanMusicTags: "Music Tags",
    NoPainGanAlbumPrompt: "Album Prompt",
    NoPainGanMIREncoderLoader: "MIR Encoder Loader",
    NoPainGanMIREncode: "MIR Encode",
    NoPainGanFusionLoader: "Fusion Loader",
    NoPainGanMusicAdapter: "Music Adapter",
    NoPainGanFusionConditioning: "Music-Text Fusion Conditioning",
    NoPainGanMiniSDLoader: "miniSD Loader",
    NoPainGanMiniSDTextEncode: "miniSD Text Encode",
    NoPainGanMiniSDSampler: "miniSD Sampler",
    NoPainGanCoverTitle: "Cover Title",
    NoPainGanSaveReleaseCover: "Save Release Cover",
}

NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in NODE_DISPLAY_NAMES}
NODE_DISPLAY_NAME_MAPPINGS = {cls.__name__: name for cls, name in NODE_DISPLAY_NAMES.items()}
