"""Frame-rate resampling and length policies (pipeline.timeline)."""

from __future__ import annotations

import numpy as np
import pytest

from megactor_core.pipeline.timeline import (
    constant_rate_indices,
    extend_indices,
    resample_indices,
    video_length,
)


@pytest.mark.parametrize("source_fps", [30.0, 24.0, 30000 / 1001, 50.0, 25.0])
def test_an_event_at_one_second_lands_on_frame_25(source_fps):
    count = round(3 * source_fps)  # a 3 s clip
    event = round(1.0 * source_fps)  # the source frame shown at t = 1.0 s (within half a frame)
    picked = constant_rate_indices(count, source_fps, 25.0)
    # 3 s at 25 fps (29.97 fps: 90 frames last 3.003 s, so a 76th output frame at 3.0 s fits)
    assert len(picked) == (76 if source_fps == 30000 / 1001 else 75)
    assert picked[25] == event
    # Every output frame shows the source frame nearest its time (the last one past its time).
    times, wanted = np.arange(count) / source_fps, np.arange(len(picked)) / 25
    within = wanted <= times[-1]
    assert np.all(np.abs(times[picked] - wanted)[within] <= 0.5 / source_fps + 1e-9)
    assert np.all(picked[~within] == count - 1)


def test_same_rate_is_the_identity():
    assert np.array_equal(constant_rate_indices(40, 25.0, 25.0), np.arange(40))


def test_variable_frame_rate_follows_the_timestamps():
    # 1 s at 50 fps then 1 s at 10 fps, starting at 0.5 s (a cut clip): 2 s in all.
    times = 0.5 + np.concatenate([np.arange(50) / 50, 1 + np.arange(10) / 10])
    picked = resample_indices(times, 25.0)
    assert len(picked) == 50
    assert picked[12] == 24 and picked[25] == 50  # t = 0.48 s -> frame at 0.48 s; t = 1.0 s -> first slow frame
    assert picked[30] == 52  # t = 1.2 s


def test_bad_times_are_named():
    with pytest.raises(ValueError, match="strictly increasing"):
        resample_indices(np.array([0.0, 0.1, 0.1]), 25.0)
    with pytest.raises(ValueError, match="frame rate must be a positive number"):
        resample_indices(np.arange(3) / 25, 0.0)
    with pytest.raises(ValueError, match="source frame rate"):
        constant_rate_indices(3, float("nan"), 25.0)


def test_pingpong_turns_without_a_jump():
    picked = extend_indices(5, 23, "pingpong")
    assert list(picked[:12]) == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3]
    assert np.all(np.abs(np.diff(picked)) == 1)  # never a jump, never a repeated frame
    assert list(extend_indices(1, 4, "pingpong")) == [0, 0, 0, 0]


def test_loop_hold_and_enough_frames():
    assert list(extend_indices(3, 7, "loop")) == [0, 1, 2, 0, 1, 2, 0]
    assert list(extend_indices(3, 5, "hold")) == [0, 1, 2, 2, 2]
    for policy in ("pingpong", "loop", "hold", "error"):
        assert list(extend_indices(6, 4, policy)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="cover 3 frames but the video has 5; choose an extend policy"):
        extend_indices(3, 5, "error")


def test_video_length():
    assert video_length(None, audio=65, driving=50, audio_end="silence") == 65  # the longest control
    assert video_length(None, audio=25, driving=75, audio_end="silence") == 75
    assert video_length(None, audio=25, driving=75, audio_end="shortest") == 25
    assert video_length(100, audio=25, driving=75, audio_end="shortest") == 25
    assert video_length(30, audio=25, driving=None, audio_end="silence") == 30
    assert video_length(None, audio=None, driving=12, audio_end="silence") == 12
    with pytest.raises(ValueError, match="frame count unknown"):
        video_length(None, audio=None, driving=None, audio_end="silence")
