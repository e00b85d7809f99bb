"""Writing files so that a failure or Ctrl-C never leaves a half-written one."""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary name next to ``path`` for the caller to create the file under.

    When the block completes, the file gets an ordinary file's mode (some writers, safetensors
    among them, create files readable by their owner only), is flushed to disk and renamed to
    ``path`` in one step;
    on any error or interrupt it is removed, and ``path`` is absent or keeps its old content.
    ``suffix`` ends the temporary name (writers that pick a format from it need one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}{suffix}")
    try:
        yield str(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@functools.cache
def _umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux), since setting
    it, even back at once, races with files other threads create (e.g. in a ComfyUI server)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere, once per process
    os.umask(mask)
    return mask
