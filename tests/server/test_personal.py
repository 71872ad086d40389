"""The personal calibration's rules (server/personal.py): never from fewer than 20 answers, never a
FAKE cut below the model's, and its cuts are the model's calibration code's on the user's answers."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import decide
from server.history import Entry
from server.personal import MIN_ANSWERS, MODEL_WEIGHT, NotEnoughAnswers, PersonalCalibration, fit

SHA = "ab" * 32


def answers(pairs) -> list[Entry]:
    return [Entry(id=f"{i:016d}", created=float(i), source="url", verdict=decide(p, 0.5, 0.1)[0], p_fake=p,
                  label=label, model_sha256=SHA) for i, (p, label) in enumerate(pairs)]


score = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
answer = st.tuples(score, st.sampled_from(["REAL", "FAKE"]))
model_cuts = st.tuples(st.floats(0.05, 0.95), st.floats(0.0, 0.3)).filter(lambda tb: 0 <= tb[0] - tb[1] and tb[0] + tb[1] <= 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(answer, min_size=MIN_ANSWERS, max_size=200), model_cuts)
def test_personal_calibration_never_lowers_the_fake_cut(pairs, cuts):
    threshold, band = cuts
    fitted = fit(answers(pairs), threshold, band, "m", SHA)
    assert fitted.threshold + fitted.uncertain_band >= threshold + band
    assert fitted.uncertain_band >= 0
    # and so no video the model's cuts call REAL or UNCERTAIN becomes FAKE
    for p, _ in pairs:
        if decide(p, threshold, band)[0] != "FAKE":
            assert decide(p, fitted.threshold, fitted.uncertain_band)[0] != "FAKE"


@settings(max_examples=100, deadline=None)
@given(st.lists(answer, max_size=MIN_ANSWERS - 1))
def test_personal_calibration_needs_20_answers(pairs):
    with pytest.raises(NotEnoughAnswers):
        fit(answers(pairs), 0.5, 0.1, "m", SHA)


def test_answers_without_a_score_do_not_count_towards_the_20():
    entries = answers([(0.2, "REAL")] * (MIN_ANSWERS - 1)) + [
        Entry(id="noface0000000000", created=99.0, source="url", verdict="NO_FACE", label="REAL", model_sha256=SHA)]
    with pytest.raises(NotEnoughAnswers) as e:
        fit(entries, 0.5, 0.1, "m", SHA)
    assert e.value.have == MIN_ANSWERS - 1


def test_many_real_videos_scoring_high_raise_the_fake_cut_by_the_calibrations_own_conformal_cut():
    from model import conformal_fake_cut

    reals = [0.55 + 0.4 * i / 999 for i in range(1000)]  # the user's real videos score 0.55-0.95
    fitted = fit(answers([(p, "REAL") for p in reals]), 0.5, 0.1, "m", SHA)
    own = conformal_fake_cut(reals, [f"{i:016d}" for i in range(1000)], 0.05)
    w = 1000 / (1000 + MODEL_WEIGHT)
    assert fitted.threshold + fitted.uncertain_band == pytest.approx(w * own + (1 - w) * 0.6, abs=2e-6)
    assert fitted.before["real"]["FAKE"] > fitted.after["real"]["FAKE"]


def test_a_video_answered_on_several_checks_counts_once():
    same = [Entry(id=f"same{i:012d}", created=100.0 + i, source="upload", verdict="FAKE", p_fake=0.7, label="REAL",
                  model_sha256=SHA, content_sha256="c" * 64) for i in range(5)]  # one clip, five checks
    with pytest.raises(NotEnoughAnswers) as e:
        fit(answers([(0.2, "REAL")] * (MIN_ANSWERS - 2)) + same, 0.5, 0.1, "m", SHA)
    assert e.value.have == MIN_ANSWERS - 1
    assert fit(answers([(0.2, "REAL")] * (MIN_ANSWERS - 1)) + same, 0.5, 0.1, "m", SHA).answers == MIN_ANSWERS


def test_too_few_real_videos_for_the_conformal_bound_leave_the_fake_cut_as_the_models():
    # five real videos, all scored FAKE by the model: too few people to bound a share of them
    fitted = fit(answers([(0.9, "REAL")] * 5 + [(0.95, "FAKE")] * 15), 0.5, 0.1, "m", SHA)
    assert fitted.threshold + fitted.uncertain_band == pytest.approx(0.6, abs=2e-6) and not fitted.fake_cut_fitted
    assert fitted.threshold - fitted.uncertain_band > 0.4  # the REAL cut moved towards where they score


def test_personal_cuts_apply_only_to_the_model_they_were_fitted_for(tmp_path):
    personal = PersonalCalibration(tmp_path / "personal-calibration.json")
    cuts = fit(answers([(0.65, "REAL")] * 30), 0.5, 0.1, "m", SHA)
    personal.save(cuts)
    result = {"verdict": "FAKE", "p_fake": 0.65, "confidence": 0.65, "threshold": 0.5, "uncertain_band": 0.1}
    assert personal.apply(dict(result), "another model")["calibration"] == "model"
    mine = personal.apply(dict(result), SHA)
    assert (mine["calibration"], mine["threshold"], mine["uncertain_band"]) == ("personal", cuts.threshold, cuts.uncertain_band)
    assert personal.undo() and personal.apply(dict(result), SHA)["calibration"] == "model"
