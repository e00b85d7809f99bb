"""Whisper hidden states aligned to video frames: ``[frames, tokens, width]`` per video."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import torch

from ..progress import Progress
from .waveform import WHISPER_SAMPLE_RATE, to_whisper_waveform
from .whisper_encoder import WhisperEncoder

log = logging.getLogger(__name__)

SAMPLES_PER_POSITION = WHISPER_SAMPLE_RATE // WhisperEncoder.positions_per_second  # 320 = 20 ms
# Audio longer than one 30 s Whisper window is encoded in windows every 20 s; each keeps its
# middle (5 s margins dropped where a neighbour covers them), so every kept position has
# at least 5 s of real context on both sides whenever the audio has it.
WINDOW_HOP_POSITIONS = 1000
WINDOW_MARGIN_POSITIONS = 250

# How features are cut per frame, by the model that reads them: "dit" (this project's), or
# "sd15-release" (the official SD1.5 release: MuseTalk's audio2feature).
AUDIO_STYLES = ("dit", "sd15-release")
RELEASE_OFFSETS = range(-4, 6)  # the release's 10 positions around a frame's start


@dataclass
class AudioFeatures:
    """Per-frame audio features of one video.

    ``features[i]`` holds, for video frame ``i``, the Whisper positions within ``context`` of the
    frame's centre from each chosen encoder layer: ``[frames, (2*context+1) * layers, width]``
    (position-major). Positions outside the audio are zeros, never Whisper's padding.
    ``style`` "sd15-release" cuts them as the official release does (:func:`release_frame_features`).
    """

    features: torch.Tensor
    fps: float
    context: int
    layers: tuple[int, ...]
    padded_frames: int = 0  # frames past the end of the given audio, encoded from added silence
    style: str = "dit"
    # Encodes the same audio for another frame count (``frames=``), extended with silence: how
    # :meth:`padded_to` pads, so features padded later equal those encoded for that length.
    reencode: Callable[..., AudioFeatures] | None = field(default=None, repr=False, compare=False)

    @property
    def frames(self) -> int:
        return self.features.shape[0]

    def padded_to(self, frames: int) -> AudioFeatures:
        """These features cut or extended to ``frames``: the frames past the end are silence,
        encoded as :func:`encode_audio` encodes audio shorter than the frames asked for."""
        if frames <= self.frames:
            return dataclasses.replace(self, features=self.features[:frames],
                                       padded_frames=max(0, self.padded_frames - (self.frames - frames)))
        if self.reencode is None:
            raise ValueError(f"the audio features cover {self.frames} frames but {frames} are needed, and they "
                             "were not made by encode_audio, which could pad them: encode the audio for that many "
                             "frames")
        return self.reencode(frames=frames)


def whisper_states(encoder: WhisperEncoder, samples: torch.Tensor, *, batch_windows: int = 4,
                   progress: Progress | None = None) -> torch.Tensor:
    """Mono 16 kHz ``samples`` -> hidden states ``[num_states, positions, width]`` (float32, CPU).

    ``positions = ceil(samples / 320)``: one per 20 ms of the given audio; what Whisper computes
    for its own zero padding past the end is cut off. Each window is an independent Whisper
    call on at most 30 s of audio, exactly as Whisper encodes a single clip.
    """
    from whisper.audio import N_SAMPLES, log_mel_spectrogram, pad_or_trim

    device = next(encoder.parameters()).device
    dtype = next(encoder.parameters()).dtype
    window = encoder.window_positions
    positions = math.ceil(samples.shape[0] / SAMPLES_PER_POSITION)
    starts = [0]
    while starts[-1] + window < positions:
        starts.append(starts[-1] + WINDOW_HOP_POSITIONS)
    out = torch.zeros(encoder.num_states, positions, encoder.width)
    for first in range(0, len(starts), batch_windows):
        batch = starts[first:first + batch_windows]
        mels = []
        for start in batch:
            segment = samples[start * SAMPLES_PER_POSITION:(start + window) * SAMPLES_PER_POSITION]
            mel = log_mel_spectrogram(segment.to(device), encoder.n_mels, padding=N_SAMPLES)
            mels.append(pad_or_trim(mel, 2 * window))
        with torch.no_grad():
            states = encoder(torch.stack(mels).to(dtype)).float().cpu()
        for start, state in zip(batch, states, strict=True):
            keep_from = start if start == 0 else start + WINDOW_MARGIN_POSITIONS
            keep_to = start + window if start == starts[-1] else start + window - WINDOW_MARGIN_POSITIONS
            keep_to = min(positions, keep_to)
            out[:, keep_from:keep_to] = state[:, keep_from - start:keep_to - start]
        if progress is not None:
            progress(min(first + batch_windows, len(starts)), len(starts))
    return out


def frame_features(states: torch.Tensor, fps: float, frames: int, context: int,
                   layers: Sequence[int]) -> torch.Tensor:
    """Hidden states ``[num_states, positions, width]`` -> ``[frames, (2*context+1)*len(layers), width]``.

    Frame ``i`` is centred at ``(i + 0.5) / fps`` seconds, i.e. Whisper position
    ``floor((i + 0.5) / fps * 50)``; it takes that position and ``context`` on either side.
    """
    positions = states.shape[1]
    centres = torch.floor((torch.arange(frames, dtype=torch.float64) + 0.5) / fps
                          * WhisperEncoder.positions_per_second).long()
    index = centres[:, None] + torch.arange(-context, context + 1)[None]  # [frames, 2c+1]
    inside = (index >= 0) & (index < positions)
    picked = states[list(layers)][:, index.clamp(0, positions - 1)]  # [L, frames, 2c+1, W]
    picked = picked * inside[None, :, :, None]
    return picked.permute(1, 2, 0, 3).reshape(frames, -1, states.shape[-1])


def release_whisper_states(encoder: WhisperEncoder, samples: torch.Tensor, *,
                           progress: Progress | None = None) -> torch.Tensor:
    """The release's Whisper states ``[num_states, positions, width]``: the log-mel of the whole
    clip (normalised by the clip's own maximum), cut into 30 s segments each padded with zeros in
    normalised log-mel units, every encoder state kept for the positions the audio covers."""
    from whisper.audio import log_mel_spectrogram, pad_or_trim

    device = next(encoder.parameters()).device
    dtype = next(encoder.parameters()).dtype
    mel = log_mel_spectrogram(samples.to(device), encoder.n_mels)
    length, segment = mel.shape[1], 2 * encoder.window_positions
    parts = []
    for seek in range(0, length, segment):
        with torch.no_grad():
            states = encoder(pad_or_trim(mel[:, seek:seek + segment], segment)[None].to(dtype))[0].float().cpu()
        parts.append(states[:, :(min(seek + segment, length) - seek) // 2])
        if progress is not None:
            progress(min(seek + segment, length), length)
    return torch.cat(parts, dim=1)


def release_frame_features(states: torch.Tensor, fps: float, frames: int) -> torch.Tensor:
    """``[num_states, positions, width]`` -> ``[frames, 10 * num_states, width]`` as the release
    cuts them: frame ``i`` starts at position ``int(i * 50 / fps)`` and takes the 4 positions
    before it, itself and the 5 after, the first or last position standing in beyond the audio."""
    starts = torch.floor(torch.arange(frames, dtype=torch.float64) * WhisperEncoder.positions_per_second / fps).long()
    index = (starts[:, None] + torch.tensor(list(RELEASE_OFFSETS))[None]).clamp(0, states.shape[1] - 1)
    return states[:, index].permute(1, 2, 0, 3).reshape(frames, -1, states.shape[-1])


def encode_audio(
    encoder: WhisperEncoder,
    waveform: torch.Tensor,
    sample_rate: int,
    fps: float,
    *,
    frames: int | None = None,
    context: int = 4,
    layers: Sequence[int] | None = None,
    style: str = "dit",
    progress: Progress | None = None,
) -> AudioFeatures:
    """Audio at any rate and channel count -> per-frame Whisper features for a video at ``fps``.

    ``style`` is the model's (its config's ``audio_style``): "dit" takes ``context`` positions on
    either side of each frame's centre from the ``layers`` states; "sd15-release" reproduces the
    official release's features (10 positions per frame from all states; ``context`` and
    ``layers`` do not apply).

    ``frames`` defaults to the audio's duration times ``fps``, rounded (every frame centre lies
    within the audio). When more frames are asked for than the audio covers, the audio is
    extended with silence and a warning says so. ``layers`` picks encoder states (0 = input
    embedding, ``num_states - 1`` = last layer); default all.
    """
    if not fps or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if style not in AUDIO_STYLES:
        raise ValueError(f"style must be one of {AUDIO_STYLES}, got {style!r}")
    if context < 0:
        raise ValueError(f"context must be 0 or more positions, got {context}")
    layers = tuple(range(encoder.num_states)) if layers is None else tuple(layers)
    bad = [i for i in layers if not 0 <= i < encoder.num_states]
    if bad or not layers:
        raise ValueError(f"layers {list(layers)} must be non-empty and within 0..{encoder.num_states - 1} "
                         f"for this Whisper ({encoder.num_states - 1} layers + input embedding)")
    samples = to_whisper_waveform(waveform, sample_rate)
    covered = max(1, round(samples.shape[0] / WHISPER_SAMPLE_RATE * fps))
    frames = covered if frames is None else frames
    if frames <= 0:
        raise ValueError(f"frame count must be positive, got {frames}")
    padded = max(0, frames - covered)
    needed = math.ceil(frames / fps * WHISPER_SAMPLE_RATE)
    if needed - samples.shape[0] > WHISPER_SAMPLE_RATE / fps:  # more than a frame's worth is missing
        log.warning("audio is %.2f s but %d frames at %g fps need %.2f s: padding %.2f s of silence",
                    samples.shape[0] / WHISPER_SAMPLE_RATE, frames, fps, needed / WHISPER_SAMPLE_RATE,
                    (needed - samples.shape[0]) / WHISPER_SAMPLE_RATE)
    samples = torch.nn.functional.pad(samples, (0, max(0, needed - samples.shape[0])))
    reencode = partial(encode_audio, encoder, waveform, sample_rate, fps, context=context, layers=layers, style=style)
    if style == "sd15-release":  # the release normalises the mel over the whole clip it is given
        states = release_whisper_states(encoder, samples, progress=progress)
        return AudioFeatures(release_frame_features(states, fps, frames), float(fps), -RELEASE_OFFSETS.start,
                             tuple(range(encoder.num_states)), padded, style, reencode)
    # Audio far longer than the video: encode only what the frames use, plus Whisper context.
    margin, window = (n * SAMPLES_PER_POSITION for n in (WINDOW_MARGIN_POSITIONS, encoder.window_positions))
    samples = samples[:max(needed + margin, window)]
    states = whisper_states(encoder, samples, progress=progress)
    return AudioFeatures(frame_features(states, fps, frames, context, layers), float(fps), context, layers, padded,
                         reencode=reencode)
