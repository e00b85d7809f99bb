"""A toy world of procedural talking portraits, small enough to train MegActor-Σ on a CPU.

Faces (:mod:`.face`) follow known signals (:mod:`.signals`): head pose, blinks, and a mouth
driven by procedural speech (:mod:`.speech`). :mod:`.measure` reads those signals back from any
frames' pixels, and :mod:`.world` writes toy videos as a training dataset for the real trainer,
with a latent codec of :mod:`.codec` in place of a VAE (a small learned autoencoder, or a fixed
block DCT).
"""

from .codec import CHANNELS, DctCodec
from .face import Identity, render
from .signals import Signals, random_signals
from .world import ToyVideo, toy_video, toy_whisper, write_dataset

__all__ = ["CHANNELS", "Identity", "DctCodec", "Signals", "ToyVideo", "random_signals", "render", "toy_video",
           "toy_whisper", "write_dataset"]
