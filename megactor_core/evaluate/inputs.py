"""What is compared with what: generated videos paired with real ones (by name), a reference portrait
and the audio for each."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from ..video_io import find_videos

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class Case:
    """One generated video and what it is measured against."""

    name: str  # the generated video's path under its folder, without suffix (the CSV's row)
    generated: Path
    real: Path
    reference: Path | None = None  # an image; None: the real video's first frame
    audio: Path | None = None  # None: the generated video's own soundtrack


def _by_name(root: Path) -> dict[str, Path]:
    return {str(PurePosixPath(v.source).with_suffix("")): v.path for v in find_videos([root])}


def _matched(name: str, given: Path | None, what: str, suffixes: tuple[str, ...] | None) -> Path | None:
    """``given`` itself when a file; in a folder, the file named ``name`` (any of ``suffixes``)."""
    if given is None or given.is_file():
        return given
    candidates = [p for p in given.glob(f"{name}.*") if p.is_file() and (suffixes is None or p.suffix.lower()
                                                                          in suffixes)]
    if not candidates:
        raise FileNotFoundError(f"no {what} named {name}.* in {given} (files are matched to the generated "
                                f"videos by name)")
    return sorted(candidates)[0]


def pair_inputs(generated: str | os.PathLike, real: str | os.PathLike, *, reference: str | os.PathLike | None = None,
                audio: str | os.PathLike | None = None) -> list[Case]:
    """The cases: ``generated`` and ``real`` are both video files, or both folders whose videos are
    matched by their path without suffix; ``reference`` and ``audio`` are one file for all or a folder
    of files matched by name."""
    generated, real = Path(generated), Path(real)
    extra = {"reference": Path(reference) if reference else None, "audio": Path(audio) if audio else None}
    for label, path in {"generated": generated, "real": real, **extra}.items():
        if path is not None and not path.exists():
            raise FileNotFoundError(f"{label} input {path} does not exist")
    if generated.is_file() != real.is_file():
        raise ValueError(f"GENERATED and --real must both be video files or both folders of videos, got "
                         f"{generated} and {real}")
    if generated.is_file():
        pairs = {generated.stem: (generated, real)}
    else:
        gen, ref = _by_name(generated), _by_name(real)
        unmatched = sorted(set(gen) - set(ref))
        if unmatched:
            raise FileNotFoundError(f"{len(unmatched)} generated videos have no real video of the same name in "
                                    f"{real}, e.g. {unmatched[:3]}")
        pairs = {name: (path, ref[name]) for name, path in gen.items()}
    return [Case(name, g, r, _matched(name, extra["reference"], "reference image", IMAGE_SUFFIXES),
                 _matched(name, extra["audio"], "audio file", None)) for name, (g, r) in pairs.items()]


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB ``[H, W, 3]``."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path} could not be read as an image; expected a reference portrait "
                         f"({' '.join(IMAGE_SUFFIXES)})")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
