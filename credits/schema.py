"""Opening the SQLite file and versioning its tables, per component ("ledger", "jobs", …).

Each component keeps its own list of migrations; `schema_versions` records how many of
them a database has seen. Migrations only ever get appended to their list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

logger = logging.getLogger("wanbot.credits")

BUSY_TIMEOUT_MS = 10_000

LEDGER_MIGRATIONS: list[str] = [
    """
    CREATE TABLE accounts (
        account       TEXT PRIMARY KEY,
        balance       INTEGER NOT NULL CHECK (balance >= 0),
        created_at    TEXT NOT NULL,
        last_daily    TEXT NOT NULL,                        -- UTC date of the last signup or daily grant
        daily_grant   INTEGER CHECK (daily_grant >= 0),     -- admin override; NULL: the configured default
        max_in_flight INTEGER CHECK (max_in_flight >= 0),   -- admin override; NULL: the configured default
        banned        INTEGER NOT NULL DEFAULT 0,
        ban_reason    TEXT
    );

    CREATE TABLE journal (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        account    TEXT NOT NULL REFERENCES accounts (account),
        delta      INTEGER NOT NULL,
        reason     TEXT NOT NULL,
        job_id     TEXT,
        actor      TEXT NOT NULL,
        note       TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE INDEX journal_account ON journal (account, id);
    CREATE INDEX journal_created ON journal (created_at, reason);
    -- Charged once and refunded once per job, whatever the callers do.
    CREATE UNIQUE INDEX journal_one_capture ON journal (job_id) WHERE reason = 'capture';
    CREATE UNIQUE INDEX journal_one_refund ON journal (job_id) WHERE reason = 'refund';
    -- Balances move only through the journal: each row carries its delta to the account.
    CREATE TRIGGER journal_moves_balance AFTER INSERT ON journal
    BEGIN
        UPDATE accounts SET balance = balance + NEW.delta WHERE account = NEW.account;
    END;
    CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN
        SELECT RAISE(ABORT, 'the journal is append-only');
    END;
    CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN
        SELECT RAISE(ABORT, 'the journal is append-only');
    END;

    CREATE TABLE reservations (
        job_id     TEXT PRIMARY KEY,
        account    TEXT NOT NULL REFERENCES accounts (account),
        amount     INTEGER NOT NULL CHECK (amount > 0),
        state      TEXT NOT NULL CHECK (state IN ('active', 'captured', 'released')),
        created_at TEXT NOT NULL,
        settled_at TEXT,
        reason     TEXT
    );
    CREATE INDEX reservations_active ON reservations (account) WHERE state = 'active';
    """,
]


async def connect(path: str | Path) -> aiosqlite.Connection:
    """One connection in autocommit mode: callers open their own `BEGIN IMMEDIATE` transactions."""
    # `timeout` is SQLite's busy timeout: writers from other processes are waited for, not refused.
    db = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        db.row_factory = aiosqlite.Row
        await _use_wal(db)
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        await db.close()
        raise
    return db


async def _use_wal(db: aiosqlite.Connection) -> None:
    """Switch to WAL (it sticks to the file); retried, since SQLite answers "locked" at once,
    without waiting out the busy timeout, while another connection opens a new file."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.01)


async def migrate(db: aiosqlite.Connection, component: str, migrations: Sequence[str]) -> int:
    """Apply the migrations this database has not seen, each in its own transaction; the new version.

    The version is re-read inside each transaction, so two processes opening the same file at
    once apply every migration exactly once.
    """
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    while True:
        try:
            await db.execute("BEGIN IMMEDIATE")
            version = await _version(db, component)
            if version > len(migrations):
                raise RuntimeError(
                    f"the {component} tables are at version {version} but this wanbot knows only "
                    f"{len(migrations)}: upgrade wanbot before opening this database"
                )
            if version == len(migrations):
                await db.execute("COMMIT")
                return version
            for statement in split_statements(migrations[version]):
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, version + 1),
            )
            await db.execute("COMMIT")
        except BaseException:
            await rollback(db)
            raise
        logger.info("%s schema migrated to version %d", component, version + 1)


async def backup(db: aiosqlite.Connection, destination: Path) -> None:
    """A consistent copy of the whole file (ledger, jobs, everything) while others keep writing.

    SQLite's online backup API copies pages in steps, restarting a step when a writer changed the
    source, so the copy is a snapshot of one moment. The copy is written beside the destination and
    renamed into place, so a backup interrupted halfway never replaces a good one.
    """
    partial = destination.with_name(destination.name + ".partial")
    target = await aiosqlite.connect(str(partial))
    try:
        await db.backup(target, pages=256)
        rows = list(await target.execute_fetchall("PRAGMA integrity_check"))
        if rows != [("ok",)]:
            raise sqlite3.DatabaseError(f"the backup failed its integrity check: {rows}")
    finally:
        await target.close()
    partial.replace(destination)


async def rollback(db: aiosqlite.Connection) -> None:
    """Undo the transaction under way, even one whose `BEGIN` await was cancelled.

    The connection's thread runs calls in order, so this ROLLBACK runs after anything the
    cancelled caller left queued; when no transaction is open it is a harmless error.
    """
    with contextlib.suppress(sqlite3.OperationalError):
        await db.execute("ROLLBACK")


async def _version(db: aiosqlite.Connection, component: str) -> int:
    rows = list(await db.execute_fetchall("SELECT version FROM schema_versions WHERE component = ?", (component,)))
    return int(rows[0][0]) if rows else 0


def split_statements(script: str) -> list[str]:
    """The statements of a SQL script, kept whole across `;` inside triggers, strings and comments.

    (`executescript` would commit the surrounding transaction first.)
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _has_code(buffer):
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]!r}")
    return statements


def _has_code(sql: str) -> bool:
    lines = (line.split("--", 1)[0] for line in sql.splitlines())
    return any(line.strip(" \t;") for line in lines)
