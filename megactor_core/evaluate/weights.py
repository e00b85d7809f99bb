"""The published weight files the metrics run, where each comes from.

Nothing is ever downloaded: a user puts the files in one folder (``--weights DIR``) under their
published names, or names each file. A missing file is an error naming the file, where it goes and
where it comes from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..curation.syncnet import SYNCNET_SOURCE


@dataclass(frozen=True)
class WeightFile:
    """One published file: its name, the option that names it, and where it comes from."""

    key: str  # e.g. "inception"
    name: str  # the published file name
    source: str  # where it can be obtained
    option: str = ""  # the command-line option naming it (default: --KEY PATH)

    @property
    def flag(self) -> str:
        return self.option or f"--{self.key} PATH"


WEIGHT_FILES = {w.key: w for w in [
    WeightFile("syncnet", "syncnet_v2.model", SYNCNET_SOURCE),
    WeightFile("yolox", "yolox_l.onnx", "DWPose's person detector, from Hugging Face yzd-v/DWPose",
               "--dwpose YOLOX POSE"),
    WeightFile("dwpose", "dw-ll_ucoco_384.onnx", "DWPose's whole-body pose model, from Hugging Face yzd-v/DWPose",
               "--dwpose YOLOX POSE"),
    WeightFile("inception", "pt_inception-2015-12-05-6726825d.pth",
               "pytorch-fid's FID Inception, https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth"),
    WeightFile("i3d", "i3d_torchscript.pt",
               "the FVD I3D (Kinetics-400) TorchScript of StyleGAN-V, "
               "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt (also Hugging Face "
               "ByteDance/LatentSync-1.6, auxiliary/i3d_torchscript.pt)"),
    WeightFile("deep3d", "epoch_20.pth",
               "Deep3DFaceRecon_pytorch's face reconstruction network (checkpoints/face_recon_feat0.2_augment/"
               "epoch_20.pth), from the Google Drive folder linked under 'Inference with a pre-trained model' in "
               "https://github.com/sicxu/Deep3DFaceRecon_pytorch"),
    WeightFile("lm3d", "similarity_Lm3D_all.mat",
               "the standard 3D face landmarks of Deep3DFaceRecon_pytorch, BFM/similarity_Lm3D_all.mat in "
               "https://github.com/sicxu/Deep3DFaceRecon_pytorch (in the repository itself)"),
    WeightFile("lpips", "alex.pth",
               "LPIPS v0.1 linear layers for AlexNet, https://github.com/richzhang/PerceptualSimilarity/raw/master/"
               "lpips/weights/v0.1/alex.pth (also inside the lpips pip package, lpips/weights/v0.1/alex.pth)"),
    WeightFile("alexnet", "alexnet-owt-7be5be79.pth",
               "torchvision's ImageNet AlexNet, https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    WeightFile("arcface", "w600k_r50.onnx",
               "insightface's ArcFace R50 (WebFace600K), inside the buffalo_l pack, "
               "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"),
]}


def find_weights(folder: str | os.PathLike | None, given: Mapping[str, str | os.PathLike | None]) -> dict[str, Path]:
    """The files found: each ``given[key]`` path as it is, else ``folder / published name`` when it exists.

    A file named in ``given`` that does not exist is an error at once (the user asked for it).
    """
    unknown = set(given) - set(WEIGHT_FILES)
    if unknown:
        raise ValueError(f"unknown weight files {sorted(unknown)}; known: {', '.join(WEIGHT_FILES)}")
    if folder is not None and not Path(folder).is_dir():
        raise FileNotFoundError(f"weights folder {folder} does not exist; expected a folder holding the files "
                                f"by their published names ({', '.join(w.name for w in WEIGHT_FILES.values())})")
    found = {}
    for key, weight in WEIGHT_FILES.items():
        if given.get(key):
            path = Path(given[key])
            if not path.is_file():
                raise FileNotFoundError(missing_message(weight, folder, path))
            found[key] = path
        elif folder is not None and (Path(folder) / weight.name).is_file():
            found[key] = Path(folder) / weight.name
    return found


def missing_message(weight: WeightFile, folder: str | os.PathLike | None, path: Path | None = None) -> str:
    """What to do about a missing file: its name, where to put it, where it comes from."""
    where = f"{path} not found" if path else (f"{weight.name} not found in {folder}" if folder
                                              else f"{weight.name} not given")
    place = Path(folder) / weight.name if folder else f"WEIGHTS_DIR/{weight.name} (with --weights WEIGHTS_DIR)"
    return f"{where}: put it at {place} or pass {weight.flag}; it is {weight.source} (never downloaded)"
