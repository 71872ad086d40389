"""`python -m server feedback`: the user's answers, from the command line.

    python -m server feedback calibrate [--dry-run] [--undo]   refit the FAKE/REAL cuts on your answers
    python -m server feedback export --out DIR                 your kept clips + labels.csv for training

calibrate: the personal cuts for the model of your latest answers (server/personal.py), with what
they change on your own answers; written to the data folder, where a running server picks them up
(its results then say `calibration: "personal"`). --undo goes back to the model's own cuts.

export: DIR/labels.csv (file,label,group: what `python -m model.training.prepare DIR OUT --labels
DIR/labels.csv` reads) and DIR/clips/, the clips you kept for retraining, decrypted, labelled with
your answer. Answers without a kept clip are counted, not exported.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from .config import Config
from .history import History
from .personal import MIN_ANSWERS, VERDICTS, NotEnoughAnswers, PersonalCalibration, fit


def _history(config: Config) -> History:
    return History(config.cache_path, config.kept_dir, config.clip_key_path)


def _table(before: dict, after: dict) -> str:
    lines = [f"{'your answer':<16}{'called':<11}{'model cuts':>11}{'personal':>10}"]
    for truth in ("real", "fake"):
        for v in VERDICTS:
            lines.append(f"{truth + ' (' + str(sum(before[truth].values())) + ')':<16}{v:<11}"
                         f"{before[truth][v]:>11}{after[truth][v]:>10}")
    return "\n".join(lines)


def calibrate(config: Config, dry_run: bool, undo: bool) -> int:
    personal = PersonalCalibration(config.personal_calibration_path)
    if undo:
        done = personal.undo()
        print("Personal calibration removed: the model's own cuts apply." if done
              else "There was no personal calibration: the model's own cuts apply.")
        return 0
    history = _history(config)
    try:
        answered = history.answered()
    finally:
        history.close()
    scored = [e for e in answered if e.p_fake is not None and e.model_sha256]
    if not scored:
        print(f"error: no answers yet. Answer at least {MIN_ANSWERS} checks (\"Is this right?\" in a badge's "
              "details or on the check-a-file page).", file=sys.stderr)
        return 2
    latest = scored[-1]  # the model of the latest answer: the one the server runs, most likely
    mine = [e for e in scored if e.model_sha256 == latest.model_sha256]
    try:
        cuts = fit(mine, latest.model_threshold, latest.model_band, latest.model, latest.model_sha256)
    except NotEnoughAnswers as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Model {latest.model} ({latest.model_sha256[:12]}), {cuts.answers} answered videos "
          f"({cuts.reals} real, {cuts.fakes} fake):\n"
          f"  model's cuts:    REAL up to {cuts.model_threshold - cuts.model_band:.3f}, "
          f"FAKE from {cuts.model_threshold + cuts.model_band:.3f}\n"
          f"  personal cuts:   REAL up to {cuts.threshold - cuts.uncertain_band:.3f}, "
          f"FAKE from {cuts.threshold + cuts.uncertain_band:.3f}"
          + ("" if cuts.fake_cut_fitted else f" (too few real videos, {cuts.reals}, to move the FAKE cut)") + "\n\n"
          "On your own answers (how many of your real / fake videos each set of cuts calls REAL, UNCERTAIN, FAKE):\n"
          + _table(cuts.before, cuts.after))
    if dry_run:
        print("\n--dry-run: nothing written.")
        return 0
    personal.save(cuts)
    print(f"\nWritten to {config.personal_calibration_path}; a running server uses it within a second. "
          "Undo: python -m server feedback calibrate --undo")
    return 0


def export(config: Config, out: Path) -> int:
    history = _history(config)
    try:
        answered = history.answered()
        kept = [e for e in answered if e.clip]
        (out / "clips").mkdir(parents=True, exist_ok=True)
        os.chmod(out, 0o700)
        rows = []
        for e in kept:
            name = Path(e.clip).name.removesuffix(".enc")  # <id><ext>
            target = out / "clips" / name
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                for chunk in history.read_clip(e):
                    f.write(chunk)
            group = f"feedback/{e.content_sha256[:16]}" if e.content_sha256 else f"feedback/{e.id}"
            rows.append((f"clips/{name}", e.label, group))
    finally:
        history.close()
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "group"])
        w.writerows(rows)
    print(f"Exported {len(rows)} kept clips with your labels to {out}/labels.csv "
          f"({len(answered) - len(kept)} answers without a kept clip were not exported).\n"
          f"Prepare them for training: python -m model.training.prepare {out} OUT_DIR --labels {out}/labels.csv")
    return 0


def main(argv: list[str] | None = None) -> int:
    d = Config()
    p = argparse.ArgumentParser(prog="python -m server feedback", description=__doc__.split("\n\n")[0])
    p.add_argument("--config-dir", type=Path, default=d.config_dir, help="token, TLS files, the clip key (default %(default)s)")
    p.add_argument("--data-dir", type=Path, default=d.data_dir, help="history, kept clips (default %(default)s)")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("calibrate", help="refit the FAKE/REAL cuts on your answers (at least "
                                         f"{MIN_ANSWERS}); the FAKE cut never goes below the model's")
    c.add_argument("--dry-run", action="store_true", help="show before/after on your answers, write nothing")
    c.add_argument("--undo", action="store_true", help="remove the personal cuts: the model's own apply again")
    e = sub.add_parser("export", help="your kept clips and labels.csv, for model.training.prepare")
    e.add_argument("--out", type=Path, required=True, help="the folder to write (labels.csv, clips/)")
    for s in (c, e):  # also accepted after the subcommand
        s.add_argument("--config-dir", type=Path, default=argparse.SUPPRESS)
        s.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS)
    a = p.parse_args(argv)
    config = Config(config_dir=a.config_dir, data_dir=a.data_dir)
    if a.command == "calibrate":
        return calibrate(config, a.dry_run, a.undo)
    return export(config, a.out)


if __name__ == "__main__":
    sys.exit(main())
