"""One line naming the machine a measurement ran on, for reports and benchmark results."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; what ``platform`` knows elsewhere).

    Float results of the same seeded run can differ between CPU models (their kernels round differently),
    and speed differs far more, so a report says which CPU it ran on, not only the architecture.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    return platform.processor() or platform.machine()


def describe() -> str:
    """CPU, cores, torch threads and versions, e.g. ``AMD EPYC (x86_64), 2 cores, 2 torch threads, torch 2.13.0+cpu,
    Python 3.11.7``."""
    return (f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, Python {platform.python_version()}")
