"""FLOPs per video second of the models curation and preprocessing run, for docs/scale.md.

    python benchmarks/scale_flops.py

Counted with ``torch.utils.flop_counter`` (2 FLOPs per multiply-add, matrix products and
convolutions only) on the meta device, so no weights exist: SyncNet (this project's network,
the layout of ``syncnet_v2.model``), the SD VAE encoder (diffusers' AutoencoderKL with the
sd-vae-ft-mse configuration) and the Whisper-tiny encoder (openai-whisper's ``AudioEncoder``).
DWPose's ONNX models have no PyTorch twin here: their published sizes are printed instead.
Prints a table; writes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FPS = 25
WHISPER_WINDOW_STEP = 20  # seconds: encode_audio's windows of 30 s start every 20 s
# Published sizes: YOLOX-L at 640x640, 155.6 GFLOPs (YOLOX paper, Table; its counter doubles
# multiply-adds); RTMPose-l whole-body at 384x288 (the DWPose-l network), 10.07 G in mmpose's
# model zoo, which counts multiply-adds, so x2 here.
YOLOX_L = 155.6e9
DWPOSE_L = 2 * 10.07e9


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def main() -> None:
    from diffusers import AutoencoderKL
    from whisper.model import AudioEncoder

    from megactor_core.curation.syncnet import SyncNet

    with torch.device("meta"), torch.no_grad():
        syncnet = SyncNet().eval()
        window = flops(lambda: (syncnet.forward_lip(torch.zeros(1, 3, 5, 224, 224)),
                                syncnet.forward_aud(torch.zeros(1, 1, 13, 20))))
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            latent_channels=4, sample_size=512).eval()
        encode = flops(lambda: vae.encode(torch.zeros(1, 3, 512, 512)))
        whisper = AudioEncoder(80, 1500, 384, 6, 4).eval()
        whisper_window = flops(lambda: whisper(torch.zeros(1, 80, 3000)))
    rows = [
        ("DWPose: YOLOX-L 640² + DWPose-l 384×288, per frame (published)", YOLOX_L + DWPOSE_L, FPS),
        ("SyncNet: one 5-frame window, lip + audio streams (counted)", window, FPS),
        ("SD VAE encoder, one 512² frame (counted)", encode, FPS),
        ("Whisper-tiny encoder, one 30 s window (counted)", whisper_window, 1 / WHISPER_WINDOW_STEP),
    ]
    print("| model | GFLOPs per call | calls per video second | GFLOPs per video second |")
    print("| --- | ---: | ---: | ---: |")
    for name, per_call, rate in rows:
        print(f"| {name} | {per_call / 1e9:,.2f} | {rate:g} | {per_call * rate / 1e9:,.1f} |")


if __name__ == "__main__":
    main()
