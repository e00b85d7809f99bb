"""Small line plots drawn with OpenCV, so the toy report needs no plotting library."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_write

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]  # RGB
WIDTH, HEIGHT, MARGIN = 640, 340, 56


def _text(image: np.ndarray, text: str, at: tuple[int, int], scale: float = 0.4) -> None:
    cv2.putText(image, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def line_plot(path: str | os.PathLike, series: dict[str, tuple[np.ndarray, np.ndarray]], *, title: str,
              x_label: str, y_label: str) -> Path:
    """A PNG of each ``name: (x, y)`` as a coloured line with a legend; NaNs leave gaps."""
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()])
    ys = np.concatenate([np.asarray(y, float) for _, y in series.values()])
    ys = ys[np.isfinite(ys)]
    x0, x1 = float(xs.min()), float(xs.max()) if xs.max() > xs.min() else float(xs.min()) + 1
    y0, y1 = (float(ys.min()), float(ys.max())) if ys.size else (0.0, 1.0)
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    left, right, top, bottom = MARGIN, WIDTH - 12, 44, HEIGHT - 40

    def to_pixels(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.stack([left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)],
                        1)

    cv2.rectangle(image, (left, top), (right, bottom), (0, 0, 0), 1)
    for value, y in ((y0, bottom), (y1, top)):
        _text(image, f"{value:.3g}", (4, y + 4))
    for value, x in ((x0, left), (x1, right - 30)):
        _text(image, f"{value:.3g}", (x, bottom + 14))
    _text(image, x_label, ((left + right) // 2 - 30, HEIGHT - 8))
    _text(image, title, (8, 16), 0.45)
    _text(image, y_label, (4, top - 8))
    for k, (name, (x, y)) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = to_pixels(np.asarray(x, float), np.asarray(y, float))
        finite = np.isfinite(points).all(1)
        for run in np.split(np.arange(len(points)), np.nonzero(~finite)[0]):
            run = run[finite[run]]
            if len(run) > 1:
                cv2.polylines(image, [np.round(points[run]).astype(np.int32)], False, colour, 2, cv2.LINE_AA)
            elif len(run) == 1:
                cv2.circle(image, tuple(np.round(points[run[0]]).astype(int)), 3, colour, -1, cv2.LINE_AA)
        cv2.line(image, (right - 260, top + 14 + 16 * k), (right - 240, top + 14 + 16 * k), colour, 2)
        _text(image, name, (right - 234, top + 18 + 16 * k))
    path = Path(path)
    with atomic_write(path, suffix=".png") as tmp:
        cv2.imwrite(tmp, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path
