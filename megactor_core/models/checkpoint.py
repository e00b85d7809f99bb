"""The one checkpoint format: a single ``.safetensors`` file with the config in its metadata."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..atomic import atomic_write
from .config import MegActorConfig
from .megactor import MegActorSigma

FORMAT = "megactor-sigma-dit"
FORMAT_KEY = "format"
CONFIG_KEY = "megactor_config"
# Modules that start at zero and so may be absent from a checkpoint of an earlier stage.
_ADDABLE = {"audio_attn": "use_audio", "temporal": "use_temporal"}


class CheckpointError(ValueError):
    """A file that is not a MegActor-Σ checkpoint, or not one of the expected shape."""


def save_checkpoint(model: MegActorSigma, path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None,
                    dtype: torch.dtype | None = None, weights: Mapping[str, torch.Tensor] | None = None) -> Path:
    """Write ``model`` atomically: the file at ``path`` is either the old one or the complete new one.

    ``metadata`` adds string entries (training stage, step, ...); ``dtype`` casts floating tensors;
    ``weights`` replace some of the model's tensors (e.g. their EMA averages) in the file.
    """
    path = Path(path)
    state = model.state_dict()
    unknown = sorted(set(weights or {}) - set(state))
    if unknown:
        raise ValueError(f"weights for tensors the model does not have: {unknown[:3]}")
    state.update(weights or {})
    tensors = {}
    for name, tensor in state.items():
        tensor = tensor.detach()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous().cpu()
    meta = {**(metadata or {}), FORMAT_KEY: FORMAT, CONFIG_KEY: model.config.to_json()}
    with atomic_write(path) as tmp:
        save_file(tensors, tmp, metadata=meta)
    return path


def read_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu", *, tensors: bool = True
                    ) -> tuple[MegActorConfig, dict[str, torch.Tensor], dict[str, str]]:
    """Config, tensors (none read when ``tensors`` is False) and metadata of a MegActor-Σ checkpoint,
    with clear errors for other files."""
    return _read(path, device, tensors=tensors)


def read_config(path: str | os.PathLike) -> MegActorConfig:
    """The config of a MegActor-Σ checkpoint, without reading its tensors."""
    return read_checkpoint(path, tensors=False)[0]


def _read(path: str | os.PathLike, device: torch.device | str, tensors: bool
          ) -> tuple[MegActorConfig, dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            metadata = f.metadata() or {}
            if metadata.get(FORMAT_KEY) != FORMAT or CONFIG_KEY not in metadata:
                raise CheckpointError(
                    f"{path} is a safetensors file but not a MegActor-Σ checkpoint (its metadata has "
                    f"no {FORMAT_KEY}={FORMAT!r} entry). PixArt-α weights must first be converted: "
                    "python -m megactor_core.models.init_from_pixart --help"
                )
            weights = {name: f.get_tensor(name) for name in f.keys()} if tensors else {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable .safetensors file: {exc}") from exc
    try:
        config = MegActorConfig.from_json(metadata[CONFIG_KEY])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} has an invalid MegActor-Σ config: {exc}") from exc
    return config, weights, metadata


def load_checkpoint(path: str | os.PathLike, *, device: torch.device | str = "cpu",
                    dtype: torch.dtype | None = None, config: MegActorConfig | None = None) -> MegActorSigma:
    """Build the model a checkpoint describes and load its weights (in the file's dtype unless
    ``dtype`` is given).

    ``config`` builds a different model from the file instead, e.g. the file's config with audio
    attention or temporal modules switched on for the next training stage: modules the file
    lacks then start at their zero initialisation. Every other difference is an error.
    """
    file_config, tensors, _ = read_checkpoint(path, device)
    config = config or file_config
    with torch.device("meta"):  # shapes only: no time or memory spent on a random init
        model = MegActorSigma(config)
    check_weights(model, tensors, file_config, source=str(path))
    if set(model.state_dict()) - set(tensors):  # modules new to this config need a real init
        with torch.device(device):
            model = MegActorSigma(config)
    model.load_state_dict(tensors, strict=False, assign=True)
    if dtype is not None:
        model.to(dtype)
    return model.eval()


def check_weights(model: MegActorSigma, tensors: Mapping[str, torch.Tensor], file_config: MegActorConfig,
                  source: str = "checkpoint") -> None:
    """Fail, naming every mismatch of shape or structure, unless ``tensors`` fit ``model``."""
    own = model.state_dict()
    problems = []
    shape_errors = [f"{k}: file {tuple(t.shape)}, model {tuple(own[k].shape)}"
                    for k, t in tensors.items() if k in own and t.shape != own[k].shape]
    if shape_errors:
        problems.append(f"{len(shape_errors)} tensors differ in shape ({'; '.join(shape_errors[:3])})")
    unexpected = sorted(set(tensors) - set(own))
    if unexpected:
        problems.append(f"{len(unexpected)} tensors the model does not have ({', '.join(unexpected[:3])})")
    missing = [k for k in own if k not in tensors and not _addable(k, file_config)]
    if missing:
        problems.append(f"{len(missing)} model tensors missing from the file ({', '.join(missing[:3])})")
    if problems:
        differences = _config_differences(file_config, model.config)
        raise CheckpointError(f"{source} does not fit the model: " + "; ".join(problems)
                              + (f". Config differences: {differences}" if differences else ""))


def _addable(key: str, file_config: MegActorConfig) -> bool:
    """True for a parameter of a zero-initialised module that ``file_config`` did not have."""
    parts = key.split(".")
    for module, flag in _ADDABLE.items():
        if module in parts and not getattr(file_config, flag):
            return True
    if "temporal" in parts and parts[0] == "denoiser" and parts[1] == "blocks":
        return not file_config.has_temporal(int(parts[2]))
    if parts[:2] == ["denoiser", "temporal"]:  # the temporal modules' shared timestep MLP
        return not file_config.use_temporal
    return False


def _config_differences(a: MegActorConfig, b: MegActorConfig) -> str:
    da, db = a.to_dict(), b.to_dict()
    return ", ".join(f"{k}: file {json.dumps(da[k])} vs model {json.dumps(db[k])}" for k in da if da[k] != db[k])
