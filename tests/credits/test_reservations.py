"""Holding credits for a job, and settling the hold exactly once."""

from __future__ import annotations

import pytest

from credits.errors import Banned, InsufficientCredits, InvalidAmount, QuotaExceeded, UnknownJob
from credits.ledger import Ledger
from credits.models import JournalReason, ReservationState
from tests.credits.conftest import FakeClock

ALICE = "telegram:1"


async def test_reserve_holds_without_charging(ledger: Ledger, clock: FakeClock) -> None:
    reservation = await ledger.reserve(ALICE, "job1", 10)
    assert (reservation.account, reservation.amount, reservation.state) == (ALICE, 10, ReservationState.ACTIVE)
    assert reservation.created_at == clock.now
    view = await ledger.view(ALICE)
    assert (view.balance, view.reserved, view.available, view.in_flight) == (200, 10, 190, 1)
    assert await ledger.reservation("job1") == reservation
    assert await ledger.active_reservations() == [reservation]


async def test_reserve_is_idempotent_per_job_id(ledger: Ledger) -> None:
    first = await ledger.reserve(ALICE, "job1", 10)
    assert await ledger.reserve(ALICE, "job1", 10) == first
    assert (await ledger.view(ALICE)).reserved == 10
    with pytest.raises(ValueError, match="already reserved for telegram:1"):
        await ledger.reserve("telegram:2", "job1", 10)


async def test_capture_charges_once(ledger: Ledger) -> None:
    await ledger.reserve(ALICE, "job1", 10)
    assert await ledger.capture("job1") is True
    assert await ledger.capture("job1") is False
    view = await ledger.view(ALICE)
    assert (view.balance, view.reserved, view.available) == (190, 0, 190)
    entry = (await ledger.history(ALICE, limit=1))[0]
    assert (entry.reason, entry.delta, entry.job_id) == (JournalReason.CAPTURE, -10, "job1")
    reservation = await ledger.reservation("job1")
    assert reservation is not None and reservation.state is ReservationState.CAPTURED
    assert reservation.settled_at is not None


async def test_release_returns_the_hold_and_keeps_the_reason(ledger: Ledger) -> None:
    await ledger.reserve(ALICE, "job1", 10)
    assert await ledger.release("job1", "worker crashed") is True
    assert await ledger.release("job1", "again") is False
    assert await ledger.capture("job1") is False  # capture after release charges nothing
    reservation = await ledger.reservation("job1")
    assert reservation is not None
    assert (reservation.state, reservation.reason) == (ReservationState.RELEASED, "worker crashed")
    view = await ledger.view(ALICE)
    assert (view.balance, view.available) == (200, 200)
    assert await ledger.active_reservations(ALICE) == []


async def test_release_after_capture_gives_nothing_back(ledger: Ledger) -> None:
    await ledger.reserve(ALICE, "job1", 10)
    await ledger.capture("job1")
    assert await ledger.release("job1", "late failure report") is False
    assert (await ledger.view(ALICE)).balance == 190


async def test_unknown_jobs_are_an_error(ledger: Ledger) -> None:
    for settle in (ledger.capture("nope"), ledger.release("nope", "x"), ledger.refund("nope", "admin")):
        with pytest.raises(UnknownJob):
            await settle
    assert await ledger.reservation("nope") is None


async def test_not_enough_credits_is_refused_with_the_numbers(ledger: Ledger) -> None:
    await ledger.reserve(ALICE, "job1", 150)
    with pytest.raises(InsufficientCredits) as refused:
        await ledger.reserve(ALICE, "job2", 60)
    assert (refused.value.price, refused.value.available) == (60, 50)
    assert "60" in refused.value.user_message and "50" in refused.value.user_message
    assert await ledger.reservation("job2") is None


async def test_max_jobs_in_flight(ledger: Ledger) -> None:
    await ledger.reserve(ALICE, "job1", 10)
    await ledger.reserve(ALICE, "job2", 10)
    with pytest.raises(QuotaExceeded) as refused:
        await ledger.reserve(ALICE, "job3", 10)
    assert (refused.value.limit, refused.value.in_flight) == (2, 2)
    await ledger.capture("job1")
    await ledger.reserve(ALICE, "job3", 10)
    await ledger.set_quota(ALICE, "admin", max_in_flight=3)
    await ledger.reserve(ALICE, "job4", 10)
    await ledger.set_quota(ALICE, "admin", max_in_flight=0)
    with pytest.raises(QuotaExceeded):
        await ledger.reserve(ALICE, "job5", 10)


async def test_banned_accounts_cannot_reserve_until_unbanned(ledger: Ledger) -> None:
    await ledger.ban(ALICE, "admin", "spam")
    with pytest.raises(Banned) as refused:
        await ledger.reserve(ALICE, "job1", 10)
    assert refused.value.reason == "spam" and "banned" in refused.value.user_message
    await ledger.unban(ALICE, "admin")
    await ledger.reserve(ALICE, "job1", 10)


async def test_a_refusal_keeps_the_days_grant(ledger: Ledger, clock: FakeClock) -> None:
    await ledger.touch(ALICE)
    clock.advance(days=1)
    with pytest.raises(InsufficientCredits):
        await ledger.reserve(ALICE, "job1", 1000)
    assert (await ledger.view(ALICE)).balance == 300


@pytest.mark.parametrize("amount", [0, -5, 2.5, True])
async def test_amounts_must_be_positive_whole_numbers(ledger: Ledger, amount: object) -> None:
    with pytest.raises(InvalidAmount):
        await ledger.reserve(ALICE, "job1", amount)  # type: ignore[arg-type]
