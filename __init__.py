"""ComfyUI entry point of MegActor-Σ: ``comfy_entrypoint`` gives ComfyUI our nodes through its
``comfy_api.latest`` extension API (ComfyUI 0.3.48 or newer); loads no model."""

import importlib.util

if importlib.util.find_spec("comfy_api") is not None:
    try:
        from comfy_api.latest import ComfyExtension, io  # noqa: F401  (checked here for a clear error)
    except ImportError as error:
        raise ImportError("MegActor-Σ needs ComfyUI 0.3.48 or newer (its comfy_api.latest node API): "
                          "update ComfyUI") from error
    from .nodes import comfy_entrypoint

    __all__ = ["comfy_entrypoint"]
# Imported outside ComfyUI (e.g. by pytest, which imports package folders): nothing to register.
