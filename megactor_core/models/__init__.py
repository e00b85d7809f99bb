"""The MegActor-Σ diffusion transformer, its config and its checkpoint format; the official SD1.5
release behind the same interface (:mod:`.sd15`); :func:`load_model` for either file."""

from .backbone import Backbone, BackboneConfig
from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, read_config, save_checkpoint
from .config import MegActorConfig
from .load import MODEL_SUFFIXES, AnyMegActor, load_model
from .megactor import MegActorSigma
from .reference import ReferenceFeatures
from .sd15 import MegActorSigmaSD15, SD15Config

__all__ = [
    "Backbone",
    "BackboneConfig",
    "MODEL_SUFFIXES",
    "AnyMegActor",
    "CheckpointError",
    "MegActorConfig",
    "MegActorSigma",
    "MegActorSigmaSD15",
    "ReferenceFeatures",
    "SD15Config",
    "load_checkpoint",
    "load_model",
    "read_checkpoint",
    "read_config",
    "save_checkpoint",
]
