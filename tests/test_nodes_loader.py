"""The plugin as ComfyUI sees it: registration and the model loader node."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from megactor_core.models import MegActorSigma, save_checkpoint
from tests.comfy_stubs import ROOT, load_plugin, plugin_nodes
from tests.tiny_models import randomize, tiny_config


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    return load_plugin(monkeypatch, tmp_path / "models")


def test_registers_nodes_and_model_folder(plugin):
    nodes = plugin_nodes(plugin)
    assert len(nodes) == 14 and all(name.startswith("MegActor") for name in nodes)
    assert nodes["MegActorLoadModel"].GET_SCHEMA().display_name == "Load MegActor-Σ Model"
    fp = sys.modules["folder_paths"]
    assert fp.folder_names_and_paths["megactor"][1] == {".safetensors", ".ckpt"}


def test_import_is_light(tmp_path):
    """Importing the plugin loads no model and none of the heavy libraries (fresh interpreter)."""
    code = (
        "import sys, pytest, pathlib\n"
        "from tests.comfy_stubs import ROOT, load_plugin, plugin_nodes\n"
        f"nodes = plugin_nodes(load_plugin(pytest.MonkeyPatch(), pathlib.Path({str(tmp_path)!r})))\n"
        "assert all(cls.INPUT_TYPES() for cls in nodes.values())\n"
        "heavy = ('diffusers', 'transformers', 'whisper', 'scipy', 'onnxruntime', 'onnx')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert 'megactor_plugin.nodes' in sys.modules\n"
        "print('heavy:', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "heavy: []"


@pytest.mark.parametrize("precision, dtype", [("auto", torch.float32), ("bf16", torch.bfloat16)])
def test_loader_node_loads_a_checkpoint(plugin, tmp_path, precision, dtype):
    model = randomize(MegActorSigma(tiny_config()))
    save_checkpoint(model, tmp_path / "models" / "megactor" / "tiny.safetensors")
    (tmp_path / "models" / "megactor" / "notes.txt").write_text("not a model")
    node = plugin_nodes(plugin)["MegActorLoadModel"]
    assert node.INPUT_TYPES()["required"]["checkpoint"][1]["options"] == ["tiny.safetensors"]
    handle, fps = node.execute("tiny.safetensors", precision)
    assert fps == 25.0  # the rate the model generates at, from its config
    assert handle.dtype == dtype and handle.load_device == torch.device("cpu")
    # The plugin package has its own copy of megactor_core, so compare values, not classes.
    assert handle.model.config.to_dict() == model.config.to_dict()
    assert all(p.dtype == dtype for p in handle.model.parameters())
    loaded = handle.model.state_dict()
    assert all(torch.equal(loaded[k], v.to(dtype)) for k, v in model.state_dict().items())


def test_loader_node_missing_file_says_where(plugin):
    node = plugin_nodes(plugin)["MegActorLoadModel"]
    with pytest.raises(FileNotFoundError, match=r"'gone.safetensors' not found .*models/megactor.*init_from_pixart"):
        node.execute("gone.safetensors", "auto")


def test_loader_node_can_compile_the_blocks(plugin, tmp_path):
    save_checkpoint(randomize(MegActorSigma(tiny_config())), tmp_path / "models" / "megactor" / "tiny.safetensors")
    node = plugin_nodes(plugin)["MegActorLoadModel"]
    assert node.INPUT_TYPES()["required"]["torch_compile"][1]["default"] is False
    plain, _ = node.execute("tiny.safetensors", "auto")
    compiled, _ = node.execute("tiny.safetensors", "auto", torch_compile=True)
    assert all(b._compiled_call_impl is None for b in plain.model.denoiser.blocks)
    assert all(b._compiled_call_impl is not None for b in compiled.model.denoiser.blocks)


def test_loader_node_loads_the_official_release(plugin, tmp_path):
    from tests.tiny_models import tiny_release_file

    tiny_release_file(tmp_path / "models" / "megactor" / "megactor-sigma.ckpt")
    node = plugin_nodes(plugin)["MegActorLoadModel"]
    assert "megactor-sigma.ckpt" in node.INPUT_TYPES()["required"]["checkpoint"][1]["options"]
    handle, _ = node.execute("megactor-sigma.ckpt", "auto")
    assert type(handle.model).__name__ == "MegActorSigmaSD15" and handle.model.config.audio_style == "sd15-release"
    assert all(p.dtype == torch.float32 for p in handle.model.parameters())
