"""A check that cannot judge says so, with the reason: each reason from a generated clip that has exactly
that defect, through the full pipeline. The cuts are a test model's (a measured model stores its own in
its checkpoint: model.training.abstain)."""
from dataclasses import replace

import cv2
import media
import numpy as np
import pytest

from model import check, load_model
from model.evidence import CODES, REASONS, Cuts, TrackEvidence, judge, reason_text, yaw_ratio
from model.faces import find_faces
from model.video import Frames

# cuts that a clean generated face clears with room to spare and each defect below fails
TEST_CUTS = Cuts(min_face_px=64, min_face_frames=0.5, max_yaw=0.15, min_sharpness=40.0, min_brightness=45.0,
                 min_detector_score=0.9, min_bits_per_pixel=0.03)


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint, device="cpu")
    return replace(loaded, extra={**loaded.extra, "calibration": {"abstain": TEST_CUTS.to_dict()}})


def _clip(tmp_path, name, frames, crf: int = 23):
    path = tmp_path / f"{name}.mp4"
    if crf == 23:
        return media.write_clip(path, frames)
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": str(crf)}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def _check(path, model):
    return check(path, model=model, detector="yunet")  # YuNet's landmarks and confidence feed the measures


def _cannot_judge(v, code):
    assert v.verdict == "UNCERTAIN", v
    assert v.reason == code and v.reason_text == reason_text(code)
    assert v.p_fake is None and v.confidence is None and v.faces == []
    assert any(u.code == code for u in v.faces_not_scored)


def test_a_clean_face_is_judged(tmp_path, model):
    v = _check(_clip(tmp_path, "clean", media.face_frames(20)), model)
    assert v.reason is None and v.p_fake is not None and len(v.faces) == 1
    ev = v.faces[0].evidence
    assert ev["face_px"] > TEST_CUTS.min_face_px and ev["brightness"] > TEST_CUTS.min_brightness
    assert ev["sharpness"] > TEST_CUTS.min_sharpness and ev["yaw"] < TEST_CUTS.max_yaw
    assert ev["bits_per_pixel"] > TEST_CUTS.min_bits_per_pixel


def test_a_small_face_cannot_be_judged(tmp_path, model):
    frames = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in media.face_frames(20)]  # face ~60 px
    _cannot_judge(_check(_clip(tmp_path, "small", frames), model), "face_too_small")


def test_a_dark_clip_cannot_be_judged(tmp_path, model):
    frames = [np.clip(f.astype(np.float32) * 0.2, 0, 255).astype(np.uint8) for f in media.face_frames(20)]
    _cannot_judge(_check(_clip(tmp_path, "dark", frames), model), "too_dark")


def test_a_blurred_clip_cannot_be_judged(tmp_path, model):
    frames = [cv2.GaussianBlur(f, (0, 0), 3.0) for f in media.face_frames(20)]
    _cannot_judge(_check(_clip(tmp_path, "blur", frames), model), "too_blurred")


def test_a_clip_with_a_face_in_few_frames_cannot_be_judged(tmp_path, model):
    faces, empty = media.face_frames(20), media.no_face_frames(20, size=(640, 360))
    frames = [faces[i] if i % 5 == 0 else empty[i] for i in range(20)]  # the face in 4 of 20 frames
    _cannot_judge(_check(_clip(tmp_path, "brief", frames), model), "few_face_frames")


def test_a_starved_stream_cannot_be_judged(tmp_path, model):
    _cannot_judge(_check(_clip(tmp_path, "starved", media.face_frames(20), crf=51), model), "heavy_compression")


def test_a_turned_face_cannot_be_judged(tmp_path, model):
    # no profile photo ships with the tests: the nose and mouth are pushed sideways, as a turned face
    # shows them, which is what the measure reads (YuNet's nose point against the eyes)
    frames = media.face_frames(20)
    _, tracks = find_faces(Frames(frames, [i / 10 for i in range(20)], 20, 2.0, 640, 360))
    out = []
    for i, f in enumerate(frames):
        (rx, ry), (lx, ly), (nx, ny), (m1x, m1y), (m2x, m2y) = tracks[0].boxes[i].points
        eye = np.hypot(lx - rx, ly - ry)
        yy, xx = np.mgrid[0:f.shape[0], 0:f.shape[1]].astype(np.float32)
        cy, sig = (ny + (m1y + m2y) / 2) / 2, 0.45 * eye
        g = np.exp(-((xx - nx) ** 2 / (2 * sig ** 2) + (yy - cy) ** 2 / (2 * (1.6 * sig) ** 2)))
        out.append(cv2.remap(f, (xx - 0.7 * eye * g).astype(np.float32), yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    _cannot_judge(_check(_clip(tmp_path, "turned", out), model), "face_in_profile")


def test_a_covered_face_cannot_be_judged(tmp_path, model):
    frames = []
    for f in media.face_frames(20):
        f = f.copy()
        grey = f.mean(axis=2)
        ys, xs = np.where(grey != 90)  # the face square on the grey canvas
        top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
        f[top + (bottom - top) * 45 // 100:bottom, left:right] = (70, 60, 55)  # a dark patch over nose and mouth
        frames.append(f)
    v = _check(_clip(tmp_path, "covered", frames), model)
    if not v.faces and not v.faces_not_scored:
        pytest.skip("the detector found no face behind this patch")  # nothing to judge either way
    _cannot_judge(v, "face_covered")


def test_every_reason_has_a_sentence_that_says_what_would_help():
    for code in CODES:
        what, helps = REASONS[code]
        assert what.endswith(".") and helps.endswith(".") and reason_text(code) == f"{what} {helps}"


def test_judge_reports_the_first_failing_measure_in_a_fixed_order():
    ev = TrackEvidence(face_px=30, face_frames=0.1, yaw=0.9, sharpness=1.0, brightness=5.0, detector_score=0.1,
                       bits_per_pixel=0.0001)
    assert judge(ev, TEST_CUTS) == "face_too_small"
    assert judge(replace(ev, face_px=200), TEST_CUTS) == "heavy_compression"
    assert judge(replace(ev, face_px=200, bits_per_pixel=None), TEST_CUTS) == "too_dark"
    good = TrackEvidence(face_px=200, face_frames=1.0, yaw=0.0, sharpness=300, brightness=150, detector_score=0.95,
                         bits_per_pixel=0.1)
    assert judge(good, TEST_CUTS) is None
    assert judge(replace(good, yaw=None, detector_score=None, bits_per_pixel=None), TEST_CUTS) is None  # HOG, captured frames


def test_yaw_is_zero_for_a_frontal_face_and_grows_as_the_nose_moves_off_centre():
    eyes = ((100.0, 100.0), (160.0, 100.0))
    assert yaw_ratio((*eyes, (130.0, 130.0))) == pytest.approx(0.0)
    assert yaw_ratio((*eyes, (148.0, 130.0))) == pytest.approx(0.3)
    assert yaw_ratio(((100.0, 100.0), (100.0, 100.0), (110.0, 120.0))) >= 1.0  # eyes on one point: a full profile
