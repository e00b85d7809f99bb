"""The one configuration class of the MegActor-Σ diffusion transformer."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONFIG_VERSION = 1
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


# PixArt-α's training schedule, kept by MegActor-Σ (trainer and sampler use it).
PIXART_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear")

@dataclass(frozen=True)
class MegActorConfig:
    """Shape and wiring of the denoiser, reference transformer and driven encoder.

    The defaults are the paper's model: PixArt-α XL/2 at 512² (28 blocks, width 1152, 16 heads,
    patch 2 on 4-channel SD-VAE latents, learned-variance 8-channel output), reference features
    injected into the last 16 blocks, temporal modules in the odd blocks, and audio attention
    over Whisper-tiny features (width 384).
    """

    num_layers: int = 28
    hidden_size: int = 1152
    num_heads: int = 16
    patch_size: int = 2
    latent_channels: int = 4
    out_channels: int = 8
    mlp_ratio: float = 4.0
    # PixArt-α lays its 2-D sin-cos position grid out for this latent size (64 for 512² images).
    sample_size: int = 64
    interpolation_scale: float = 1.0
    norm_eps: float = 1e-6
    # Driven encoder: pixel frames -> `driven_channels` maps at latent resolution.
    driven_channels: int = 16
    driven_encoder_channels: tuple[int, ...] = (16, 32, 64)
    # Audio attention (MHAA) over per-frame Whisper features of this width.
    use_audio: bool = True
    audio_dim: int = 384
    # Temporal attention across frames.
    use_temporal: bool = True
    # Temporal modules modulated by the timestep (shift, scale and gate from one MLP on the timestep
    # embedding plus a table per module, adaLN-single's way), so their strength can differ between
    # noisy and nearly clean steps; off is the plain AnimateDiff-style module (see docs/toy.md).
    temporal_modulation: bool = False
    # Block indices; None means the paper's choice (last 16 / odd blocks).
    reference_blocks: tuple[int, ...] | None = None
    temporal_blocks: tuple[int, ...] | None = None
    # The reference transformer sees a clean latent, so it runs at this fixed timestep.
    reference_timestep: int = 0
    # SD-VAE latent scale the model was trained with (latents are multiplied by it).
    vae_scaling_factor: float = 0.18215
    # What the first latent_channels outputs predict: "epsilon" (PixArt-α), "v_prediction"
    # (needed to train and sample with a zero-terminal-SNR schedule) or "sample" (the clean
    # latents, as the toy world's small models predict them).
    prediction_type: str = "epsilon"
    # Frames per second of the training videos: the rate the model generates at.
    fps: float = 25.0
    version: int = field(default=CONFIG_VERSION)

    def __post_init__(self) -> None:
        def fix(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        fix("driven_encoder_channels", tuple(int(c) for c in self.driven_encoder_channels))
        if self.reference_blocks is None:
            fix("reference_blocks", tuple(range(max(0, self.num_layers - 16), self.num_layers)))
        if self.temporal_blocks is None:
            fix("temporal_blocks", tuple(range(1, self.num_layers, 2)))
        fix("reference_blocks", tuple(sorted(set(int(i) for i in self.reference_blocks))))
        fix("temporal_blocks", tuple(sorted(set(int(i) for i in self.temporal_blocks))))
        self._validate()

    def _validate(self) -> None:
        problems = []
        if self.version > CONFIG_VERSION:
            problems.append(
                f"config version {self.version} is newer than this code understands "
                f"({CONFIG_VERSION}); update the plugin"
            )
        for name in ("num_layers", "hidden_size", "num_heads", "patch_size", "latent_channels",
                     "out_channels", "sample_size", "driven_channels", "audio_dim"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if not self.fps > 0:
            problems.append(f"fps must be positive, got {self.fps}")
        if self.num_heads > 0 and self.hidden_size % self.num_heads:
            problems.append(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if self.hidden_size % 4:
            problems.append(
                f"hidden_size {self.hidden_size} must be divisible by 4 (2-D sin-cos positions)"
            )
        if self.prediction_type not in PREDICTION_TYPES:
            problems.append(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if len(self.driven_encoder_channels) != 3:
            problems.append(
                "driven_encoder_channels must list 3 widths (3 stride-2 convs + 1 output conv), "
                f"got {self.driven_encoder_channels}"
            )
        for name in ("reference_blocks", "temporal_blocks"):
            bad = [i for i in getattr(self, name) if not 0 <= i < self.num_layers]
            if bad:
                problems.append(f"{name} {bad} are outside 0..{self.num_layers - 1}")
        if problems:
            raise ValueError("invalid MegActorConfig: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def in_channels(self) -> int:
        """Channels the denoiser's patch embedding takes: noisy latent + driven features."""
        return self.latent_channels + self.driven_channels

    @property
    def noise_schedule(self) -> dict:
        """The diffusion schedule the model is trained and sampled with."""
        return dict(PIXART_SCHEDULE)

    @property
    def audio_style(self) -> str:
        """How its audio features are cut per frame (see :func:`megactor_core.audio.encode_audio`)."""
        return "dit"

    def has_temporal(self, block: int) -> bool:
        return self.use_temporal and block in self.temporal_blocks

    def replace(self, **changes: Any) -> MegActorConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MegActorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MegActorConfig fields {unknown}; known: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> MegActorConfig:
        return cls.from_dict(json.loads(text))
