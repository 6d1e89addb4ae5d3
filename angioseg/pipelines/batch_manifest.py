"""The batch manifest: one SQLite row per run in ``OUT/batch.sqlite``, the one record of what is done.

Rows move pending -> running -> done, or back to pending after a failed attempt while retries
remain, then failed. Every change is one transaction (WAL journal, synchronous FULL), so a
``kill -9`` of the batch at any moment leaves a consistent manifest: at worst some rows say
running, and `Manifest.recover` turns them back to pending when the batch starts again.
A run counts as done only once its bundle has been renamed into place and its row committed;
the ``completions`` table logs every such commit (one per run unless its bundle went missing
and was redone), which is how the tests check that a resumed batch redid nothing.

Columns of ``runs``: input (relative path, the key), kind, content_sha256, output (folder name
under ``OUT/runs``), status, attempts (attempts that ended: failed ones and the successful
one; an attempt cut short by a crash does not count), started, finished (ISO 8601 UTC),
seconds, frames, error (one line), stats (JSON: fps, vessel area per frame).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from angioseg.errors import InputError

MANIFEST_NAME = "batch.sqlite"
STATUSES = ("pending", "running", "done", "failed")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    input TEXT PRIMARY KEY, kind TEXT NOT NULL, content_sha256 TEXT NOT NULL, output TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    started TEXT, finished TEXT, seconds REAL, frames INTEGER, error TEXT, stats TEXT
);
CREATE TABLE IF NOT EXISTS completions (id INTEGER PRIMARY KEY AUTOINCREMENT, input TEXT NOT NULL, finished TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def now() -> str:
    """The current time, ISO 8601 UTC to the millisecond."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Row:
    """One manifest row."""

    input: str
    kind: str
    content_sha256: str
    output: str
    status: str
    attempts: int
    started: str | None
    finished: str | None
    seconds: float | None
    frames: int | None
    error: str | None
    stats: dict[str, Any]


class Manifest:
    """The SQLite manifest of one batch folder (open with `Manifest.open`)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path

    @classmethod
    def open(cls, out: str | Path, *, create: bool = True) -> "Manifest":
        """Open (or with `create` make) ``OUT/batch.sqlite``; InputError when it is missing or
        not a manifest."""
        path = Path(out) / MANIFEST_NAME
        if not create and not path.is_file():
            raise InputError(f"{out} holds no batch manifest ({MANIFEST_NAME}); is it a batch output folder?")
        try:
            connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise InputError(f"{path} is not a batch manifest: {error}") from None
        return cls(connection, path)

    def close(self) -> None:
        """Close the connection (every change is already committed)."""
        self.connection.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on any error)."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # ------------------------------------------------------------------ settings

    def check_settings(self, settings: dict[str, str]) -> None:
        """Record the batch's settings the first time; later, InputError when they differ (a
        resumed batch must make the same outputs as the one it continues)."""
        with self.transaction() as db:
            stored = dict(db.execute("SELECT key, value FROM settings").fetchall())
            for key, value in settings.items():
                if key in stored and stored[key] != value:
                    raise InputError(f"{self.path.parent} holds a batch made with {key}={stored[key]}, not {value}; "
                                     "resume it with the same options or choose a new output folder")
                db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ reading

    def rows(self) -> list[Row]:
        """Every row, by input name."""
        cursor = self.connection.execute(
            "SELECT input, kind, content_sha256, output, status, attempts, started, finished, seconds, frames, error, "
            "stats FROM runs ORDER BY input")
        return [Row(*values[:-1], json.loads(values[-1]) if values[-1] else {}) for values in cursor.fetchall()]

    def row(self, key: str) -> Row | None:
        """The row of one input, or None."""
        return next((r for r in self.rows() if r.input == key), None)

    def counts(self) -> dict[str, int]:
        """Rows per status (every status present, 0 where none)."""
        counts = dict.fromkeys(STATUSES, 0)
        for status, count in self.connection.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"):
            counts[status] = count
        return counts

    def completions(self) -> dict[str, int]:
        """How many times each input was committed done."""
        cursor = self.connection.execute("SELECT input, COUNT(*) FROM completions GROUP BY input")
        return dict(cursor.fetchall())

    # ------------------------------------------------------------------ state changes

    def sync(self, runs: list[tuple[str, str, str, str]]) -> None:
        """Insert new runs ``(input, kind, content_sha256, output)`` as pending; a known run whose
        content changed goes back to pending with its attempts cleared."""
        with self.transaction() as db:
            for key, kind, digest, output in runs:
                known = db.execute("SELECT content_sha256 FROM runs WHERE input = ?", (key,)).fetchone()
                if known is None:
                    db.execute("INSERT INTO runs (input, kind, content_sha256, output) VALUES (?, ?, ?, ?)",
                               (key, kind, digest, output))
                elif known[0] != digest:
                    db.execute("UPDATE runs SET kind = ?, content_sha256 = ?, output = ?, status = 'pending', attempts = 0, "
                               "error = NULL, stats = NULL WHERE input = ?", (kind, digest, output, key))

    def recover(self, bundle_exists: Any, *, retry_failed: bool = False) -> list[str]:
        """Make the manifest safe to continue: running rows (cut short by a crash) go back to
        pending, done rows whose bundle is missing (``bundle_exists(output)`` False) too, and with
        `retry_failed` failed rows with their attempts cleared. Returns the inputs reset."""
        reset = []
        with self.transaction() as db:
            for key, status, output in db.execute("SELECT input, status, output FROM runs").fetchall():
                if status == "running" or (status == "done" and not bundle_exists(output)):
                    db.execute("UPDATE runs SET status = 'pending' WHERE input = ?", (key,))
                    reset.append(key)
                elif status == "failed" and retry_failed:
                    db.execute("UPDATE runs SET status = 'pending', attempts = 0 WHERE input = ?", (key,))
                    reset.append(key)
        return reset

    def mark_running(self, key: str) -> None:
        """A worker starts on `key`."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = 'running', started = ?, finished = NULL WHERE input = ?", (now(), key))

    def mark_done(self, key: str, *, seconds: float, frames: int, stats: dict[str, Any]) -> None:
        """`key`'s bundle is in place: done, with its facts, and one more completion logged."""
        finished = now()
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = 'done', attempts = attempts + 1, finished = ?, seconds = ?, frames = ?, "
                       "error = NULL, stats = ? WHERE input = ?", (finished, seconds, frames, json.dumps(stats), key))
            db.execute("INSERT INTO completions (input, finished) VALUES (?, ?)", (key, finished))

    def mark_failed_attempt(self, key: str, *, error: str, seconds: float, retries: int) -> str:
        """An attempt at `key` failed with the one-line `error`: pending again while fewer than
        ``retries + 1`` attempts have ended, else failed. Returns the new status."""
        with self.transaction() as db:
            attempts = db.execute("SELECT attempts FROM runs WHERE input = ?", (key,)).fetchone()[0] + 1
            status = "pending" if attempts <= retries else "failed"
            db.execute("UPDATE runs SET status = ?, attempts = ?, finished = ?, seconds = ?, error = ? WHERE input = ?",
                       (status, attempts, now(), seconds, error, key))
        return status

    def release_running(self) -> None:
        """On an orderly stop (Ctrl-C, SIGTERM): rows still running go back to pending."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = 'pending' WHERE status = 'running'")


__all__ = ["MANIFEST_NAME", "Manifest", "Row", "STATUSES", "now"]
