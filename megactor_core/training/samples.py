"""Training samples: sample number ``i`` -> reference, target frames, controls, masks, noise, timestep.

Everything random about a sample is drawn from a generator seeded with ``(seed, i)`` alone (its clip
and reference, when ``samples_per_reference`` samples share them, from one seeded with their group
number), so a sample is the same whichever worker or process builds it, and a run resumed at step
``s`` sees exactly the samples the uninterrupted run would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..landmarks import FaceLandmarks, MouthAttention, face_drop, region_masks, token_masks
from ..landmarks.face_drop import KEEP_CHOICES
from .augment import augment_driving, load_face_swap
from .config import MODALITIES, TrainConfig
from .masks import LATENT_CELL, MOUTH, SHOWN, patch_tokens
from .shards import ShardDataset

NUM_TRAIN_TIMESTEPS = 1000


@dataclass(frozen=True)
class Draw:
    """The random choices behind one sample."""

    clip: int
    reference: int  # frame index in the clip
    targets: list[int]
    modality: str  # "visual", "audio", "mixed" or "none" (controls dropped)
    keep: str | None  # face-drop region of the driving frames; None = no visual control
    seed: int  # for augmentations, noise and timestep


@dataclass
class Preview:
    """Inputs and ground truth of one sample, as images, for sample previews."""

    reference: torch.Tensor  # [H, W, 3] in 0..1
    driving: torch.Tensor | None  # [F, H, W, 3] in 0..1, face-dropped
    audio: torch.Tensor | None  # [F, T, W]
    fps: float
    targets: torch.Tensor  # [F, H, W, 3] in 0..1
    mouth_attention: MouthAttention | None = None  # Eq.2 at sampling, when the driving frames hide the mouth


class TrainingSamples(torch.utils.data.Dataset):
    """Map-style dataset of training samples over a :class:`ShardDataset`, for stage ``config.stage``."""

    def __init__(self, dataset: ShardDataset, config: TrainConfig, *, audio: bool, patch_size: int) -> None:
        if audio and not dataset.has_audio:
            raise ValueError(f"stage {config.stage} trains audio attention, but the dataset {dataset.folder} has no "
                             "audio features: preprocess it with --whisper")
        self.dataset = dataset
        self.config = config
        self.audio = audio
        self.patch_size = patch_size
        self.face_swap = load_face_swap(config.augment.face_swap) if config.augment.face_swap else None
        modalities = ("visual",) if not audio else MODALITIES
        weights = [1.0] if not audio else [config.mix.visual, config.mix.audio, config.mix.mixed]
        self._modalities = (modalities, np.asarray(weights) / sum(weights))
        regions = [r for r in KEEP_CHOICES if config.mix.regions.get(r, 0) > 0]
        weights = np.asarray([config.mix.regions[r] for r in regions])
        self._regions = (regions, weights / weights.sum())
        frames = config.frames_per_sample
        self._clips = [i for i, clip in enumerate(dataset.clips) if clip["frames"] >= max(frames, 2)]
        if not self._clips:
            raise ValueError(f"no clip in {dataset.folder} has the {max(frames, 2)} frames a stage-{config.stage} "
                             "sample needs (a reference and target frames)")

    def __len__(self) -> int:
        return 2**62  # samples are drawn, not enumerated: any index is valid

    def draw(self, index: int) -> Draw:
        rng = np.random.default_rng([self.config.seed, index])
        shared = self.config.samples_per_reference
        # A group of samples sharing a reference draws its clip and reference from the group's own generator.
        group = rng if shared == 1 else np.random.default_rng([self.config.seed, index // shared, shared])
        clip = self._clips[group.integers(len(self._clips))]
        length, frames = self.dataset.clips[clip]["frames"], self.config.frames_per_sample
        if frames == 1 and shared == 1:
            reference, target = (int(i) for i in rng.choice(length, 2, replace=False))
            targets = [target]
        elif frames == 1:
            reference = int(group.integers(length))
            target = int(rng.integers(length - 1))
            targets = [target + (target >= reference)]  # any frame but the reference
        else:
            start = int(rng.integers(length - frames + 1))
            targets = list(range(start, start + frames))
            reference = int(group.integers(length))
        names, odds = self._modalities
        modality = str(rng.choice(names, p=odds))
        if rng.random() < self.config.mix.drop_controls:
            modality = "none"
        regions, odds = self._regions
        keep = {"visual": str(rng.choice(regions, p=odds)), "mixed": self.config.mix.mixed_keep}.get(modality)
        return Draw(clip, reference, targets, modality, keep, int(rng.integers(2**63)))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        draw = self.draw(index)
        data = self.dataset.read(draw.clip, [draw.reference, *draw.targets])
        rng = np.random.default_rng(draw.seed)
        driving, driving_tokens, _ = self._driving(data.frames[1:], data.landmarks[1:], draw.keep, rng)
        latents = torch.from_numpy(data.latents[1:])
        regions = torch.from_numpy(data.regions[1:])
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        sample = {
            "latents": latents,
            "reference": torch.from_numpy(data.latents[0]),
            "driving": driving,
            "visual": torch.tensor(float(draw.keep is not None)),
            "shown": torch.tensor(SHOWN[draw.keep]),
            "regions": regions,
            "mouth_tokens": patch_tokens(regions[:, MOUTH], self.patch_size) > 0,
            "driving_tokens": driving_tokens,
            "eq2": torch.tensor(draw.keep is not None and not SHOWN[draw.keep][1]),
            "noise": torch.randn(latents.shape, generator=generator),
            "timestep": torch.randint(NUM_TRAIN_TIMESTEPS, (), generator=generator),
        }
        if self.audio:
            hears = draw.modality in ("audio", "mixed")
            sample["audio"] = torch.from_numpy(data.audio[1:]) * hears
            sample["audio_on"] = torch.tensor(float(hears))
        return sample

    def _driving(self, frames: np.ndarray, points: np.ndarray, keep: str | None,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, FaceLandmarks | None]:
        """Face-dropped, augmented driving frames ``[F, 3, H, W]`` in -1..1, the tokens their kept
        region covers ``[F, N]`` (all zero without visual control) and their landmarks."""
        count, height, width = frames.shape[:3]
        tokens = (height // (LATENT_CELL * self.patch_size)) * (width // (LATENT_CELL * self.patch_size))
        if keep is None:
            return torch.zeros(count, 3, height, width), torch.zeros(count, tokens, dtype=torch.bool), None
        augmented, moved = augment_driving(frames, points, self.config.augment, rng, self.face_swap)
        landmarks = FaceLandmarks(moved, np.ones(moved.shape[:2], np.float32), np.ones(count, bool), width, height)
        dropped = face_drop(augmented, landmarks, keep)
        covered = token_masks(region_masks(landmarks, keep), LATENT_CELL * self.patch_size).flatten(1) > 0
        return torch.from_numpy(dropped).permute(0, 3, 1, 2) * 2 - 1, covered, landmarks

    def preview(self, index: int) -> Preview:
        """Sample ``index`` as images: what a preview animates and what it should look like."""
        draw = self.draw(index)
        data = self.dataset.read(draw.clip, [draw.reference, *draw.targets])
        images = torch.from_numpy(data.frames).float() / 255
        driving = mouth = None
        if draw.keep is not None:  # the sample's own driving frames: the same generator, drawn first
            frames, _, landmarks = self._driving(data.frames[1:], data.landmarks[1:], draw.keep,
                                                 np.random.default_rng(draw.seed))
            driving = (frames.permute(0, 2, 3, 1) + 1) / 2
            mouth = MouthAttention.for_face_drop(landmarks, draw.keep)
        audio = torch.from_numpy(data.audio[1:]) if self.audio and draw.modality in ("audio", "mixed") else None
        return Preview(images[0], driving, audio, data.fps, images[1:], mouth)
