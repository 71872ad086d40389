"""Personal calibration: the FAKE/REAL cuts refitted on the user's own answers (opt-in).

The model's checkpoint keeps its own cuts, untouched. `fit` runs the calibration's own cut code
(model/calibration.py, the same functions the training calibration uses) over the calibrated P(fake)
of the videos the user answered: the FAKE cut as the conformal bound over the user's real videos
(each video weighs one, however many checks of it were answered), the REAL cut by their share. It
blends those with the model's own cuts (the model's calibration counts as MODEL_WEIGHT real videos)
and never lets the FAKE cut fall below the model's: a user's real videos can make FAKE rarer, never
more frequent. With too few real videos for the bound, the FAKE cut stays the model's. It refuses to
fit on fewer than MIN_ANSWERS answered videos.

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

from model import conformal_fake_cut, decide, real_cut, threshold_and_band  # numpy only: no torch in this process

from .history import Entry
from .private import write_private

MIN_ANSWERS = 20  # answered videos with a P(fake), of one model's checks
MODEL_WEIGHT = 50  # the model's own calibration weighs as much as this many of the user's real videos
# the training calibration's targets: at most ALPHA of the real videos at or above the FAKE cut,
# REAL_SHARE of them at or below the REAL cut
ALPHA = 0.05
REAL_SHARE = 0.8
RELOAD_EVERY_S = 1.0
VERDICTS = ("REAL", "UNCERTAIN", "FAKE")


class NotEnoughAnswers(Exception):
    def __init__(self, have: int):
        super().__init__(f"Personal calibration needs answers on at least {MIN_ANSWERS} videos checked by this "
                         f"model (with a P(fake); a video answered twice counts once); there are {have}.")
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
    answers: int  # answered videos (a video answered on several checks counts once)
    reals: int
    fakes: int
    date: str
    fake_cut_fitted: bool = False  # False: too few real videos for the bound, the FAKE cut is the model's
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


def video_of(e: Entry) -> str:
    """The video an entry is about: its content hash, else its address's digest, else the check itself."""
    return e.content_sha256 or e.url_digest or e.id


def scored(entries: list[Entry]) -> list[Entry]:
    """The answers a calibration can use, one per video (the latest answer and score of each): a label
    and a P(fake) (a check that could not judge has none)."""
    latest: dict[str, Entry] = {}
    for e in sorted(entries, key=lambda e: (e.answered or e.created, e.created)):
        if e.label in ("REAL", "FAKE") and e.p_fake is not None:
            latest[video_of(e)] = e
    return list(latest.values())


def fit(entries: list[Entry], model_threshold: float, model_band: float, model: str | None,
        model_sha256: str, today: dt.date | None = None) -> PersonalCuts:
    """The personal cuts for one model from the user's answers on its checks (NotEnoughAnswers below
    MIN_ANSWERS videos). Blended with the model's cuts; the FAKE cut is never below the model's."""
    usable = scored(entries)
    if len(usable) < MIN_ANSWERS:
        raise NotEnoughAnswers(len(usable))
    reals = [e for e in usable if e.label == "REAL"]
    scores, videos = [e.p_fake for e in reals], [video_of(e) for e in reals]
    model_real, model_fake = model_threshold - model_band, model_threshold + model_band
    real, fake = model_real, model_fake
    fitted = bool(reals) and (1 - ALPHA) * (len(reals) + 1) <= len(reals)  # enough real videos for the bound
    if reals:
        w = len(reals) / (len(reals) + MODEL_WEIGHT)
        real = w * real_cut(scores, videos, REAL_SHARE) + (1 - w) * model_real
        if fitted:
            fake = w * conformal_fake_cut(scores, videos, ALPHA) + (1 - w) * model_fake
    fake = max(fake, model_fake)  # the user's reals can only raise it
    threshold, band = threshold_and_band(real, fake)
    threshold, band = round(threshold, 6), round(band, 6)
    if threshold + band < model_fake:  # rounding must not undo the guarantee
        band = round(model_fake - threshold, 6) + 1e-6
    return PersonalCuts(
        model=model, model_sha256=model_sha256, threshold=threshold, uncertain_band=band,
        model_threshold=model_threshold, model_band=model_band, answers=len(usable), reals=len(reals),
        fakes=len(usable) - len(reals), date=(today or dt.date.today()).isoformat(), fake_cut_fitted=fitted,
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
