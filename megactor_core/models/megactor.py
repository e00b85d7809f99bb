"""MegActor-Σ: denoiser + reference transformer + driven encoder as one module."""

from __future__ import annotations

import torch
from torch import nn

from .config import MegActorConfig
from .denoiser import DenoisingTransformer
from .driven_encoder import DrivenEncoder
from .reference import ReferenceFeatures, ReferenceTransformer


class MegActorSigma(nn.Module):
    """The complete network. Reference features and driven features do not depend on the
    diffusion timestep: compute them once per video with :meth:`encode_reference` and
    :meth:`encode_driving`, then call the model once per denoising step."""

    # Activation elements one sampling call holds at its peak per frame and latent pixel, guidance
    # batch included (benchmarks/infer_memory.py, paper size: 0.81 GiB in 16-bit at 16 x 64 x 64).
    activation_elements = 6640

    def __init__(self, config: MegActorConfig) -> None:
        super().__init__()
        self.config = config
        self.denoiser = DenoisingTransformer(config)
        self.reference = ReferenceTransformer(config) if config.reference_blocks else None
        self.driven_encoder = DrivenEncoder(config.driven_encoder_channels, config.driven_channels)
        # The denoiser starts as PixArt-α: the driven channels of its patch embedding are zero.
        with torch.no_grad():
            self.denoiser.patch_embed.proj.weight[:, config.latent_channels:].zero_()

    def encode_reference(self, latents: torch.Tensor) -> ReferenceFeatures:
        """Scaled reference latents ``[B, C, h, w]`` -> per-block reference keys and values."""
        if self.reference is None:
            raise ValueError("this model injects no reference features (config.reference_blocks is empty)")
        return self.denoiser.reference_keys_values(self.reference(latents))

    def encode_driving(self, frames: torch.Tensor) -> torch.Tensor:
        """Driving frames ``[B, F, 3, H, W]`` in -1..1 -> driven features ``[B, F, C, H/8, W/8]``."""
        return self.driven_encoder(frames)

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor | float,
        *,
        driven: torch.Tensor | None = None,
        reference: ReferenceFeatures | None = None,
        audio: torch.Tensor | None = None,
        audio_scale: torch.Tensor | float = 1.0,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One denoising step ``[B, F, C, h, w] -> [B, F, out_channels, h, w]``; the arguments
        are documented on :meth:`DenoisingTransformer.forward`."""
        return self.denoiser(latents, timestep, driven=driven, reference=reference, audio=audio,
                             audio_scale=audio_scale, attention_mask=attention_mask)

    def null_controls(self, driven: torch.Tensor | None, audio: torch.Tensor | None
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None, float]:
        """Driven features, audio features and λ meaning "no control", shaped like the given ones:
        zero driven features (what training drops controls to) and audio at λ = 0."""
        return None if driven is None else torch.zeros_like(driven), audio, 0.0

    def compile_blocks(self, **options) -> None:
        """``torch.compile`` the denoiser's blocks, the repeated unit where the time goes (one graph
        serves every block of a kind). ``options`` go to ``torch.compile`` (e.g. ``mode``,
        ``backend``). The first call of each shape compiles, which takes a while."""
        for block in self.denoiser.blocks:
            block.compile(**options)

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        for trunk in (self.denoiser, self.reference):
            if trunk is not None:
                trunk.gradient_checkpointing = enabled
