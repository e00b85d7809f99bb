"""The core library's progress hook, as ComfyUI shows and cancels long work."""

from __future__ import annotations

from collections.abc import Callable

import comfy.model_management as mm
import comfy.utils


def comfy_progress() -> Callable[[int, int], None]:
    """A ``progress(done, total)`` hook that moves a ComfyUI ProgressBar and raises ComfyUI's
    interrupt when the user cancels (the core stops where it calls the hook)."""
    bar = comfy.utils.ProgressBar(1)

    def progress(done: int, total: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, total)

    return progress
