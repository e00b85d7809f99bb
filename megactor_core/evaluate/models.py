"""Which metrics can run with the weight files at hand, and the loaded networks they run."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .weights import WEIGHT_FILES, find_weights, missing_message

METRICS = ("sync", "fid", "fvd", "efid", "lpips", "csim", "motion")
NEEDS = {  # the weight files (keys of WEIGHT_FILES) each metric runs
    "sync": ("syncnet", "yolox", "dwpose"),
    "fid": ("inception",),
    "fvd": ("i3d",),
    "efid": ("deep3d", "lm3d", "yolox", "dwpose"),
    "lpips": ("lpips", "alexnet"),
    "csim": ("arcface", "yolox", "dwpose"),
    "motion": ("yolox", "dwpose"),
}


@dataclass
class Models:
    """The loaded networks; a metric whose network is None is not measured."""

    dwpose: object | None = None  # landmarks.DWPose: for sync, efid, csim and motion
    syncnet: torch.nn.Module | None = None
    inception: torch.nn.Module | None = None
    i3d: torch.jit.ScriptModule | None = None
    lpips: torch.nn.Module | None = None
    arcface: object | None = None  # identity.ArcFace
    expression: object | None = None  # expression.ExpressionRegressor
    device: str = "cpu"

    def metrics(self) -> list[str]:
        """The metrics these networks measure, in the CSV's order."""
        has = {"sync": self.syncnet is not None and self.dwpose is not None, "fid": self.inception is not None,
               "fvd": self.i3d is not None, "efid": self.expression is not None and self.dwpose is not None,
               "lpips": self.lpips is not None,
               "csim": self.arcface is not None and self.dwpose is not None, "motion": self.dwpose is not None}
        return [m for m in METRICS if has[m]]


def plan(files: Mapping[str, Path], requested: Sequence[str] | None,
         folder: str | os.PathLike | None) -> tuple[list[str], list[str]]:
    """The metrics to measure and a line per metric skipped for a missing file.

    ``requested`` (the user's explicit choice) must all be measurable: a missing file is an error
    naming it, where to put it and where it comes from. Without it, every metric whose files are
    found is measured.
    """
    unknown = sorted(set(requested or ()) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(METRICS)}")
    chosen, skipped = [], []
    for metric in METRICS:
        if requested is not None and metric not in requested:
            continue
        absent = [WEIGHT_FILES[k] for k in NEEDS[metric] if k not in files]
        if absent and requested is not None:
            raise FileNotFoundError(f"{metric} needs " + "; ".join(missing_message(w, folder) for w in absent))
        if absent:
            skipped.append(f"skipped {metric}: needs " + ", ".join(
                f"{w.name} ({w.flag} or in --weights DIR; {w.source})" for w in absent))
        else:
            chosen.append(metric)
    return chosen, skipped


def load_models(files: Mapping[str, Path], metrics: Sequence[str], device: str = "cpu") -> Models:
    """The networks ``metrics`` run, loaded from ``files`` (as :func:`find_weights` gives them)."""
    from ..curation.syncnet import load_syncnet
    from ..landmarks import DWPose
    from .expression import load_expression
    from .fvd import load_i3d
    from .identity import ArcFace
    from .inception import load_inception
    from .lpips import load_lpips

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if torch.device(device).type == "cuda" else None
    wanted = set(metrics)
    models = Models(device=device)
    if wanted & {"sync", "efid", "csim", "motion"}:
        models.dwpose = DWPose(files["yolox"], files["dwpose"], providers)
    if "sync" in wanted:
        models.syncnet = load_syncnet(files["syncnet"], device)
    if "fid" in wanted:
        models.inception = load_inception(files["inception"], device)
    if "fvd" in wanted:
        models.i3d = load_i3d(files["i3d"], device)
    if "efid" in wanted:
        models.expression = load_expression(files["deep3d"], files["lm3d"], device)
    if "lpips" in wanted:
        models.lpips = load_lpips(files["lpips"], files["alexnet"], device)
    if "csim" in wanted:
        models.arcface = ArcFace(files["arcface"], providers)
    return models


def prepare_models(folder: str | os.PathLike | None, given: Mapping[str, str | os.PathLike | None],
                   requested: Sequence[str] | None = None, device: str = "cpu") -> tuple[Models, list[str]]:
    """Find the files, choose the metrics and load their networks; also the lines saying what was skipped."""
    files = find_weights(folder, given)
    metrics, skipped = plan(files, requested, folder)
    if not metrics:
        raise FileNotFoundError("no metric can run:\n" + "\n".join(skipped))
    return load_models(files, metrics, device), skipped
