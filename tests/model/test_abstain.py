"""Where a model stops being trustworthy (model.training.abstain): the bin rule, the cut, and the FAKE
cut a network is measured against before it has a calibration."""
import numpy as np
import pytest

from model.training.abstain import choose_cut, failing, provisional_fake_cut


def _bin(lo, hi, auc, real_fake, n_fake=20, n_real=20):
    return {"lo": lo, "hi": hi, "n": n_fake + n_real, "n_fake": n_fake, "n_real": n_real, "auc": auc,
            "real_fake_rate": real_fake}


def test_a_bin_fails_when_no_better_than_chance_or_crying_wolf_and_says_nothing_when_too_small():
    assert failing(_bin(0, 1, 0.55, 0.0)) is True  # chance
    assert failing(_bin(0, 1, 0.90, 0.30)) is True  # 30 % of its reals called FAKE
    assert failing(_bin(0, 1, 0.90, 0.05)) is False
    assert failing(_bin(0, 1, 0.40, 0.90, n_fake=3, n_real=4)) is None  # too few of either class to say


def test_the_cut_ends_the_run_of_failing_bins_from_the_poor_end_and_small_bins_neither_end_nor_extend_it():
    bins = [_bin(0, 1, 0.5, 0.0), _bin(1, 2, 0.9, 0.9, n_real=3, n_fake=3), _bin(2, 3, 0.55, 0.0), _bin(3, 4, 0.9, 0.0),
            _bin(4, 5, 0.5, 0.0)]
    assert choose_cut(bins, "low") == 3  # the failing bin at the good end is not part of the run
    assert choose_cut(bins, "high") == 4  # a measure whose poor end is high (the turn): from the top
    assert choose_cut([_bin(0, 1, 0.9, 0.0), _bin(1, 2, 0.5, 0.0)], "low") is None


def test_an_uncalibrated_network_is_measured_against_the_cut_its_calibration_will_set():
    """The conformal 5 % bound over real people's raw scores of the files as they are (not the default
    0.6, which means nothing on a new network's raw scale); copies and defects do not count."""
    def row(p, group, label="REAL", defect="none"):
        return {"label": label, "group": group, "defect": defect, "faces": [{"p": p}]}

    rows = [row(0.01 * k, f"p{k}") for k in range(60)] + [row(0.99, "x", defect="dark"), row(0.99, "f", label="FAKE")]
    cut = provisional_fake_cut(rows)
    reals = sorted(0.01 * k for k in range(60))
    assert sum(p >= cut for p in reals) <= 0.05 * 61  # at most 5 % of people, with the finite-sample correction
    assert cut == pytest.approx(0.58, abs=0.011)  # the 58th of 60 people: (1 - 0.05) * 61 = 57.95


def test_a_measure_is_judged_on_the_files_as_they_are_and_its_own_defect_only():
    """Dark copies of heavily compressed clips keep the clip's low bits per pixel; their false alarms
    are the dark's doing: they put a cut on brightness, not on compression."""
    from model.training.abstain import analyse

    def row(label, defect, bpp, brightness, p):
        return {"label": label, "group": f"g{bpp:.4f}{brightness}", "defect": defect,
                "faces": [{"p": p, "bits_per_pixel": bpp, "brightness": brightness}]}

    rows = []
    for k in range(100):
        bpp = 0.001 + 0.003 * k  # 0.001 .. 0.3
        rows += [row("REAL", "none", bpp, 100 + k % 50, 0.1), row("FAKE", "none", bpp, 100 + k % 50, 0.9)]
    for k in range(40):  # dim copies of the most compressed clips, reals called FAKE
        bpp = 0.001 + 0.001 * k
        rows += [row("REAL", "dark", bpp, 10 + k % 10, 0.99), row("FAKE", "dark", bpp, 10 + k % 10, 0.9)]
    result = analyse(rows, fake_cut=0.5)
    assert "min_bits_per_pixel" not in result["cuts"]
    assert 19 <= result["cuts"]["min_brightness"] <= 110  # past the dark copies (to a bin), not far into the rest


def test_every_bin_holds_enough_of_each_class_to_be_judged_and_equal_values_stay_together():
    """Walking from the poor end, a bin closes only with MIN_PER_CLASS reals and fakes: a stretch where
    reals are rare (fakes only, say) joins its neighbour instead of making bins that say nothing."""
    from model.training.abstain import MIN_PER_CLASS, bins_for

    def row(label, score, p):
        return {"label": label, "group": "g", "defect": "none", "faces": [{"p": p, "detector_score": score}]}

    rng = np.random.default_rng(0)
    rows = [row("REAL", 0.70 + 0.002 * k, 0.9) for k in range(15)]  # the poor end
    rows += [row("FAKE", 0.73 + 0.001 * k, rng.random()) for k in range(120)]  # fakes only
    rows += [row("REAL", 0.90, rng.random() * 0.5) for _ in range(40)]  # 40 equal values
    rows += [row("FAKE", 0.90, 0.5 + rng.random() * 0.5) for _ in range(40)]
    rows += [row("REAL", 0.95 + 0.0001 * k, 0.1) for k in range(30)]
    bins = bins_for(rows, "detector_score", fake_cut=0.8)
    assert sum(b["n"] for b in bins) == len(rows)
    assert all(b["n_real"] >= MIN_PER_CLASS and b["n_fake"] >= MIN_PER_CLASS for b in bins)
    assert all(a["hi"] == b["lo"] for a, b in zip(bins[:-1], bins[1:], strict=True))  # contiguous, in increasing order
    assert sum(b["lo"] <= 0.90 < b["hi"] or b["lo"] == 0.90 for b in bins) == 1  # the 80 equal values in one bin

