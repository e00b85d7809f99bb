"""Dataset curation: the paper's face-size, head-angle and SyncNet metrics per clip, and selection."""

from .manifest import read_manifest, write_manifest
from .metrics import ClipRecord, Scorers, Thresholds, measure_clip
from .scanner import ModelFiles, scan, select, summary_table

__all__ = [
    "ClipRecord",
    "ModelFiles",
    "Scorers",
    "Thresholds",
    "measure_clip",
    "read_manifest",
    "scan",
    "select",
    "summary_table",
    "write_manifest",
]
