"""Every real clip in ../shared/data/real has a face track (the detector finds real people)."""
import pytest
from testenv import shared_data_dir

from model.faces import find_faces
from model.video import read_frames

_data = shared_data_dir()
CLIPS = sorted((_data / "real").glob("*.mp4")) if _data else []


@pytest.mark.skipif(not CLIPS, reason="shared data (../shared/data/real) is not present on this machine")
@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.name)
def test_a_face_track_is_found_in_each_real_clip(clip):
    fr = read_frames(clip, 20)
    detections, tracks = find_faces(fr)
    assert tracks and len(tracks[0].boxes) >= 3
