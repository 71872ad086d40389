import numpy as np
import pytest

from model.faces import Box, NoFaceError, crop_face, find_faces, track_faces
from model.spec import CropSpec
from model.video import read_frames


def test_face_is_found_in_nearly_every_sampled_frame(media_dir):
    fr = read_frames(media_dir / "face.mp4", 20)
    detections, tracks = find_faces(fr)
    found = sum(1 for d in detections if d)
    assert found >= 0.9 * len(fr.images)
    assert len(tracks) == 1  # one face moving across the frame stays one track
    assert len(tracks[0].boxes) >= 0.9 * len(fr.images)


def test_two_faces_become_two_separate_tracks(media_dir):
    fr = read_frames(media_dir / "twofaces.mp4", 10)
    _, tracks = find_faces(fr)
    assert len(tracks) == 2
    left = [b.centre[0] for b in tracks[0].boxes.values()] + [b.centre[0] for b in tracks[1].boxes.values()]
    xs = sorted(np.mean([b.centre[0] for b in t.boxes.values()]) for t in tracks)
    assert xs[0] < 340 < xs[1], left
    assert all(len(t.boxes) == len(fr.images) for t in tracks)


def test_no_face_raises_no_face_error_with_the_users_message(media_dir):
    fr = read_frames(media_dir / "noface.mp4", 10)
    with pytest.raises(NoFaceError, match="No faces detected. Cannot process the video."):
        find_faces(fr)


def test_tracks_keep_the_three_largest_faces():
    dets = [[Box(0, 10 * (k + 1) + 100 * k, 10 * (k + 1), 100 * k) for k in range(5)]]
    tracks = track_faces(dets, max_tracks=3)
    assert [t.last.width for t in tracks] == [50, 40, 30]


def test_square_crop_is_112_and_pads_at_the_frame_edge():
    img = np.zeros((200, 300, 3), np.uint8)
    img[:, :] = (10, 200, 30)
    crop = crop_face(img, Box(0, 80, 60, 0), CropSpec())  # face in the top-left corner
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert (crop == (10, 200, 30)).all()  # reflected padding, no black border


def test_legacy_crop_is_the_tight_box_resized():
    img = np.zeros((100, 100, 3), np.uint8)
    img[20:60, 30:50] = 255
    crop = crop_face(img, Box(20, 50, 60, 30), CropSpec(margin=0.0, square=False))
    assert crop.shape == (112, 112, 3) and crop.min() == 255


@pytest.mark.parametrize("detector", ["yunet", "hog"])
def test_parallel_detection_gives_the_same_boxes_as_one_thread(media_dir, detector):
    from model.faces import detect_faces

    fr = read_frames(media_dir / "twofaces.mp4", 10)
    one = detect_faces(fr, threads=1, detector=detector)
    assert [len(b) for b in one] == [2] * 10
    assert detect_faces(fr, threads=2, detector=detector) == detect_faces(fr, threads=4, detector=detector) == one


def test_hog_detection_gives_the_same_boxes_as_face_recognition(media_dir):
    import face_recognition

    from model.faces import detect_faces

    # our per-thread dlib detector answers exactly what face_recognition's shared one does
    fr = read_frames(media_dir / "face.mp4", 10)
    assert fr.images[0].shape[1] == 640  # detected at their own size, so the boxes are comparable
    for img, boxes in zip(fr.images, detect_faces(fr, threads=2, detector="hog"), strict=True):
        expected = [Box(*loc) for loc in face_recognition.face_locations(img, number_of_times_to_upsample=0)]
        assert sorted(boxes, key=Box.as_list) == sorted(expected, key=Box.as_list)


def _small_faces_frame(face_px: int) -> np.ndarray:
    import media
    from PIL import Image

    face = np.asarray(Image.fromarray(media.head()).resize((face_px, face_px)))
    canvas = np.full((1080, 1920, 3), 90, np.uint8)
    for x, y in [(200, 300), (900, 500), (1500, 700)]:
        canvas[y:y + face_px, x:x + face_px] = face
    return canvas


def test_small_faces_in_a_1080p_frame_are_found_at_its_own_resolution():
    from model.faces import _detect_one, detect_faces
    from model.video import Frames

    img = _small_faces_frame(200)  # three heads of 200 px: faces too small for a 640 px HOG search
    assert _detect_one(img, 640, "hog") == [] and _detect_one(img, 640, "hog", finer=True) == []
    found = detect_faces(Frames([img, img], [0.0, 1.0]), detector="hog")
    assert [len(b) for b in found] == [3, 3]
    # in full-resolution pixels: each box inside one of the pasted heads
    heads = [(200, 300), (900, 500), (1500, 700)]
    assert sorted(next(i for i, (x, y) in enumerate(heads) if x <= b.centre[0] <= x + 200 and y <= b.centre[1] <= y + 200)
                  for b in found[0]) == [0, 1, 2]


