"""Estimated GPU memory to train each stage at 512x512, from what autograd saves on CPU.

    python benchmarks/train_memory.py

No GPU is used. The paper-size model runs one training forward per stage on CPU under bf16
autocast (layer_norm in float32, as CUDA autocast runs it); saved_tensors_hooks record every
storage autograd keeps for backward (parameters left out), plus the block inputs that gradient
checkpointing holds. Weights, gradients and AdamW state are counted from the parameters. Stages
1-2 are measured at batch 1 and 2, stage 3 at 1, 2 and 4 frames (extended linearly to 16). A
4-block model checks the peak formula against storages tracked through a real training step.
Takes about 4 minutes and 10 GB of RAM; writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from megactor_core.models import MegActorConfig, MegActorSigma  # noqa: E402
from megactor_core.models.block import DiTBlock  # noqa: E402

GIB = 2**30
# stage -> (use_audio, use_temporal, frames per sample)
STAGES = {1: (False, False, 1), 2: (True, False, 1), 3: (True, True, 16)}
CHECK_BLOCKS = 4  # depth of the model on which the formula is checked against a real training step


@contextmanager
def cuda_layer_norm() -> Iterator[None]:
    """CUDA autocast runs layer_norm in float32, CPU autocast in bfloat16: do as CUDA does (also in
    the recomputation of checkpointed blocks, hence a patch rather than a function mode)."""
    original = F.layer_norm

    def layer_norm(x: torch.Tensor, shape, weight=None, bias=None, eps: float = 1e-5) -> torch.Tensor:
        if not torch.is_autocast_enabled("cpu"):
            return original(x, shape, weight, bias, eps)
        with torch.autocast("cpu", enabled=False):
            return original(x.float(), shape, None if weight is None else weight.float(),
                            None if bias is None else bias.float(), eps)

    F.layer_norm = layer_norm
    try:
        yield
    finally:
        F.layer_norm = original


def stage_model(stage: int, **config: object) -> MegActorSigma:
    """The stage's model (paper size unless ``config`` says otherwise), requires_grad as the trainer sets it."""
    use_audio, use_temporal, _ = STAGES[stage]
    torch.manual_seed(0)
    model = MegActorSigma(MegActorConfig(use_audio=use_audio, use_temporal=use_temporal, **config)).train()
    for name, p in model.named_parameters():
        p.requires_grad_(stage < 3 or ".temporal." in name)
    return model


def batch_inputs(stage: int, n: int) -> dict[str, torch.Tensor]:
    """A 512x512 batch of ``n`` samples (stages 1-2) or one sample of ``n`` frames (stage 3):
    64x64 latents, driving pixels, Whisper-tiny features and an Eq.2 mask."""
    b, f = (n, 1) if stage < 3 else (1, n)
    inputs = {
        "ref_latents": torch.randn(b, 4, 64, 64),
        "noisy": torch.randn(b, f, 4, 64, 64),
        "target": torch.randn(b, f, 4, 64, 64),
        "t": torch.randint(0, 1000, (b,)),
        "driving": torch.rand(b, f, 3, 512, 512) * 2 - 1,
        "mask": torch.rand(b, f, 1024, 1024) > 0.1,
    }
    if stage > 1:
        inputs["audio"] = torch.randn(b, f, 45, 384)
    return inputs


def training_loss(model: MegActorSigma, stage: int, x: dict[str, torch.Tensor]) -> torch.Tensor:
    """The trainer's forward under bf16 autocast; stage 3 runs the encoders without gradients."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.set_grad_enabled(stage < 3):
            ref = model.encode_reference(x["ref_latents"])
            driven = model.encode_driving(x["driving"])
        out = model(x["noisy"], x["t"], driven=driven, reference=ref, audio=x.get("audio"),
                    audio_scale=torch.ones(len(x["t"])), attention_mask=x["mask"])
        return ((out[:, :, :4].float() - x["target"]) ** 2).mean()


class _Saved:
    """What autograd holds in place of a saved tensor: the tensor's entry, not its memory."""

    __slots__ = ("entry", "__weakref__")

    def __init__(self, entry: int | None) -> None:
        self.entry = entry


