"""Training checkpoints: one folder per saved step, written atomically, from which a run resumes.

``<output_dir>/checkpoints/step-00001000/`` holds ``model.safetensors`` (the plugin's checkpoint
format: it loads in the loader node), ``ema.safetensors`` when EMA is on (the same format, EMA
weights), and ``trainer.pt`` (optimizer, gradient scaler, step). The folder is assembled under a
temporary name and renamed when complete, so a killed run leaves only whole checkpoints.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

import torch

from ..models import MegActorSigma, read_checkpoint, save_checkpoint
from .ema import EMA

STATE_FOLDER = "checkpoints"
_STEP = re.compile(r"^step-(\d{8})$")


def save_state(output_dir: str | os.PathLike, step: int, model: MegActorSigma, *, stage: int,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None, ema: EMA | None,
               keep: int, trained: list[str]) -> Path:
    """Save everything a resume needs at ``step`` (``trained``: the names of the parameters the optimizer
    holds, in its order); keep the newest ``keep`` checkpoints."""
    root = Path(output_dir) / STATE_FOLDER
    final = root / f"step-{step:08d}"
    tmp = root / f".{final.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        metadata = {"stage": str(stage), "step": str(step)}
        save_checkpoint(model, tmp / "model.safetensors", metadata=metadata)
        if ema is not None:
            save_checkpoint(model, tmp / "ema.safetensors", metadata={**metadata, "ema_decay": str(ema.decay)},
                            weights=ema.average)
        torch.save({"step": step, "stage": stage, "trained": trained, "optimizer": optimizer.state_dict(),
                    "scaler": None if scaler is None else scaler.state_dict()}, tmp / "trainer.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in saved_steps(output_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return final


def saved_steps(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders, oldest first (unfinished temporary folders are removed)."""
    root = Path(output_dir) / STATE_FOLDER
    if not root.is_dir():
        return []
    for leftover in root.glob(".step-*.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return sorted(p for p in root.iterdir() if _STEP.match(p.name))


def load_state(folder: Path, model: MegActorSigma, *, stage: int, ema: EMA | None, trained: list[str]) -> dict:
    """Restore a checkpoint folder's model and EMA weights; returns its trainer state (``step``,
    ``optimizer`` and ``scaler`` state dicts) for the caller to load once they are prepared. ``trained``:
    the parameters this run trains, which must be the ones the checkpoint's optimizer holds."""
    trainer = torch.load(folder / "trainer.pt", map_location="cpu", weights_only=True)
    if trainer["stage"] != stage:
        raise ValueError(f"{folder} is a stage-{trainer['stage']} checkpoint; this run trains stage {stage}. "
                         "Use another output_dir for another stage")
    # The names when the checkpoint kept them (older ones: the optimizer's parameter count alone).
    held = len(trainer["optimizer"]["param_groups"][0]["params"])
    if held != len(trained) or trainer.get("trained", trained) != trained:
        raise ValueError(f"{folder} was trained with other parameters ({held} tensors; this run trains "
                         f"{len(trained)}): resume with the train_only it was started with, or use another "
                         "output_dir")
    _, tensors, _ = read_checkpoint(folder / "model.safetensors")
    model.load_state_dict(tensors)
    if ema is not None:
        ema_file = folder / "ema.safetensors"
        if not ema_file.is_file():
            raise ValueError(f"{folder} was saved without EMA but ema_decay is set; resume with ema_decay: 0 "
                             "or start a new output_dir")
        ema.load(read_checkpoint(ema_file)[1])
    return trainer
