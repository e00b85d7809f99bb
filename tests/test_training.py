"""The three-stage trainer on tiny models and tiny synthetic clips: losses, masks, stages, resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from megactor_core.models import MegActorSigma, load_checkpoint, read_checkpoint, save_checkpoint
from megactor_core.pipeline import sample_video
from megactor_core.training.config import TrainConfig
from megactor_core.training.losses import DiffusionObjective
from megactor_core.training.samples import TrainingSamples
from megactor_core.training.schedule import learning_rate_at
from megactor_core.training.shards import ShardDataset
from megactor_core.training.train import TrainingStep, main, train
from tests.tiny_dataset import write_dataset
from tests.tiny_models import randomize, tiny_config, tiny_vae

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def init(tmp_path_factory) -> Path:
    """A stage-1 starting checkpoint (no audio, no temporal modules)."""
    torch.manual_seed(0)
    model = MegActorSigma(tiny_config(use_audio=False, use_temporal=False))
    return save_checkpoint(model, tmp_path_factory.mktemp("init") / "init.safetensors")


def settings(stage: int, init: Path, data: Path, out: Path, **changes) -> TrainConfig:
    values = dict(stage=stage, init=str(init), data=str(data), output_dir=str(out), steps=30, batch_size=4,
                  learning_rate=1e-3, mixed_precision="no", gradient_checkpointing=False, num_workers=0,
                  log_every=10, checkpoint_every=30, preview_every=0, mix=dict(clip_frames=4))
    values.update(changes)
    return TrainConfig.from_dict(values)


def fixed_loss(checkpoint: Path, config: TrainConfig, samples: int = 24) -> float:
    """The mean training loss of ``checkpoint`` on the same samples (noise and timesteps included)."""
    model = load_checkpoint(checkpoint)
    step = TrainingStep(model, DiffusionObjective(model.config.prediction_type), encoders_train=False,
                        unexplained_weight=config.mix.unexplained_weight)
    data = TrainingSamples(ShardDataset(config.data), config, audio=model.config.use_audio,
                            patch_size=model.config.patch_size)
    batch = torch.utils.data.default_collate([data[10_000 + i] for i in range(samples)])
    with torch.no_grad():
        return float(step(batch)["loss"])


def test_three_stages_train_and_chain(dataset, init, tmp_path):
    """Each stage lowers its loss on fixed samples; each starts from the previous stage's output;
    stage 3 changes only the temporal modules."""
    start = init
    for stage in (1, 2, 3):
        # Stage 3 trains only the one temporal module of the tiny model: it gets more steps.
        steps = 90 if stage == 3 else 30
        config = settings(stage, start, dataset, tmp_path / f"stage{stage}", steps=steps, checkpoint_every=steps,
                          learning_rate=3e-3 if stage == 3 else 1e-3)
        before_model = load_checkpoint(start, config=load_checkpoint(start).config.replace(
            use_audio=stage >= 2, use_temporal=stage == 3)) if stage > 1 else None
        exported = train(config)
        assert exported == tmp_path / f"stage{stage}" / f"megactor_sigma_stage{stage}.safetensors"
        file_config, tensors, metadata = read_checkpoint(exported)
        assert (file_config.use_audio, file_config.use_temporal) == (stage >= 2, stage == 3)
        assert metadata["stage"] == str(stage) and metadata["step"] == str(steps)
        if before_model is not None:
            save_checkpoint(before_model, tmp_path / f"before{stage}.safetensors")
            before = fixed_loss(tmp_path / f"before{stage}.safetensors", config)
        else:
            before = fixed_loss(start, config)
        after = fixed_loss(exported, config)
        assert after < 0.9 * before, f"stage {stage}: loss {before:.4f} -> {after:.4f}"
        if stage == 3:
            old = before_model.state_dict()
            changed = {k for k, v in tensors.items() if not torch.equal(v, old[k])}
            assert changed and all(".temporal." in k for k in changed)
            assert all(torch.equal(v, old[k]) for k, v in tensors.items() if ".temporal." not in k)
        start = exported


def test_stage3_trains_timestep_modulated_temporal_modules(dataset, tmp_path):
    """A model configured with ``temporal_modulation`` gets the modules and their shared timestep
    MLP in stage 3, and stage 3 trains exactly those."""
    stage2 = save_checkpoint(randomize(MegActorSigma(tiny_config(use_temporal=False, temporal_modulation=True))),
                             tmp_path / "stage2.safetensors")
    exported = train(settings(3, stage2, dataset, tmp_path / "stage3", steps=3, checkpoint_every=3))
    file_config, tensors, _ = read_checkpoint(exported)
    assert file_config.use_temporal and file_config.temporal_modulation
    start = read_checkpoint(stage2)[1]
    changed = {k for k, v in tensors.items() if k not in start or not torch.equal(v, start[k])}
    assert {"denoiser.temporal.linear.weight", "denoiser.blocks.1.temporal.modulation"} <= changed
    assert all(".temporal." in k for k in changed)
    assert not tensors["denoiser.temporal.linear.weight"].eq(0).all()  # it learned from zero


def test_train_only_narrows_the_stage_to_the_named_parameters(dataset, init, tmp_path):
    """Stage 2 with ``train_only: [audio_attn]`` changes the audio attention and leaves every stage-1
    weight bit-identical; a name matching none of the stage's parameters is refused before training."""
    exported = train(settings(2, init, dataset, tmp_path / "audio", steps=3, checkpoint_every=3,
                              train_only=["audio_attn"]))
    start = read_checkpoint(init)[1]
    tensors = read_checkpoint(exported)[1]
    changed = {k for k, v in tensors.items() if k not in start or not torch.equal(v, start[k])}
    assert changed and all(".audio_attn." in k for k in changed)
    assert any(k.endswith("audio_attn.attn.to_out.weight") and tensors[k].abs().sum() > 0 for k in changed)
    with pytest.raises(ValueError, match=r"train_only \['audio_atn'\] names none of the parameters stage 2"):
        train(settings(2, init, dataset, tmp_path / "typo", train_only=["audio_atn"]))
    with pytest.raises(ValueError, match="stage 3 trains"):  # stage 3 trains only the temporal modules
        train(settings(3, exported, dataset, tmp_path / "s3", train_only=["audio_attn"]))