class SavedBytes:
    """Bytes of the distinct storages a forward leaves saved for backward.

    Autograd gets a small placeholder instead of each saved tensor, so the forward holds about one
    block's tensors at a time; a storage counts if a placeholder for it is still held when the
    forward ends. Checkpointing holds a block's inputs while the block's output needs a gradient.
    """

    def __init__(self, model: MegActorSigma, inputs: dict[str, torch.Tensor]) -> None:
        # Parameters and batch inputs are counted elsewhere.
        self.skip = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *inputs.values())}
        self.sizes: list[int] = []  # bytes per distinct storage
        self.live: dict[int, int] = {}  # data_ptr -> entry, while the storage lives
        self.placeholders: list[weakref.ref] = []
        self.held: set[int] = set()  # entries held by checkpointing
        self.per_block: dict[int, set[int]] = {}  # block -> the entries it saves
        self.block: int | None = None
        self.blocks = [m for m in model.modules() if isinstance(m, DiTBlock)]
        self.checkpointing = False

    def _entry(self, t: torch.Tensor) -> int | None:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr in self.skip or not storage.nbytes():
            return None
        if ptr not in self.live:
            self.live[ptr] = len(self.sizes)
            self.sizes.append(storage.nbytes())
            weakref.finalize(storage, self.live.pop, ptr)
        if self.block is not None:
            self.per_block.setdefault(self.block, set()).add(self.live[ptr])
        return self.live[ptr]

    def _pack(self, t: torch.Tensor) -> _Saved:
        saved = _Saved(self._entry(t))
        self.placeholders.append(weakref.ref(saved))
        return saved

    def _exit(self, module: DiTBlock, args: tuple, kwargs: dict, output: torch.Tensor) -> None:
        self.block = None
        if self.checkpointing and torch.is_grad_enabled() and output.requires_grad:
            self.held |= {self._entry(v) for v in (*args, *kwargs.values()) if torch.is_tensor(v)}

    @contextmanager
    def recording(self, checkpointing: bool) -> Iterator[SavedBytes]:
        self.checkpointing = checkpointing
        handles = [b.register_forward_pre_hook(lambda m, _: setattr(self, "block", self.blocks.index(m)))
                   for b in self.blocks]
        handles += [b.register_forward_hook(self._exit, with_kwargs=True) for b in self.blocks]
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda _: None):
                yield self
        finally:
            for h in handles:
                h.remove()

    def total(self) -> int:
        """Bytes held now (call while the forward's output is alive)."""
        entries = {ref().entry for ref in self.placeholders if ref() is not None} | self.held
        return sum(self.sizes[i] for i in entries if i is not None)

    def largest_block(self) -> int:
        return max((sum(self.sizes[i] for i in b) for b in self.per_block.values()), default=0)


def activation_bytes(model: MegActorSigma, stage: int, n: int, checkpointing: bool) -> tuple[int, int]:
    """(inputs + what one forward keeps for backward, the largest single block's saved bytes)."""
    model.enable_gradient_checkpointing(checkpointing)
    x = batch_inputs(stage, n)
    recorder = SavedBytes(model, x)
    with recorder.recording(checkpointing):
        loss = training_loss(model, stage, x)
    held = recorder.total()
    del loss
    return held + sum(t.nbytes for t in x.values()), recorder.largest_block()


def state_bytes(model: MegActorSigma) -> dict[str, int]:
    """fp32 weights (all), and per trained parameter: gradient, AdamW moments, AdamW's step
    temporary (foreach AdamW allocates one sqrt(v) tensor per parameter) and an EMA copy."""
    every = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": every, "trained": trained, "weights": 4 * every, "grads": 4 * trained,
            "adam": 8 * trained, "adam_step": 4 * trained, "ema": 4 * trained}


