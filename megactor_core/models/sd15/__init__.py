"""The SD1.5-based MegActor-Σ the authors released, behind the DiT's model interface."""

from .config import SD15Config
from .model import AppearanceReference, MegActorSigmaSD15
from .official import OfficialCheckpointError, load_official

__all__ = ["AppearanceReference", "MegActorSigmaSD15", "OfficialCheckpointError", "SD15Config", "load_official"]
