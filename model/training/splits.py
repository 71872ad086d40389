"""The fixed data splits: which group of clips is trained on, used for calibration, or tested.

The split file (`splits.csv`, next to this module) was written once, before any training of the
video model, and is committed: a group (a Celeb-DF target identity, a MEAD actor, a generator
sample, one DFDC clip) is the unit, so no group is ever on two sides. Rows:

    source,group,split,why
    video,celebdf-id13,test,Celeb-DF-v2 held out entirely
    utkface,*,hash:0.8/0.1/0.1,...      a rule: each group's split from a salted hash (split_of)

Splits: `train` (training), `cal` (early stopping, choosing thresholds; never reported as a
result), `test` (reported only; never used to choose anything).

    python -m model.training.splits --check            no group on two sides, every video listed
    python -m model.training.splits --write LABELS.CSV  (once) assign the video groups and write the file
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import random
import sys
from collections import defaultdict
from pathlib import Path

SPLITS_FILE = Path(__file__).with_name("splits.csv")
SPLITS = ("train", "cal", "test")
SALT = "deepfake-check"


def hashed_split(group: str, fractions: tuple[float, float, float], salt: str = SALT) -> str:
    """Deterministic split of a group from a salted hash: the rule for sources with thousands of groups."""
    h = int(hashlib.sha256(f"{salt}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    train, cal, _ = fractions
    if h < train:
        return "train"
    return "cal" if h < train + cal else "test"


class Splits:
    """The split file in memory: explicit (source, group) rows and per-source rules."""

    def __init__(self, path: Path = SPLITS_FILE):
        self.path = path
        self.groups: dict[tuple[str, str], str] = {}
        self.rules: dict[str, str] = {}
        with open(path, newline="") as f:
            for row in csv.DictReader(r for r in f if not r.startswith("#")):
                if row["group"] == "*":
                    self.rules[row["source"]] = row["split"]
                else:
                    key = (row["source"], row["group"])
                    if key in self.groups and self.groups[key] != row["split"]:
                        raise ValueError(f"{path}: group {key} is on two sides")
                    self.groups[key] = row["split"]

    def of(self, source: str, group: str) -> str:
        if (source, group) in self.groups:
            return self.groups[(source, group)]
        rule = self.rules.get(source)
        if rule is None:
            raise KeyError(f"{source}/{group} is in no split (add it to {self.path.name} before training)")
        if rule in SPLITS:
            return rule
        if rule == "as-video":  # made from a labelled video: its source clip's split
            return self.of("video", group.removeprefix("synth-"))
        if rule.startswith("hash:"):
            fr = tuple(float(v) for v in rule[5:].split("/"))
            return hashed_split(group, fr)  # type: ignore[arg-type]
        raise ValueError(f"{self.path}: bad rule {rule!r} for {source}")


# How the video groups were assigned (once, seeded; kept so the file can be explained, not re-made).
# family/method -> (train, cal, test) shares, or a fixed split with the reason.
FIXED = {
    "Celeb-DF-v2": ("test", "Celeb-DF-v2 held out entirely: cross-dataset face-swap test"),
    "Celeb-DF-v2 synthesis": ("test", "Celeb-DF-v2 held out entirely: cross-dataset face-swap test"),
    "EMO": ("test", "unseen talking-head generator: never trained or tuned on"),
    "DreamTalk": ("test", "unseen talking-head generator: never trained or tuned on"),
}
SHARES = {"fake": (0.5, 0.2, 0.3), "real": (0.55, 0.2, 0.25), "DFDC": (0.4, 0.25, 0.35)}


def assign(labels_csv: Path, seed: int = 20261202) -> list[tuple[str, str, str, str]]:
    rows = list(csv.DictReader(open(labels_csv, newline="")))
    by_method: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_method[r["method"]].add(r["group"])
    out: dict[str, tuple[str, str]] = {}
    rng = random.Random(seed)
    for method in sorted(by_method):
        groups = sorted(by_method[method] - set(out))
        if method in FIXED:
            for g in groups:
                out[g] = FIXED[method]
            continue
        label = {r["label"] for r in rows if r["method"] == method}
        shares = SHARES["DFDC"] if method == "DFDC" else SHARES["fake" if label == {"FAKE"} else "real"]
        rng.shuffle(groups)
        n = len(groups)
        n_train, n_cal = round(n * shares[0]), round(n * shares[1])
        for i, g in enumerate(groups):
            split = "train" if i < n_train else "cal" if i < n_train + n_cal else "test"
            out[g] = (split, f"{method}: {shares[0]:.0%}/{shares[1]:.0%}/{shares[2]:.0%} by group, seeded")
    rows = [("video", g, s, why) for g, (s, why) in sorted(out.items())]
    # ../shared/data/fake-dev (Audio2Head): the group is the person (two files show Churchill)
    people = sorted(FAKE_DEV_PEOPLE)
    rng.shuffle(people)
    for i, person in enumerate(people):
        split = "train" if i < 3 else "cal" if i < 5 else "test"
        rows.append(("fake-dev", person, split, "Audio2Head by person: 3/2/2, seeded"))
    return rows


FAKE_DEV_PEOPLE = {"audio2head-WinstonChurchill", "audio2head-biden", "audio2head-cage", "audio2head-cruise",
                   "audio2head-masike", "audio2head-obama", "audio2head-trump"}


def fake_dev_group(filename: str) -> str:
    """The person in a ../shared/data/fake-dev file name (audio2head-cage_intro.mp4 -> audio2head-cage)."""
    stem = Path(filename).stem
    for person in FAKE_DEV_PEOPLE:
        if stem == person or stem.startswith(person + "_"):
            return person
    return stem


def check(splits: Splits, labels_csv: Path | None) -> list[str]:
    problems = []
    if labels_csv is not None:
        for r in csv.DictReader(open(labels_csv, newline="")):
            try:
                splits.of("video", r["group"])
            except KeyError as e:
                problems.append(str(e))
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.splits", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", type=Path, metavar="LABELS_CSV", help="check the split file against extract.py's labels.csv")
    ap.add_argument("--write", type=Path, metavar="LABELS_CSV", help="assign the video groups (once) and write the file")
    a = ap.parse_args(argv)
    if a.write:
        rows = assign(a.write)
        with open(SPLITS_FILE, "w", newline="") as f:
            f.write("# Fixed 2026-12-02, before any video training. Never edit a group's split to improve a result.\n")
            w = csv.writer(f)
            w.writerow(["source", "group", "split", "why"])
            w.writerows(rows)
            w.writerows([
                ("real-shared", "*", "test", "../shared/data/real: false-positive test, never trained on"),
                ("utkface", "*", "hash:0.8/0.1/0.1", "UTKFace stills, each its own identity"),
                ("meso-train", "*", "train", "MesoNet crops, not grouped by video: training only"),
                ("meso-val", "*", "hash:0/0.5/0.5", "MesoNet validation part, by video"),
                ("synthetic", "*", "as-video", "fakes made from a real clip (model.training.synth) take its split"),
            ])
        print(f"wrote {SPLITS_FILE}")
    problems = check(Splits(), a.check or a.write)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
