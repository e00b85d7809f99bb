"""Thin ComfyUI adapters over ``megactor_core``: types in and out, model paths, progress."""

from .audio import AudioEncode, LoadWhisperModel
from .loader import LoadMegActorModel
from .model_paths import register_model_folders

register_model_folders()

NODE_CLASS_MAPPINGS = {
    "MegActorLoadModel": LoadMegActorModel,
    "MegActorLoadWhisper": LoadWhisperModel,
    "MegActorAudioEncode": AudioEncode,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MegActorLoadModel": "Load MegActor-Σ Model",
    "MegActorLoadWhisper": "Load Whisper Model",
    "MegActorAudioEncode": "MegActor-Σ Audio Encode",
}
