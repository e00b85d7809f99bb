"""Build a MegActor-Σ checkpoint from PixArt-α weights.

    python -m megactor_core.models.init_from_pixart PIXART --out megactor_sigma_init.safetensors

PIXART is the diffusers ``PixArt-alpha/PixArt-XL-2-512x512`` folder (or its ``transformer/``
folder) or the original ``PixArt-XL-2-512x512.pth``. Both the denoiser and the reference
transformer receive PixArt-α's weights; text cross-attention is left out. The result is the
starting point of training stage 1 (or of any stage, with the modules switched on here).
"""

from __future__ import annotations

import argparse
import sys

import torch

from ..cli import run_command
from ..dtypes import DTYPES, parse_dtype
from .checkpoint import save_checkpoint
from .pixart import PixArtError, config_from_pixart, init_from_pixart, load_pixart
from .summary import parameter_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pixart", help="PixArt-α diffusers folder, transformer/ folder, or original .pth")
    parser.add_argument("--out", required=True, help="the .safetensors checkpoint to write")
    parser.add_argument("--audio", action=argparse.BooleanOptionalAction, default=True,
                        help="include zero-initialised audio attention (default: yes)")
    parser.add_argument("--temporal", action=argparse.BooleanOptionalAction, default=True,
                        help="include zero-initialised temporal modules (default: yes)")
    parser.add_argument("--temporal-modulation", action=argparse.BooleanOptionalAction, default=False,
                        help="temporal modules modulated by the timestep, when stage 3 adds them (default: no; "
                             "docs/toy.md measures both)")
    parser.add_argument("--audio-dim", type=int, default=384,
                        help="width of the Whisper features (384 for Whisper-tiny; default 384)")
    parser.add_argument("--driven-channels", type=int, default=16,
                        help="channels of the driven encoder's output (default 16)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="tensor precision of the file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new modules' initialisation")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)

    def work() -> str:
        state, pixart_config = load_pixart(args.pixart)
        config = config_from_pixart(state, pixart_config, use_audio=args.audio, use_temporal=args.temporal,
                                    temporal_modulation=args.temporal_modulation,
                                    audio_dim=args.audio_dim, driven_channels=args.driven_channels)
        model = init_from_pixart(state, config)
        path = save_checkpoint(model, args.out, dtype=parse_dtype(args.dtype),
                               metadata={"initialised_from": "PixArt-α", "stage": "0"})
        counts = [f"{name:28s} {count / 1e6:10.1f} M" for name, count in parameter_counts(model).items()]
        return "\n".join([*counts, f"wrote {path}"])

    return run_command(work, errors=(PixArtError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
