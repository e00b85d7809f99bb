"""Any waveform -> Whisper's input: mono float32 at 16 kHz, checked."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

WHISPER_SAMPLE_RATE = 16000


def to_whisper_waveform(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``[T]``, ``[C, T]`` or ``[1, C, T]`` samples at ``sample_rate`` -> mono ``[T']`` at 16 kHz.

    Channels are averaged; resampling is polyphase with an anti-aliasing filter, so the same
    sound at 16, 44.1 or 48 kHz gives (nearly) the same samples.
    """
    if not torch.is_tensor(waveform):
        raise ValueError(f"audio waveform must be a tensor, got {type(waveform).__name__}")
    if waveform.ndim == 3:
        if waveform.shape[0] != 1:
            raise ValueError(f"audio holds a batch of {waveform.shape[0]} clips; give one clip")
        waveform = waveform[0]
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2:
        raise ValueError(f"audio waveform must be [samples], [channels, samples] or [1, channels, samples], "
                         f"got shape {tuple(waveform.shape)}")
    if not isinstance(sample_rate, (int, float)) or sample_rate <= 0:
        raise ValueError(f"audio sample_rate must be a positive number, got {sample_rate!r}")
    if waveform.shape[-1] == 0:
        raise ValueError("audio is empty (0 samples)")
    if not torch.isfinite(waveform).all():
        bad = (~torch.isfinite(waveform)).any(0).nonzero()[0, 0].item()
        raise ValueError(f"audio has NaN or infinite samples (first at {bad / sample_rate:.3f} s)")
    from scipy.signal import resample_poly  # imported here so importing us stays light

    mono = waveform.float().mean(0).cpu().numpy()
    ratio = Fraction(WHISPER_SAMPLE_RATE, 1) / Fraction(sample_rate).limit_denominator(1000)
    ratio = ratio.limit_denominator(1000)
    if ratio != 1:
        mono = resample_poly(mono, ratio.numerator, ratio.denominator).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(mono))
