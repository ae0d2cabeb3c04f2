"""Signup and daily grants: once per account, once per UTC day, per-user overrides."""

from __future__ import annotations

import pytest

from credits.errors import InvalidAccount
from credits.ledger import Ledger
from credits.models import JournalReason
from generator.contract.credits_config import CreditsSettings
from tests.credits.conftest import FakeClock


async def reasons(ledger: Ledger, account: str) -> list[JournalReason]:
    return [entry.reason for entry in reversed(await ledger.history(account, limit=100))]


async def test_first_contact_gives_the_signup_grant_once(ledger: Ledger) -> None:
    first = await ledger.touch("telegram:1")
    again = await ledger.touch("telegram:1")
    assert (first.balance, first.available, again.balance) == (200, 200, 200)
    assert await reasons(ledger, "telegram:1") == [JournalReason.SIGNUP]
    entry = (await ledger.history("telegram:1"))[0]
    assert (entry.delta, entry.actor) == (200, "system")


async def test_daily_grant_on_the_first_contact_of_each_utc_day(ledger: Ledger, clock: FakeClock) -> None:
    await ledger.touch("telegram:1")  # 23:00 UTC: signup counts as today's grant
    clock.advance(minutes=59)
    assert (await ledger.touch("telegram:1")).balance == 200
    clock.advance(minutes=2)  # 00:01 the next day
    assert (await ledger.touch("telegram:1")).balance == 300
    assert (await ledger.touch("telegram:1")).balance == 300
    clock.advance(days=3)  # days without contact are not paid
    assert (await ledger.touch("telegram:1")).balance == 400
    assert await reasons(ledger, "telegram:1") == [JournalReason.SIGNUP, JournalReason.DAILY, JournalReason.DAILY]


async def test_view_grants_nothing_and_creates_nothing(ledger: Ledger, clock: FakeClock) -> None:
    unknown = await ledger.view("telegram:9")
    assert (unknown.balance, unknown.available, unknown.created_at) == (0, 0, None)
    assert (await ledger.stats()).accounts == 0
    await ledger.touch("telegram:9")
    clock.advance(days=1)
    assert (await ledger.view("telegram:9")).balance == 200


async def test_daily_override_and_its_removal(ledger: Ledger, clock: FakeClock) -> None:
    view = await ledger.set_quota("telegram:1", "admin", daily_grant=500)
    assert view.daily_grant == 500
    clock.advance(days=1)
    assert (await ledger.touch("telegram:1")).balance == 700
    await ledger.set_quota("telegram:1", "admin", daily_grant=0)
    clock.advance(days=1)
    assert (await ledger.touch("telegram:1")).balance == 700
    assert (await ledger.history("telegram:1", limit=1))[0].reason is JournalReason.QUOTA  # a 0 grant writes nothing
    assert (await ledger.set_quota("telegram:1", "admin", daily_grant=None)).daily_grant == 100
    clock.advance(days=1)
    assert (await ledger.touch("telegram:1")).balance == 800


async def test_grants_follow_the_settings(db_path, clock: FakeClock) -> None:
    settings = CreditsSettings(signup_grant=0, daily_grant=7)
    async with await Ledger.open(db_path, settings, clock) as ledger:
        assert (await ledger.touch("discord:5")).balance == 0
        clock.advance(days=1)
        assert (await ledger.touch("discord:5")).balance == 7
        assert await ledger.journal_sum("discord:5") == 7


async def test_banned_accounts_can_still_be_touched(ledger: Ledger) -> None:
    await ledger.ban("telegram:1", "admin", "spam")
    view = await ledger.touch("telegram:1")
    assert (view.banned, view.ban_reason, view.balance) == (True, "spam", 200)


@pytest.mark.parametrize("account", ["Telegram:1", "telegram:a b", "irc:1"])
async def test_accounts_are_created_only_under_valid_keys(ledger: Ledger, account: str) -> None:
    with pytest.raises(InvalidAccount):
        await ledger.touch(account)
