"""Opening the SQLite file and versioning its tables, per component ("ledger", "jobs", …).

Each component keeps its own list of migrations; `schema_versions` records how many of
them a database has seen. Migrations only ever get appended to their list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

logger = logging.getLogger("wanbot.credits")

BUSY_TIMEOUT_MS = 10_000
PRIVATE_MODE = 0o600  # the database, its -wal/-shm and backups hold prompts and interaction tokens

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
    # Numbers stay whole and in range: SQLite turns an INTEGER that overflows 2^63 into REAL (a grant of
    # 2^63 - 1 did), which broke every sum after it. A CHECK can't be added to a table in place, and
    # rebuilding `accounts` under the journal's foreign keys is risky, so triggers refuse such writes.
    # 1000000000000 is generator.contract.credits_config.MAX_CREDITS as it was when this migration was written.
    """
    CREATE TRIGGER accounts_numbers_in_range BEFORE UPDATE ON accounts
    WHEN typeof(NEW.balance) != 'integer' OR NEW.balance NOT BETWEEN 0 AND 1000000000000
        OR (NEW.daily_grant IS NOT NULL
            AND (typeof(NEW.daily_grant) != 'integer' OR NEW.daily_grant NOT BETWEEN 0 AND 1000000000000))
        OR (NEW.max_in_flight IS NOT NULL
            AND (typeof(NEW.max_in_flight) != 'integer' OR NEW.max_in_flight NOT BETWEEN 0 AND 1000000000000))
    BEGIN
        SELECT RAISE(ABORT, 'account numbers must be whole numbers from 0 to 1000000000000');
    END;
    CREATE TRIGGER journal_delta_in_range BEFORE INSERT ON journal
    WHEN typeof(NEW.delta) != 'integer' OR NEW.delta NOT BETWEEN -1000000000000 AND 1000000000000
    BEGIN
        SELECT RAISE(ABORT, 'a journal delta must be a whole number from -1000000000000 to 1000000000000');
    END;
    CREATE TRIGGER reservations_amount_in_range BEFORE INSERT ON reservations
    WHEN typeof(NEW.amount) != 'integer' OR NEW.amount > 1000000000000
    BEGIN
        SELECT RAISE(ABORT, 'a reservation must be a whole number of credits up to 1000000000000');
    END;
    """,
]


async def connect(path: str | Path) -> aiosqlite.Connection:
    """One connection in autocommit mode: callers open their own `BEGIN IMMEDIATE` transactions.

    The file (ledger, prompts, live Discord interaction tokens) and its -wal and -shm are 0600.
    """
    _create_private(Path(path))
    # `timeout` is SQLite's busy timeout: writers from other processes are waited for, not refused.
    db = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        db.row_factory = aiosqlite.Row
        await _use_wal(db)
        _make_private(Path(path))
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA secure_delete = ON")  # dropped tokens don't linger in a page's free space
    except BaseException:
        await db.close()
        raise
    return db


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite does (it would follow the umask, usually 0644)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE))


def _make_private(path: Path) -> None:
    """0600 for the file and the -wal/-shm SQLite keeps beside it, also for files made by older versions.

    SQLite gives -wal and -shm the database's mode already; this also covers files left 0644 by
    earlier releases. A file of another user (an operator's CLI on the bot's file) is left with a warning.
    """
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if stat.S_IMODE(file.stat().st_mode) != PRIVATE_MODE:
                file.chmod(PRIVATE_MODE)
        except FileNotFoundError:
            continue
        except PermissionError as error:
            logger.warning("could not make %s private (0600): %s", file, error)


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
    source, so the copy is a snapshot of one moment. The copy is written 0600 beside the destination
    and renamed into place, so a backup interrupted halfway never replaces a good one.
    """
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)  # left by an interrupted backup, perhaps with a looser mode
    _create_private(partial)  # a backup holds what the database holds
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
