"""The verdict's cuts (model/calibration.py): a FAKE cut that holds for real people not seen."""
import numpy as np
import pytest

from model.calibration import conformal_fake_cut, real_cut, threshold_and_band, weighted_share, wilson
from model.verdict import decide


def _people(n: int, seed: int = 0) -> tuple[list[float], list[str]]:
    rng = np.random.default_rng(seed)
    return rng.beta(2, 5, n).tolist(), [f"p{i}" for i in range(n)]


def test_the_fake_cut_leaves_at_most_alpha_of_people_above_it_with_the_finite_sample_correction():
    scores, groups = _people(99)
    cut = conformal_fake_cut(scores, groups, alpha=0.05)
    above = sum(s >= cut for s in scores)
    # (1 - 0.05) * (99 + 1) = 95 people must be below: at most 4 above, not the 4.95 a plain quantile allows
    assert above <= 4 and above == 99 - 95
    assert cut > max(s for s in scores if s < cut)


def test_one_person_with_many_clips_does_not_move_the_fake_cut():
    scores, groups = _people(60)
    cut = conformal_fake_cut(scores, groups)
    # one more person, seen in 200 clips all scoring high: weighs one person, not 200
    many = conformal_fake_cut(scores + [0.99] * 200, groups + ["talkative"] * 200)
    one = conformal_fake_cut(scores + [0.99], groups + ["talkative"])
    assert many == pytest.approx(one)
    # counted per clip instead, those 200 clips would have pushed the cut to the top
    assert conformal_fake_cut(scores + [0.99] * 200, groups + [f"c{i}" for i in range(200)]) > 0.99
    assert one >= cut


def test_too_few_people_for_the_bound_means_nothing_is_called_fake():
    scores, groups = _people(18)  # (1 - 0.05) * 19 = 18.05 > 18
    assert conformal_fake_cut(scores, groups, alpha=0.05) == 1.0


def test_the_real_cut_keeps_the_asked_share_of_people_real_and_never_passes_the_fake_cut():
    scores, groups = _people(50)
    low, high = real_cut(scores, groups, 0.8), conformal_fake_cut(scores, groups)
    assert weighted_share([s <= low for s in scores], groups) >= 0.8
    threshold, band = threshold_and_band(low, high)
    assert decide(high, threshold, band)[0] == "FAKE" and decide(low, threshold, band)[0] == "REAL"
    t2, b2 = threshold_and_band(0.9, 0.7)  # a REAL cut above the FAKE cut is lowered to it: no band
    assert (t2, b2) == (0.7, 0.0)


def test_wilson_interval_of_zero_in_forty_is_not_zero_wide():
    lo, hi = wilson(0, 40)
    assert lo == 0.0 and 0.08 < hi < 0.09  # 0 of 40 real videos called FAKE still allows up to ~9 %
    lo, hi = wilson(5, 100)
    assert lo < 0.05 < hi


def test_each_head_is_calibrated_on_the_fakes_of_its_kind():
    from model.evidence import Cuts
    from model.training.calibrate import judged_score, signal_kind

    assert signal_kind("face-swap", "DFDC") == "blend" and signal_kind("synthetic", "sbi") == "blend"
    assert signal_kind("talking-head", "EDTalk") == "generation" and signal_kind("synthetic", "lipsync") == "generation"
    assert signal_kind("portrait-animation", "AniPortrait") == "generation" and signal_kind("real", "real") is None
    good = {"face_px": 200, "face_frames": 20, "frames": 20, "sharpness": 100.0, "brightness": 120.0, "detector_score": 0.95}
    row = {"faces": [{"p": 0.7, "signals": {"blend": 0.2, "generation": 0.7}, **good},
                     {"p": 0.4, "signals": {"blend": 0.4, "generation": 0.1}, **good}]}
    assert judged_score(row, Cuts()) == (0.7, None)
    assert judged_score(row, Cuts(), "blend") == (0.4, None)  # each head's own score, over the judged faces
    assert judged_score(row, Cuts(), "generation") == (0.7, None)
