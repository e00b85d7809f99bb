"""The trainer's settings: one YAML file per stage, read into :class:`TrainConfig`.

Keys not given keep the defaults below (the paper's: lr 1e-5, 512² data, 10/20/70 modality mix).
Unknown keys are errors naming the key, so a typo never silently trains with a default.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..landmarks.face_drop import KEEP_CHOICES
from ..pipeline.sampler import SamplerSettings
from .schedule import SCHEDULES

STAGES = (1, 2, 3)
MIXED_PRECISION = ("no", "fp16", "bf16")
MODALITIES = ("visual", "audio", "mixed")
# The settings a resumed run may change (train.py refuses any other): where it writes, how long it runs (a
# decaying lr_schedule then follows the new step count from the resume on), and what it logs and keeps, none of
# which changes what an optimizer step computes. init and data are compared as the files they name.
RESUMABLE = frozenset({"output_dir", "steps", "num_workers", "gradient_checkpointing", "log_every", "log_with",
                       "checkpoint_every", "keep_checkpoints", "preview_every", "preview_vae", "preview_steps",
                       "preview_metrics"})


class _NotSet:
    """A setting one of two compared configs lacks; shown as such in messages."""

    def __repr__(self) -> str:
        return "(not set)"


NOT_SET = _NotSet()


@dataclass
class MixConfig:
    """What each training sample holds.

    Stage 1 samples are always ``visual``; stages 2 and 3 draw ``visual`` (face-drop of a random
    region, no audio), ``audio`` (no visual control) or ``mixed`` (audio + a face-drop keeping
    only the eyes) with these probabilities.
    """

    visual: float = 0.1
    audio: float = 0.2
    mixed: float = 0.7
    # The region a mixed sample's driving frames keep: "eyes" is the paper's modality decoupling;
    # "both" shows the mouth too (and drops the Eq.2 mask), the ablation without decoupling.
    mixed_keep: str = "eyes"
    # Relative odds of the region a visual sample keeps.
    regions: dict[str, float] = field(default_factory=lambda: {"eyes": 1.0, "mouth": 1.0, "both": 1.0})
    # Chance that a sample loses all controls (keeping the reference): what classifier-free
    # guidance's unconditional branch needs at inference.
    drop_controls: float = 0.05
    # Loss weight of face parts no control explains (0 = masked out of the loss).
    unexplained_weight: float = 0.0
    # Consecutive frames per sample in stage 3 (stages 1 and 2 use single frames).
    clip_frames: int = 16


@dataclass
class AugmentConfig:
    """Augmentations of the driving frames (the paper's resolution, size and colour changes), drawn
    once per sample and applied alike to all its frames; plus an optional user face-swap step."""

    probability: float = 0.8  # chance each augmentation is applied
    scale: tuple[float, float] = (0.8, 1.2)  # size: zoom about the face centre
    shift: float = 0.05  # size: translation, as a fraction of the image side
    min_resolution: float = 0.25  # resolution: downscale to this fraction at most, then back up
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 10.0  # degrees
    # "package.module:function" called as fn(frames uint8 [F,H,W,3], landmarks [F,68,2], rng) ->
    # frames: a face-swap or stylisation of the driving frames so identity cannot leak through them.
    face_swap: str | None = None
    face_swap_probability: float = 0.5


@dataclass
class TrainConfig:
    """One training run of one stage."""

    stage: int
    init: str  # checkpoint to start from (init_from_pixart output for stage 1, the previous stage's after)
    data: str  # preprocessed dataset folder
    output_dir: str
    steps: int = 30_000
    batch_size: int = 4  # per process
    # Consecutive samples that share one clip and its reference frame (each with its own target frames, noise,
    # timestep and controls); the step encodes each reference once for them, so more targets cost less reference
    # compute. Must divide batch_size. 1 = every sample draws its own clip and reference.
    samples_per_reference: int = 1
    gradient_accumulation: int = 1
    learning_rate: float = 1e-5
    lr_schedule: str = "constant"  # or "cosine" / "linear": decayed to 0 at the last step (schedule.py)
    warmup_steps: int = 0  # linear warm-up to learning_rate over these first steps
    weight_decay: float = 0.03
    max_grad_norm: float = 1.0
    mixed_precision: str = "bf16"
    gradient_checkpointing: bool = True
    ema_decay: float = 0.0  # 0 = no EMA; e.g. 0.9999
    vlb_weight: float = 1.0  # PixArt-α's learned-variance term (when the model outputs 2x channels)
    zero_terminal_snr: bool = False  # needs a v-prediction model
    snr_gamma: float = 0.0  # > 0: Min-SNR-γ timestep weighting of the loss (losses.py); 0 = uniform
    # Train only those of the stage's parameters whose names contain one of these, e.g. ["audio_attn"] in
    # stage 2 keeps stage 1's visual control as it was; empty = all the stage trains.
    train_only: tuple[str, ...] = ()
    seed: int = 0
    num_workers: int = 2
    log_every: int = 10
    log_with: str | None = None  # also report to "tensorboard" or "wandb" through accelerate
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    preview_every: int = 1000  # 0 = never
    preview_vae: str | None = None  # SD VAE to decode previews; previews are skipped without one
    preview_steps: int = 20
    # Folder of the evaluation's weight files (docs/evaluation.md): each preview is then measured against
    # its target frames with those of LPIPS, CSIM and landmark motion whose files it holds (log: preview_*).
    preview_metrics: str | None = None
    mix: MixConfig = field(default_factory=MixConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        problems = []
        if self.stage not in STAGES:
            problems.append(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            problems.append(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        for name in ("steps", "batch_size", "samples_per_reference", "gradient_accumulation", "checkpoint_every",
                     "log_every", "preview_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.preview_steps >= 1:
            try:
                self.preview_settings().check()
            except ValueError as exc:
                problems.append(f"preview_steps: {exc}")
        if self.samples_per_reference >= 1 and self.batch_size % self.samples_per_reference:
            problems.append(f"samples_per_reference ({self.samples_per_reference}) must divide batch_size "
                            f"({self.batch_size}), so a batch holds whole groups sharing a reference")
        if self.lr_schedule not in SCHEDULES:
            problems.append(f"lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}")
        if not 0 <= self.warmup_steps < self.steps:
            problems.append(f"warmup_steps must be in [0, steps), got {self.warmup_steps} with {self.steps} steps")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        weights = [self.mix.visual, self.mix.audio, self.mix.mixed]
        if min(weights) < 0 or sum(weights) <= 0:
            problems.append(f"mix.visual/audio/mixed must be non-negative and not all 0, got {weights}")
        unknown = sorted(set(self.mix.regions) - set(KEEP_CHOICES))
        if unknown or not self.mix.regions or min(self.mix.regions.values()) < 0 \
                or sum(self.mix.regions.values()) <= 0:
            problems.append(f"mix.regions must weigh some of {KEEP_CHOICES} (non-negative), got {self.mix.regions}")
        if self.mix.mixed_keep not in KEEP_CHOICES:
            problems.append(f"mix.mixed_keep must be one of {KEEP_CHOICES}, got {self.mix.mixed_keep!r}")
        if self.mix.clip_frames < 1:
            problems.append(f"mix.clip_frames must be at least 1, got {self.mix.clip_frames}")
        lo, hi = self.augment.scale
        if not 0 < lo <= hi:
            problems.append(f"augment.scale must be [low, high] with 0 < low <= high, got {self.augment.scale}")
        if not 0 < self.augment.min_resolution <= 1:
            problems.append(f"augment.min_resolution must be in (0, 1], got {self.augment.min_resolution}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    def preview_settings(self, frames: int = 1) -> SamplerSettings:
        """How previews sample: DDIM at ``preview_steps`` on the schedule the run trains (zero terminal
        SNR when it trains with it), the whole clip in one window."""
        return SamplerSettings(steps=self.preview_steps, zero_terminal_snr=self.zero_terminal_snr,
                               window=max(frames, 1), overlap=0)

    @property
    def frames_per_sample(self) -> int:
        return self.mix.clip_frames if self.stage == 3 else 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _build(cls, data, "")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
        """Read a YAML file; ``overrides`` are ``key=value`` strings (dotted keys for nested
        sections, YAML values), applied on top, e.g. ``["data=/datasets/hdtf", "mix.audio=0.3"]``."""
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
        for item in overrides or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r} must look like key=value")
            *parents, leaf = key.strip().split(".")
            node = data
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = yaml.safe_load(value)
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["augment"]["scale"] = list(self.augment.scale)
        return data

    def flat(self, as_text: bool = True) -> dict[str, Any]:
        """Every setting under its dotted name (``mix.regions.eyes``); ``as_text`` writes lists and nulls as text,
        as experiment trackers take them."""
        def walk(data: dict[str, Any], prefix: str) -> dict[str, Any]:
            flat = {}
            for key, value in data.items():
                if isinstance(value, dict):
                    flat.update(walk(value, f"{prefix}{key}."))
                else:
                    keep = not as_text or isinstance(value, bool | int | float | str)
                    flat[prefix + key] = value if keep else str(value)
            return flat

        return walk(self.to_dict(), "")

    def resume_changes(self, started: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """The settings, by dotted name, in which this run differs from ``started`` (the settings its output_dir
        was trained with) other than those a resume may change (:data:`RESUMABLE`): ``{name: (then, now)}``, with
        :data:`NOT_SET` for a setting one side lacks (a ``mix.regions`` entry)."""
        then, now = started.flat(as_text=False), self.flat(as_text=False)
        for name in ("init", "data"):  # another spelling of the same file is no change
            then[name], now[name] = (os.path.realpath(os.path.expanduser(v)) for v in (then[name], now[name]))
        names = [*now, *(name for name in then if name not in now)]  # a mix.regions key may be in one only
        pairs = {name: (then.get(name, NOT_SET), now.get(name, NOT_SET)) for name in names if name not in RESUMABLE}
        return {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown training settings {[prefix + k for k in unknown]}; known: "
                         f"{sorted(prefix + k for k in fields)}")
    missing = [prefix + name for name, f in fields.items() if name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"training config lacks required settings {missing}")
    hints = typing.get_type_hints(cls)
    values, problems = {}, []
    for name, value in data.items():
        nested = {"mix": MixConfig, "augment": AugmentConfig}.get(name) if cls is TrainConfig else None
        if nested is not None:
            if not isinstance(value, dict):
                raise ValueError(f"{prefix}{name} must be a mapping of settings, got {value!r}")
            values[name] = _build(nested, value, f"{prefix}{name}.")
            continue
        if name == "mixed_precision" and value is False:  # YAML reads a bare `no` as false
            value = "no"
        try:
            values[name] = _typed(value, hints[name])
        except (TypeError, ValueError):
            problems.append(f"{prefix}{name} must be {_describe(hints[name])}, got {value!r} "
                            f"({type(value).__name__})")
    if problems:
        raise ValueError("invalid training config: " + "; ".join(problems))
    return cls(**values)


def _number(value: Any) -> float:
    """A YAML number, or a string YAML 1.1 leaves unread such as ``1e-3``; never a bool."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, str):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(value)


def _typed(value: Any, kind: Any) -> Any:
    """``value`` as the field type ``kind`` (numbers written as strings read), or TypeError / ValueError."""
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        return None if value is None else _typed(value, next(a for a in args if a is not type(None)))
    origin = typing.get_origin(kind)
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if kind is int:
        number = _number(value)
        if not number.is_integer():
            raise ValueError(value)
        return int(number)
    if kind is float:
        return _number(value)
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(value)
        if args[-1] is Ellipsis:  # tuple[X, ...]: any length
            return tuple(_typed(v, args[0]) for v in value)
        if len(value) != len(args):
            raise TypeError(value)
        return tuple(_typed(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(value)
        key_kind, value_kind = args
        return {_typed(k, key_kind): _typed(v, value_kind) for k, v in value.items()}
    raise TypeError(f"no reader for {kind}")


def _describe(kind: Any) -> str:
    args = typing.get_args(kind)
    if type(None) in args:
        return f"{_describe(next(a for a in args if a is not type(None)))} or null"
    origin = typing.get_origin(kind)
    if origin is tuple and args[-1] is Ellipsis:
        return f"a list, each {_describe(args[0])}"
    if origin is tuple:
        return f"a list [{', '.join(_describe(a) for a in args)}]"
    if origin is dict:
        return f"a mapping of {_describe(args[0])} to {_describe(args[1])}"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[kind]
