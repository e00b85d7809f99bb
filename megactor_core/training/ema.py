"""Exponential moving average of the trained parameters, kept in float32."""

from __future__ import annotations

from collections.abc import Mapping

import torch


class EMA:
    """``average = decay * average + (1 - decay) * parameter`` after every optimizer step."""

    def __init__(self, parameters: Mapping[str, torch.nn.Parameter], decay: float) -> None:
        self.decay = decay
        self.average = {name: p.detach().float().clone() for name, p in parameters.items()}

    @torch.no_grad()
    def update(self, parameters: Mapping[str, torch.nn.Parameter]) -> None:
        for name, p in parameters.items():
            self.average[name].lerp_(p.detach().float(), 1 - self.decay)

    def load(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Restore averages (from an EMA checkpoint holding at least the trained tensors)."""
        missing = sorted(set(self.average) - set(tensors))
        if missing:
            raise ValueError(f"the EMA checkpoint lacks {len(missing)} trained tensors, e.g. {missing[:3]}")
        for name, average in self.average.items():
            average.copy_(tensors[name])
