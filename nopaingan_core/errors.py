"""Errors a user can cause. Each message names the file or model, what was expected and what was found,
so the CLI and ComfyUI can show it as one line instead of a traceback."""


class NoPainGanError(Exception):
    """Base class: a problem with the user's input, files or models, not a bug."""


class AudioError(NoPainGanError):
    """Audio that cannot be decoded or used (empty, truncated, silent, NaN...)."""


class ModelNotFoundError(NoPainGanError):
    """A model id or folder that is neither local nor downloadable."""


class ModelLoadError(NoPainGanError):
    """A model that was found but is incomplete or of the wrong kind."""


class CheckpointError(NoPainGanError):
    """A fusion checkpoint that is malformed or does not match the encoder or text embedding."""


class Cancelled(NoPainGanError):
    """The user interrupted a long step (ComfyUI's cancel button, Ctrl-C)."""


class OutputError(NoPainGanError):
    """An output location that cannot be written: a file where a folder is wanted, read-only, full."""


class CoverError(NoPainGanError):
    """A release-cover input that cannot be used: an image, a font, a size or an output location."""
