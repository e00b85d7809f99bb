"""An ONNX image model run with onnxruntime (DWPose's two files, ArcFace): its input read from the file.

Size, batch and input precision come from the file, not from assumptions: a model with a dynamic
batch dimension gets many images per run, one fixed at 1 gets one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAX_BATCH = 16  # images per run of a dynamic-batch model, to bound memory
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass
class OnnxImageModel:
    """One onnxruntime session whose single input is images ``[batch, 3, height, width]``."""

    session: Any  # onnxruntime.InferenceSession
    path: Path
    input_name: str
    size: tuple[int, int]  # input height, width
    dtype: type
    fixed_batch: bool

    @classmethod
    def open(cls, path: str | Path, what: str, providers: Sequence[str], error: type[Exception]) -> OnnxImageModel:
        """The session for the existing file ``path``; ``error`` (naming the file as ``what``) when
        onnxruntime cannot read it or its input is not images of one fixed size."""
        import onnxruntime as ort  # imported here so importing us stays light

        try:
            session = ort.InferenceSession(str(path), providers=list(providers))
        except Exception as exc:  # onnxruntime raises several types for unreadable or unknown files
            raise error(f"{path} is not an ONNX model onnxruntime can open ({what}): {exc}") from exc
        inputs = session.get_inputs()
        shape = inputs[0].shape
        fixed_batch = len(shape) == 4 and isinstance(shape[0], int)
        if len(inputs) != 1 or len(shape) != 4 or shape[1] != 3 \
                or not all(isinstance(d, int) and d > 0 for d in shape[2:]) or fixed_batch and shape[0] != 1:
            declared = shape if len(inputs) == 1 else [i.shape for i in inputs]
            raise error(f"{path} takes input {declared}; the {what} must take one input, images [batch, 3, "
                        "height, width] with a fixed height and width and a batch of 1 or a dynamic one")
        if inputs[0].type not in _DTYPES:
            raise error(f"{path} takes {inputs[0].type} input; the {what} must take float or float16 images")
        return cls(session, Path(path), inputs[0].name, (shape[2], shape[3]), _DTYPES[inputs[0].type], fixed_batch)

    def run(self, batch: np.ndarray, outputs: int = 1) -> list[np.ndarray]:
        """The first ``outputs`` outputs for ``batch``, run in chunks the model accepts, as float32."""
        step = 1 if self.fixed_batch else MAX_BATCH
        parts = [self.session.run(None, {self.input_name: batch[i:i + step].astype(self.dtype, copy=False)})
                 for i in range(0, len(batch), step)]
        return [np.concatenate([p[k] for p in parts]).astype(np.float32, copy=False) for k in range(outputs)]