def test_a_clip_without_faces_searches_only_a_few_frames_finer(media_dir, monkeypatch):
    import model.faces as faces

    finer = []
    real = faces._detect_finer
    monkeypatch.setattr(faces, "_detect_finer", lambda img, *a: finer.append(1) or real(img, *a))  # counts, still detects
    fr = read_frames(media_dir / "noface.mp4", 10)
    assert faces.detect_faces(fr) == [[]] * 10
    assert len(finer) == faces.FINE_PROBE_FRAMES  # 5 of the 10 frames, not all


def test_faces_found_only_by_the_finer_search_are_found_in_every_frame():
    from model.faces import detect_faces
    from model.video import Frames

    img = _small_faces_frame(200)
    found = detect_faces(Frames([img] * 8, [float(i) for i in range(8)]), detector="hog")
    assert [len(b) for b in found] == [3] * 8  # the probe frames found them, so the rest were searched too


@pytest.mark.parametrize("detector", ["yunet", "hog"])
def test_either_detector_finds_the_astronauts_face_with_the_same_interface(detector):
    import media

    from model.faces import detect_faces
    from model.video import Frames

    img = media.head()  # 260 x 260: the astronaut's head and shoulders
    (boxes,) = detect_faces(Frames([img], [0.0], 1, 0.0, img.shape[1], img.shape[0]), detector=detector)
    assert len(boxes) == 1 and isinstance(boxes[0], Box)
    b = boxes[0]
    assert 60 <= b.width <= 200 and 60 <= b.height <= 220
    assert 70 <= b.centre[0] <= 190 and 40 <= b.centre[1] <= 170  # on her face, not the suit
    if detector == "yunet":  # YuNet also gives the eyes, the nose tip and the mouth corners
        (rx, ry), (lx, ly) = b.points[:2]
        assert b.left < rx < lx < b.right and b.top < ry < b.bottom


def test_unknown_detector_is_refused():
    from model.faces import detect_faces
    from model.video import Frames

    with pytest.raises(ValueError, match="unknown face detector"):
        detect_faces(Frames([np.zeros((64, 64, 3), np.uint8)], [0.0]), detector="magic")


def _track(size: int, frames: int, x: int = 0):
    from model.faces import FaceTrack

    return FaceTrack({i: Box(100, x + size, 100 + size, x) for i in range(frames)})


def test_faces_too_small_or_secondary_are_not_scored():
    from model.faces import MIN_FACE_PX, unscored_reasons

    main = _track(200, 20)
    tiny = _track(MIN_FACE_PX - 8, 20, x=400)  # a face in a crowd, every frame
    inset = _track(60, 20, x=600)  # a reference-face inset: seen always, far smaller than the main face
    passer = _track(180, 6, x=800)  # a passer-by: as big, but only in 6 of the main face's 20 frames
    second = _track(150, 18, x=1000)  # a second speaker: comparable size and presence
    reasons = unscored_reasons([main, tiny, inset, passer, second])
    assert reasons[0] is None and reasons[4] is None
    assert "too small" in reasons[1] and "much smaller" in reasons[2] and "frames" in reasons[3]


def test_the_main_face_is_the_largest_judgeable_one():
    from model.faces import unscored_reasons

    # a crowd of tiny faces seen in every frame outweighs nothing: the one big face is the main face
    assert unscored_reasons([_track(40, 20), _track(120, 5)]) == [unscored_reasons([_track(40, 20)])[0], None]


def test_a_clip_whose_faces_are_all_too_small_cannot_be_judged_and_says_why(tmp_path):
    import media
    from PIL import Image

    from model import check
    from model.evidence import reason_text

    face = np.asarray(Image.fromarray(media.head()).resize((36, 36)))
    frames = []
    for i in range(10):
        canvas = np.full((360, 640, 3), 90, np.uint8)
        canvas[100:136, 200 + i * 4:236 + i * 4] = face
        frames.append(canvas)
    clip = media.write_clip(tmp_path / "tiny.mp4", frames)
    v = check(clip, frames=10, detector="yunet")
    if not v.faces_not_scored:
        pytest.skip("the detector found no face this small at all")  # nothing to judge either way
    assert v.verdict == "UNCERTAIN" and v.p_fake is None and v.confidence is None
    assert v.reason == "face_too_small" and v.reason_text == reason_text("face_too_small")
    assert v.faces_not_scored[0].size_px < 48 and v.faces_not_scored[0].code == "face_too_small"
