"""The MegActor-Σ diffusion transformer, its config and its checkpoint format."""

from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, read_config, save_checkpoint
from .config import MegActorConfig
from .megactor import MegActorSigma
from .reference import ReferenceFeatures

__all__ = [
    "CheckpointError",
    "MegActorConfig",
    "MegActorSigma",
    "ReferenceFeatures",
    "load_checkpoint",
    "read_checkpoint",
    "read_config",
    "save_checkpoint",
]
