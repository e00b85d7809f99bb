"""The single-file checkpoint format and the PixArt-α initialisation CLI."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from megactor_core.models import (
    CheckpointError,
    MegActorSigma,
    init_from_pixart,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    summary,
)
from megactor_core.models.checkpoint import check_weights
from tests.tiny_models import original_layout, randomize, tiny_config, tiny_pixart


def outputs(model: MegActorSigma, audio: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 2, 4, 8, 8, generator=g)
    ref = model.encode_reference(torch.randn(1, 4, 8, 8, generator=g))
    driven = model.encode_driving(torch.rand(1, 2, 3, 64, 64, generator=g))
    with torch.no_grad():
        features = torch.randn(1, 2, 5, 12, generator=g) if audio else None
        return model(x, 321, reference=ref, driven=driven, audio=features)


def test_round_trip_is_exact(tmp_path):
    model = randomize(MegActorSigma(tiny_config())).eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors", metadata={"stage": "2", "step": "100"})
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(outputs(model), outputs(loaded))
    config, tensors, metadata = read_checkpoint(path)
    assert metadata["stage"] == "2" and metadata["step"] == "100"
    assert json.loads(metadata["megactor_config"])["reference_blocks"] == [1, 2]
    assert not [p for p in tmp_path.iterdir() if p.name != "m.safetensors"]  # no temporary left
    assert path.stat().st_mode & 0o044  # readable by others like any saved file (umask permitting)


def test_save_in_half_precision_and_load_as_dtype(tmp_path):
    model = randomize(MegActorSigma(tiny_config()))
    path = save_checkpoint(model, tmp_path / "m.safetensors", dtype=torch.bfloat16)
    assert all(t.dtype == torch.bfloat16 for t in load_file(path).values())
    loaded = load_checkpoint(path, dtype=torch.float16)
    assert all(p.dtype == torch.float16 for p in loaded.parameters())


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_checkpoint(MegActorSigma(tiny_config()), path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("megactor_core.models.checkpoint.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(randomize(MegActorSigma(tiny_config())), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    with pytest.raises(CheckpointError, match="not a readable .safetensors file"):
        load_checkpoint(junk)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a MegActor-Σ checkpoint.*init_from_pixart"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_tensor_of_another_shape_is_named(tmp_path):
    model = MegActorSigma(tiny_config())
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    tensors = load_file(path)
    tensors["denoiser.proj_out.weight"] = torch.zeros(3, 3)
    config, none, metadata = read_checkpoint(path, tensors=False)  # metadata without reading the weights
    assert none == {} and config == tiny_config() and metadata == read_checkpoint(path)[2]
    save_file(tensors, path, metadata=metadata)
    with pytest.raises(CheckpointError, match=r"denoiser\.proj_out\.weight: file \(3, 3\), model \(32, 32\)"):
        load_checkpoint(path)


def test_checkpoint_of_another_config_names_the_differences(tmp_path):
    path = save_checkpoint(MegActorSigma(tiny_config(hidden_size=64, num_heads=4)), tmp_path / "m.safetensors")
    config, tensors, _ = read_checkpoint(path)
    with pytest.raises(CheckpointError, match="hidden_size: file 64 vs model 32"):
        check_weights(MegActorSigma(tiny_config()), tensors, config, source=str(path))


def test_next_stage_adds_zero_modules(tmp_path):
    stage1 = randomize(MegActorSigma(tiny_config(use_audio=False, use_temporal=False))).eval()
    path = save_checkpoint(stage1, tmp_path / "stage1.safetensors")
    stage2 = load_checkpoint(path, config=stage1.config.replace(use_audio=True))
    assert stage2.config.use_audio and not stage2.config.use_temporal
    assert torch.equal(outputs(stage2), outputs(stage1, audio=False))
    # The other way round would silently lose trained weights: refused.
    path2 = save_checkpoint(stage2, tmp_path / "stage2.safetensors")
    with pytest.raises(CheckpointError, match="tensors the model does not have"):
        load_checkpoint(path2, config=stage1.config)


def test_init_from_pixart_cli(tmp_path, capsys):
    pixart = tiny_pixart(cross_attention=True)
    pth = tmp_path / "PixArt-tiny.pth"
    torch.save({"state_dict": original_layout(pixart)}, pth)
    out = tmp_path / "models" / "megactor" / "init.safetensors"
    # A tiny PixArt has no known head count without config.json: the diffusers folder has one.
    assert init_from_pixart.main([str(pth), "--out", str(out)]) == 2
    assert "number of attention heads" in capsys.readouterr().err
    assert not out.exists()
    pixart.save_pretrained(tmp_path / "pixart" / "transformer")
    code = init_from_pixart.main([str(tmp_path / "pixart"), "--out", str(out), "--audio-dim", "12",
                                  "--driven-channels", "4", "--no-temporal", "--temporal-modulation",
                                  "--dtype", "bf16"])
    assert code == 0 and out.is_file()
    model = load_checkpoint(out)
    assert model.config.use_audio and not model.config.use_temporal
    assert model.config.temporal_modulation  # for the modules stage 3 adds
    assert model.config.num_layers == 3 and model.config.reference_blocks == (0, 1, 2)
    ref_q = model.reference.blocks[1].attn.to_q.weight
    assert torch.equal(ref_q, pixart.transformer_blocks[1].attn1.to_q.weight.to(torch.bfloat16).float())
    assert torch.equal(model.denoiser.blocks[1].attn.to_q.weight, ref_q)
    assert "wrote" in capsys.readouterr().out


def test_init_from_pixart_rejects_other_files(tmp_path, capsys):
    bogus = tmp_path / "bogus.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, bogus)
    assert init_from_pixart.main([str(bogus), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert "not PixArt-α weights" in capsys.readouterr().err
    assert init_from_pixart.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err


def test_summary_counts_the_full_model(capsys):
    assert summary.main([]) == 0
    text = capsys.readouterr().out
    assert '"hidden_size": 1152' in text and "total" in text
    counts = summary.parameter_counts(MegActorSigma(tiny_config()))
    assert counts["total"] == sum(p.numel() for p in MegActorSigma(tiny_config()).parameters())
    assert counts["audio attention"] > 0 and counts["temporal modules"] > 0


def test_atomic_write_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    """Setting the umask, even back at once, races with other threads' files: it is read, never set."""
    import os
    import sys

    from megactor_core.atomic import _umask, atomic_write

    if not sys.platform.startswith("linux"):
        pytest.skip("the umask is read from /proc on Linux only")
    _umask.cache_clear()
    calls = []
    real_umask = os.umask
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
    with atomic_write(tmp_path / "file.bin") as tmp:
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)  # as safetensors creates its files
        os.close(fd)
    assert calls == []
    mask = real_umask(0)
    real_umask(mask)
    assert (tmp_path / "file.bin").stat().st_mode & 0o777 == 0o666 & ~mask
