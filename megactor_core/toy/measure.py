"""Reading a toy video's motion back from its pixels: eyes, mouth, head position and angles.

These work on any frames of the toy world, generated or ground truth, because the sclera and
the open mouth have colours nothing else in it uses (:mod:`.face`). The tests check them against
the known signals, so they can be trusted on what a model generates.
"""

from __future__ import annotations

import numpy as np

SCLERA_MIN = 225  # every channel above: sclera
MOUTH_MAX = 50  # every channel below: the open mouth
BACKGROUND_TOLERANCE = 24


def _share(mask: np.ndarray) -> np.ndarray:
    return mask.reshape(len(mask), -1).mean(1)


def sclera(frames: np.ndarray) -> np.ndarray:
    return frames.min(-1) > SCLERA_MIN


def eye_openness(frames: np.ndarray, span: int = 12) -> np.ndarray:
    """``[N]`` the sclera's area relative to its most over ``span`` frames either side: about 1 for open
    eyes, 0 when shut. (Relative, because turning the head also changes how much sclera shows.)"""
    area = _share(sclera(frames))
    padded = np.pad(area, span, mode="edge")
    most = np.lib.stride_tricks.sliding_window_view(padded, 2 * span + 1).max(1)
    return np.divide(area, most, out=np.zeros_like(area), where=most > 0)


def mouth_opening(frames: np.ndarray) -> np.ndarray:
    """``[N]`` share of each frame that is open mouth (0 when closed)."""
    return _share(frames.max(-1) < MOUTH_MAX)


def background(frames: np.ndarray) -> np.ndarray:
    """``[N, H, W]`` pixels close to the frame's background colour (the median of its border)."""
    border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    colour = np.median(border, axis=1)[:, None, None]
    return np.abs(frames.astype(np.int16) - colour).max(-1) <= BACKGROUND_TOLERANCE


def _centroid(mask: np.ndarray) -> np.ndarray:
    """``[N, 2]`` x, y centre of each frame's mask, NaN where it is empty."""
    count = mask.sum((1, 2)).astype(float)
    ys, xs = np.arange(mask.shape[1]), np.arange(mask.shape[2])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([(mask.sum(1) * xs).sum(1) / count, (mask.sum(2) * ys).sum(1) / count], 1)


def head_position(frames: np.ndarray) -> np.ndarray:
    """``[N, 2]`` centre of the head (everything that is not background), as a fraction of the frame."""
    return _centroid(~background(frames)) / np.array([frames.shape[2], frames.shape[1]])


def head_angles(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Proxies of yaw and pitch (the eyes' offset from the head centre, in head sizes; right and up
    are positive, as the signals turn) and roll (the tilt of the line between the eyes, degrees);
    NaN while the eyes are shut."""
    head = ~background(frames)
    eyes = sclera(frames)
    centre = _centroid(head)
    size = np.sqrt(head.sum((1, 2)))
    width = frames.shape[2]
    left = eyes & (np.arange(width) < centre[:, :1, None].clip(0, width))
    right = eyes & ~left
    offset = (_centroid(eyes) - centre) / size[:, None]
    lc, rc = _centroid(left), _centroid(right)
    roll = np.degrees(np.arctan2(rc[:, 1] - lc[:, 1], rc[:, 0] - lc[:, 0]))
    return {"yaw": offset[:, 0], "pitch": -offset[:, 1], "roll": roll}


def motion_amplitude(frames: np.ndarray) -> float:
    """How much the head moves: the RMS distance of its centre from its mean position, as a fraction of the frame."""
    position = head_position(frames)
    return float(np.sqrt(np.nanmean(((position - np.nanmean(position, 0)) ** 2).sum(1))))


def motion_gain(frames: np.ndarray, followed: np.ndarray) -> float:
    """How much of ``followed``'s head motion ``frames`` show: the least-squares gain ``g`` in
    (head position - its mean) ≈ g · (``followed``'s head position - its mean), 0 for a still head and
    1 for the same motion. Unlike the RMS amplitude it ignores jitter that does not follow ``followed``."""
    mine, theirs = head_position(frames), head_position(followed)
    keep = np.isfinite(mine).all(1) & np.isfinite(theirs).all(1)
    mine, theirs = mine[keep] - mine[keep].mean(0), theirs[keep] - theirs[keep].mean(0)
    energy = float((theirs ** 2).sum())
    return float((mine * theirs).sum() / energy) if len(mine) >= 3 and energy > 0 else float("nan")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the frames where both are defined (NaN if either is constant)."""
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def finite_mean(values) -> float:
    """The mean over the cases where a measurement is defined (NaN when it never is)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def bootstrap_interval(values: np.ndarray, seed: int = 0, draws: int = 10000, level: float = 0.95,
                       denominators: np.ndarray | None = None) -> tuple[float, float]:
    """The ``level`` percentile-bootstrap interval of the mean of ``values`` (one per case; NaNs dropped),
    or, given ``denominators`` (paired per case), of the ratio of the two means, the cases resampled together."""
    values = np.asarray(values, float)
    pairs = np.stack([values, np.ones_like(values) if denominators is None else np.asarray(denominators, float)], 1)
    pairs = pairs[np.isfinite(pairs).all(1)]
    if len(pairs) < 2:
        return float("nan"), float("nan")
    drawn = pairs[np.random.default_rng(seed).integers(0, len(pairs), (draws, len(pairs)))].mean(1)
    statistic = drawn[:, 0] / np.maximum(drawn[:, 1], 1e-9)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(statistic, tail)), float(np.percentile(statistic, 100 - tail))
