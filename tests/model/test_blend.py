"""Self-blended fakes: deterministic, confined to the face, consistent over a clip."""
import cv2
import numpy as np
import pytest
from media import head

from model.faces import crop_face, crop_points, find_faces
from model.spec import CropSpec
from model.training.blend import blend_sequence, find_landmarks, make_mask, sample_params, self_blend
from model.video import Frames


@pytest.fixture(scope="module")
def face():
    img = head()
    fr = Frames([img], [0.0])
    _, tracks = find_faces(fr)
    box = tracks[0].boxes[0]
    spec = CropSpec()
    return crop_face(img, box, spec), crop_points(find_landmarks(img, box), box, spec)


def test_landmarks_are_68_points_inside_the_crop(face):
    crop, lm = face
    assert lm.shape == (68, 2)
    assert (lm >= 0).all() and (lm < crop.shape[0]).all()


def test_blend_is_deterministic_under_a_seed(face):
    crop, lm = face
    a, _ = self_blend(crop, lm, sample_params(np.random.default_rng(7)))
    b, _ = self_blend(crop, lm, sample_params(np.random.default_rng(7)))
    c, _ = self_blend(crop, lm, sample_params(np.random.default_rng(8)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("seed", range(12))
def test_mask_lies_inside_the_face_and_the_blend_changes_only_inside_it(face, seed):
    crop, lm = face
    p = sample_params(np.random.default_rng(seed))
    out, mask = self_blend(crop, lm, p)
    hull = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(lm.astype(np.int32)), 1)
    # the elastic deformation may push the edge a little past the landmark hull
    face_region = cv2.dilate(hull, np.ones((9, 9), np.uint8)).astype(bool)
    assert mask.max() > 0
    assert not (mask > 0)[~face_region].any()
    changed = (out != crop).any(axis=2)
    assert not changed[mask == 0].any()
    assert changed.any()


def test_a_clip_shares_one_set_of_blend_parameters(face):
    crop, lm = face
    frames = blend_sequence([crop, crop, crop], [lm, lm, lm], np.random.default_rng(3))
    assert np.array_equal(frames[0], frames[1]) and np.array_equal(frames[1], frames[2])


def test_mask_is_scaled_by_the_blend_ratio(face):
    crop, lm = face
    p = sample_params(np.random.default_rng(0))
    from dataclasses import replace

    full = make_mask(crop.shape[:2], lm, replace(p, blend_ratio=1.0))
    half = make_mask(crop.shape[:2], lm, replace(p, blend_ratio=0.5))
    assert full.max() == pytest.approx(1.0, abs=1e-3) and half.max() == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("kind", ["swap-lowres", "lipsync"])
@pytest.mark.parametrize("seed", range(4))
def test_made_fakes_change_the_face_and_leave_the_frame_corners(face, kind, seed):
    from model.training.blend import synthesise

    crop, lm = face
    big = cv2.resize(crop, (224, 224))  # made at the cache's size, as training does
    lm = lm * (224 / crop.shape[0])
    (out,) = synthesise(kind, [big], [lm], np.random.default_rng(seed))
    assert out.shape == big.shape and out.dtype == np.uint8
    x0, y0 = lm.min(axis=0).astype(int)
    x1, y1 = lm.max(axis=0).astype(int)
    face_diff = np.abs(out[y0:y1, x0:x1].astype(int) - big[y0:y1, x0:x1]).mean()
    assert face_diff > 0.5  # the face was re-rendered
    assert np.array_equal(out[:8, :8], big[:8, :8])  # far from the face: the original pixels


def test_made_fakes_are_reproducible_under_a_seed(face):
    from model.training.blend import SYNTHESES, synthesise

    crop, lm = face
    for kind in SYNTHESES:
        a = synthesise(kind, [crop, crop], [lm, lm], np.random.default_rng(3))
        b = synthesise(kind, [crop, crop], [lm, lm], np.random.default_rng(3))
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), kind


def test_the_held_out_kind_is_never_trained_on_by_a_blend_head():
    """lipsync stays unseen by every recipe that trains the network's own (blend) head; only the
    generation head trains on it, and on nothing else made."""
    from model.training.blend import GENERATION_SYNTHESES, SYNTHESES, TRAINED_SYNTHESES
    from model.training.train import RECIPES, parse_weights

    held_out = set(SYNTHESES) - set(TRAINED_SYNTHESES)
    assert held_out == {"lipsync"} == set(GENERATION_SYNTHESES)
    for name, recipe in RECIPES.items():
        made = set(parse_weights(recipe["synth"]))
        if recipe["train_head"] == "generation":
            assert made <= set(GENERATION_SYNTHESES), name
        else:
            assert not held_out & made, name