def test_stage_rules_are_enforced(dataset, init, tmp_path):
    with_audio = save_checkpoint(MegActorSigma(tiny_config()), tmp_path / "full.safetensors")
    with pytest.raises(ValueError, match="--no-audio --no-temporal"):
        train(settings(1, with_audio, dataset, tmp_path / "a"))
    with pytest.raises(ValueError, match="before the temporal modules"):
        train(settings(2, with_audio, dataset, tmp_path / "b"))
    silent = write_dataset(tmp_path / "silent", clips=2, audio_dim=None)
    with pytest.raises(ValueError, match="--whisper"):
        train(settings(2, init, silent, tmp_path / "c"))
    wide = write_dataset(tmp_path / "wide", clips=2, audio_dim=20)
    with pytest.raises(ValueError, match="20 wide"):
        train(settings(2, init, wide, tmp_path / "d"))


def test_gradient_accumulation_and_checkpointing_match_plain_training(dataset, init, tmp_path):
    """Batch 4 equals 2 accumulated micro-batches of 2 (the same samples), and gradient
    checkpointing changes nothing but memory. Loss weights are uniform here, so a batch's mean
    loss is the mean of its halves' means. Key biases are left out: softmax ignores them, so their
    gradient is rounding noise, which Adam scales up to full-size steps."""
    uniform = dict(unexplained_weight=1.0)
    plain = train(settings(1, init, dataset, tmp_path / "plain", steps=2, mix=uniform))
    accumulated = train(settings(1, init, dataset, tmp_path / "accum", steps=2, batch_size=2,
                                 gradient_accumulation=2, gradient_checkpointing=True, mix=uniform))
    a, b = read_checkpoint(plain)[1], read_checkpoint(accumulated)[1]
    start = read_checkpoint(init)[1]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a if not k.endswith("to_k.bias"))  # steps are ~1e-3
    checkpointed = train(settings(1, init, dataset, tmp_path / "ckpt", steps=2, gradient_checkpointing=True,
                                  mix=uniform))
    assert all(torch.equal(a[k], v) for k, v in read_checkpoint(checkpointed)[1].items())
    assert not torch.equal(a["denoiser.proj_out.weight"], start["denoiser.proj_out.weight"])


