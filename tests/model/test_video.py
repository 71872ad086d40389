import itertools

import numpy as np
import pytest

from model.video import MediaError, read_frames, sample_times


def test_sample_times_spread_over_the_whole_clip():
    ts = sample_times(30.0, 20)
    assert len(ts) == 20
    assert ts[0] == 0.0 and ts[-1] == 28.5  # not only the first N frames
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(ts)}
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


# --- keyframe-aware sampling ---------------------------------------------------------------------
import media  # noqa: E402

from model.video import PacketIndex, plan, plan_cost  # noqa: E402


def _index(fps: float, seconds: float, key_every: int) -> PacketIndex:
    frames = [i / fps for i in range(int(seconds * fps))]
    keys = frames[::key_every]
    return PacketIndex(frames, keys, list(range(0, len(frames), key_every)))


def _slices(idx: PacketIndex, n: int) -> list[tuple[float, float]]:
    w = idx.span / n
    return [(i * w, (i + 1) * w) for i in range(n)]


def test_plan_takes_one_frame_from_each_slice_preferring_keyframes():
    idx = _index(30, 30, 60)  # 30 s at 30 fps, a keyframe every 2 s: 15 keyframes for 20 slices
    steps = plan(idx, 20)
    times = [s.time for s in steps]
    assert len(steps) == 20 and times == sorted(times)
    for (lo, hi), t in zip(_slices(idx, 20), times, strict=False):
        assert lo - 1e-6 <= t < hi  # one sample from each equal slice of the clip
    assert sum(t in idx.keys for t in times) == 15  # every keyframe is used
    seeks, work = plan_cost(steps, idx)
    assert work <= 20 + 5 * 45  # the five slices without a keyframe decode on at most 1.5 s each
    assert work < 900 // 4  # vs 900 frames for reading everything


def test_plan_decodes_on_when_keyframes_are_rare():
    idx = _index(30, 10, 300)  # one keyframe at the start
    steps = plan(idx, 20)
    assert len(steps) == 20
    assert steps[0].seek and not any(s.seek for s in steps[1:])  # one pass forward, no re-seeking
    assert plan_cost(steps, idx) == (1, 1 + int(steps[-1].time * 30 + 0.5))


def test_plan_with_more_slices_than_frames_takes_every_frame_once():
    idx = _index(10, 3, 5)
    steps = plan(idx, 100)
    assert [s.time for s in steps] == idx.frames


def test_plan_keeps_samples_apart():
    idx = _index(30, 4, 30)  # keyframes every second
    steps = plan(idx, 8)  # half-second slices: a keyframe in every other slice
    gaps = [b.time - a.time for a, b in itertools.pairwise(steps)]
    assert min(gaps) >= idx.span / 8 / 4 - 1e-6


def test_reading_decodes_what_the_plan_says(tmp_path):
    import av

    import model.video as video

    # 12 s at 30 fps with a keyframe every 2 s: 6 slices of 2 s hold one keyframe each
    clip = media.write_clip(tmp_path / "gop.mp4", media.face_frames(360, (160, 90)), fps=30, gop=60)
    fr = read_frames(clip, 6)
    assert [round(t, 3) for t in fr.times] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert {k: fr.extra[k] for k in ("indexed", "decoded", "seeks")} == {"indexed": True, "decoded": 6, "seeks": 6}  # not 360
    assert 0 < fr.extra["bits_per_pixel"] < 1  # the stream's size, from the packets read for the plan
    fr = read_frames(clip, 20)
    assert len(fr.images) == 20 and fr.duration == pytest.approx(12.0)
    for (lo, hi), t in zip([(i * 0.6, (i + 1) * 0.6) for i in range(20)], fr.times, strict=True):
        assert lo - 1e-3 <= t < hi
    # 0.6 s slices and 2 s keyframes: two slices in three decode on from the sample before
    assert fr.extra["decoded"] < 360 * 2 / 3
    with av.open(str(clip)) as container:
        idx = video._scan_index(container, container.streams.video[0])
    assert plan_cost(plan(idx, 20), idx) == (fr.extra["seeks"], fr.extra["decoded"])


