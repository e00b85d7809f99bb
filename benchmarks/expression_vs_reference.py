"""Our E-FID expression regressor against Deep3DFaceRecon_pytorch's own code, same weights and inputs.

    PYTHONPATH=. python -m benchmarks.expression_vs_reference --deep3d PATH [--no-write]

PATH is a clone of https://github.com/sicxu/Deep3DFaceRecon_pytorch; run with a Python that has
what its ``util/preprocess.py`` and ``models/networks.py`` import (``pip install kornia
scikit-image "numpy<1.24"`` beside torch, scipy, Pillow and OpenCV). Insightface's ``arcface_torch``,
which its networks module imports for the training loss only, is replaced by an empty stand-in
when the clone lacks it. Nothing is downloaded: the regressor has seeded random weights saved as an
``epoch_20.pth``; the standard face is the clone's own ``BFM/similarity_Lm3D_all.mat``. Compares
the five 3D template points (``load_lm3d``), the 224x224 crops (``align_img`` on y-up landmarks,
as its ``test.py`` reads them), the 257 coefficients (``ReconNetWrapper``) and the 64 expression
coefficients from frames end to end.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

Row = tuple[str, str, float]  # check, the reference's values, max abs difference of ours from them


def reference_modules(clone: Path) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """Deep3DFaceRecon's ``util.preprocess``, ``util.load_mats`` and ``models.networks``, imported from ``clone``."""

    def load(name: str, path: Path) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    package = types.ModuleType("deep3d_models")
    package.__path__ = [str(clone / "models")]
    sys.modules["deep3d_models"] = package
    if not (clone / "models" / "arcface_torch").is_dir():
        for name in ("deep3d_models.arcface_torch", "deep3d_models.arcface_torch.backbones"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["deep3d_models.arcface_torch.backbones"].get_model = None
    return (load("deep3d_preprocess", clone / "util" / "preprocess.py"),
            load("deep3d_load_mats", clone / "util" / "load_mats.py"),
            load("deep3d_models.networks", clone / "models" / "networks.py"))


def faces(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frames of smooth random colour (various sizes) with 68 landmarks of a face at a random place, size,
    tilt and expression (jitter), some partly outside the frame."""
    import cv2

    from megactor_core.landmarks.face import mean_face

    rng = np.random.default_rng(1)
    out = []
    for k in range(count):
        height, width = [(512, 512), (360, 640), (720, 1280), (256, 256)][k % 4]
        frame = cv2.resize(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), (width, height),
                           interpolation=cv2.INTER_CUBIC)
        angle = rng.uniform(-0.3, 0.3)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        size = rng.uniform(0.25, 0.6) * min(height, width)
        centre = rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height])
        points = centre + size * (mean_face() + rng.normal(0, 0.01, (68, 2))) @ rotation.T
        out.append((frame, points.astype(np.float32)))
    return out


def compare(clone: Path, folder: Path) -> list[Row]:
    from PIL import Image

    from megactor_core.evaluate.expression import EXPRESSION, align_face, load_expression
    from megactor_core.stand_ins import random_face_regressor

    preprocess, load_mats, networks = reference_modules(clone)
    checkpoint = folder / "epoch_20.pth"
    torch.save({"net_recon": random_face_regressor(seed=0).state_dict()}, checkpoint)
    ours = load_expression(checkpoint, clone / "BFM" / "similarity_Lm3D_all.mat")
    theirs_template = load_mats.load_lm3d(str(clone / "BFM"))
    ref = networks.ReconNetWrapper("resnet50", use_last_fc=False)
    ref.load_state_dict(torch.load(checkpoint)["net_recon"])
    ref.eval()

    rows = [("five 3D template points (`load_lm3d`)", f"{theirs_template.min():.4g} .. {theirs_template.max():.4g}",
             float(np.abs(ours.template - theirs_template).max()))]
    samples = faces(12)
    crops_ours, crops_theirs = [], []
    for frame, points in samples:
        flipped = points.copy()
        flipped[:, 1] = frame.shape[0] - 1 - flipped[:, 1]  # test.py's read_data: y up
        crops_theirs.append(np.asarray(preprocess.align_img(Image.fromarray(frame), flipped, theirs_template)[1]))
        crops_ours.append(align_face(frame, points, ours.template))
    a, b = np.stack(crops_ours).astype(int), np.stack(crops_theirs).astype(int)
    black = b.sum(-1) == 0
    past = int((black.all(1).any(1) | black.all(2).any(1)).sum())  # a whole black row or column: beyond the frame
    rows.append((f"224x224 crops of {len(b)} frames (256² to 1280x720, faces tilted, {past} crops reaching past the "
                 "border), uint8",
                 f"{b.min()} .. {b.max()}", float(np.abs(a - b).max())))
    with torch.inference_mode():
        x = torch.from_numpy(b.astype(np.float32) / 255).permute(0, 3, 1, 2)
        theirs = ref(x)
        rows.append(("257 coefficients of those crops (`ReconNetWrapper`)", f"{theirs.min():.4g} .. {theirs.max():.4g}",
                     float((ours.net(x) - theirs).abs().max())))
        theirs_exp = theirs[:, EXPRESSION]
        ours_exp = torch.cat([ours(frame[None], [points]) for frame, points in samples])
        rows.append(("64 expression coefficients, frames + landmarks end to end", f"{theirs_exp.min():.4g} .. "
                     f"{theirs_exp.max():.4g}", float((ours_exp - theirs_exp).abs().max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deep3d", type=Path, help="a clone of sicxu/Deep3DFaceRecon_pytorch")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    missing = [name for name in ("kornia", "skimage", "PIL", "cv2", "scipy")
               if importlib.util.find_spec(name) is None]
    if args.deep3d is None or not (args.deep3d / "util" / "preprocess.py").is_file() or missing:
        print("skipped: needs --deep3d PATH (a clone of https://github.com/sicxu/Deep3DFaceRecon_pytorch)"
              + (f" and {', '.join(missing)} importable (pip install kornia scikit-image)" if missing else ""))
        return
    import subprocess
    import warnings

    from benchmarks.results import machine, write_section

    warnings.filterwarnings("ignore", category=FutureWarning)  # lstsq's rcond in their POS
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as folder:
        rows = compare(args.deep3d, Path(folder))
    commit = subprocess.run(["git", "-C", str(args.deep3d), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "a copy without git history"
    versions = ", ".join(f"{m.__name__} {m.__version__}" for m in (np, __import__("PIL"), __import__("kornia")))
    body = "\n".join([
        "## E-FID's expression regressor vs Deep3DFaceRecon_pytorch (`python -m benchmarks.expression_vs_reference`)",
        "", f"Machine: {machine()}; {versions}; Deep3DFaceRecon_pytorch at {commit}. Both sides run the same "
        "seeded random `epoch_20.pth` and the clone's `BFM/similarity_Lm3D_all.mat` on the same frames and 68 "
        "landmarks, fp32 on CPU.", "",
        "| check | reference values | ours − reference (max abs) |", "| --- | --- | ---: |",
        *(f"| {check} | {values} | {diff:.3g} |" for check, values, diff in rows),
    ])
    if not args.no_write:
        write_section("expression_vs_reference", body)
    print(body)


if __name__ == "__main__":
    main()
