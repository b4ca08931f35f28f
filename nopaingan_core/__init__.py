"""No-Pain-No-GAN core library: audio, music encoders, adapter, fusion, checkpoints and miniSD sampling.

Kept import-light: submodules load torch-heavy code only when used, so ComfyUI starts fast.
"""

__version__ = "0.1.0"