def peak(state: dict[str, int], activations: float, block: float, ema: bool = False) -> float:
    """Weights + AdamW moments (+ EMA) + gradients, plus the larger of the backward (activations and
    one block's activations as transient) and the optimizer step (its temporary)."""
    static = state["weights"] + state["adam"] + (state["ema"] if ema else 0)
    return static + state["grads"] + max(activations + block, state["adam_step"])


class PeakTracker(TorchDispatchMode):
    """Peak bytes of the storages that ops create while active (kernel workspaces are not seen)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: set[int] = set()
        self.now = self.peak = 0

    def _free(self, key: int, nbytes: int) -> None:
        self.live.discard(key)
        self.now -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in self.live:
                storage = t.untyped_storage()
                self.live.add(storage.data_ptr())
                self.now += storage.nbytes()
                self.peak = max(self.peak, self.now)
                weakref.finalize(storage, self._free, storage.data_ptr(), storage.nbytes())
        return out


def check_formula(stage: int, checkpointing: bool) -> tuple[float, float]:
    """On a CHECK_BLOCKS-block model: (the formula's peak, the peak tracked over a real training
    step: forward, backward, foreach AdamW step), both less the weights and moments held before."""
    model = stage_model(stage, num_layers=CHECK_BLOCKS)
    n = 1 if stage < 3 else 2
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-5, foreach=True)

    def step() -> None:
        loss = training_loss(model, stage, batch_inputs(stage, n))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.enable_gradient_checkpointing(checkpointing)
    step()  # creates the AdamW moments
    with PeakTracker() as tracker:
        step()
    state = state_bytes(model)
    formula = peak(state, activation_bytes(model, stage, n, checkpointing)[0],
                   activation_bytes(model, stage, n, False)[1]) - state["weights"] - state["adam"]
    return formula, tracker.peak


def measure_stage(stage: int) -> dict:
    """Everything main() needs about one stage (run in a fresh process)."""
    with cuda_layer_norm():
        model = stage_model(stage)
        sizes = (1, 2) if stage < 3 else (1, 2, 4)
        result = {"state": state_bytes(model), "sizes": sizes}
        for checkpointing in (False, True):
            result[str(checkpointing)] = [activation_bytes(model, stage, n, checkpointing) for n in sizes]
        del model
        result["check"] = {str(c): check_formula(stage, c) for c in (False, True)}
    return result


CHILD = "import json, sys; from benchmarks.train_memory import measure_stage; " \
        "print(json.dumps(measure_stage(int(sys.argv[1]))))"


def line(at_1: float, at_2: float, n: float) -> float:
    """The straight line through (1, at_1) and (2, at_2), at n."""
    return at_1 + (n - 1) * (at_2 - at_1)


def peak_at(state: dict[str, int], acts: list[int], blocks: list[int], n: int, ema: bool = False) -> float:
    """Peak in GiB for ``n`` samples (stages 1-2) or frames (stage 3), from the measurements at 1 and 2."""
    return peak(state, line(acts[0], acts[1], n), line(blocks[0], blocks[1], n), ema) / GIB


def main() -> None:
    import yaml

    from benchmarks.results import machine, run_child, write_section

    rows, details = [], []
    for stage, (_, _, frames) in STAGES.items():
        start = time.perf_counter()
        result = run_child(CHILD, stage)
        state, sizes = result["state"], result["sizes"]
        shipped = yaml.safe_load((ROOT / f"megactor_core/training/configs/stage{stage}.yaml").read_text())["batch_size"]
        # One block's activations, the transient of backward (or of a checkpointed block's recomputation).
        blocks = [b for _, b in result["False"]]
        for checkpointing in (False, True):
            acts = [a for a, _ in result[str(checkpointing)]]
            ck = "yes" if checkpointing else "no"
            per = frames * (acts[1] - acts[0] + blocks[1] - blocks[0]) / GIB
            rows.append(
                f"| {stage} | {frames} | {state['trained'] / 1e6:,.0f} M of {state['params'] / 1e6:,.0f} M | {ck} | "
                f"{(state['weights'] + state['grads'] + state['adam']) / GIB:.1f} | "
                f"{line(acts[0], acts[1], frames) / GIB:.1f} | **{peak_at(state, acts, blocks, frames):.1f}** | "
                f"{peak_at(state, acts, blocks, frames, ema=True):.1f} | +{per:.1f} | "
                f"{peak_at(state, acts, blocks, shipped * frames):.1f} (batch {shipped}) |")
            measured = ", ".join(f"{a / GIB:.2f}" for a in acts) + f" at {', '.join(map(str, sizes))} " + \
                ("frames" if stage == 3 else "samples")
            if len(acts) > 2:
                error = line(acts[0], acts[1], sizes[2]) / acts[2] - 1
                measured += f" (the 1-2 frame line is off by {100 * error:+.2f} % at {sizes[2]})"
            formula, tracked = result["check"][str(checkpointing)]
            details.append(f"| {stage} | {ck} | {measured} | {blocks[0] / GIB:.2f} | "
                           f"{formula / GIB:.2f} vs {tracked / GIB:.2f} |")
            print(rows[-1], f"({time.perf_counter() - start:.0f} s)", flush=True)
    write_section("train_memory", "\n".join([
        "## Training memory per stage at 512x512 (`python benchmarks/train_memory.py`)",
        "",
        "**Estimated from CPU measurements, not measured on a GPU.** GiB on one GPU at batch 1 (stage 3:",
        "one clip of 16 frames), bf16 autocast, fp32 weights, AdamW, Eq.2 mask on. Not included (rules of",
        "thumb, not measured): the CUDA context, ~0.5 GiB, and the caching allocator's fragmentation and",
        "cuBLAS/cuDNN workspaces, +10-20 %. Multi-GPU DDP adds its gradient buckets (the gradients again);",
        "previews load the SD VAE (0.3 GiB).",
        "",
        "| stage | frames | trained params | checkpointing | weights + grads + AdamW | activations | "
        "**peak** | peak with EMA | per extra sample | shipped config |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "Method: the paper-size model (28 blocks, width 1152, 1024 tokens per frame) runs one training",
        "forward per stage on CPU under bf16 autocast, with layer_norm in fp32 as CUDA autocast runs it.",
        "`saved_tensors_hooks` count every distinct storage still saved for backward when the forward ends",
        "(bf16 weight copies included, parameters not), plus the block inputs checkpointing holds and the",
        "batch; stages 1-2 are measured at batch 1 and 2, stage 3 at 1, 2 and 4 frames and extrapolated",
        "linearly to 16. Peak = fp32 weights + AdamW moments (+ EMA) + fp32 gradients + the larger of",
        "activations plus one block's activations (the backward or recomputation transient) and foreach",
        "AdamW's step temporary (4 bytes per trained parameter). Counting every gradient on top of every",
        f"activation errs high: the last column compares the formula, on a {CHECK_BLOCKS}-block model and less weights",
        "and moments, with the peak of the storages tracked through a real CPU training step (forward,",
        "backward, AdamW). \"Per extra sample\" (stage 3: per 16-frame clip) is the growth of the backward",
        "term, which sets the peak except in stages 1-2 with checkpointing, where the AdamW step does.",
        f"CPU: {machine()}.",
        "",
        "| stage | checkpointing | activations measured (GiB) | one block (GiB) | "
        f"formula vs tracked step, {CHECK_BLOCKS} blocks (GiB) |",
        "| ---: | --- | --- | ---: | ---: |",
        *details,
    ]))


if __name__ == "__main__":
    main()
