"""Admin actions: grants, takes, refunds, quotas and bans, each journaled with its actor."""

from __future__ import annotations

import pytest

from credits.errors import InsufficientCredits, InvalidAmount, LedgerError, NotCaptured
from credits.ledger import Ledger
from credits.models import JournalReason
from tests.credits.conftest import FakeClock

BOB = "discord:42"


async def test_grant_and_take_are_journaled_with_actor_and_note(ledger: Ledger) -> None:
    assert (await ledger.grant(BOB, 500, "telegram:99", "contest prize")).balance == 700
    assert (await ledger.take(BOB, 100, "telegram:99")).balance == 600
    take, grant = await ledger.history(BOB, limit=2)
    assert (grant.reason, grant.delta, grant.actor, grant.note) == (JournalReason.GRANT, 500, "telegram:99",
                                                                     "contest prize")
    assert (take.reason, take.delta) == (JournalReason.TAKE, -100)
    assert await ledger.journal_sum(BOB) == 600


async def test_take_never_touches_held_credits(ledger: Ledger) -> None:
    await ledger.reserve(BOB, "job1", 150)
    with pytest.raises(InsufficientCredits) as refused:
        await ledger.take(BOB, 51, "admin")
    assert (refused.value.price, refused.value.available) == (51, 50)
    view = await ledger.take(BOB, 50, "admin")
    assert (view.balance, view.available) == (150, 0)
    assert await ledger.capture("job1") is True
    assert (await ledger.view(BOB)).balance == 0


@pytest.mark.parametrize("amount", [0, -1, 1.5])
async def test_grant_and_take_need_positive_whole_numbers(ledger: Ledger, amount: object) -> None:
    with pytest.raises(InvalidAmount):
        await ledger.grant(BOB, amount, "admin")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        await ledger.take(BOB, amount, "admin")  # type: ignore[arg-type]


async def test_refund_credits_a_captured_job_once(ledger: Ledger) -> None:
    await ledger.reserve(BOB, "job1", 25)
    await ledger.capture("job1")
    assert await ledger.refund("job1", "telegram:99") == 25
    assert await ledger.refund("job1", "telegram:99") == 0
    entry = (await ledger.history(BOB, limit=1))[0]
    assert (entry.reason, entry.delta, entry.job_id, entry.actor) == (JournalReason.REFUND, 25, "job1",
                                                                       "telegram:99")
    assert (await ledger.view(BOB)).balance == 200


@pytest.mark.parametrize("settle", ["active", "released"])
async def test_only_charged_jobs_can_be_refunded(ledger: Ledger, settle: str) -> None:
    await ledger.reserve(BOB, "job1", 25)
    if settle == "released":
        await ledger.release("job1", "failed")
    with pytest.raises(NotCaptured) as refused:
        await ledger.refund("job1", "admin")
    assert isinstance(refused.value, LedgerError) and "not charged" in refused.value.user_message
    assert (await ledger.view(BOB)).balance == 200


async def test_quota_changes_are_journaled_with_what_changed(ledger: Ledger) -> None:
    view = await ledger.set_quota(BOB, "admin", daily_grant=300, max_in_flight=1)
    assert (view.daily_grant, view.max_in_flight) == (300, 1)
    entry = (await ledger.history(BOB, limit=1))[0]
    assert (entry.reason, entry.delta, entry.actor) == (JournalReason.QUOTA, 0, "admin")
    assert entry.note == "daily_grant 100 -> 300; max_in_flight 2 -> 1"
    view = await ledger.set_quota(BOB, "admin", max_in_flight=None)
    assert (view.daily_grant, view.max_in_flight) == (300, 2)
    with pytest.raises(InvalidAmount):
        await ledger.set_quota(BOB, "admin", daily_grant=-1)


async def test_ban_and_unban_are_journaled(ledger: Ledger) -> None:
    await ledger.ban(BOB, "admin", "spam")
    await ledger.unban(BOB, "admin")
    unban, ban = await ledger.history(BOB, limit=2)
    assert (ban.reason, ban.delta, ban.note, unban.reason) == (JournalReason.BAN, 0, "spam", JournalReason.UNBAN)
    view = await ledger.view(BOB)
    assert (view.banned, view.ban_reason) == (False, None)


async def test_history_is_newest_first_and_limited(ledger: Ledger) -> None:
    for amount in (1, 2, 3):
        await ledger.grant(BOB, amount, "admin")
    assert [entry.delta for entry in await ledger.history(BOB, limit=3)] == [3, 2, 1]
    assert len(await ledger.history(BOB)) == 4


async def test_stats_count_today_only(ledger: Ledger, clock: FakeClock) -> None:
    await ledger.reserve(BOB, "job1", 10)
    await ledger.capture("job1")
    await ledger.ban("telegram:7", "admin", "spam")
    clock.advance(hours=2)  # past midnight: yesterday's signups and captures drop out of "today"
    await ledger.reserve(BOB, "job2", 25)  # touching gives today's daily grant
    await ledger.capture("job2")
    await ledger.reserve(BOB, "job3", 5)
    await ledger.grant("telegram:7", 50, "admin")
    stats = await ledger.stats()
    assert stats.accounts == 2 and stats.banned == 1
    assert stats.total_balance == (200 - 10 + 100 - 25) + (200 + 100 + 50)
    assert (stats.active_reservations, stats.reserved_credits) == (1, 5)
    assert (stats.captured_today, stats.granted_today) == (25, 100 + 100 + 50)
