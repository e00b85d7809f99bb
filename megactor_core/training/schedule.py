"""Learning-rate schedules: the rate of each optimizer step as a function of the step alone.

A pure function of the step (no scheduler state) resumes exactly: a run interrupted at step k
continues at the rate step k + 1 would have had.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine", "linear")


def learning_rate_at(step: int, *, peak: float, steps: int, schedule: str = "constant", warmup: int = 0) -> float:
    """The rate of optimizer step ``step`` (1-based) of ``steps``: a linear warm-up from ``peak / warmup``
    over the first ``warmup`` steps, then ``peak`` held (``constant``) or decayed to 0 at the last step
    along a half cosine (``cosine``) or a line (``linear``)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {SCHEDULES}, got {schedule!r}")
    if step <= warmup:
        return peak * step / warmup
    if schedule == "constant":
        return peak
    done = (step - warmup) / max(steps - warmup, 1)
    left = 0.5 * (1 + math.cos(math.pi * done)) if schedule == "cosine" else 1 - done
    return peak * max(left, 0.0)
