"""Our model folders under ComfyUI's ``models/``, registered so ``extra_model_paths.yaml`` works."""

from __future__ import annotations

import os

import folder_paths

# folder name -> (file extensions, what goes there and where it comes from)
MODEL_FOLDERS = {
    "megactor": (
        {".safetensors", ".ckpt"},
        "MegActor-Σ DiT checkpoints (.safetensors; no trained DiT weights are published: train them with "
        "`python -m megactor_core.training.train`, or build the untrained PixArt-α initialisation with "
        "`python -m megactor_core.models.init_from_pixart`), or the official SD1.5 release: megactor-sigma.ckpt "
        "and sd15_empty_str_embedding.pt from Hugging Face HVSiniX/RawVideoDriven, folder weights/",
    ),
    "whisper": (
        {".pt"},
        "an openai-whisper checkpoint (tiny.pt for the paper's setting; base.pt, small.pt, ... work too) "
        "or a Hugging Face Whisper folder (e.g. openai/whisper-tiny: config.json + model.safetensors) "
        "as a sub-folder",
    ),
    "dwpose": (
        {".onnx"},
        "DWPose's yolox_l.onnx and dw-ll_ucoco_384.onnx: the files comfyui_controlnet_aux downloads "
        "(Hugging Face yzd-v/DWPose); copy or link them here",
    ),
}


def register_model_folders() -> None:
    for name, (extensions, _) in MODEL_FOLDERS.items():
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name))
        folder_paths.folder_names_and_paths[name][1].update(extensions)


def model_choices(folder: str, with_subfolders: bool = False) -> list[str]:
    """Files of a model folder; with ``with_subfolders``, also its sub-folders holding a config.json
    (Hugging Face model folders)."""
    choices = set(folder_paths.get_filename_list(folder))
    if with_subfolders:
        for root in folder_paths.get_folder_paths(folder):
            if os.path.isdir(root):
                choices.update(name for name in os.listdir(root)
                               if os.path.isfile(os.path.join(root, name, "config.json")))
    return sorted(choices)


def model_path(folder: str, filename: str) -> str:
    """The full path of a file or model sub-folder, or an error saying where to put it."""
    path = folder_paths.get_full_path(folder, filename)
    if path is None:
        path = next((os.path.join(root, filename) for root in folder_paths.get_folder_paths(folder)
                     if os.path.isdir(os.path.join(root, filename))), None)
    if path is None:
        extensions, origin = MODEL_FOLDERS[folder]
        places = ", ".join(folder_paths.get_folder_paths(folder))
        raise FileNotFoundError(f"{filename!r} not found in the '{folder}' model folder ({places}). "
                                f"Put it there: {origin}.")
    return path
