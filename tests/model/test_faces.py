import numpy as np
import pytest

from model.faces import Box, CropSpec, NoFaceError, crop_face, find_faces, track_faces
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
