"""Verdict calibration: the map from a network's P(fake) to a calibrated one, and the cuts that turn it
into REAL / UNCERTAIN / FAKE. Pure numpy: the training calibration (`model.training.calibrate`) and a
user's personal calibration (the server's feedback) fit with these same functions.

The FAKE cut is what protects real people. It is a conformal bound over *people*, not clips: each
person (a group) weighs the same however many clips of them there are, and the finite-sample correction
keeps "at most `alpha` of real people above the cut" honest for a person not seen:
    cut = the smallest t with  sum_j w_j 1[s_j <= t] / (n + 1)  >=  1 - alpha
where n is the number of people and w_j splits one person's weight over their clips. With too few
people for the bound ((1 - alpha)(n + 1) > n) there is no such t and nothing may be called FAKE.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def platt(p_fake: float, a: float, b: float) -> float:
    """p' = sigmoid(a * logit(p) + b)."""
    p = min(max(p_fake, 1e-6), 1 - 1e-6)
    return float(1.0 / (1.0 + math.exp(-(a * math.log(p / (1 - p)) + b))))


def platt_heads(raw: dict[str, float], heads: dict[str, dict]) -> dict[str, float]:
    """A two-head model's raw scores, each through its head's Platt map (heads[head]["platt"], as
    a checkpoint's calibration stores them); unchanged for a head without one. The model's score is
    the largest of these."""
    out = {}
    for head, p in raw.items():
        fit = (heads.get(head) or {}).get("platt")
        out[head] = platt(p, *fit) if fit else p
    return out


def fit_platt(raw: Sequence[float], labels: Sequence[int], weights: Sequence[float] | None = None,
              l2: float = 1e-2, iters: int = 100) -> tuple[float, float]:
    """(a, b) of p' = sigmoid(a * logit(p) + b), by weighted logistic regression (damped Newton steps),
    each class weighing half (within a class, `weights` share it out: one per person, say); a small L2
    pull towards the identity (a=1, b=0) keeps a tiny set sane. Each step is halved until the loss
    falls: a full Newton step from the identity can overshoot far when many scores sit at the
    network's ceiling (seen: a=201 instead of 0.51)."""
    p = np.clip(np.asarray(raw, float), 1e-6, 1 - 1e-6)
    x = np.log(p / (1 - p))
    y = np.asarray(labels, float)
    sw = np.ones_like(y) if weights is None else np.asarray(weights, float)
    w = np.where(y == 1, 0.5 * sw / max(1e-12, sw[y == 1].sum()), 0.5 * sw / max(1e-12, sw[y == 0].sum()))
    prior = np.array([1.0, 0.0])

    def loss(t: np.ndarray) -> float:
        z = t[0] * x + t[1]
        # -log sigmoid(z) = logaddexp(0, -z): stable for any z
        return float(np.sum(w * (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))) + l2 / 2 * np.sum((t - prior) ** 2))

    theta = prior.copy()
    current = loss(theta)
    for _ in range(iters):
        z = theta[0] * x + theta[1]
        q = 1 / (1 + np.exp(-z))
        grad = np.array([np.sum(w * (q - y) * x), np.sum(w * (q - y))]) + l2 * (theta - prior)
        h = w * q * (1 - q)
        hess = np.array([[np.sum(h * x * x), np.sum(h * x)], [np.sum(h * x), np.sum(h)]]) + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(theta - scale * step) > current:
            scale /= 2
        if scale <= 1e-6:
            break
        theta = theta - scale * step
        current = loss(theta)
        if np.abs(scale * step).max() < 1e-9:
            break
    if theta[0] <= 0:  # the map must keep the model's order
        raise ValueError(f"calibration fit reversed the scores (a={theta[0]:.3f}): the model does not separate the set")
    return float(theta[0]), float(theta[1])


def person_weights(groups: Sequence[str]) -> np.ndarray:
    """One unit of weight per person (group), shared equally by that person's clips."""
    counts: dict[str, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    return np.array([1.0 / counts[g] for g in groups])


def _above(sorted_scores: np.ndarray, t: float) -> float:
    """A cut halfway between t and the next higher score (a cut stored rounded must not land on a
    score and flip it), or just above t when none is higher."""
    higher = sorted_scores[sorted_scores > t]
    return float((t + higher[0]) / 2) if len(higher) else float(np.nextafter(t, 2.0))


def conformal_fake_cut(scores: Sequence[float], groups: Sequence[str], alpha: float = 0.05) -> float:
    """The FAKE cut: P(fake) at or above it is FAKE, so that at most `alpha` of real people (weighted
    per person, with the finite-sample correction) are above it. 1.0 (never FAKE) when there are too
    few people for the bound."""
    s = np.asarray(scores, float)
    if len(s) == 0:
        return 1.0
    w = person_weights(groups)
    n = len(set(groups))
    need = (1 - alpha) * (n + 1)
    if need > n + 1e-9:
        return 1.0
    order = np.argsort(s, kind="stable")
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, need - 1e-9))  # first position whose cumulative weight reaches `need`
    return min(1.0, _above(s[order], float(s[order][k])))


def real_cut(scores: Sequence[float], groups: Sequence[str], share: float = 0.8) -> float:
    """The REAL cut: P(fake) at or below it is REAL, so that `share` of real people (weighted per
    person) are at or below it."""
    s = np.asarray(scores, float)
    if len(s) == 0:
        return 0.0
    w = person_weights(groups)
    order = np.argsort(s, kind="stable")
    cum = np.cumsum(w[order]) / w.sum()
    k = int(np.searchsorted(cum, share - 1e-9))
    return float(s[order][min(k, len(s) - 1)])


def threshold_and_band(real: float, fake: float) -> tuple[float, float]:
    """The (threshold, uncertain band) that `verdict.decide` reads: REAL at or below `real`, FAKE at or
    above `fake`, UNCERTAIN between. A REAL cut above the FAKE cut is lowered to it (no band)."""
    real = min(real, fake)
    return (real + fake) / 2, (fake - real) / 2


def weighted_share(flags: Sequence[bool], groups: Sequence[str]) -> float:
    """The share of people for whom `flags` hold, each person weighing one (their clips share it)."""
    if not len(flags):
        return float("nan")
    w = person_weights(groups)
    return float(np.sum(w * np.asarray(flags, float)) / w.sum())


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
