"""What a MegActor-Σ backbone offers the sampler, the trainer and the nodes.

Two backbones implement it: :class:`MegActorSigma` (this project's DiT) and
:class:`MegActorSigmaSD15` (the official SD1.5 release). A third one is a folder beside ``sd15/``
with a module and a config that satisfy these protocols, plus one line in :func:`load_model`;
``tests/test_backbone.py`` checks each backbone against them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class BackboneConfig(Protocol):
    """The parts of a backbone's config read outside the backbone."""

    fps: float  # the frame rate it generates at (and was trained at)
    latent_channels: int  # channels of the latents it denoises (4: SD VAE)
    audio_dim: int  # width of the Whisper features it attends to
    vae_scaling_factor: float  # latents are scaled by this before the model sees them
    prediction_type: str  # "epsilon", "v_prediction" or "sample"

    @property
    def use_audio(self) -> bool:
        """Whether it attends to audio features at all."""

    @property
    def audio_style(self) -> str:
        """How its audio features are cut per frame (:data:`megactor_core.audio.AUDIO_STYLES`)."""

    @property
    def noise_schedule(self) -> dict:
        """Keyword arguments of the diffusers scheduler it is trained and sampled with."""

    def to_dict(self) -> dict: ...


@runtime_checkable
class Backbone(Protocol):
    """A video denoiser conditioned on a reference portrait, driving frames and audio.

    Videos are ``[batch, frames, ...]``. What does not depend on the timestep is computed once per
    video: :meth:`encode_reference` and :meth:`encode_driving`; the forward call runs per step.
    """

    config: BackboneConfig
    # Activation elements one sampling call holds at its peak, per frame and latent pixel, guidance
    # batch included: what a memory manager keeps free beside the weights (pipeline.window_memory).
    activation_elements: int

    def encode_reference(self, latents: torch.Tensor) -> Any:
        """Scaled reference latents ``[B, C, h, w]`` -> the reference features its forward takes;
        their ``first(videos)`` gives them to the leading videos of a batch only."""

    def encode_driving(self, frames: torch.Tensor) -> torch.Tensor:
        """Driving frames ``[B, F, 3, H, W]`` in -1..1 -> driven features ``[B, F, C, h, w]``."""

    def null_controls(self, driven: torch.Tensor | None, audio: torch.Tensor | None
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None, float]:
        """Driven features, audio features and λ that mean "no control" (guidance's other branch)."""

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor | float, *, driven: torch.Tensor | None = None,
                reference: Any = None, audio: torch.Tensor | None = None, audio_scale: torch.Tensor | float = 1.0,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One denoising step on scaled latents ``[B, F, C, h, w]``."""

    def compile_blocks(self, **options) -> None:
        """``torch.compile`` its repeated blocks."""


def reference_videos(videos: int | None, reference_batch: int, batch: int) -> int:
    """How many leading videos of a batch see a reference (``videos``: all when None), checking
    that the reference's own batch (1, or one per such video) fits."""
    videos = batch if videos is None else videos
    if not 1 <= videos <= batch or reference_batch not in (1, videos):
        raise ValueError(f"a reference of batch {reference_batch} for {videos} videos does not fit a batch of "
                         f"{batch} (expected batch 1 or one per video it is for)")
    return videos
