"""No-Pain-No-GAN as a ComfyUI custom-node pack: clone this repository into ``ComfyUI/custom_nodes/``.

ComfyUI imports this file as a package named after the folder's path, so everything below is imported
relatively (``nopaingan_core`` is a subpackage here, not an installed library). Outside ComfyUI there is
nothing to register: pytest, collecting the repository root, imports this file too.
"""

try:
    import folder_paths  # noqa: F401 - one of ComfyUI's top-level modules, present only inside ComfyUI
except ImportError:
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}
else:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