def test_two_processes_train_like_one_with_their_batches_together(dataset, init, tmp_path):
    """Distributed data parallel (two CPU processes under torchrun, as accelerate runs several GPUs):
    2 x batch 2 gives the weights of 1 x batch 4, so the processes split the samples without overlap."""
    uniform = dict(unexplained_weight=1.0)
    single = read_checkpoint(train(settings(1, init, dataset, tmp_path / "one", steps=2, mix=uniform)))[1]
    config = settings(1, init, dataset, tmp_path / "two", steps=2, batch_size=2, mix=uniform)
    yaml_file = tmp_path / "two.yaml"
    import yaml

    yaml_file.write_text(yaml.safe_dump(config.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(REPO), "ACCELERATE_USE_CPU": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
                          "megactor_core.training.train", "--config", str(yaml_file)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    double = read_checkpoint(tmp_path / "two" / "megactor_sigma_stage1.safetensors")[1]
    assert all(torch.allclose(single[k], double[k], atol=1e-5) for k in single if not k.endswith("to_k.bias"))


def test_ema_export_and_checkpoints(dataset, init, tmp_path):
    out = tmp_path / "ema"
    exported = train(settings(1, init, dataset, out, steps=4, checkpoint_every=1, keep_checkpoints=2,
                              ema_decay=0.5))
    steps = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert steps == ["step-00000003", "step-00000004"]
    last = read_checkpoint(out / "checkpoints" / "step-00000004" / "model.safetensors")[1]
    ema = read_checkpoint(out / "checkpoints" / "step-00000004" / "ema.safetensors")[1]
    weights = read_checkpoint(exported)[1]
    assert read_checkpoint(exported)[2]["weights"] == "ema"
    assert all(torch.equal(weights[k], ema[k]) for k in weights)
    assert any(not torch.equal(last[k], ema[k]) for k in last)
    assert len((out / "log.jsonl").read_text().splitlines()) == 1  # logged at the last step


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from megactor_core.training.config import TrainConfig
    from megactor_core.training.train import train

    config = TrainConfig.from_yaml(sys.argv[1])
    def kill(step, metrics):
        if step == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
    train(config, callback=kill)
""")


def test_resume_after_kill_reproduces_the_uninterrupted_run(dataset, tmp_path):
    """A run killed by SIGKILL after step 5 resumes from its step-4 checkpoint and ends with exactly
    the weights, EMA and optimizer state of a run that was never interrupted."""
    start = save_checkpoint(MegActorSigma(tiny_config(use_temporal=False)), tmp_path / "s1.safetensors")
    extra = dict(steps=8, checkpoint_every=2, ema_decay=0.9, lr_schedule="cosine", warmup_steps=2,
                 mix=dict(drop_controls=0.2))
    whole = train(settings(2, start, dataset, tmp_path / "whole", **extra))

    config = settings(2, start, dataset, tmp_path / "killed", **extra)
    yaml_file = tmp_path / "stage2.yaml"
    import yaml

    yaml_file.write_text(yaml.safe_dump(config.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(yaml_file), "5"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()) == [
        "step-00000002", "step-00000004"]
    resumed = train(TrainConfig.from_yaml(yaml_file))

    a, b = read_checkpoint(whole)[1], read_checkpoint(resumed)[1]
    assert all(torch.equal(a[k], b[k]) for k in a)
    final = "checkpoints/step-00000008"
    for name in ("model.safetensors", "ema.safetensors"):
        x = read_checkpoint(tmp_path / "whole" / final / name)[1]
        y = read_checkpoint(tmp_path / "killed" / final / name)[1]
        assert all(torch.equal(x[k], y[k]) for k in x)
    opt_a = torch.load(tmp_path / "whole" / final / "trainer.pt", weights_only=True)["optimizer"]["state"]
    opt_b = torch.load(tmp_path / "killed" / final / "trainer.pt", weights_only=True)["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)


def test_resume_refuses_a_checkpoint_that_trained_other_parameters(dataset, tmp_path):
    """Resuming with another train_only would load an optimizer state of other tensors: refused with the
    fix named, for checkpoints that record the trained names and for older ones (parameter count only)."""
    start = save_checkpoint(MegActorSigma(tiny_config(use_temporal=False)), tmp_path / "s1.safetensors")
    out = tmp_path / "run"
    train(settings(2, start, dataset, out, steps=2, checkpoint_every=1, train_only=["audio_attn"]))
    with pytest.raises(ValueError, match="was trained with other parameters .*resume with the train_only"):
        train(settings(2, start, dataset, out, steps=3))
    resumed = train(settings(2, start, dataset, out, steps=3, train_only=["audio_attn"]))  # the same: resumes
    assert read_checkpoint(resumed)[2]["step"] == "3"
    state = out / "checkpoints" / "step-00000003" / "trainer.pt"
    older = torch.load(state, weights_only=True)
    del older["trained"]
    torch.save(older, state)
    with pytest.raises(ValueError, match="was trained with other parameters"):
        train(settings(2, start, dataset, out, steps=4))


def test_resume_refuses_changed_settings_and_names_them(dataset, init, tmp_path):
    """Rerunning into an output_dir with another learning rate or mix is refused before any step, naming each
    change, and leaves the run's checkpoints and config.json as they were; the settings a resume may change
    (steps, logging, workers, another spelling of the data path) resume; so does a change written into
    config.json on purpose."""
    out = tmp_path / "run"
    train(settings(1, init, dataset, out, steps=2, checkpoint_every=1))
    recorded = (out / "config.json").read_text()
    with pytest.raises(ValueError) as refused:
        train(settings(1, init, dataset, out, steps=3, learning_rate=2e-3, mix=dict(clip_frames=4, audio=0.5)))
    message = str(refused.value)
    listed = message.split("other settings (")[1].split("); resuming from step-00000002")[0]
    assert listed == "learning_rate: 0.001 -> 0.002; mix.audio: 0.2 -> 0.5"  # not steps: a resume may change it
    assert f"write them into {out / 'config.json'} first" in message
    assert (out / "config.json").read_text() == recorded
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000001", "step-00000002"]

    resumed = train(settings(1, init, Path(str(dataset) + "/."), out, steps=3, checkpoint_every=1, log_every=1,
                             num_workers=1))
    assert read_checkpoint(resumed)[2]["step"] == "3"
    edited = json.loads((out / "config.json").read_text())
    edited["learning_rate"] = 2e-3
    (out / "config.json").write_text(json.dumps(edited))
    resumed = train(settings(1, init, dataset, out, steps=4, learning_rate=2e-3))
    assert read_checkpoint(resumed)[2]["step"] == "4"
    with pytest.raises(ValueError, match=r"other settings \(learning_rate: 0.002 -> 0.001\)"):
        train(settings(1, init, dataset, out, steps=5))


def test_resume_changes_compare_values_not_their_text():
    """A setting one side lacks (a ``mix.regions`` entry) shows as ``(not set)``, a null as None; a config read back
    from its JSON (lists where the code has tuples) is no change."""
    base = dict(stage=2, init="a", data="b", output_dir="c", train_only=("audio_attn",),
                mix=dict(regions=dict(mouth=1.0)), augment=dict(scale=(0.9, 1.1)))
    started = TrainConfig.from_dict(base)
    assert TrainConfig.from_dict(json.loads(json.dumps(started.to_dict()))).resume_changes(started) == {}
    changed = TrainConfig.from_dict({**base, "mix": dict(regions=dict(eyes=1.0)),
                                     "augment": dict(scale=(0.9, 1.1), face_swap="megactor_core.toy.swap:face_swap")})
    listed = {name: tuple(map(repr, values)) for name, values in changed.resume_changes(started).items()}
    assert listed == {"mix.regions.eyes": ("(not set)", "1.0"), "mix.regions.mouth": ("1.0", "(not set)"),
                      "augment.face_swap": ("None", "'megactor_core.toy.swap:face_swap'")}


def test_learning_rate_schedules():
    peak = 1e-3
    assert [learning_rate_at(s, peak=peak, steps=6, schedule="cosine", warmup=2) for s in range(1, 7)] == \
        pytest.approx([5e-4, 1e-3, 8.535534e-4, 5e-4, 1.464466e-4, 0.0])
    assert [learning_rate_at(s, peak=peak, steps=5, schedule="linear") for s in range(1, 6)] == \
        pytest.approx([8e-4, 6e-4, 4e-4, 2e-4, 0.0])
    assert {learning_rate_at(s, peak=peak, steps=5) for s in range(1, 6)} == {peak}
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        learning_rate_at(1, peak=peak, steps=5, schedule="step")


def test_training_steps_at_the_scheduled_rate(dataset, init, tmp_path):
    """The optimizer takes each step at the schedule's rate: the log records it, and the last
    cosine step (rate 0) leaves the weights as they were."""
    out = tmp_path / "run"
    train(settings(1, init, dataset, out, steps=6, log_every=1, checkpoint_every=1, keep_checkpoints=6,
                   lr_schedule="cosine", warmup_steps=2))
    rates = [json.loads(line)["lr"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert rates == pytest.approx([5e-4, 1e-3, 8.535534e-4, 5e-4, 1.464466e-4, 0.0])
    fifth, last = (read_checkpoint(out / "checkpoints" / f"step-0000000{s}" / "model.safetensors")[1] for s in (5, 6))
    assert all(torch.equal(fifth[k], last[k]) for k in last)
    before = read_checkpoint(out / "checkpoints" / "step-00000004" / "model.safetensors")[1]
    assert not all(torch.equal(before[k], fifth[k]) for k in fifth)


def test_unfinished_checkpoint_folder_is_ignored(dataset, init, tmp_path):
    out = tmp_path / "run"
    train(settings(1, init, dataset, out, steps=2, checkpoint_every=1))
    leftover = out / "checkpoints" / ".step-00000003.tmp-dead"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half a file")
    train(settings(1, init, dataset, out, steps=3, checkpoint_every=1))
    assert not leftover.exists()
    assert (out / "checkpoints" / "step-00000003" / "trainer.pt").is_file()


def test_previews_are_written(dataset, init, tmp_path):
    vae_dir = tmp_path / "vae"
    tiny_vae().save_pretrained(vae_dir)
    out = tmp_path / "run"
    train(settings(1, init, dataset, out, steps=2, preview_every=2, preview_vae=str(vae_dir), preview_steps=2))
    import cv2

    grid = cv2.imread(str(out / "previews" / "step-00000002.png"))
    assert grid.shape == (64, 4 * 64, 3)  # reference | driving | generated | target


def test_previews_of_a_zero_terminal_snr_run_sample_on_its_schedule(dataset, tmp_path, monkeypatch):
    from megactor_core.training import previews

    torch.manual_seed(0)
    v_init = save_checkpoint(MegActorSigma(tiny_config(use_audio=False, use_temporal=False,
                                                       prediction_type="v_prediction")), tmp_path / "v.safetensors")
    tiny_vae().save_pretrained(tmp_path / "vae")
    used = []

    def recording(*args, **kwargs):
        used.append(args[3])
        return sample_video(*args, **kwargs)

    monkeypatch.setattr(previews, "sample_video", recording)
    train(settings(1, v_init, dataset, tmp_path / "run", steps=2, preview_every=2, preview_vae=str(tmp_path / "vae"),
                   preview_steps=2, zero_terminal_snr=True))
    assert [(s.steps, s.zero_terminal_snr) for s in used] == [(2, True)]
def test_preview_steps_that_cannot_sample_are_refused_before_training(dataset, init, tmp_path):
    """One DDIM step sits at t = 0: refused with the config, not at the first preview mid-run."""
    with pytest.raises(ValueError, match="preview_steps: 1 step of the 'ddim' scheduler starts at t = 0"):
        settings(1, init, dataset, tmp_path / "run", preview_steps=1)
    assert not (tmp_path / "run").exists()


def test_previews_are_measured_with_the_metric_files_at_hand(dataset, init, tmp_path):
    """With LPIPS's files in ``preview_metrics``, each preview's LPIPS against its targets is logged: the
    value the evaluation gives for the generated and target columns of the written grid."""
    import cv2

    from megactor_core.evaluate.lpips import load_lpips, lpips_per_frame
    from tests.tiny_models import save_lpips_files

    vae_dir, weights = tmp_path / "vae", tmp_path / "weights"
    tiny_vae().save_pretrained(vae_dir)
    weights.mkdir()
    with pytest.raises(FileNotFoundError, match="alex.pth"):  # a folder without any of the files: said at once
        train(settings(1, init, dataset, tmp_path / "none", steps=2, preview_every=2, preview_vae=str(vae_dir),
                       preview_steps=2, preview_metrics=str(weights)))
    lins, alexnet = save_lpips_files(weights)
    out = tmp_path / "run"
    train(settings(1, init, dataset, out, steps=4, preview_every=2, preview_vae=str(vae_dir), preview_steps=2,
                   preview_metrics=str(weights)))
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    measured = {r["step"]: r["preview_lpips"] for r in records if "preview_lpips" in r}
    assert sorted(measured) == [2, 4]
    grid = cv2.cvtColor(cv2.imread(str(out / "previews" / "step-00000004.png")), cv2.COLOR_BGR2RGB)
    rows = grid.reshape(-1, 64, 4, 64, 3)  # frames x (reference | driving | generated | target)
    expected = lpips_per_frame(load_lpips(lins, alexnet), np.ascontiguousarray(rows[:, :, 2]),
                               np.ascontiguousarray(rows[:, :, 3])).mean()
    assert measured[4] == pytest.approx(float(expected), abs=1e-5) and measured[4] > 0


def test_stage_checkpoint_loads_in_the_loader_node_and_samples(dataset, init, tmp_path, monkeypatch):
    from tests.comfy_stubs import VAEStub, load_plugin, plugin_nodes

    models = tmp_path / "models"
    exported = train(settings(1, init, dataset, tmp_path / "run", steps=2))
    (models / "megactor").mkdir(parents=True)
    os.replace(exported, models / "megactor" / exported.name)
    plugin = load_plugin(monkeypatch, models)
    nodes = plugin_nodes(plugin)
    model, _ = nodes["MegActorLoadModel"].execute(exported.name, "auto")
    driving = torch.from_numpy(ShardDataset(dataset).read(0, range(3)).frames).float() / 255
    latent, images = nodes["MegActorSampler"].execute(
        model, VAEStub(tiny_vae()), driving[:1], 0, steps=2, scheduler="ddim", zero_terminal_snr=False,
        guidance_scale=2.0, audio_scale=1.0, seed=0, window=4, overlap=1, driving=driving)
    assert latent["samples"].shape == (3, 4, 8, 8) and images.shape == (3, 64, 64, 3)
    assert torch.isfinite(images).all()


def test_cli_trains_from_yaml_and_reports_bad_settings(dataset, init, tmp_path, capsys):
    config = REPO / "megactor_core" / "training" / "configs" / "stage1.yaml"
    code = main(["--config", str(config), "--set", f"init={init}", f"data={dataset}",
                 f"output_dir={tmp_path / 'cli'}", "steps=2", "batch_size=2", "mixed_precision=no", "num_workers=0",
                 "preview_every=0"])
    assert code == 0 and (tmp_path / "cli" / "megactor_sigma_stage1.safetensors").is_file()
    assert main(["--config", str(config), "--set", "mix.visul=0.3"]) == 2
    assert "mix.visul" in capsys.readouterr().err
    assert main(["--config", str(config), "--set", f"init={init}", f"data={tmp_path / 'nothing'}",
                 "mixed_precision=no"]) == 2
    assert "preprocess" in capsys.readouterr().err


def test_config_values_are_read_as_their_types(tmp_path, capsys):
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: numbers are read as numbers; a value of the wrong type
    is an error naming the key, the value and the type (also from the command line)."""
    config = REPO / "megactor_core" / "training" / "configs" / "stage1.yaml"
    read = TrainConfig.from_yaml(config, ["learning_rate=1e-3", "weight_decay=3e-2", "steps=2e3", "mixed_precision=no",
                                          "augment.scale=[0.9, 1]", "train_only=[audio_attn, temporal]"])
    assert read.train_only == ("audio_attn", "temporal")
    assert (read.learning_rate, read.weight_decay, read.steps, read.mixed_precision) == (1e-3, 3e-2, 2000, "no")
    assert read.augment.scale == (0.9, 1.0) and isinstance(read.steps, int)
    for override, message in [("learning_rate=fast", "learning_rate must be a number, got 'fast' (str)"),
                              ("steps=2.5", "steps must be a whole number, got 2.5 (float)"),
                              ("gradient_checkpointing=maybe", "gradient_checkpointing must be true or false"),
                              ("mix.regions={eyes: lots}", "mix.regions must be a mapping of a string to a number"),
                              ("preview_vae=3", "preview_vae must be a string or null, got 3 (int)"),
                              ("train_only=audio_attn", "train_only must be a list, each a string, got 'audio_attn'")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            TrainConfig.from_yaml(config, [override])
        assert main(["--config", str(config), "--set", override]) == 2
        assert message in capsys.readouterr().err


def test_shipped_configs_parse():
    for stage in (1, 2, 3):
        config = TrainConfig.from_yaml(REPO / "megactor_core" / "training" / "configs" / f"stage{stage}.yaml")
        assert config.stage == stage and config.learning_rate == 1e-5
    assert config.frames_per_sample == 16


def test_samples_are_reproducible(dataset):
    config = settings(2, "unused", dataset, "unused")
    samples = TrainingSamples(ShardDataset(dataset), config, audio=True, patch_size=2)
    a, b, c = samples[7], samples[7], samples[8]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["noise"], c["noise"])


def test_a_preview_shows_its_sample_with_the_masks_it_trained_with(dataset):
    """A mixed preview animates the sample's own augmented, face-dropped driving frames, and samples
    them with Eq.2 on the tokens the training step masked."""
    config = settings(2, "unused", dataset, "unused", mix=dict(mixed=1.0, visual=0, audio=0, drop_controls=0))
    samples = TrainingSamples(ShardDataset(dataset), config, audio=True, patch_size=2)
    sample, preview = samples[5], samples.preview(5)
    torch.testing.assert_close(preview.driving, (sample["driving"].permute(0, 2, 3, 1) + 1) / 2)
    height, width = sample["latents"].shape[-2:]
    mouth, kept = preview.mouth_attention.tokens(height // 2, width // 2)
    assert sample["eq2"] and torch.equal(kept, sample["driving_tokens"]) and mouth.any()


def test_stage2_modalities_follow_the_ratios(dataset):
    config = settings(2, "unused", dataset, "unused", mix=dict(visual=0.1, audio=0.2, mixed=0.7, drop_controls=0.0))
    samples = TrainingSamples(ShardDataset(dataset), config, audio=True, patch_size=2)
    draws = [samples.draw(i) for i in range(4000)]
    counts = {m: sum(d.modality == m for d in draws) / len(draws) for m in ("visual", "audio", "mixed")}
    assert counts == pytest.approx({"visual": 0.1, "audio": 0.2, "mixed": 0.7}, abs=0.025)
    assert {d.keep for d in draws if d.modality == "mixed"} == {"eyes"}
    assert {d.keep for d in draws if d.modality == "audio"} == {None}
    assert {d.keep for d in draws if d.modality == "visual"} == {"eyes", "mouth", "both"}
    sample = next(samples[i] for i, d in enumerate(draws) if d.modality == "audio")
    assert sample["audio_on"] == 1 and sample["visual"] == 0 and not sample["driving"].any()
    sample = next(samples[i] for i, d in enumerate(draws) if d.modality == "visual")
    assert sample["audio_on"] == 0 and not sample["audio"].any() and sample["visual"] == 1

    custom = settings(2, "unused", dataset, "unused", mix=dict(visual=0.0, audio=1.0, mixed=0.0))
    custom_samples = TrainingSamples(ShardDataset(dataset), custom, audio=True, patch_size=2)
    assert {custom_samples.draw(i).modality for i in range(200)} <= {"audio", "none"}

    ablation = settings(2, "unused", dataset, "unused", mix=dict(mixed=1.0, visual=0, audio=0, drop_controls=0,
                                                                 mixed_keep="both"))
    undecoupled = TrainingSamples(ShardDataset(dataset), ablation, audio=True, patch_size=2)
    assert {undecoupled.draw(i).keep for i in range(50)} == {"both"}
    assert not undecoupled[0]["eq2"] and undecoupled[0]["audio_on"] == 1
    with pytest.raises(ValueError, match="mix.mixed_keep"):
        settings(2, "unused", dataset, "unused", mix=dict(mixed_keep="nose"))


def test_stage1_is_visual_and_stage3_uses_consecutive_frames(dataset):
    stage1 = TrainingSamples(ShardDataset(dataset), settings(1, "x", dataset, "x", mix=dict(drop_controls=0.0)),
                             audio=False, patch_size=2)
    assert {stage1.draw(i).modality for i in range(300)} == {"visual"}
    assert "audio" not in stage1[0]
    stage3 = TrainingSamples(ShardDataset(dataset), settings(3, "x", dataset, "x"), audio=True, patch_size=2)
    for i in range(50):
        targets = stage3.draw(i).targets
        assert targets == list(range(targets[0], targets[0] + 4))
    assert stage3[0]["latents"].shape == (4, 4, 8, 8) and stage3[0]["driving"].shape == (4, 3, 64, 64)


def test_samples_sharing_a_reference_draw_their_own_targets_and_noise(dataset):
    """With samples_per_reference = 4, samples 4g..4g+3 share a clip and its reference frame; each draws its own
    target frames (never the reference in stages 1-2), noise, timestep and controls."""
    for stage in (1, 3):
        config = settings(stage, "x", dataset, "x", batch_size=8, samples_per_reference=4)
        samples = TrainingSamples(ShardDataset(dataset), config, audio=stage > 1, patch_size=2)
        draws = [samples.draw(i) for i in range(400)]
        for g in range(100):
            group = draws[4 * g:4 * g + 4]
            assert len({(d.clip, d.reference) for d in group}) == 1
            assert len({d.seed for d in group}) == 4
            if stage == 1:
                assert all(d.reference not in d.targets for d in group)
        pairs = sum(clip["frames"] for clip in samples.dataset.clips)  # every (clip, reference frame)
        assert len({(d.clip, d.reference) for d in draws[::4]}) > 0.75 * min(pairs, 100)  # groups draw apart
        varied = sum(len({tuple(d.targets) for d in draws[4 * g:4 * g + 4]}) > 1 for g in range(100))
        assert varied > 80  # targets vary within the groups
        first, second = samples[0], samples[1]
        assert torch.equal(first["reference"], second["reference"])
        assert not torch.equal(first["noise"], second["noise"])
    with pytest.raises(ValueError, match=r"samples_per_reference \(3\) must divide batch_size \(8\)"):
        settings(1, "x", dataset, "x", batch_size=8, samples_per_reference=3)


def test_a_shared_reference_is_encoded_once_with_the_same_loss_and_gradients(dataset, init):
    """The step that encodes each group's reference once gives the loss and gradients of encoding it for
    every sample."""
    config = settings(1, init, dataset, "x", batch_size=8, samples_per_reference=4)
    samples = TrainingSamples(ShardDataset(dataset), config, audio=False, patch_size=2)
    batch = torch.utils.data.default_collate([samples[i] for i in range(8)])
    model = load_checkpoint(init)
    results = []
    for shared in (1, 4):
        step = TrainingStep(model, DiffusionObjective(model.config.prediction_type), encoders_train=True,
                            unexplained_weight=0.0, samples_per_reference=shared)
        model.zero_grad()
        loss = step(batch)["loss"]
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (loss1, grads1), (loss4, grads4) = results
    torch.testing.assert_close(loss4, loss1)
    assert grads1.keys() == grads4.keys() and any(n.startswith("reference.") for n in grads4)
    for name, grad in grads1.items():
        torch.testing.assert_close(grads4[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_training_with_a_shared_reference_lowers_the_loss(dataset, init, tmp_path):
    config = settings(1, init, dataset, tmp_path / "shared", batch_size=4, samples_per_reference=2)
    exported = train(config)
    assert fixed_loss(exported, config) < 0.9 * fixed_loss(init, config)


def test_face_swap_hook_is_called_and_checked(dataset, monkeypatch, tmp_path):
    module = tmp_path / "my_swap.py"
    module.write_text("import numpy as np\n"
                      "calls = []\n"
                      "def invert(frames, landmarks, rng):\n"
                      "    calls.append(frames.shape)\n"
                      "    return 255 - frames\n"
                      "def broken(frames, landmarks, rng):\n"
                      "    return frames[:, :10]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    base = dict(drop_controls=0.0, regions={"both": 1.0})
    swapped = settings(1, "x", dataset, "x", mix=base, augment=dict(face_swap="my_swap:invert",
                                                                    face_swap_probability=1.0, probability=0.0))
    plain = settings(1, "x", dataset, "x", mix=base, augment=dict(probability=0.0))
    a = TrainingSamples(ShardDataset(dataset), swapped, audio=False, patch_size=2)[3]["driving"]
    b = TrainingSamples(ShardDataset(dataset), plain, audio=False, patch_size=2)[3]["driving"]
    import my_swap

    assert my_swap.calls == [(1, 64, 64, 3)]
    background = (slice(None), slice(None), slice(0, 4))  # the top rows: far from the face, never dropped
    assert torch.allclose(a[background], -b[background], atol=2 / 255)
    broken = settings(1, "x", dataset, "x", mix=base, augment=dict(face_swap="my_swap:broken",
                                                                   face_swap_probability=1.0))
    with pytest.raises(ValueError, match="face_swap must return"):
        TrainingSamples(ShardDataset(dataset), broken, audio=False, patch_size=2)[3]
    with pytest.raises(ValueError, match="cannot be loaded"):
        TrainingSamples(ShardDataset(dataset), settings(1, "x", dataset, "x", augment=dict(face_swap="nope:fn")),
                        audio=False, patch_size=2)


def test_config_errors_name_the_setting(tmp_path):
    base = dict(stage=1, init="a", data="b", output_dir="c")
    with pytest.raises(ValueError, match=r"augment\.scael"):
        TrainConfig.from_dict({**base, "augment": {"scael": [1, 2]}})
    with pytest.raises(ValueError, match="lacks required settings \\['data'\\]"):
        TrainConfig.from_dict({"stage": 1, "init": "a", "output_dir": "c"})
    with pytest.raises(ValueError, match="stage must be one of"):
        TrainConfig.from_dict({**base, "stage": 4})
    with pytest.raises(ValueError, match="mix.regions"):
        TrainConfig.from_dict({**base, "mix": {"regions": {"nose": 1.0}}})
    with pytest.raises(ValueError, match="lr_schedule must be one of .*'cosine'.* got 'cosin'"):
        TrainConfig.from_dict({**base, "lr_schedule": "cosin"})
    with pytest.raises(ValueError, match=r"warmup_steps must be in \[0, steps\), got 10 with 10 steps"):
        TrainConfig.from_dict({**base, "steps": 10, "warmup_steps": 10})
    config_file = tmp_path / "c.yaml"
    config_file.write_text("stage: 2\ninit: a\ndata: b\noutput_dir: c\nmix: {audio: 0.5}\n")
    config = TrainConfig.from_yaml(config_file, ["mix.audio=0.3", "steps=5"])
    assert config.mix.audio == 0.3 and config.steps == 5 and config.mix.mixed == 0.7


def test_driving_frames_show_only_the_kept_region(dataset):
    """Face-drop blanks the mouth of an eyes-only driving frame and keeps its eyes."""
    config = settings(1, "x", dataset, "x", mix=dict(drop_controls=0.0, regions={"eyes": 1.0}),
                      augment=dict(probability=0.0))
    samples = TrainingSamples(ShardDataset(dataset), config, audio=False, patch_size=2)
    draw = samples.draw(0)
    data = ShardDataset(dataset).read(draw.clip, draw.targets)
    driving = (samples[0]["driving"][0].permute(1, 2, 0) + 1) / 2
    points = np.round(data.landmarks[0]).astype(int)
    mouth_x, mouth_y = points[48:60].mean(axis=0).round().astype(int)
    eye_x, eye_y = points[36:42].mean(axis=0).round().astype(int)
    assert float(driving[mouth_y, mouth_x].max()) == 0.0
    original = torch.from_numpy(data.frames[0]).float() / 255
    assert torch.allclose(driving[eye_y, eye_x], original[eye_y, eye_x], atol=0.02)
