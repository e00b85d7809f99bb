"""MegActor-Σ core library: models, audio, landmarks, sampling, training and curation.

Plain PyTorch; never imports ComfyUI.
"""

__version__ = "0.1.0"
