"""Configuration of the SD1.5-based MegActor-Σ released by its authors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

# What the release samples with (configs/inference/magic_inference.yaml, read by its pipeline):
# DDIM on linear betas, "leading" timesteps offset by 1 (25 steps: 961, 921, ..., 1).
RELEASE_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="linear",
                        steps_offset=1, timestep_spacing="leading", set_alpha_to_one=True)


@dataclass(frozen=True)
class SD15Config:
    """Shapes of the official MegActor-Σ release (megvii-research/megactor, 2024-10): an SD1.5 UNet
    inflated to video with AnimateDiff motion modules after every layer, a Whisper cross-attention
    in every transformer block, a small conv encoder for the driving frames concatenated with the
    noisy latent, and an SD1.5 appearance UNet whose mid/up self-attention inputs become extra keys
    and values of the denoiser's. The defaults are that release; tests shrink them.

    A separate config from :class:`MegActorConfig` because the two backbones share no shapes.
    """

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    heads: int = 8
    norm_groups: int = 32
    cross_attention_dim: int = 768  # CLIP ViT-L text width (the empty prompt)
    text_tokens: int = 77
    audio_dim: int = 384  # Whisper-tiny width
    audio_tokens: int = 50  # 10 Whisper positions x 5 encoder states per video frame
    motion_max_frames: int = 32  # length of the motion modules' position table
    latent_channels: int = 4
    driven_channels: int = 4
    driven_widths: tuple[int, ...] = (16, 32, 64, 128)
    vae_scaling_factor: float = 0.18215
    prediction_type: str = "epsilon"
    fps: float = 25.0  # the release's training and inference frame rate

    @property
    def noise_schedule(self) -> dict:
        return dict(RELEASE_SCHEDULE)

    # Constants of the release, not settings: its own audio feature cutting; every transformer
    # block attends to audio.
    audio_style: ClassVar[str] = "sd15-release"
    use_audio: ClassVar[bool] = True

    @property
    def time_embed_dim(self) -> int:
        return self.block_out_channels[0] * 4

    def to_dict(self) -> dict:
        return asdict(self)
