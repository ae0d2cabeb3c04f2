"""Admin amounts are bounded and balances stay whole numbers in range, whatever writes them.

A grant of 2^63 - 1 once turned the balance column REAL (SQLite overflows into floating point),
which broke the journal sum and `credits stats`; 2^63 raised OverflowError out of sqlite3.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from credits.errors import InvalidAmount
from credits.ledger import Ledger
from credits.schema import LEDGER_MIGRATIONS, connect, migrate
from generator.contract.credits_config import MAX_CREDITS, CreditsSettings
from tests.credits.conftest import FakeClock

BOB = "discord:42"
HUGE = [2**63 - 1, 2**63, 10**30, 1_000_001]


@pytest.mark.parametrize("amount", HUGE)
async def test_grants_and_takes_over_the_maximum_are_refused_clearly(ledger: Ledger, amount: int) -> None:
    await ledger.touch(BOB)
    for action in (ledger.grant, ledger.take):
        with pytest.raises(InvalidAmount) as refused:
            await action(BOB, amount, "telegram:1")
        assert "at most 1,000,000 per admin action" in refused.value.user_message
    view = await ledger.view(BOB)
    assert view.balance == 200 and isinstance(view.balance, int)
    assert await ledger.journal_sum(BOB) == 200
    assert (await ledger.stats()).total_balance == 200


@pytest.mark.parametrize("amount", HUGE)
async def test_quotas_over_the_maximum_are_refused(ledger: Ledger, amount: int) -> None:
    with pytest.raises(InvalidAmount):
        await ledger.set_quota(BOB, "telegram:1", daily_grant=amount)
    with pytest.raises(InvalidAmount):
        await ledger.set_quota(BOB, "telegram:1", max_in_flight=amount)


async def test_the_maximum_is_configured(db_path: Path, clock: FakeClock) -> None:
    async with await Ledger.open(db_path, CreditsSettings(max_admin_amount=50), clock) as strict:
        assert (await strict.grant(BOB, 50, "telegram:1")).balance == 250
        with pytest.raises(InvalidAmount, match="at most 50 per admin action"):
            await strict.grant(BOB, 51, "telegram:1")


async def test_no_account_holds_more_than_max_credits(db_path: Path, clock: FakeClock) -> None:
    async with await Ledger.open(db_path, CreditsSettings(max_admin_amount=MAX_CREDITS), clock) as ledger:
        await ledger.grant(BOB, MAX_CREDITS - 200, "telegram:1")
        with pytest.raises(InvalidAmount, match="an account holds at most"):
            await ledger.grant(BOB, 1, "telegram:1")
        assert (await ledger.view(BOB)).balance == MAX_CREDITS == await ledger.journal_sum(BOB)


@pytest.mark.parametrize("statement", [
    "UPDATE accounts SET balance = balance + 9223372036854775807",
    "UPDATE accounts SET balance = 1e13",
    "UPDATE accounts SET balance = 'lots'",
    "UPDATE accounts SET daily_grant = 9223372036854775807",
    "UPDATE accounts SET max_in_flight = 0.5",
    "INSERT INTO journal (account, delta, reason, actor, created_at)"
    " VALUES ('discord:42', 9223372036854775807, 'grant', 'x', '2025')",
    "INSERT INTO journal (account, delta, reason, actor, created_at) VALUES ('discord:42', 1.5, 'grant', 'x', '2025')",
    "INSERT INTO reservations (job_id, account, amount, state, created_at)"
    " VALUES ('j', 'discord:42', 9223372036854775807, 'active', '2025')",
])
async def test_the_schema_refuses_numbers_out_of_range(db_path: Path, ledger: Ledger, statement: str) -> None:
    await ledger.touch(BOB)
    db = await aiosqlite.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="whole number"):
            await db.execute(statement)
    finally:
        await db.close()
    assert (await ledger.view(BOB)).balance == 200 == await ledger.journal_sum(BOB)


async def test_an_existing_ledger_gets_the_range_checks_when_opened(db_path: Path) -> None:
    db = await connect(db_path)
    try:
        assert await migrate(db, "ledger", LEDGER_MIGRATIONS[:1]) == 1
        await db.execute("INSERT INTO accounts (account, balance, created_at, last_daily)"
                         " VALUES ('discord:1', 5, '2025-03-01T00:00:00+00:00', '2025-03-01')")
    finally:
        await db.close()
    async with await Ledger.open(db_path, CreditsSettings()) as ledger:
        assert (await ledger.view("discord:1")).balance == 5
    db = await aiosqlite.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute("UPDATE accounts SET balance = balance + 9223372036854775807")
    finally:
        await db.close()
