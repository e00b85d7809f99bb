"""Train one stage of MegActor-Σ ("modality decoupling control").

    python -m megactor_core.training.train --config stage1.yaml [--set key=value ...]
    accelerate launch -m megactor_core.training.train --config stage1.yaml   # several GPUs

Stage 1 trains the denoiser, reference transformer and driven encoder on face-dropped visual
controls; stage 2 adds zero-initialised audio attention and mixes visual / audio / mixed samples;
stage 3 adds zero-initialised temporal modules and trains only them on clips. Each stage starts
from the previous stage's output (stage 1 from ``init_from_pixart --no-audio --no-temporal``).
Rerunning the same command resumes from the newest checkpoint in ``output_dir``; one that changes a
setting the run was trained with (other than its length, logging and checkpointing) is refused, naming it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_write
from ..cli import run_command
from ..models import MegActorConfig, MegActorSigma, load_checkpoint, read_config, save_checkpoint
from .config import RESUMABLE, TrainConfig
from .ema import EMA
from .losses import DiffusionObjective
from .masks import eq2_attention_mask, loss_weights
from .samples import TrainingSamples
from .schedule import learning_rate_at
from .shards import ShardDataset
from .state import load_state, save_state, saved_steps

log = logging.getLogger(__name__)
Callback = Callable[[int, dict[str, float]], None]


def stage_config(file_config: MegActorConfig, stage: int, source: str) -> MegActorConfig:
    """The model a stage trains, from the config of the checkpoint it starts from."""
    if stage == 1:
        if file_config.use_audio or file_config.use_temporal:
            raise ValueError(f"stage 1 trains without audio attention and temporal modules, but {source} has them. "
                             "Make the stage-1 start with: python -m megactor_core.models.init_from_pixart PIXART "
                             "--no-audio --no-temporal --out megactor_sigma_init.safetensors")
        return file_config
    if stage == 2:
        if file_config.use_temporal:
            raise ValueError(f"stage 2 comes before the temporal modules, but {source} has them; start stage 2 "
                             "from the stage-1 output")
        return file_config.replace(use_audio=True)
    return file_config.replace(use_temporal=True)


def trained_parameters(model: MegActorSigma, stage: int, only: Sequence[str] = ()) -> dict[str, nn.Parameter]:
    """The parameters the stage trains (all for stages 1-2, the temporal modules for stage 3), narrowed
    to the names containing one of ``only`` when given; every other parameter is frozen."""
    staged = {name for name, _ in model.named_parameters() if stage < 3 or ".temporal." in name}
    chosen = {name for name in staged if not only or any(part in name for part in only)}
    unmatched = [part for part in only if not any(part in name for name in chosen)]
    if unmatched:
        raise ValueError(f"train_only {unmatched} names none of the parameters stage {stage} trains "
                         f"(e.g. {sorted(staged)[:3]})")
    for name, p in model.named_parameters():
        p.requires_grad_(name in chosen)
    return {name: p for name, p in model.named_parameters() if name in chosen}


class TrainingStep(nn.Module):
    """One batch -> its losses: noising, the reference and driving encoders, masks, denoiser."""

    def __init__(self, model: MegActorSigma, objective: DiffusionObjective, *, encoders_train: bool,
                 unexplained_weight: float, samples_per_reference: int = 1) -> None:
        super().__init__()
        self.model = model
        self.objective = objective
        self.encoders_train = encoders_train
        self.unexplained_weight = unexplained_weight
        self.samples_per_reference = samples_per_reference

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        scale = self.model.config.vae_scaling_factor
        x0, noise, t = batch["latents"] * scale, batch["noise"], batch["timestep"]
        xt = self.objective.add_noise(x0, noise, t)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.encoders_train):
            shared = self.samples_per_reference  # each group's reference is encoded once (TrainingSamples.draw)
            reference = self.model.encode_reference(batch["reference"][::shared] * scale).repeat_interleave(shared)
            driven = self.model.encode_driving(batch["driving"]) * batch["visual"].reshape(-1, 1, 1, 1, 1)
        audio = batch.get("audio")
        hears = batch.get("audio_on", torch.zeros_like(batch["visual"]))
        output = self.model(xt, t, driven=driven, reference=reference, audio=audio,
                            audio_scale=hears if audio is not None else 1.0,
                            attention_mask=eq2_attention_mask(batch["mouth_tokens"], batch["driving_tokens"],
                                                              batch["eq2"]))
        weights = loss_weights(batch["regions"], batch["shown"], hears, self.unexplained_weight)
        return self.objective.loss(output, x0, noise, xt, t, weights)


class _Batches(torch.utils.data.Sampler):
    """Sample numbers of micro-batches ``start..stop-1`` for one process: micro-batch ``m`` of
    process ``r`` holds samples ``(m * world + r) * size ...``, so every sample is used once."""

    def __init__(self, start: int, stop: int, size: int, rank: int, world: int) -> None:
        self.start, self.stop, self.size, self.rank, self.world = start, stop, size, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for m in range(self.start, self.stop):
            first = (m * self.world + self.rank) * self.size
            yield list(range(first, first + self.size))

    def __len__(self) -> int:
        return self.stop - self.start


def build_model(config: TrainConfig) -> MegActorSigma:
    """The stage's model from ``config.init``, new modules zero-initialised (seeded)."""
    model_config = stage_config(read_config(config.init), config.stage, config.init)
    torch.manual_seed(config.seed)
    return load_checkpoint(config.init, config=model_config).train()


