"""Stand-in model files with the real formats and signatures (random or scripted weights), so the
tests and the benchmarks run the real code paths without downloading a model. Needs ``onnx``
(a test dependency) for the DWPose stand-ins."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .landmarks.face import mean_face


def stand_in_onnx(path: Path, input_shape: list, outputs: dict[str, np.ndarray], input_name: str = "input",
                  input_type: int = 1) -> Path:
    """An ONNX file taking ``input_shape`` that emits each ``[1, ...]`` array of ``outputs``, repeated to
    the input's batch size (so a dynamic batch works as in the real files). ``input_type``: an ONNX
    ``TensorProto`` element type (1: float)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    batch = input_shape[0]
    nodes = [helper.make_node("Shape", [input_name], ["shape"]),
             helper.make_node("Slice", ["shape", "zero", "one"], ["batch"])]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "one")]
    graph_outputs = []
    for name, value in outputs.items():
        inits += [numpy_helper.from_array(value.astype(np.float32), f"{name}_value"),
                  numpy_helper.from_array(np.array(value.shape[1:], np.int64), f"{name}_rest")]
        nodes += [helper.make_node("Concat", ["batch", f"{name}_rest"], [f"{name}_shape"], axis=0),
                  helper.make_node("Expand", [f"{name}_value", f"{name}_shape"], [name])]
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, *value.shape[1:]]))
    graph = helper.make_graph(nodes, "stand_in", [helper.make_tensor_value_info(input_name, input_type, input_shape)],
                              graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def raw_yolox_output(*detections) -> np.ndarray:
    """A raw YOLOX head output ``[1, 8400, 85]`` holding ``detections``, at stride-16 and -32 anchors in turn."""
    raw = np.zeros((1, 8400, 85), np.float32)
    raw[..., 2:4] = -5.0  # tiny boxes with zero score everywhere else
    for k, (cx, cy, w, h, objectness, classes) in enumerate(detections):
        stride, offset = (16, 6400) if k % 2 == 0 else (32, 6400 + 1600)
        gx, gy = int(cx // stride), int(cy // stride)
        anchor = offset + gy * (640 // stride) + gx
        raw[0, anchor, :5] = [cx / stride - gx, cy / stride - gy, math.log(w / stride), math.log(h / stride),
                              objectness]
        for c, score in classes.items():
            raw[0, anchor, 5 + c] = score
    return raw


def face_dwpose_files(folder: Path, weak_face_points: Sequence[int] = ()) -> tuple[Path, Path]:
    """Stand-in ``yolox_l.onnx`` and ``dw-ll_ucoco_384.onnx`` with the real signatures that find one
    person in the middle of any frame, with a frontal face (and the rest of the body) in the crop;
    the face points ``weak_face_points`` (0..67) get a score of 0.1, under DWPose's 0.3."""
    folder.mkdir(parents=True, exist_ok=True)
    detector = stand_in_onnx(folder / "yolox_l.onnx", [1, 3, 640, 640],
                             {"output": raw_yolox_output((320.0, 320.0, 300.0, 400.0, 0.95, {0: 0.95}))}, "images")
    crop = np.zeros((133, 2))
    crop[:23] = np.linspace([100.0, 250.0], [190.0, 370.0], 23)
    crop[23:91] = np.array([144.0, 140.0]) + 120.0 * mean_face()  # a frontal face, 120 px wide
    crop[91:] = np.linspace([20.0, 300.0], [270.0, 360.0], 42)
    simcc_x, simcc_y = np.zeros((1, 133, 576), np.float32), np.zeros((1, 133, 768), np.float32)
    for k, (u, v) in enumerate(np.round(crop * 2).astype(int)):
        score = 0.1 if k - 23 in weak_face_points else 0.9
        simcc_x[0, k, u], simcc_y[0, k, v] = score, score
    pose = stand_in_onnx(folder / "dw-ll_ucoco_384.onnx", [1, 3, 384, 288], {"simcc_x": simcc_x, "simcc_y": simcc_y})
    return detector, pose


def tiny_vae():
    """A random diffusers AutoencoderKL with the SD layout (4 latent channels, 1/8 resolution), tiny widths."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=64).eval()


def random_face_regressor(seed: int = 0):
    """Deep3DFaceRecon's regressor (:class:`~megactor_core.evaluate.expression.FaceRegressor`) with seeded
    random weights, BatchNorm statistics and scales a trained network could have, and heads that spread
    the small random features out, so different faces give clearly different coefficients."""
    from .evaluate.expression import FaceRegressor

    torch.manual_seed(seed)
    net = FaceRegressor()
    with torch.no_grad():
        for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_(0.0, 0.1)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(1.0, 1.5)
        for head in net.final_layers:
            head.weight.normal_(0.0, 1.0)
    return net.eval()
