import pytest

from model.video import MediaError, read_frames, sample_times


def test_sample_times_spread_over_the_whole_clip():
    ts = sample_times(30.0, 20)
    assert len(ts) == 20
    assert ts[0] == 0.0 and ts[-1] == 28.5  # not only the first N frames
    gaps = {round(b - a, 6) for a, b in zip(ts, ts[1:])}
    assert gaps == {1.5}


def test_video_frames_are_sampled_evenly_over_the_clip(media_dir):
    fr = read_frames(media_dir / "face.mp4", 10)  # 30 frames at 10 fps = 3 s
    assert len(fr.images) == 10
    assert fr.images[0].shape == (360, 640, 3)
    assert fr.times[0] < 0.3 and fr.times[-1] > 2.5
    assert fr.times == sorted(fr.times)


def test_more_frames_requested_than_the_clip_has_returns_each_frame_once(media_dir):
    fr = read_frames(media_dir / "face.mp4", 100)
    assert len(fr.images) == len(set(fr.times)) == 30


def test_image_is_a_one_frame_video(media_dir):
    fr = read_frames(media_dir / "face.jpg", 20)
    assert fr.kind == "image" and len(fr.images) == 1 and fr.images[0].shape == (260, 260, 3)


def test_one_frame_video_is_read(media_dir):
    fr = read_frames(media_dir / "oneframe.mp4", 20)
    assert len(fr.images) == 1


@pytest.mark.parametrize(
    "name, message",
    [
        ("notes.mp4", "Only video or image files are supported"),
        ("missing.mp4", "File not found"),
    ],
)
def test_unreadable_inputs_raise_clear_errors(media_dir, name, message):
    with pytest.raises(MediaError, match=message):
        read_frames(media_dir / name, 20)


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        read_frames(tmp_path / "empty.mp4")


def test_truncated_video_gives_frames_or_a_clear_error(media_dir):
    try:
        fr = read_frames(media_dir / "truncated.mp4", 20)
    except MediaError as e:
        assert "corrupt" in str(e) or "no readable frames" in str(e) or "not one" in str(e)
    else:
        assert 0 < len(fr.images) <= 20
