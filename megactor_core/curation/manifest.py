"""The manifest of a scan: one row per clip, as CSV or Parquet, and the journal a scan resumes from."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from ..atomic import atomic_write
from .metrics import ClipRecord

COLUMNS = [f.name for f in dataclasses.fields(ClipRecord)]
_TYPES = {f.name: f.type for f in dataclasses.fields(ClipRecord)}
FORMATS = (".csv", ".parquet")


def _format(path: Path) -> str:
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"manifest {path} must end in {' or '.join(FORMATS)}")
    return path.suffix.lower()


def write_manifest(path: str | os.PathLike, records: Iterable[ClipRecord]) -> Path:
    """Write the records atomically, as CSV or Parquet by ``path``'s suffix."""
    path = Path(path)
    rows = [dataclasses.asdict(r) for r in records]
    if _format(path) == ".csv":
        with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        pa, pq = _pyarrow()
        with atomic_write(path) as tmp:
            pq.write_table(pa.Table.from_pylist(rows), tmp)
    return path


def read_manifest(path: str | os.PathLike) -> list[ClipRecord]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist (make it with: python -m megactor_core.curation scan)")
    if _format(path) == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        _, pq = _pyarrow()
        rows = pq.read_table(path).to_pylist()
    missing = sorted(set(COLUMNS) - set(rows[0])) if rows else []
    if missing:
        raise ValueError(f"{path} is not a curation manifest: it lacks the columns {missing}")
    return [_record(row) for row in rows]


def _record(row: dict) -> ClipRecord:
    values = {}
    for name in COLUMNS:
        value, kind = row[name], _TYPES[name]
        if kind == "bool":
            value = value if isinstance(value, bool) else str(value) == "True"
        elif kind == "int":
            value = int(value)
        elif kind == "float":
            value = math.nan if value in (None, "", "nan") else float(value)
        values[name] = value if value is not None else ""
    return ClipRecord(**values)


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("writing or reading .parquet needs pyarrow (pip install pyarrow); or use a .csv manifest") \
            from None
    return pa, pq


class Journal:
    """Records appended one line each as clips finish, so a killed scan keeps what it measured."""

    def __init__(self, manifest: Path) -> None:
        self.path = manifest.with_name(f".{manifest.name}.journal.jsonl")

    def read(self) -> list[ClipRecord]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(_record(json.loads(line)))
            except (json.JSONDecodeError, KeyError):  # a line cut short by a kill
                continue
        return records

    def append(self, record: ClipRecord) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(dataclasses.asdict(record)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
