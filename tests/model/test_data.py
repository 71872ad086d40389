"""Training data: the re-encoding every clip goes through, frame sampling, balanced batches."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import head

from model.training.data import Augment, Clip, Mixture, augment_clip, h264_roundtrip, take_frames


def _clip(label: int, n: int = 12, source: str = "video") -> Clip:
    img = cv2.resize(head(), (64, 64))
    frames = np.stack([np.roll(img, k, axis=1) for k in range(n)])
    lm = np.tile(np.array([[20 + (i % 17), 20 + (i // 17) * 8] for i in range(68)], np.float32), (n, 1, 1))
    return Clip(frames, lm, label, f"g{label}", source)


def test_h264_round_trip_keeps_every_frame_and_loses_more_at_a_higher_crf():
    frames = list(_clip(0).frames)
    fine, coarse = h264_roundtrip(frames, 18), h264_roundtrip(frames, 40)
    assert len(fine) == len(coarse) == len(frames) and fine[0].shape == frames[0].shape
    err = lambda out: np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(out, frames, strict=True)])  # noqa: E731
    assert err(fine) < err(coarse)


def test_augmentation_is_one_draw_per_clip_for_real_and_fake_alike():
    frames = [np.full((64, 64, 3), 128, np.uint8)] * 6
    aug = Augment(p_downscale=0.0, p_reencode=0.0, jitter=0.2, p_flip=0.0)
    out = augment_clip(frames, np.random.default_rng(5), aug)
    assert all(np.array_equal(out[0], o) for o in out)  # the same brightness change on every frame
    # the same random state gives the same change whatever the clip's label: no label reaches it
    a = augment_clip(frames, np.random.default_rng(9), Augment())
    b = augment_clip(frames, np.random.default_rng(9), Augment())
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_frames_are_taken_in_order_and_spread_like_inference():
    clip = _clip(0, n=40)
    rng = np.random.default_rng(0)
    strides = set()
    for _ in range(50):
        frames, _ = take_frames(clip, 8, rng)
        idx = [int(np.argmax([np.array_equal(f, c) for c in clip.frames])) for f in frames]
        assert idx == sorted(idx) and len(set(np.diff(idx))) == 1
        strides.add(idx[1] - idx[0])
    assert len(strides) > 2  # not only neighbouring frames


def test_a_batch_is_half_real_half_fake_with_made_fakes_from_its_own_reals():
    mix = Mixture({"video": [_clip(0)]}, {"talking-head": [_clip(1)]}, {"video": 1.0}, {"talking-head": 1.0},
                  {"sbi": 0.5})
    frames, labels, what = mix.batch(8, 4, 32, np.random.default_rng(0), None)
    assert frames.shape == (8, 4, 32, 32, 3) and labels.count(1) == 4 and labels.count(0) == 4
    assert {w.split(":")[0] for w in what} <= {"real", "synth", "fake"}


def test_no_real_clips_is_a_clear_error():
    from model.training import TrainingError

    with pytest.raises(TrainingError, match="no real training clips"):
        Mixture({}, {"x": [_clip(1)]}, {}, {}, {})
