"""Minimal stand-ins for the ComfyUI modules our nodes import, and the plugin loaded as ComfyUI
loads it (the repository folder imported as a package)."""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import os
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return module


def folder_paths_stub(models_dir: Path) -> types.ModuleType:
    fp = _module("folder_paths")
    fp.models_dir = str(models_dir)
    fp.folder_names_and_paths = {}

    def add_model_folder_path(name, path, is_default=False):
        paths, _ = fp.folder_names_and_paths.setdefault(name, ([], set()))
        if path not in paths:
            paths.append(path)

    def get_folder_paths(name):
        return list(fp.folder_names_and_paths[name][0])

    def get_filename_list(name):
        paths, extensions = fp.folder_names_and_paths[name]
        return sorted(f for p in paths if os.path.isdir(p) for f in os.listdir(p)
                      if not extensions or os.path.splitext(f)[1] in extensions)

    def get_full_path(name, filename):
        for p in fp.folder_names_and_paths[name][0]:
            candidate = os.path.join(p, filename)
            if os.path.isfile(candidate):
                return candidate
        return None

    fp.add_model_folder_path = add_model_folder_path
    fp.get_folder_paths = get_folder_paths
    fp.get_filename_list = get_filename_list
    fp.get_full_path = get_full_path
    return fp


def model_management_stub() -> types.ModuleType:
    mm = _module("comfy.model_management")
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.unet_offload_device = lambda: torch.device("cpu")
    mm.unet_dtype = lambda device=None, model_params=0, supported_dtypes=(), weight_dtype=None: torch.float32
    mm.text_encoder_offload_device = lambda: torch.device("cpu")
    mm.should_use_fp16 = lambda device=None, model_params=0, prioritize_performance=True, manual_cast=False: False
    mm.interrupted = False
    mm.soft_empty_cache = lambda force=False: None
    mm.loaded = []  # what load_models_gpu was asked to load, in order

    mm.memory_required = []  # what load_models_gpu was asked to keep free

    def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                        force_full_load=False):
        mm.memory_required.append(memory_required)
        for patcher in models:
            patcher.model.to(patcher.load_device)
            mm.loaded.append(patcher)

    mm.load_models_gpu = load_models_gpu

    def throw_exception_if_processing_interrupted():
        if mm.interrupted:
            raise InterruptedError("Processing interrupted")

    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    return mm


class ProgressBar:
    """Records what ComfyUI's progress bar would show (and the previews shown on it)."""

    updates: list[tuple[int, int]] = []
    previews: list = []

    def __init__(self, total: int) -> None:
        self.total = total
        self.current = 0

    def update_absolute(self, value: int, total: int | None = None, preview=None) -> None:
        self.total = total or self.total
        self.current = min(value, self.total)
        ProgressBar.updates.append((value, self.total))
        if preview is not None:
            ProgressBar.previews.append(preview)


class ModelPatcher:
    """ComfyUI's ``comfy.model_patcher.ModelPatcher`` as far as the nodes use it."""

    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False) -> None:
        self.model, self.load_device, self.offload_device = model, load_device, offload_device


def ops_stub() -> types.ModuleType:
    """``comfy.ops.disable_weight_init``: torch layers marked as ComfyUI's streamable ones."""
    ops = _module("comfy.ops")

    class disable_weight_init:  # noqa: N801  (ComfyUI's name)
        pass

    for layer in (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.LayerNorm,
                  torch.nn.Embedding):
        setattr(disable_weight_init, layer.__name__, type(layer.__name__, (layer,), {"comfy_cast_weights": False}))
    ops.disable_weight_init = disable_weight_init
    return ops


class SD15LatentFormat:
    latent_channels = 4
    scale_factor = 0.18215


class Previewer:
    """ComfyUI's latent2rgb previewer: the latent [1, C, h, w] it is given, as an image stand-in."""

    def decode_latent_to_preview_image(self, preview_format, x0):
        assert x0.ndim == 4 and x0.shape[0] == 1
        return (preview_format, x0.shape, 512)


def load_plugin(monkeypatch, models_dir: Path) -> types.ModuleType:
    """Install the stubs and import the repository as ComfyUI does: a package from its folder."""
    comfy = _module("comfy")
    comfy.model_management = model_management_stub()
    comfy.utils = _module("comfy.utils")
    comfy.utils.ProgressBar = ProgressBar
    ProgressBar.updates, ProgressBar.previews = [], []
    comfy.model_patcher = _module("comfy.model_patcher")
    comfy.model_patcher.ModelPatcher = ModelPatcher
    comfy.ops = ops_stub()
    comfy.latent_formats = _module("comfy.latent_formats")
    comfy.latent_formats.SD15 = SD15LatentFormat
    preview = _module("latent_preview")
    preview.get_previewer = lambda device, latent_format: Previewer()
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    for name in ("model_management", "utils", "model_patcher", "latent_formats", "ops"):
        monkeypatch.setitem(sys.modules, f"comfy.{name}", getattr(comfy, name))
    monkeypatch.setitem(sys.modules, "latent_preview", preview)
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths_stub(models_dir))
    from tests import comfy_api_stub

    api = _module("comfy_api")
    api.latest = _module("comfy_api.latest")
    api.latest.io, api.latest.ComfyExtension = comfy_api_stub, comfy_api_stub.ComfyExtension
    monkeypatch.setitem(sys.modules, "comfy_api", api)
    monkeypatch.setitem(sys.modules, "comfy_api.latest", api.latest)
    name = "megactor_plugin"
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, key)
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def plugin_nodes(plugin: types.ModuleType) -> dict[str, type]:
    """Our nodes by id, as ComfyUI gets them from ``comfy_entrypoint``."""
    extension = asyncio.run(plugin.comfy_entrypoint())
    return {cls.GET_SCHEMA().node_id: cls for cls in asyncio.run(extension.get_node_list())}


class VAEStub:
    """ComfyUI's ``VAE`` interface (``encode``: IMAGE -> unscaled latents, ``decode``: back) over a
    diffusers AutoencoderKL."""

    def __init__(self, vae) -> None:
        self.vae = vae
        self.patcher = ModelPatcher(vae, torch.device("cpu"), torch.device("cpu"))

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixels.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mode()

    @torch.no_grad()
    def decode(self, samples: torch.Tensor) -> torch.Tensor:
        return ((self.vae.decode(samples).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
