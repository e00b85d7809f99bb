"""The core library's progress hooks, as ComfyUI shows and cancels long work."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.utils
import torch


class ComfyProgress:
    """A ``progress(done, total)`` hook that moves a ComfyUI ProgressBar and raises ComfyUI's
    interrupt when the user cancels (the core stops where it calls the hook). With a latent
    ``previewer`` (``latent_preview.get_previewer``), :meth:`preview` shows images on that bar."""

    def __init__(self, previewer=None) -> None:
        self.bar = comfy.utils.ProgressBar(1)
        self.previewer = previewer

    def __call__(self, done: int, total: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        self.bar.update_absolute(done, total)

    def preview(self, step: int, steps: int, x0: torch.Tensor) -> None:
        """The sampler's preview hook: the middle frame's current estimate, on the bar."""
        if self.previewer is not None:
            image = self.previewer.decode_latent_to_preview_image("JPEG", x0)
            self.bar.update_absolute(self.bar.current, self.bar.total, image)

