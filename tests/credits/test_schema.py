"""Schema versions per component, migrations on existing files, and the append-only journal."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from credits.ledger import Ledger
from credits.schema import LEDGER_MIGRATIONS, connect, migrate, split_statements
from generator.contract.credits_config import CreditsSettings


async def versions(path: Path) -> dict[str, int]:
    db = await connect(path)
    try:
        return {row["component"]: row["version"] for row in await db.execute_fetchall("SELECT * FROM schema_versions")}
    finally:
        await db.close()


async def test_connect_sets_wal_busy_timeout_and_foreign_keys(db_path: Path) -> None:
    db = await connect(db_path)
    try:
        pragmas = {name: (await db.execute_fetchall(f"PRAGMA {name}"))[0][0]
                   for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}
        assert pragmas == {"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": 1}
        assert db.isolation_level is None
    finally:
        await db.close()


async def test_version_is_recorded_and_reopening_does_not_migrate_again(db_path: Path, ledger: Ledger) -> None:
    await ledger.grant("telegram:1", 5, "admin")
    assert await versions(db_path) == {"ledger": len(LEDGER_MIGRATIONS)}
    async with await Ledger.open(db_path, CreditsSettings()) as again:  # would fail on CREATE TABLE if re-run
        assert (await again.view("telegram:1")).balance == 205
    assert await versions(db_path) == {"ledger": len(LEDGER_MIGRATIONS)}


async def test_a_new_migration_applies_to_an_existing_database(db_path: Path, ledger: Ledger) -> None:
    await ledger.grant("telegram:1", 5, "admin")
    db = await connect(db_path)
    try:
        next_version = "ALTER TABLE accounts ADD COLUMN locale TEXT; UPDATE accounts SET locale = 'en';"
        upgraded = [*LEDGER_MIGRATIONS, next_version]
        assert await migrate(db, "ledger", upgraded) == len(LEDGER_MIGRATIONS) + 1
        assert await migrate(db, "ledger", upgraded) == len(LEDGER_MIGRATIONS) + 1
        rows = await db.execute_fetchall("SELECT account, locale, balance FROM accounts")
        assert [tuple(row) for row in rows] == [("telegram:1", "en", 205)]
    finally:
        await db.close()
    assert (await ledger.view("telegram:1")).balance == 205


async def test_a_failing_migration_leaves_the_database_as_it_was(db_path: Path) -> None:
    db = await connect(db_path)
    try:
        broken = ["CREATE TABLE things (id INTEGER PRIMARY KEY)", "CREATE TABLE more (id INTEGER); SELECT nope FROM x;"]
        with pytest.raises(sqlite3.OperationalError):
            await migrate(db, "things", broken)
        assert not db.in_transaction
        tables = {row[0] for row in await db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "things" in tables and "more" not in tables
    finally:
        await db.close()
    assert await versions(db_path) == {"things": 1}


async def test_components_are_versioned_separately(db_path: Path, ledger: Ledger) -> None:
    db = await connect(db_path)
    try:
        assert await migrate(db, "jobs", ["CREATE TABLE jobs (job_id TEXT PRIMARY KEY)"]) == 1
    finally:
        await db.close()
    assert await versions(db_path) == {"ledger": len(LEDGER_MIGRATIONS), "jobs": 1}


async def test_a_database_newer_than_the_code_is_refused(db_path: Path) -> None:
    db = await connect(db_path)
    try:
        await migrate(db, "jobs", ["CREATE TABLE a (x)", "CREATE TABLE b (x)"])
        with pytest.raises(RuntimeError, match="version 2 but this wanbot knows only 1"):
            await migrate(db, "jobs", ["CREATE TABLE a (x)"])
    finally:
        await db.close()


async def test_two_processes_opening_at_once_migrate_once(db_path: Path) -> None:
    ledgers = await asyncio.gather(*(Ledger.open(db_path, CreditsSettings()) for _ in range(4)))
    for ledger in ledgers:
        await ledger.close()
    assert await versions(db_path) == {"ledger": len(LEDGER_MIGRATIONS)}


@pytest.mark.parametrize("statement", ["UPDATE journal SET delta = 1000", "DELETE FROM journal"])
async def test_the_journal_is_append_only(db_path: Path, ledger: Ledger, statement: str) -> None:
    await ledger.touch("telegram:1")
    db = await connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await db.execute(statement)
    finally:
        await db.close()
    assert await ledger.journal_sum("telegram:1") == 200


async def test_a_second_refund_row_is_refused_by_the_schema(db_path: Path, ledger: Ledger) -> None:
    await ledger.reserve("telegram:1", "job1", 10)
    await ledger.capture("job1")
    await ledger.refund("job1", "admin")
    db = await connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute("INSERT INTO journal (account, delta, reason, job_id, actor, created_at)"
                             " VALUES ('telegram:1', 10, 'refund', 'job1', 'x', 'now')")
    finally:
        await db.close()


def test_statements_split_whole_across_triggers_strings_and_comments() -> None:
    script = """
        -- a comment; with a semicolon
        CREATE TABLE t (x TEXT DEFAULT 'a;b');
        CREATE TRIGGER t_no_delete BEFORE DELETE ON t BEGIN SELECT RAISE(ABORT, 'no; never'); END;
        INSERT INTO t VALUES ('c')
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TRIGGER x BEFORE DELETE ON t BEGIN SELECT 1;")