def train(config: TrainConfig, *, callback: Callback | None = None) -> Path:
    """Run (or resume) a stage; returns the exported checkpoint (EMA weights when EMA is on).

    ``callback(step, metrics)`` runs on the main process after every optimizer step (and its
    checkpoint, when one is due).
    """
    from accelerate import Accelerator

    output = Path(config.output_dir)
    accelerator = Accelerator(gradient_accumulation_steps=config.gradient_accumulation,
                              mixed_precision=config.mixed_precision, log_with=config.log_with,
                              project_dir=str(output))
    model = build_model(config)
    model.enable_gradient_checkpointing(config.gradient_checkpointing)
    dataset = ShardDataset(config.data)
    samples = TrainingSamples(dataset, config, audio=model.config.use_audio, patch_size=model.config.patch_size)
    _check_data(samples, model.config)
    trained = trained_parameters(model, config.stage, config.train_only)
    optimizer = torch.optim.AdamW(trained.values(), lr=config.learning_rate, weight_decay=config.weight_decay)
    ema = EMA(trained, config.ema_decay) if config.ema_decay and accelerator.is_main_process else None
    objective = DiffusionObjective(model.config.prediction_type, zero_terminal_snr=config.zero_terminal_snr,
                                   vlb_weight=config.vlb_weight, snr_gamma=config.snr_gamma)
    encoders_train = any(name.startswith(("reference.", "driven_encoder.")) for name in trained)
    step_module = TrainingStep(model, objective, encoders_train=encoders_train,
                               unexplained_weight=config.mix.unexplained_weight,
                               samples_per_reference=config.samples_per_reference)

    saved = saved_steps(output)
    resumed = load_state(saved[-1], model, stage=config.stage, ema=ema, trained=list(trained)) if saved else None
    if resumed is not None:
        _check_resume(config, output, saved[-1])
    step_module, optimizer = accelerator.prepare(step_module, optimizer)
    step = 0
    if resumed is not None:
        step = int(resumed["step"])
        optimizer.load_state_dict(resumed["optimizer"])
        if accelerator.scaler is not None and resumed["scaler"] is not None:
            accelerator.scaler.load_state_dict(resumed["scaler"])
        log.info("resuming stage %d from %s (step %d)", config.stage, saved[-1], step)
    if accelerator.is_main_process:
        with atomic_write(output / "config.json") as tmp:  # what a resume is checked against: never torn
            Path(tmp).write_text(json.dumps(config.to_dict(), indent=2))
    if config.log_with:
        accelerator.init_trackers(f"megactor_sigma_stage{config.stage}", config=config.flat())
    preview = _preview_codec(config, accelerator)

    accum = config.gradient_accumulation
    loader = torch.utils.data.DataLoader(
        samples, batch_sampler=_Batches(step * accum, config.steps * accum, config.batch_size,
                                        accelerator.process_index, accelerator.num_processes),
        num_workers=config.num_workers, pin_memory=accelerator.device.type == "cuda")
    bar = tqdm(total=config.steps, initial=step, desc=f"stage {config.stage}", unit="step",
               disable=not accelerator.is_main_process)
    sums: dict[str, float] = {}
    count, started = 0, time.monotonic()
    try:
        for batch in loader:
            batch = {k: v.to(accelerator.device, non_blocking=True) for k, v in batch.items()}
            rate = learning_rate_at(step + 1, peak=config.learning_rate, steps=config.steps,
                                    schedule=config.lr_schedule, warmup=config.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = rate
            with accelerator.accumulate(step_module):
                losses = step_module(batch)
                accelerator.backward(losses["loss"])
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trained.values(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            count += 1
            if not accelerator.sync_gradients:
                continue
            step += 1
            bar.update(1)
            if ema is not None:
                ema.update(trained)
            metrics = {k: v / count for k, v in sums.items()}
            if step % config.log_every == 0 or step == config.steps:
                _log(accelerator, output, step, metrics, rate, time.monotonic() - started, bar)
                sums, count, started = {}, 0, time.monotonic()
            if preview is not None and step % config.preview_every == 0 and accelerator.is_main_process:
                _write_preview(output, step, model, samples, preview, config, accelerator)
            if step % config.checkpoint_every == 0 or step == config.steps:
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    save_state(output, step, model, stage=config.stage, optimizer=optimizer,
                               scaler=accelerator.scaler, ema=ema, keep=config.keep_checkpoints,
                               trained=list(trained))
            if callback is not None and accelerator.is_main_process:
                callback(step, metrics)
    except KeyboardInterrupt:
        last = saved_steps(output)
        print(f"\ninterrupted at step {step}; the same command resumes from "
              f"{last[-1] if last else 'the start'}", file=sys.stderr)
        raise
    finally:
        bar.close()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return _export(output, model, ema, config, step) if accelerator.is_main_process else output


def _check_resume(config: TrainConfig, output: Path, checkpoint: Path) -> None:
    """Refuse to continue a run under settings other than those it was trained with (``config.json``, written
    at every start), naming them, so a changed setting never silently mixes two runs in one output_dir."""
    file = output / "config.json"
    if not file.is_file():
        return
    try:
        started = TrainConfig.from_dict(json.loads(file.read_text()))
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"{file}, the settings of the run in {output}, cannot be read ({exc}): restore it or "
                         "use another output_dir") from exc
    changes = config.resume_changes(started)
    if changes:
        listed = "; ".join(f"{name}: {then!r} -> {now!r}" for name, (then, now) in changes.items())
        raise ValueError(
            f"{output} holds a run trained with other settings ({listed}); resuming from {checkpoint.name} would "
            f"continue it under the new ones. Rerun with the settings in {file}, or use another output_dir (its "
            f"init may be {checkpoint / 'model.safetensors'} to start from this run's weights), or, to change "
            f"them mid-run on purpose, write them into {file} first. A resume may change only "
            f"{', '.join(sorted(RESUMABLE))}")


def _check_data(samples: TrainingSamples, model_config: MegActorConfig) -> None:
    """Fail before training when the dataset does not fit the model."""
    first = samples.dataset.clips[0]
    sizes = {(c["height"], c["width"]) for c in samples.dataset.clips}
    cell = 8 * model_config.patch_size
    bad = [s for s in sizes if s[0] % cell or s[1] % cell]
    if bad:
        raise ValueError(f"dataset frames of {bad[0][1]}x{bad[0][0]} px are not multiples of {cell} (the model's token "
                         "size); preprocess with --size a multiple of 16")
    channels = samples[0]["latents"].shape[1]
    if channels != model_config.latent_channels:
        raise ValueError(f"the dataset's latents have {channels} channels (clip {first['key']}); the model takes "
                         f"{model_config.latent_channels}: preprocess with the VAE the model was made for")
    if samples.audio:
        width = samples[0]["audio"].shape[-1]
        if width != model_config.audio_dim:
            raise ValueError(f"the dataset's audio features are {width} wide (clip {first['key']}); the model's "
                             f"audio attention takes {model_config.audio_dim}: preprocess with the Whisper size the "
                             "model was made for (tiny = 384)")


@dataclass
class _PreviewTools:
    """What previews need: the VAE decoding them and the metrics' networks (None: previews are not measured)."""

    codec: object
    metrics: object | None


def _preview_codec(config: TrainConfig, accelerator) -> _PreviewTools | None:
    if not config.preview_every or not accelerator.is_main_process:
        return None
    if not config.preview_vae:
        log.warning("no preview_vae set: sample previews are off")
        return None
    from ..pipeline import DiffusersVAE
    from ..pipeline.vae import load_sd_vae

    codec = DiffusersVAE(load_sd_vae(config.preview_vae).to(accelerator.device))
    return _PreviewTools(codec, _preview_metrics(config.preview_metrics, str(accelerator.device)))


def _preview_metrics(folder: str | None, device: str):
    """The evaluation's networks for the metrics a preview can be measured with whose files ``folder`` has."""
    if not folder:
        return None
    from ..evaluate import FRAME_METRICS, find_weights, load_models, plan

    files = find_weights(folder, {})
    metrics, skipped = plan(files, None, folder)
    metrics = [m for m in metrics if m in FRAME_METRICS]
    skipped = [line for line in skipped if line.split(":")[0].removeprefix("skipped ") in FRAME_METRICS]
    if not metrics:
        raise FileNotFoundError(f"preview_metrics: {folder} holds the weight files of none of "
                                f"{', '.join(FRAME_METRICS)}:\n" + "\n".join(skipped))
    for line in skipped:
        log.info("preview metrics: %s", line)
    return load_models(files, metrics, device)


def _write_preview(output: Path, step: int, model: MegActorSigma, samples: TrainingSamples, tools: _PreviewTools,
                   config: TrainConfig, accelerator) -> None:
    """The preview grid of sample 0 and, with metric networks, its metrics in the log (``preview_*``)."""
    from .previews import sample_preview, to_uint8, write_preview

    preview = samples.preview(0)
    model.eval()
    try:
        generated = sample_preview(model, tools.codec, preview, config, device=accelerator.device)
    finally:
        model.train()
    write_preview(output / "previews" / f"step-{step:08d}.png", preview, generated)
    if tools.metrics is None:
        return
    from ..evaluate import frame_metrics

    values, problem = frame_metrics(tools.metrics, to_uint8(generated), to_uint8(preview.targets),
                                    to_uint8(preview.reference))
    if problem:
        log.warning("preview at step %d not fully measured: %s", step, problem)
    record = {"step": step, **{f"preview_{k}": round(v, 6) for k, v in values.items()}}
    accelerator.log(record, step=step)
    with open(output / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def _log(accelerator, output: Path, step: int, metrics: dict[str, float], lr: float, seconds: float, bar) -> None:
    record = {"step": step, **{k: round(v, 6) for k, v in metrics.items()}, "lr": lr, "seconds": round(seconds, 3)}
    accelerator.log(record, step=step)
    if accelerator.is_main_process:
        bar.set_postfix(loss=f"{metrics['loss']:.4f}")
        with open(output / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def _export(output: Path, model: MegActorSigma, ema: EMA | None, config: TrainConfig, step: int) -> Path:
    path = output / f"megactor_sigma_stage{config.stage}.safetensors"
    metadata = {"stage": str(config.stage), "step": str(step), "trained_from": Path(config.init).name,
                "weights": "ema" if ema is not None else "last"}
    return save_checkpoint(model, path, metadata=metadata, weights=None if ema is None else ema.average)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the stage's YAML file (see megactor_core/training/configs)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override settings, e.g. --set data=/datasets/hdtf batch_size=2 mix.audio=0.3")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # On Ctrl-C, train() itself says where the same command resumes.
    return run_command(lambda: f"wrote {train(TrainConfig.from_yaml(args.config, args.set))}")


if __name__ == "__main__":
    sys.exit(main())
