"""The toy reproduction's sizes: the model, the data, training and evaluation (one seed for all)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models import MegActorConfig, MegActorSigma
from ..pipeline import SamplerSettings
from ..training.config import MODALITIES, TrainConfig
from ..training.losses import DiffusionObjective
from ..training.train import trained_parameters
from .codec import CHANNELS, ConvCodecConfig

SIZE = 64


@dataclass(frozen=True)
class Recipe:
    """Model, data, training and evaluation sizes; the defaults trained in 84 minutes on 2 CPU cores (docs/toy.md)."""

    # The latent codec: "conv", a small autoencoder trained first on `codec_identities` other toy faces
    # (10 frames each) for `codec_steps` steps, or "dct", the fixed block DCT (codec.py; docs/toy.md: the
    # learned one's model follows the driver better and shows no block seams).
    codec: str = "conv"
    codec_channels: int = 16
    codec_steps: int = 3000
    codec_identities: int = 1000
    width: int = 192
    heads: int = 6
    identities: int = 48
    videos_per_identity: int = 2
    frames: int = 100
    clip_frames: int = 50
    steps: tuple[int, int, int] = (5000, 1600, 500)  # docs/toy.md: a longer stage 1 copies the reference better
    batch_size: int = 16
    # Stages 1 and 2's consecutive samples sharing one clip and reference frame, encoded once for them
    # (TrainConfig.samples_per_reference). docs/toy.md: 4 in stage 1 buys the time the budget needs; in stage 2
    # it costs the λ ratio.
    samples_per_reference: tuple[int, int] = (4, 1)
    learning_rate: float = 1e-3  # docs/toy.md: copies the reference better than 5e-4
    lr_schedule: str = "constant"  # each stage's (training/schedule.py); docs/toy.md: cosine did no better
    warmup_steps: int = 100  # each stage's
    snr_gamma: float = 0.0  # > 0: Min-SNR-γ timestep weighting of every stage's loss (training/losses.py)
    # Share of every stage's training samples whose driving frames are re-rendered as another random person
    # (toy/swap.py, the paper's face-swapped driving videos; 0 = none). docs/toy.md: without it the model
    # copies the driver's outline and hair.
    face_swap: float = 0.5
    # Stages 2 and 3's share of visual, audio and mixed samples (the ablation's too); the paper's 10/20/70.
    mix: tuple[float, float, float] = (0.1, 0.2, 0.7)
    # The model's stage 2 trains only the parameters so named (TrainConfig.train_only; () = all, as the
    # paper). docs/toy.md: ("audio_attn",) keeps stage 1's visual control but costs the mixed mode. The
    # leakage study's pair always trains every weight.
    stage2_train_only: tuple[str, ...] = ()
    stage3_clip_frames: int = 8
    stage3_learning_rate: float = 2e-3  # docs/toy.md: more λ ratio than 1e-3 (and 1e-4, 5e-4 less)
    temporal_modulation: bool = False  # stage 3's modules modulated by the timestep (docs/toy.md)
    # The modes' held-out cases (the first of the leakage study's); docs/toy.md: the first 3 were easier than
    # most (frame error 6.25 on them, 8.59 on 16), so the targets are measured on 16.
    test_identities: int = 16
    leakage_cases: int = 16
    test_frames: int = 50
    sample_steps: int = 6  # docs/toy.md: as good as 25 steps, and the unheard mouth stays stiller
    sample_scheduler: str = "ddim"
    guidance: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.steps) != 3 or min(self.steps) < 1:
            raise ValueError(f"steps must be three positive step counts (stages 1, 2, 3), got {self.steps}")
        if not 0 <= self.warmup_steps < min(self.steps):
            raise ValueError(f"warmup_steps must be in [0, the shortest stage's steps), got {self.warmup_steps} "
                             f"with steps {self.steps}")
        if self.codec not in ("dct", "conv"):
            raise ValueError(f"codec must be 'dct' or 'conv', got {self.codec!r}")
        if min(self.codec_channels, self.codec_steps, self.codec_identities) < 1:
            raise ValueError("codec_channels, codec_steps and codec_identities must be positive, got "
                             f"{self.codec_channels}, {self.codec_steps}, {self.codec_identities}")
        if not 0 <= self.face_swap <= 1:
            raise ValueError(f"face_swap must be a share in [0, 1], got {self.face_swap}")
        if not isinstance(self.samples_per_reference, tuple) or len(self.samples_per_reference) != 2:
            raise ValueError("samples_per_reference must be two sample counts (stages 1 and 2), got "
                             f"{self.samples_per_reference}")
        if len(self.mix) != 3:
            raise ValueError(f"mix must be three shares (visual, audio, mixed), got {self.mix}")
        self.model_config()  # a width the heads do not divide fails here, before any data is written
        self.sampler_settings().check(self.model_config().noise_schedule)  # so does one DDIM step, before training
        DiffusionObjective(self.model_config().prediction_type, snr_gamma=self.snr_gamma)  # so does a bad snr_gamma
        # A samples_per_reference that does not divide the batch fails as that stage's config would; bad shares of
        # the mix and a stage2_train_only that is no list as a stage-2 config would; a part that names no parameter
        # as the trainer would.
        mix = dict(zip(MODALITIES, self.mix, strict=True))
        TrainConfig.from_dict(dict(stage=1, init="", data="", output_dir="", batch_size=self.batch_size,
                                   samples_per_reference=self.samples_per_reference[0]))
        config = TrainConfig.from_dict(dict(stage=2, init="", data="", output_dir="", mix=mix,
                                            train_only=self.stage2_train_only, batch_size=self.batch_size,
                                            samples_per_reference=self.samples_per_reference[1]))
        with torch.device("meta"):  # names only: no weights allocated or initialised
            stage2 = MegActorSigma(self.model_config().replace(use_audio=True))
        trained_parameters(stage2, 2, config.train_only)

    def sampler_settings(self, audio_scale: float = 1.0, seed: int = 0) -> SamplerSettings:
        """How the evaluation samples."""
        return SamplerSettings(steps=self.sample_steps, scheduler=self.sample_scheduler, guidance_scale=self.guidance,
                               audio_scale=audio_scale, seed=seed)

    @property
    def conv_codec(self) -> ConvCodecConfig:
        return ConvCodecConfig(self.codec_channels)

    @property
    def latent_channels(self) -> int:
        return CHANNELS if self.codec == "dct" else self.codec_channels

    def model_config(self) -> MegActorConfig:
        """The stage-1 model: 6 PixArt-α blocks of ``width`` on the codec's 8x8 cells of 64x64 frames (patch 1).

        It predicts the clean latents ("sample"); the sampler derives the noise from them.
        """
        channels = self.latent_channels
        return MegActorConfig(num_layers=6, hidden_size=self.width, num_heads=self.heads, patch_size=1,
                              latent_channels=channels, out_channels=channels, sample_size=SIZE // 8,
                              driven_channels=16, driven_encoder_channels=(16, 32, 64), use_audio=False,
                              use_temporal=False, audio_dim=32, vae_scaling_factor=1.0, prediction_type="sample",
                              temporal_modulation=self.temporal_modulation)
