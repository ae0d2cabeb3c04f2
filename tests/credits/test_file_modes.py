"""The SQLite file holds prompts and live Discord interaction tokens: it, its -wal and -shm and every
backup are 0600 whatever the umask, and files left 0644 by older versions are tightened on open."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from credits.ledger import Ledger
from generator.contract.credits_config import CreditsSettings


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most services run with, under which SQLite alone makes 0644 files."""
    saved = os.umask(0o022)
    yield
    os.umask(saved)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sidecars(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


async def test_a_new_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    database = tmp_path / "wanbot.sqlite3"
    async with await Ledger.open(database, CreditsSettings()) as ledger:
        await ledger.touch("telegram:1")
        assert {file.name: mode(file) for file in sidecars(database)} == {
            file.name: 0o600 for file in sidecars(database)}


async def test_an_older_0644_database_is_made_private_on_open(tmp_path: Path) -> None:
    database = tmp_path / "wanbot.sqlite3"
    with sqlite3.connect(database) as old:
        old.execute("PRAGMA journal_mode = WAL")
        old.execute("CREATE TABLE leftover (x)")
    assert mode(database) == 0o644
    async with await Ledger.open(database, CreditsSettings()):
        assert all(mode(file) == 0o600 for file in sidecars(database) if file.exists())


async def test_backups_are_0600(tmp_path: Path) -> None:
    copy = tmp_path / "backup.sqlite3"
    copy.with_name(copy.name + ".partial").write_bytes(b"")  # an interrupted backup's leftover, 0644
    async with await Ledger.open(tmp_path / "wanbot.sqlite3", CreditsSettings()) as ledger:
        await ledger.touch("telegram:1")
        await ledger.backup(copy)
    assert mode(copy) == 0o600
    with sqlite3.connect(copy) as restored:
        assert restored.execute("SELECT account FROM accounts").fetchall() == [("telegram:1",)]
