"""Personal calibration: the FAKE/REAL cuts refitted on the user's own answers (opt-in).

The model's checkpoint keeps its own cuts, untouched. `fit` runs the training calibration's cut
step (the same code, from `model`) over the calibrated P(fake) of the checks the user answered,
blends the cuts it finds with the model's own (the model's calibration counts as MODEL_WEIGHT answers
of real videos), and never lets the FAKE cut fall below the model's: a user's real videos can make
FAKE rarer, never more frequent. It refuses to fit on fewer than MIN_ANSWERS scored answers.

The result lives in the server's data folder (personal-calibration.json, 0600) and names the model it
was fitted for: the server applies it to that model's checks only, says so in every result
(`calibration: "personal"`, else `"model"`), and `undo` removes it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from model import decide

from .history import Entry
from .private import write_private

MIN_ANSWERS = 20  # scored answers (a verdict with a P(fake)) of one model's checks
MODEL_WEIGHT = 50  # the model's own calibration weighs as much as this many of the user's real videos
# the training calibration's targets (model/training/calibrate.py's defaults): at most FPR of the
# real videos called FAKE, REAL_SHARE of them called REAL
FPR = 0.05
REAL_SHARE = 0.8
RELOAD_EVERY_S = 1.0
VERDICTS = ("REAL", "UNCERTAIN", "FAKE")


class NotEnoughAnswers(Exception):
    def __init__(self, have: int):
        super().__init__(f"Personal calibration needs at least {MIN_ANSWERS} answers on checks with a verdict "
                         f"by this model; there are {have}.")
        self.have = have


@dataclass
class PersonalCuts:
    """A personal calibration for one model: its cuts, the model's, and what they do on the answers."""

    model: str | None
    model_sha256: str
    threshold: float
    uncertain_band: float
    model_threshold: float
    model_band: float
    answers: int
    reals: int
    fakes: int
    date: str
    before: dict = field(default_factory=dict)  # the user's answers under the model's cuts (summary())
    after: dict = field(default_factory=dict)  # ... and under these

    @property
    def fake_cut(self) -> float:
        return self.threshold + self.uncertain_band

    def to_json(self) -> dict:
        return asdict(self)


def verdict_of(p_fake: float, threshold: float, band: float) -> str:
    return decide(p_fake, threshold, band)[0]


def summary(entries: list[Entry], threshold: float, band: float) -> dict:
    """How cuts call the user's answered videos: for the ones they said are real, and fake, how many
    are called REAL, UNCERTAIN and FAKE."""
    out = {"real": dict.fromkeys(VERDICTS, 0), "fake": dict.fromkeys(VERDICTS, 0)}
    for e in entries:
        out["real" if e.label == "REAL" else "fake"][verdict_of(e.p_fake, threshold, band)] += 1
    return out


def scored(entries: list[Entry]) -> list[Entry]:
    """The answers a calibration can use: a verdict with a P(fake)."""
    return [e for e in entries if e.label in ("REAL", "FAKE") and e.p_fake is not None]


def verdict_cuts(real_scores: list[float], fpr: float, real_share: float) -> tuple[float, float]:
    """(REAL cut, FAKE cut) on the real videos' calibrated scores, by the training calibration's own
    code. The one adapter onto model/training/calibrate.py until the cut code moves to the inference
    side (model/calibration.py); tests/test_layout.py allows this one import and no other."""
    from model.training.calibrate import choose_cuts

    return choose_cuts(real_scores, fpr, real_share)


def fit(entries: list[Entry], model_threshold: float, model_band: float, model: str | None,
        model_sha256: str, today: dt.date | None = None) -> PersonalCuts:
    """The personal cuts for one model from the user's answers on its checks (NotEnoughAnswers below
    MIN_ANSWERS). Blended with the model's cuts; the FAKE cut is never below the model's."""
    usable = scored(entries)
    if len(usable) < MIN_ANSWERS:
        raise NotEnoughAnswers(len(usable))
    reals = [e.p_fake for e in usable if e.label == "REAL"]
    model_real, model_fake = model_threshold - model_band, model_threshold + model_band
    if reals:
        real_cut, fake_cut = verdict_cuts(reals, FPR, REAL_SHARE)
        w = len(reals) / (len(reals) + MODEL_WEIGHT)
        real_cut = w * real_cut + (1 - w) * model_real
        fake_cut = w * fake_cut + (1 - w) * model_fake
    else:  # nothing said about real videos: nothing moves
        real_cut, fake_cut = model_real, model_fake
    fake_cut = max(fake_cut, model_fake)  # the user's reals can only raise it
    real_cut = min(real_cut, fake_cut)
    threshold, band = round((real_cut + fake_cut) / 2, 6), round((fake_cut - real_cut) / 2, 6)
    if threshold + band < model_fake:  # rounding must not undo the guarantee
        band = round(model_fake - threshold, 6) + 1e-6
    return PersonalCuts(
        model=model, model_sha256=model_sha256, threshold=threshold, uncertain_band=band,
        model_threshold=model_threshold, model_band=model_band, answers=len(usable), reals=len(reals),
        fakes=len(usable) - len(reals), date=(today or dt.date.today()).isoformat(),
        before=summary(usable, model_threshold, model_band), after=summary(usable, threshold, band))


class PersonalCalibration:
    """The personal cuts in the data folder, as the server applies them. Re-read when the file
    changes (`python -m server feedback calibrate` may write it while the server runs)."""

    def __init__(self, path: Path):
        self.path = path
        self._cuts: PersonalCuts | None = None
        self._stamp: tuple | None = None
        self._checked = 0.0

    def current(self) -> PersonalCuts | None:
        now = time.monotonic()
        if now - self._checked >= RELOAD_EVERY_S or self._stamp is None:
            self._checked = now
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                stamp = ()
            if stamp != self._stamp:
                self._stamp, self._cuts = stamp, load(self.path) if stamp else None
        return self._cuts

    def for_model(self, model_sha256: str | None) -> PersonalCuts | None:
        cuts = self.current()
        return cuts if cuts is not None and cuts.model_sha256 == model_sha256 else None

    def apply(self, result: dict, model_sha256: str | None) -> dict:
        """The result (a copy the caller owns) with the verdict decided by the personal cuts when they
        are this model's, and `calibration` saying whose cuts decided it."""
        cuts = self.for_model(model_sha256)
        if cuts is None or result.get("verdict") not in VERDICTS or result.get("p_fake") is None:
            result["calibration"] = "model"
            return result
        verdict, confidence = decide(result["p_fake"], cuts.threshold, cuts.uncertain_band)
        result.update(verdict=verdict, confidence=round(confidence, 6), threshold=cuts.threshold,
                      uncertain_band=cuts.uncertain_band, calibration="personal")
        return result

    def save(self, cuts: PersonalCuts) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps(cuts.to_json(), indent=1).encode())
        self._stamp = None  # read again at the next use

    def undo(self) -> bool:
        """Back to the model's own cuts. False when there was nothing to undo."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        self._stamp = None
        return True


def load(path: Path) -> PersonalCuts | None:
    try:
        data = json.loads(path.read_text())
        return PersonalCuts(**data)
    except (OSError, ValueError, TypeError):
        return None  # unreadable or from another version: the model's cuts apply