def test_a_file_that_cannot_be_indexed_is_still_sampled_over_the_whole_clip(tmp_path, monkeypatch):
    import model.video as video

    clip = media.write_clip(tmp_path / "gop.mp4", media.face_frames(90, (160, 90)), fps=30, gop=30)
    monkeypatch.setattr(video, "MAX_INDEX_PACKETS", 10)  # too many packets to index: decode without a plan
    fr = read_frames(clip, 10)
    assert fr.extra["indexed"] is False
    assert fr.extra["bits_per_pixel"] is None or fr.extra["bits_per_pixel"] > 0  # the declared bit rate, if any
    assert len(fr.images) == 10 and fr.times[0] < 0.1 and fr.times[-1] > 2.5


def test_webm_clips_are_sampled_with_their_keyframes(tmp_path):
    clip = media.write_clip(tmp_path / "vp9.webm", media.face_frames(60, (160, 90)), fps=10, codec="libvpx-vp9", gop=20)
    fr = read_frames(clip, 3)  # 6 s, keyframes at 0, 2 and 4 s
    assert [round(t, 3) for t in fr.times] == [0.0, 2.0, 4.0]
    assert fr.extra["decoded"] == 3


@pytest.mark.slow
def test_a_4096_square_clip_at_100_frames_stays_under_640_mib_of_decoding(tmp_path):
    """Frames are scaled down while they are decoded: a 4096x4096 clip used to hold 100 full-size
    frames (5 GiB); now at most 100 x 1280x720 pixels of frames plus the decoder's own buffers."""
    import subprocess
    import sys

    import av
    import media
    from PIL import Image
    from testenv import ROOT

    clip = tmp_path / "huge.mp4"
    face = np.asarray(Image.fromarray(media.head()).resize((1200, 1200)))
    with av.open(str(clip), "w") as out:  # frame by frame: the test itself must not hold them all
        stream = out.add_stream("libx264", rate=25)
        stream.width = stream.height = 4096
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "32"}
        base = np.full((4096, 4096, 3), 90, np.uint8)
        for i in range(104):
            img = base.copy()
            img[1000:2200, 200 + 20 * i:1400 + 20 * i] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    code = ("import resource, sys; from model.video import read_frames; import av, numpy;"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
            f"fr = read_frames({str(clip)!r}, 100);"
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
            "print(len(fr.images), fr.width, fr.images[0].shape[1], (peak - base) // 1024)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    n, source_width, held_width, grown_mib = map(int, r.stdout.split())
    assert n == 100 and source_width == 4096 and held_width <= 1280
    assert grown_mib < 640, f"decoding grew the process by {grown_mib} MiB"


def test_large_frames_are_held_scaled_down_and_report_the_sources_size(tmp_path):
    import media

    frames = [np.full((1440, 2560, 3), 90, np.uint8) for _ in range(4)]
    clip = media.write_clip(tmp_path / "qhd.mp4", frames)
    fr = read_frames(clip, 4)
    assert (fr.width, fr.height) == (2560, 1440)  # the source's size, what boxes are given in
    assert fr.images[0].shape[:2] == (1080, 1920) and fr.scale == pytest.approx(0.75)


def test_a_turned_photo_is_read_upright_and_scaled_to_its_share(tmp_path):
    from PIL import Image

    im = Image.new("RGB", (4000, 3000), (10, 20, 30))
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to show": a phone photo taken upright
    im.save(tmp_path / "turned.jpg", exif=exif)
    fr = read_frames(tmp_path / "turned.jpg", 10)
    assert (fr.width, fr.height) == (3000, 4000)  # as shown, upright
    assert fr.images[0].shape[:2] == (1920, 1440) and fr.scale == pytest.approx(0.48)
