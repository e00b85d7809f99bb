"""Our networks' layers as ComfyUI's streamable layers, so ``--lowvram`` can stream their weights."""

from __future__ import annotations

import comfy.ops
from torch import nn


def streamable(model: nn.Module) -> nn.Module:
    """Give every torch layer of ``model`` its ``comfy.ops`` twin, in place, keeping its weights.

    ComfyUI's partial loading (``--lowvram``, or a model larger than the free memory) leaves the
    weights of the layers that do not fit in CPU memory and copies them to the GPU for each call;
    it only knows how to do that for ``comfy.ops`` layers. The twins are subclasses with the same
    parameters that behave exactly as the torch layers until ComfyUI sets them to stream. The
    few parameters used outside a layer (modulation tables, position tables) are moved to the
    input's device where the core uses them."""
    ops = comfy.ops.disable_weight_init
    twins = {nn.Linear: ops.Linear, nn.Conv1d: ops.Conv1d, nn.Conv2d: ops.Conv2d, nn.GroupNorm: ops.GroupNorm,
             nn.LayerNorm: ops.LayerNorm, nn.Embedding: ops.Embedding}
    for module in model.modules():
        twin = twins.get(type(module))
        if twin is not None:
            module.__class__ = twin
    return model
