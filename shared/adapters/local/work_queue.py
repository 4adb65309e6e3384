"""The local work queue and event ledger, in SQLite: acknowledge fast, work later, lose nothing.

Triggers `put` a message and return at once; workers `claim` jobs one lane at a time (training
in one lane, deploys and data in the other), so two deploys never interleave. A job that keeps
failing ends `dead` with its reason. After a crash, `recover` puts interrupted jobs back in
the queue (or marks them dead once out of attempts). The ledger makes handlers idempotent: an
event key is claimed once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.automation.messages import Message, lane_of
from shared.errors import CorruptState
from shared.ports import Job
from shared.sqlite_tx import immediate_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT UNIQUE NOT NULL, lane TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, dedupe TEXT,
    not_before REAL NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS one_queued_per_key ON jobs(dedupe) WHERE status = 'queued' AND dedupe IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, id);
CREATE TABLE IF NOT EXISTS ledger (
    event_key TEXT PRIMARY KEY, received_at TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT ''
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteWorkQueue:
    """Jobs and the event ledger in one SQLite file (WAL, so readers never block the workers): the local adapter."""

    def __init__(self, path: Path, *, max_attempts: int = 3, retry_delay_s: float = 5.0) -> None:
        self.path = path
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:  # not a SQLite file, or a damaged one: say which and what to do
            raise CorruptState(f"{self.path} is not a readable work queue ({str(exc)[:80]}): stop bankops, move the file "
                               "aside (its queued jobs and event ledger go with it; files still in incoming/ are judged "
                               "again) and start again, which creates an empty queue") from None
        finally:
            db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate_transaction(self.path)

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        return Job(job_id=row["job_id"], lane=row["lane"], kind=row["kind"], status=row["status"], attempts=row["attempts"],
                   created_at=row["created_at"], updated_at=row["updated_at"], error=row["error"],
                   result=json.loads(row["result"]), payload=json.loads(row["payload"]))

    # --- the ledger -------------------------------------------------------------------------
    def accept(self, items: Sequence[tuple[Message, str]]) -> list[bool]:
        """Record each event key in the ledger and queue its message, all in one transaction.

        Returns, per item, True when it was new (and is now queued) and False for a key seen before.
        Either every new item is recorded and queued, or (on any error) none is: a crash or a bad
        item never leaves a key in the ledger without its job, so a redelivery is never lost.
        """
        taken = []
        with self._tx() as db:
            for message, event_key in items:
                cur = db.execute("INSERT OR IGNORE INTO ledger(event_key, received_at) VALUES (?, ?)", (event_key, _now()))
                if cur.rowcount == 1:
                    self._insert(db, message, None)
                taken.append(cur.rowcount == 1)
        return taken

    def claim_event(self, event_key: str) -> bool:
        """True the first time `event_key` is seen, False for every repeat (no job: see `accept`)."""
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO ledger(event_key, received_at) VALUES (?, ?)", (event_key, _now()))
            return cur.rowcount == 1

    def release_event(self, event_key: str) -> None:
        """Forget a key whose work failed before it was queued, so a redelivery can try again."""
        with self._tx() as db:
            db.execute("DELETE FROM ledger WHERE event_key = ?", (event_key,))

    # --- jobs -------------------------------------------------------------------------------
    @staticmethod
    def _insert(db: sqlite3.Connection, message: Message, dedupe: str | None) -> None:
        now = _now()
        db.execute(
            "INSERT INTO jobs(job_id, lane, kind, payload, status, dedupe, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
            (message.message_id, lane_of(message.kind), message.kind, json.dumps(message.to_dict()),
             "queued", dedupe, now, now),
        )

    def put(self, message: Message, *, dedupe: str | None = None) -> tuple[Job, bool]:
        """Queue `message`; with `dedupe`, a job already queued under that key is returned instead."""
        with self._tx() as db:
            if dedupe is not None:
                row = db.execute("SELECT * FROM jobs WHERE dedupe = ? AND status = 'queued'", (dedupe,)).fetchone()
                if row is not None:
                    return self._job(row), False
            self._insert(db, message, dedupe)
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (message.message_id,)).fetchone()
        return self._job(row), True

    def claim(self, lane: str) -> Job | None:
        """The oldest due queued job of `lane`, now marked running; None when there is none."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE lane = ? AND status = 'queued' AND not_before <= ? ORDER BY id LIMIT 1",
                (lane, time.time()),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status='running', attempts=attempts+1, updated_at=? WHERE id=?", (_now(), row["id"]))
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return self._job(row)

    def start(self, job_id: str) -> Job | None:
        """A delivery of one named job (the Azure queue trigger's way): queued -> running; None if not queued."""
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET status='running', attempts=attempts+1, updated_at=? WHERE job_id=? AND status='queued'",
                             (_now(), job_id))
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone() if cur.rowcount else None
        return self._job(row) if row else None

    def complete(self, job_id: str, result: dict[str, Any] | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET status='done', result=?, error='', updated_at=? WHERE job_id=?",
                       (json.dumps(result or {}), _now(), job_id))

    def annotate(self, job_id: str, result: dict[str, Any]) -> None:
        """Add facts to a running job's result (e.g. its MLflow run id) for status pages."""
        with self._tx() as db:
            row = db.execute("SELECT result FROM jobs WHERE job_id=?", (job_id,)).fetchone()
            merged = json.loads(row["result"]) | result if row else result
            db.execute("UPDATE jobs SET result=?, updated_at=? WHERE job_id=?", (json.dumps(merged), _now(), job_id))

    def fail(self, job_id: str, error: str, *, retry: bool = True) -> Job:
        """Record a failure: back in the queue after a delay, or dead once out of attempts (or not retryable)."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            dead = not retry or row["attempts"] >= self.max_attempts
            status = "dead" if dead else "queued"
            delay = 0.0 if dead else self.retry_delay_s * 2 ** (row["attempts"] - 1)
            try:
                db.execute("UPDATE jobs SET status=?, error=?, not_before=?, updated_at=? WHERE job_id=?",
                           (status, error[:2000], time.time() + delay, _now(), job_id))
            except sqlite3.IntegrityError:  # an equal job is already queued: this one is covered by it
                db.execute("UPDATE jobs SET status='dead', error=?, updated_at=? WHERE job_id=?",
                           (f"{error[:1900]} (superseded by a queued job)", _now(), job_id))
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._job(row)

    def defer(self, job_id: str, delay_s: float, note: str) -> Job:
        """Put a running job back for another step later; a step that is waiting uses no attempt."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET status='queued', attempts=MAX(attempts-1, 0), not_before=?, result=json_set(result, "
                       "'$.progress', ?), updated_at=? WHERE job_id=?", (time.time() + delay_s, note[:500], _now(), job_id))
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._job(row)

    def recover(self) -> list[Job]:
        """After a restart: jobs left running were interrupted; queue them again or mark them dead."""
        recovered = []
        with self._tx() as db:
            rows = db.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall()
        for row in rows:
            recovered.append(self.fail(row["job_id"], "interrupted: the host stopped while this job was running"))
        return recovered

    def get(self, job_id: str) -> Job | None:
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def recent(self, limit: int = 10, kind: str | None = None) -> list[Job]:
        with self._tx() as db:
            if kind:
                rows = db.execute("SELECT * FROM jobs WHERE kind=? ORDER BY id DESC LIMIT ?", (kind, limit)).fetchall()
            else:
                rows = db.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._job(r) for r in rows]

    def dead_letters(self, limit: int = 20) -> tuple[list[Job], int]:
        """The newest `limit` dead jobs and how many there are in all (however old)."""
        with self._tx() as db:
            total = int(db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'dead'").fetchone()[0])
            rows = db.execute("SELECT * FROM jobs WHERE status = 'dead' ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._job(r) for r in rows], total

    def counts(self) -> dict[str, int]:
        with self._tx() as db:
            rows = db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        return {r["status"]: r["n"] for r in rows}

    def pending(self) -> int:
        with self._tx() as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0])
