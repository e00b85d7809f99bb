"""Loading other code bases' weight files: their parameter names mapped onto ours, and strict checks."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch


def rename_prefix(key: str, table: Mapping[str, str]) -> str | None:
    """Replace the first ``table`` prefix that ends at a dot boundary of ``key``; None if none does."""
    for src, dst in table.items():
        if key == src or key.startswith(src + "."):
            return dst + key[len(src):]
    return None


def load_checked(net: torch.nn.Module, path: str | os.PathLike, source: str,
                 ignore: Iterable[str] = (), entry: str | None = None) -> torch.nn.Module:
    """``net`` in eval mode with the state dict in ``path`` loaded, every key and shape checked.

    ``entry``: the state dict is that item of the file's dict (a training checkpoint holding
    optimizer states beside the network).

    Keys starting with a prefix in ``ignore`` (parts of the published file this metric does not
    run, e.g. a classifier) are left out; BatchNorm step counters may be absent (inference does not
    use them). A file that is not this state dict is a ``ValueError`` naming what differs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: it should be {source}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle of anything else, or not a torch file at all
        raise ValueError(f"{path} could not be read as {source}: {exc}") from exc
    if entry is not None:
        if not isinstance(state, dict) or entry not in state:
            raise ValueError(f"{path} has no '{entry}' entry: it should be {source}")
        state = state[entry]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not the state dict of {source}")
    ignore = tuple(ignore)
    state = {k: v for k, v in state.items() if not k.startswith(ignore)} if ignore else state
    expected = net.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [f"{k} is {tuple(state[k].shape)}, expected {tuple(v.shape)}"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    unexpected = [k for k in state if k not in expected]
    if missing or wrong or unexpected:
        found = "; ".join(filter(None, [
            f"missing {', '.join(missing[:3])}" if missing else "", "; ".join(wrong[:3]),
            f"unexpected {', '.join(unexpected[:3])}" if unexpected else ""]))
        raise ValueError(f"{path} is not {source}: {found}")
    net.load_state_dict(state, strict=False)
    return net.eval().requires_grad_(False)
