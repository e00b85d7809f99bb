"""Parameter counts of a MegActor-Σ model: ``python -m megactor_core.models.summary``."""

from __future__ import annotations

import argparse
import json
import sys

import torch

from .checkpoint import read_checkpoint
from .config import MegActorConfig
from .megactor import MegActorSigma


def parameter_counts(model: MegActorSigma) -> dict[str, int]:
    """Parameters per part; the new modules are counted apart from the PixArt-α trunk."""
    counts = {"denoiser (PixArt-α part)": 0, "audio attention": 0, "temporal modules": 0,
              "reference transformer": 0, "driven encoder": 0}
    for name, p in model.named_parameters():
        parts = name.split(".")
        if parts[0] == "reference":
            key = "reference transformer"
        elif parts[0] == "driven_encoder":
            key = "driven encoder"
        elif "audio_attn" in parts:
            key = "audio attention"
        elif "temporal" in parts:
            key = "temporal modules"
        else:
            key = "denoiser (PixArt-α part)"
        counts[key] += p.numel()
    counts["total"] = sum(counts.values())
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="count the model of this .safetensors checkpoint")
    source.add_argument("--config", help="a JSON MegActorConfig (fields not given take defaults)")
    args = parser.parse_args(argv)
    if args.checkpoint:
        config = read_checkpoint(args.checkpoint)[0]
    elif args.config:
        config = MegActorConfig.from_json(args.config)
    else:
        config = MegActorConfig()
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = MegActorSigma(config)
    print(json.dumps(config.to_dict(), sort_keys=True))
    for name, count in parameter_counts(model).items():
        print(f"{name:28s} {count:>15,d}  ({count / 1e6:,.1f} M)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
