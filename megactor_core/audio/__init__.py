"""Whisper audio features aligned to video frames."""

from .features import AUDIO_STYLES, AudioFeatures, encode_audio, frame_features, whisper_states
from .waveform import WHISPER_SAMPLE_RATE, to_whisper_waveform
from .whisper_encoder import WhisperEncoder, WhisperError, load_whisper_encoder

__all__ = [
    "AUDIO_STYLES",
    "WHISPER_SAMPLE_RATE",
    "AudioFeatures",
    "WhisperEncoder",
    "WhisperError",
    "encode_audio",
    "frame_features",
    "load_whisper_encoder",
    "to_whisper_waveform",
    "whisper_states",
]
