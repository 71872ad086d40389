"""The history of checks and the user's feedback on them: one table in the result cache's SQLite file
(0600), and the clips the user chose to keep for retraining, encrypted at rest.

A row per finished check (done, NO_FACE included; failed checks are not kept): when, the source, the
site's host, a content hash, the verdict as shown, P(fake), the model and its own cuts, and the user's
answer (the truth as they see it: REAL or FAKE) with an optional note. The address is kept only when
the user allowed it (the extension's options); otherwise a keyed digest of it (HMAC under the clip
key: not guessable from a list of URLs) is all that says which post it was, enough to tell that a
re-fetch for a kept clip is the same post. Nothing about the media itself is stored unless the user
keeps the clip.

Schema changes go through MIGRATIONS (PRAGMA user_version is the schema version); the server and
the CLI (`python -m server feedback`) open the file the same way. Blocking: callers use a thread.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .media import MediaStore, StoredMedia, decrypt_records
from .private import own_dir, write_private

LABELS = ("REAL", "FAKE")
SOURCES = ("url", "upload", "frames")
VERDICT_FILTERS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE")
FEEDBACK_FILTERS = ("any", "none", "REAL", "FAKE", "agrees", "disagrees")
CLIP_KEY_BYTES = 32


class HistoryError(Exception):
    """A history file this code cannot use (written by a newer version)."""


# Each entry moves the schema from version i to i + 1. Version 0 is the result cache as it was
# before the history existed (its `results` table is ResultCache's and stays as it is).
MIGRATIONS: list[tuple[str, ...]] = [
    ("""
    CREATE TABLE history (
        id TEXT PRIMARY KEY,            -- the check's id (GET /v1/checks/{id})
        created REAL NOT NULL,          -- when the check finished (unix time)
        source TEXT NOT NULL,           -- url | upload | frames
        site TEXT,                      -- the post's host (url), the page's (frames), NULL for uploads
        url TEXT,                       -- the address, only when the user allowed it
        url_digest TEXT,                -- HMAC of the canonical address under the clip key (url checks)
        content_sha256 TEXT,            -- the media's sha256, when the server had the media in this check
        verdict TEXT NOT NULL,          -- as shown: REAL | FAKE | UNCERTAIN | NO_FACE
        p_fake REAL,                    -- calibrated P(fake) (the model's Platt map)
        confidence REAL,
        model TEXT,
        model_sha256 TEXT,
        model_threshold REAL,           -- the model's own cuts (its checkpoint), whatever was shown
        model_band REAL,
        calibration TEXT NOT NULL,      -- model | personal: whose cuts made the verdict shown
        label TEXT,                     -- the user's answer: REAL | FAKE | NULL (none)
        note TEXT,
        answered REAL,                  -- when the answer was given or last changed
        clip TEXT                       -- the kept clip's file in the kept-clips folder, NULL: none
    )""",
     "CREATE INDEX history_created ON history (created)"),
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> int:
    """Brings the file to SCHEMA_VERSION, one migration per transaction. Returns the version found."""
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise HistoryError(f"the history in this data folder has schema version {found}, newer than this "
                           f"server's ({SCHEMA_VERSION}); use the newer server or another --data-dir")
    for version in range(found, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            # a server and the CLI may both open a fresh file: the one that gets here second finds it done
            if db.execute("PRAGMA user_version").fetchone()[0] == version:
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return found


@dataclass
class Entry:
    """One row of the history."""

    id: str
    created: float
    source: str
    verdict: str
    calibration: str = "model"
    site: str | None = None
    url: str | None = None
    url_digest: str | None = None
    content_sha256: str | None = None
    p_fake: float | None = None
    confidence: float | None = None
    model: str | None = None
    model_sha256: str | None = None
    model_threshold: float | None = None
    model_band: float | None = None
    label: str | None = None
    note: str | None = None
    answered: float | None = None
    clip: str | None = None

    def to_json(self) -> dict:
        from .jobs import iso

        feedback = None
        if self.label is not None:
            feedback = {"label": self.label, "note": self.note,
                        "agrees": self.label == self.verdict, "at": iso(self.answered or self.created)}
        return {
            "id": self.id, "created": iso(self.created), "source": self.source, "site": self.site, "url": self.url,
            "content_sha256": self.content_sha256, "verdict": self.verdict, "p_fake": self.p_fake,
            "confidence": self.confidence, "model": self.model, "calibration": self.calibration,
            "feedback": feedback, "clip_kept": self.clip is not None,
        }


COLUMNS = tuple(Entry.__dataclass_fields__)


def open_db(path: Path) -> sqlite3.Connection:
    """The SQLite file, created 0600 (it says what you watched), migrated to the current schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    db.execute("PRAGMA journal_mode=WAL")
    migrate(db)
    return db


def clip_key(path: Path) -> bytes:
    """The key kept clips are encrypted under (and URL digests keyed with): made once, 0600, in the
    config folder, apart from the clips in the data folder."""
    try:
        key = path.read_bytes()
        if len(key) == CLIP_KEY_BYTES:
            return key
    except FileNotFoundError:
        pass
    key = os.urandom(CLIP_KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, key)
    return key


class History:
    """The history table and the kept clips. Thread-safe (one connection behind a lock)."""

    def __init__(self, db_path: Path, kept_dir: Path, key_path: Path):
        self.db = open_db(db_path)
        self.kept_dir = kept_dir
        self.key = clip_key(key_path)
        self.clips = MediaStore(kept_dir, key=self.key)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    def url_digest(self, canonical_url: str) -> str:
        return hmac.new(self.key, canonical_url.encode(), hashlib.sha256).hexdigest()

    # --- rows ---
    def add(self, entry: Entry) -> None:
        """Records a finished check (once: a second add of the same id changes nothing)."""
        row = asdict(entry)
        with self._lock:
            self.db.execute(f"INSERT OR IGNORE INTO history ({', '.join(COLUMNS)}) VALUES "
                            f"({', '.join('?' * len(COLUMNS))})", [row[c] for c in COLUMNS])

    def get(self, entry_id: str) -> Entry | None:
        with self._lock:
            row = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM history WHERE id = ?", (entry_id,)).fetchone()
        return Entry(*row) if row else None

    def answer(self, entry_id: str, label: str | None, note: str | None, now: float | None = None) -> Entry | None:
        """Sets (or, with label None, withdraws) the user's answer. None when there is no such entry."""
        if label is not None and label not in LABELS:
            raise ValueError(f"label must be one of {LABELS} or None")
        with self._lock:
            cur = self.db.execute("UPDATE history SET label = ?, note = ?, answered = ? WHERE id = ?",
                                  (label, note if label is not None else None,
                                   (now or time.time()) if label is not None else None, entry_id))
        return self.get(entry_id) if cur.rowcount else None

    def page(self, limit: int = 50, offset: int = 0, verdict: str | None = None,
             feedback: str = "any", model_sha256: str | None = None) -> tuple[list[Entry], int]:
        """Entries newest first, filtered by the verdict shown and by the answer; and how many match."""
        where, args = [], []
        if verdict is not None:
            where.append("verdict = ?")
            args.append(verdict)
        if feedback == "none":
            where.append("label IS NULL")
        elif feedback in LABELS:
            where.append("label = ?")
            args.append(feedback)
        elif feedback == "agrees":
            where.append("label = verdict")
        elif feedback == "disagrees":
            where.append("label IS NOT NULL AND label != verdict")
        if model_sha256 is not None:
            where.append("model_sha256 = ?")
            args.append(model_sha256)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            total = self.db.execute(f"SELECT COUNT(*) FROM history {clause}", args).fetchone()[0]
            rows = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM history {clause} "
                                   "ORDER BY created DESC, id LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return [Entry(*r) for r in rows], total

    def answered(self, model_sha256: str | None = None) -> list[Entry]:
        """Every entry with an answer (of one model's checks, when given), oldest first."""
        with self._lock:
            rows = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM history WHERE label IS NOT NULL "
                                   "AND (? IS NULL OR model_sha256 = ?) ORDER BY created, id",
                                   (model_sha256, model_sha256)).fetchall()
        return [Entry(*r) for r in rows]

    def counts(self, model_sha256: str | None) -> dict:
        """How the user's answers met the verdicts shown, for one model's checks."""
        with self._lock:
            rows = self.db.execute("SELECT verdict, label, COUNT(*) FROM history WHERE label IS NOT NULL "
                                   "AND (? IS NULL OR model_sha256 = ?) GROUP BY verdict, label",
                                   (model_sha256, model_sha256)).fetchall()
        n = {(v, label): c for v, label, c in rows}
        return {
            "answers": sum(n.values()),
            "fake_verdicts": n.get(("FAKE", "REAL"), 0) + n.get(("FAKE", "FAKE"), 0),
            "fake_marked_real": n.get(("FAKE", "REAL"), 0),
            "real_verdicts": n.get(("REAL", "REAL"), 0) + n.get(("REAL", "FAKE"), 0),
            "real_marked_fake": n.get(("REAL", "FAKE"), 0),
            "uncertain_answered": n.get(("UNCERTAIN", "REAL"), 0) + n.get(("UNCERTAIN", "FAKE"), 0),
        }

    # --- deleting ---
    def delete(self, entry_id: str) -> bool:
        """Removes an entry and its kept clip. False when there was none."""
        with self._lock:
            row = self.db.execute("SELECT clip FROM history WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                return False
            self._remove_clip(row[0])
            self.db.execute("DELETE FROM history WHERE id = ?", (entry_id,))
        return True

    def delete_all(self) -> int:
        with self._lock:
            clips = [r[0] for r in self.db.execute("SELECT clip FROM history WHERE clip IS NOT NULL")]
            for name in clips:
                self._remove_clip(name)
            n = self.db.execute("DELETE FROM history").rowcount
        if self.kept_dir.is_dir():  # and anything a crash left between writing a clip and its row
            for p in self.kept_dir.iterdir():
                p.unlink(missing_ok=True)
        return n

    def purge(self, max_age_s: float, now: float | None = None) -> int:
        """Unanswered entries older than max_age_s go; answered ones are the user's labels and stay
        until the user deletes them."""
        cutoff = (now or time.time()) - max_age_s
        with self._lock:
            return self.db.execute("DELETE FROM history WHERE created < ? AND label IS NULL AND clip IS NULL",
                                   (cutoff,)).rowcount

    # --- kept clips ---
    def encrypt_clip(self, plain: Path) -> StoredMedia:
        """A plaintext file encrypted into the kept-clips folder (keep_clip then names its entry)."""
        own_dir(self.kept_dir)
        return self.clips.encrypt_file(plain)

    def keep_clip(self, entry_id: str, media: StoredMedia, ext: str) -> Entry | None:
        """Makes `media` (already encrypted into the kept-clips folder) the entry's kept clip, replacing
        one kept before. None (and the media deleted) when the entry is gone."""
        name = f"{entry_id}{ext}.enc"
        target = self.kept_dir / name
        with self._lock:
            row = self.db.execute("SELECT clip FROM history WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                media.path.unlink(missing_ok=True)
                return None
            if row[0] and row[0] != name:
                self._remove_clip(row[0])
            os.replace(media.path, target)
            self.db.execute("UPDATE history SET clip = ? WHERE id = ?", (name, entry_id))
        return self.get(entry_id)

    def drop_clip(self, entry_id: str) -> Entry | None:
        with self._lock:
            row = self.db.execute("SELECT clip FROM history WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                return None
            self._remove_clip(row[0])
            self.db.execute("UPDATE history SET clip = NULL WHERE id = ?", (entry_id,))
        return self.get(entry_id)

    def clip_path(self, entry: Entry) -> Path | None:
        return self.kept_dir / entry.clip if entry.clip else None

    def read_clip(self, entry: Entry):
        """The kept clip's plaintext, in chunks."""
        return decrypt_records(self.key, self.kept_dir / entry.clip)

    def _remove_clip(self, name: str | None) -> None:
        if name:
            (self.kept_dir / Path(name).name).unlink(missing_ok=True)

