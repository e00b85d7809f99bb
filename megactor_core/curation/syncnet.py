"""SyncNet lip-sync scores (Chung & Zisserman 2016): Sync-C (confidence) and Sync-D (distance).

The paper filters its training clips on these two numbers, as computed by the public
``syncnet_python`` evaluation with its ``syncnet_v2.model`` weights. This module is our own
implementation of that evaluation so the published thresholds keep their meaning: the same
network layout (its state-dict keys load as they are), the same 13-coefficient MFCC at 100 frames
per second, 5-frame 224x224 BGR face crops at 25 fps, and the same offset search.

One deliberate difference: the face box comes from the 68 landmarks (see :func:`lip_inputs`)
rather than from the S3FD face detector, which this package does not ship.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
import scipy.fft
import torch
from torch import nn

from ..state_dict import load_checked

SYNCNET_SOURCE = "syncnet_v2.model, from the public syncnet_python release (joonson/syncnet_python, download_model.sh)"
FPS = 25  # SyncNet's video rate
SAMPLE_RATE = 16000  # and its audio rate
MFCC_PER_FRAME = 4  # 100 MFCC frames per second / 25 video frames per second
WINDOW = 5  # video frames per embedding (20 MFCC frames)
CROP = 224
CROP_MARGIN = 0.4  # syncnet_python's crop scale: the crop reaches 0.4 box sizes past the face box
PAD_VALUE = 110  # the grey that fills crops reaching past the frame, as in syncnet_python
SMOOTH = 13  # frames of the median filter over box centre and size
BROW_TO_HAIRLINE = 0.2  # the landmarks stop at the brows; a face detector's box reaches this far above
SYNC_SLACK = 1.1  # output frames a frame may drift from ffmpeg's output clock before it is dropped or repeated
SYNC_GRID = 1 << 16  # ffmpeg's frame sync measures times in 1/65536 of an output frame


def _conv_block(conv: nn.Module, norm: nn.Module, pool: nn.Module | None = None) -> list[nn.Module]:
    return [conv, norm, nn.ReLU(inplace=True)] + ([pool] if pool is not None else [])


class SyncNet(nn.Module):
    """The two-stream SyncNet: 5 face frames and 0.2 s of MFCC -> embeddings in one space.

    Attribute names and ``nn.Sequential`` indices follow ``syncnet_python`` so its weights load
    without renaming. ``audio_channels`` / ``lip_channels`` (six each) and ``embedding`` exist
    so tests can build a narrow network; the real one uses the defaults.
    """

    def __init__(self, audio_channels: tuple[int, ...] = (64, 192, 384, 256, 256, 512),
                 lip_channels: tuple[int, ...] = (96, 256, 256, 256, 256, 512), embedding: int = 1024):
        super().__init__()
        a, v = audio_channels, lip_channels
        self.netcnnaud = nn.Sequential(*(
            _conv_block(nn.Conv2d(1, a[0], 3, padding=1), nn.BatchNorm2d(a[0]), nn.MaxPool2d(1, 1))
            + _conv_block(nn.Conv2d(a[0], a[1], 3, padding=1), nn.BatchNorm2d(a[1]), nn.MaxPool2d(3, (1, 2)))
            + _conv_block(nn.Conv2d(a[1], a[2], 3, padding=1), nn.BatchNorm2d(a[2]))
            + _conv_block(nn.Conv2d(a[2], a[3], 3, padding=1), nn.BatchNorm2d(a[3]))
            + _conv_block(nn.Conv2d(a[3], a[4], 3, padding=1), nn.BatchNorm2d(a[4]), nn.MaxPool2d(3, 2))
            + _conv_block(nn.Conv2d(a[4], a[5], (5, 4)), nn.BatchNorm2d(a[5]))))
        self.netcnnlip = nn.Sequential(*(
            _conv_block(nn.Conv3d(3, v[0], (5, 7, 7), (1, 2, 2)), nn.BatchNorm3d(v[0]),
                        nn.MaxPool3d((1, 3, 3), (1, 2, 2)))
            + _conv_block(nn.Conv3d(v[0], v[1], (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.BatchNorm3d(v[1]),
                          nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
            + _conv_block(nn.Conv3d(v[1], v[2], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[2]))
            + _conv_block(nn.Conv3d(v[2], v[3], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[3]))
            + _conv_block(nn.Conv3d(v[3], v[4], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[4]),
                          nn.MaxPool3d((1, 3, 3), (1, 2, 2)))
            + _conv_block(nn.Conv3d(v[4], v[5], (1, 6, 6)), nn.BatchNorm3d(v[5]))))
        self.netfcaud = self._head(a[5], embedding)
        self.netfclip = self._head(v[5], embedding)

    @staticmethod
    def _head(width: int, embedding: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, embedding))

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 13, 20]`` MFCC windows -> ``[B, embedding]``."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 5, 224, 224]`` BGR face crops, 0..255 -> ``[B, embedding]``."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))


def load_syncnet(path: str | os.PathLike, device: torch.device | str = "cpu") -> SyncNet:
    """The published ``syncnet_v2.model`` as an eval-mode :class:`SyncNet` on ``device``."""
    return load_checked(SyncNet(), path, SYNCNET_SOURCE).to(device)


def _mel_filterbank(filters: int, nfft: int, sample_rate: int) -> np.ndarray:
    """``[filters, nfft//2 + 1]`` triangles on FFT bins, evenly spaced in mel from 0 to Nyquist."""
    mel = np.linspace(0, 2595 * np.log10(1 + sample_rate / 2 / 700), filters + 2)
    edges = np.floor((nfft + 1) * 700 * (10 ** (mel / 2595) - 1) / sample_rate)
    bins = np.arange(nfft // 2 + 1)[None]
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - low) / np.maximum(centre - low, 1)
    falling = (high - bins) / np.maximum(high - centre, 1)
    return np.where((bins >= low) & (bins < centre), rising, 0) + np.where((bins >= centre) & (bins < high), falling, 0)


def mfcc(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, coefficients: int = 13, filters: int = 26,
         nfft: int = 512, lifter: int = 22) -> np.ndarray:
    """``[13, T]`` MFCC of 16-bit-scaled mono samples, 25 ms windows every 10 ms (100 per second).

    The recipe SyncNet was trained on (python_speech_features' defaults): 0.97 pre-emphasis,
    rectangular windows, a 26-band mel filterbank, orthonormal DCT-II, a sine lifter of 22, and the
    first coefficient replaced by the log frame energy.
    """
    signal = np.asarray(samples, np.float64)
    signal = np.append(signal[:1], signal[1:] - 0.97 * signal[:-1])
    length, step = round(0.025 * sample_rate), round(0.01 * sample_rate)
    count = 1 + max(0, math.ceil((len(signal) - length) / step))
    signal = np.pad(signal, (0, (count - 1) * step + length - len(signal)))
    frames = np.lib.stride_tricks.sliding_window_view(signal, length)[::step]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    tiny = np.finfo(float).eps
    energy = np.maximum(power.sum(1), tiny)  # (power is never negative, so this only replaces zeros)
    bands = np.log(np.maximum(power @ _mel_filterbank(filters, nfft, sample_rate).T, tiny))
    cepstra = scipy.fft.dct(bands, type=2, axis=1, norm="ortho")[:, :coefficients]
    cepstra *= 1 + lifter / 2 * np.sin(np.pi * np.arange(coefficients) / lifter)
    cepstra[:, 0] = np.log(energy)
    return cepstra.T.astype(np.float32)


def _smooth(values: np.ndarray, width: int = SMOOTH) -> np.ndarray:
    """Running median over ``width`` frames with zeros past both ends (``scipy.signal.medfilt``), as
    syncnet_python smooths its boxes: within ``width // 2`` frames of an end it leans to the smaller values."""
    padded = np.pad(values, width // 2)
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)


def lip_inputs(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``[N, 224, 224, 3]`` BGR uint8 face crops as SyncNet sees them, from RGB frames and 68 landmarks.

    The face box is the landmarks' box with its top raised by ``BROW_TO_HAIRLINE`` of its height,
    standing in for the S3FD box of ``syncnet_python``. Its centre and half-size are median-smoothed
    over 13 frames. With ``s`` the half-size, the square crop runs from ``s`` above the centre to
    ``1.8 s`` below it and ``1.4 s`` either side, as the original pipeline crops (mouth and chin
    in the lower half), filled with grey where it leaves the frame.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [N, H, W, 3] RGB, got shape {tuple(frames.shape)}")
    if landmarks.shape != (len(frames), 68, 2):
        raise ValueError(f"landmarks must be [{len(frames)}, 68, 2], got shape {tuple(landmarks.shape)}")
    if len(frames) <= SMOOTH // 2:  # the zeros past the ends would be the median of every frame
        raise ValueError(f"clip too short for SyncNet's box smoothing: {len(frames)} frames, needs at least "
                         f"{SMOOTH // 2 + 1}")
    low, high = landmarks.min(axis=1).astype(np.float64), landmarks.max(axis=1).astype(np.float64)
    low[:, 1] -= BROW_TO_HAIRLINE * (high[:, 1] - low[:, 1])
    half = np.maximum(_smooth((high - low).max(axis=1) / 2), 1.0)
    cx, cy = _smooth((low[:, 0] + high[:, 0]) / 2), _smooth((low[:, 1] + high[:, 1]) / 2)
    crops = np.empty((len(frames), CROP, CROP, 3), np.uint8)
    for i, frame in enumerate(frames):
        s = half[i]
        border = int(s * (1 + 2 * CROP_MARGIN))
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        padded = cv2.copyMakeBorder(bgr, border, border, border, border, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        y, x = cy[i] + border, cx[i] + border
        face = padded[int(y - s):int(y + s * (1 + 2 * CROP_MARGIN)),
                      int(x - s * (1 + CROP_MARGIN)):int(x + s * (1 + CROP_MARGIN))]
        crops[i] = cv2.resize(face, (CROP, CROP))
    return crops


@dataclass(frozen=True)
class SyncScores:
    """SyncNet's verdict on a clip.

    ``offset``: the audio shift (in 25 fps frames) that matches the lips best; video frame ``i``
    matches audio at frame ``i - offset``, so a positive offset means the sound comes early.
    ``confidence`` (Sync-C): median minus minimum of the mean distance over shifts; higher is
    surer. ``distance`` (Sync-D): the mean embedding distance at the best shift; lower is better.
    """

    offset: int
    confidence: float
    distance: float


def offset_search(video: torch.Tensor, audio: torch.Tensor, vshift: int = 15) -> SyncScores:
    """Scores from ``[N, D]`` video and audio embeddings of the same windows, over shifts ±``vshift``.

    As in ``syncnet_python``, audio is zero-padded at both ends and the padding takes part in
    the mean distances, which keeps the published Sync-C/Sync-D thresholds comparable.
    """
    if video.shape != audio.shape or video.ndim != 2:
        raise ValueError(f"video and audio embeddings must both be [N, D], got {tuple(video.shape)} "
                         f"and {tuple(audio.shape)}")
    padded = torch.nn.functional.pad(audio, (0, 0, vshift, vshift))
    shifted = padded.unfold(0, 2 * vshift + 1, 1).permute(0, 2, 1)  # [N, shifts, D]
    distances = torch.linalg.vector_norm(video[:, None] - shifted + 1e-6, dim=-1)  # pairwise_distance's eps
    mean = distances.mean(0)
    best, index = torch.min(mean, 0)
    return SyncScores(vshift - int(index), float(torch.median(mean) - best), float(best))


def _sync_time(index: int, rate: Fraction) -> float:
    """Frame ``index``'s time in 25 fps frames as FFmpeg's frame sync sees it: rounded to 1/65536
    of a frame, then nudged off the grid unless whole (fftools' ``adjust_frame_pts_to_encoder_tb``)."""
    time = math.floor(index * FPS * SYNC_GRID / rate + Fraction(1, 2)) / SYNC_GRID
    return time if time.is_integer() else time + 1 / (2 * SYNC_GRID)


def _at_25fps(count: int, fps: float) -> np.ndarray:
    """Indices of the frames that ``ffmpeg -r 25`` makes of ``count`` evenly spaced frames at ``fps``.

    syncnet_python converts every clip with ``ffmpeg -r 25``, whose constant-rate frame sync does
    not take the frame on screen at each 1/25 s: it passes each frame on once while the frame's
    end stays within 1.1 output frames of the output clock, drops it when further behind and
    repeats it (the lead rounded) when further ahead. So at 30 fps the output lags by up to a
    frame and frame 12 is the first dropped, then every 6th. (Its other branches, repeating the
    previous frame or the last one at the end, never fire for evenly spaced frames from time 0.)
    This is FFmpeg 6 and later; 5.1 and earlier sync an ``.avi`` output as variable-rate, which
    drops about a frame sooner (30 fps: frame 10, then every 6th).
    """
    if not fps > 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    rate = Fraction(fps).limit_denominator(1001)  # NTSC rates (30000/1001) exactly, as containers store them
    duration = float(FPS / rate)  # of one input frame, in output frames
    chosen, clock = [], 0
    for index in range(count):
        lead = _sync_time(index, rate) + duration - clock  # FFmpeg's delta
        copies = 0 if lead < -SYNC_SLACK else round(lead) if lead > SYNC_SLACK else 1  # halves to even, as llrintf
        chosen += [index] * copies
        clock += copies
    return np.asarray(chosen, dtype=np.int64)


@torch.inference_mode()
def sync_scores(net: SyncNet, crops: np.ndarray, samples: np.ndarray, fps: float, vshift: int = 15,
                batch: int = 20) -> SyncScores:
    """Sync-C, Sync-D and offset of face ``crops`` (from :func:`lip_inputs`, at ``fps``) and audio.

    ``samples``: mono 16 kHz floats in -1..1 (syncnet_python's are ffmpeg's 16-bit resampling:
    :func:`megactor_core.video_io.mono_pcm16`). Other frame rates are brought to 25 fps by
    dropping and repeating frames as syncnet_python's ``ffmpeg -r 25`` does. Embeddings are made
    ``batch`` windows at a time, so memory stays flat however long the clip.
    """
    crops = crops[_at_25fps(len(crops), fps)]
    features = mfcc(np.asarray(samples) * 32768)
    frames = min(len(crops), len(samples) // (SAMPLE_RATE // FPS))
    windows = frames - WINDOW  # syncnet_python's count (it leaves the last full window out)
    if windows < 1:
        raise ValueError(f"clip too short for SyncNet: {frames} frames at 25 fps with audio, needs at least "
                         f"{WINDOW + 1}")
    device = next(net.parameters()).device
    video_crops = torch.from_numpy(crops).to(device)
    mfcc_frames = torch.from_numpy(features).to(device)
    video_emb, audio_emb = [], []
    for start in range(0, windows, batch):
        ids = torch.arange(start, min(windows, start + batch), device=device)
        lips = video_crops[ids[:, None] + torch.arange(WINDOW, device=device)]  # [B, 5, H, W, 3]
        video_emb.append(net.forward_lip(lips.permute(0, 4, 1, 2, 3).float()).float().cpu())
        cols = ids[:, None] * MFCC_PER_FRAME + torch.arange(WINDOW * MFCC_PER_FRAME, device=device)
        audio_emb.append(net.forward_aud(mfcc_frames[:, cols].permute(1, 0, 2)[:, None]).float().cpu())
    return offset_search(torch.cat(video_emb), torch.cat(audio_emb), vshift)
