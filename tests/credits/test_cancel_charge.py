"""A cancel after steps ran keeps a pro-rata share of the price, in one transaction, once per job."""

from __future__ import annotations

from pathlib import Path

import pytest

from credits.errors import UnknownJob
from credits.ledger import Ledger
from credits.models import JournalReason, ReservationState, Settlement
from generator.contract.credits_config import CreditsSettings
from tests.credits.conftest import FakeClock

BOB = "telegram:7"


@pytest.mark.parametrize(("step", "total", "charged"), [
    (190, 200, 10),  # the example: 9.5 rounds up
    (100, 200, 5),
    (1, 200, 1),     # any rendered step costs at least a credit
    (0, 200, 0),     # started, nothing rendered yet
    (0, 0, 0),       # still queued: no progress at all
    (500, 200, 10),  # a worker's step count is clamped: never more than the price
    (-3, 200, 0),
])
def test_the_share_is_pro_rata_and_rounded_up(step: int, total: int, charged: int) -> None:
    assert CreditsSettings().cancel_share(10, step, total) == charged


def test_cancel_charge_scales_the_share_and_zero_turns_it_off() -> None:
    assert CreditsSettings(cancel_charge=0.5).cancel_share(10, 100, 200) == 3  # 2.5 rounds up
    assert CreditsSettings(cancel_charge=0).cancel_share(10, 199, 200) == 0


async def test_a_cancel_mid_run_charges_part_and_releases_the_rest(ledger: Ledger) -> None:
    await ledger.reserve(BOB, "job1", 10)
    settlement = await ledger.settle_cancelled("job1", "cancelled by telegram:7", 190, 200)
    assert settlement == Settlement("job1", charged=10, returned=0)
    await ledger.reserve(BOB, "job2", 10)
    assert await ledger.settle_cancelled("job2", "cancelled by telegram:7", 100, 200) == Settlement("job2", 5, 5)
    view = await ledger.view(BOB)
    assert (view.balance, view.reserved, view.available) == (185, 0, 185)
    assert await ledger.journal_sum(BOB) == 185
    entry = (await ledger.history(BOB, limit=1))[0]
    assert (entry.reason, entry.delta, entry.job_id) == (JournalReason.CAPTURE, -5, "job2")
    assert "step 100/200" in entry.note and "kept 5 of 10" in entry.note
    reservation = await ledger.reservation("job2")
    assert reservation is not None and reservation.state is ReservationState.CAPTURED
    assert (await ledger.stats()).captured_today == 15


async def test_a_cancel_before_any_step_is_a_plain_release(ledger: Ledger) -> None:
    await ledger.reserve(BOB, "job1", 10)
    assert await ledger.settle_cancelled("job1", "cancelled", 0, 0) == Settlement("job1", 0, 10)
    reservation = await ledger.reservation("job1")
    assert reservation is not None and (reservation.state, reservation.reason) == (ReservationState.RELEASED,
                                                                                  "cancelled")
    assert [entry.reason for entry in await ledger.history(BOB)] == [JournalReason.SIGNUP]


async def test_settling_twice_charges_once(ledger: Ledger) -> None:
    await ledger.reserve(BOB, "job1", 10)
    assert await ledger.settle_cancelled("job1", "cancelled", 50, 100) == Settlement("job1", 5, 5)
    assert await ledger.settle_cancelled("job1", "cancelled", 100, 100) is None
    assert await ledger.capture("job1") is False
    assert (await ledger.view(BOB)).balance == 195
    with pytest.raises(UnknownJob):
        await ledger.settle_cancelled("nope", "cancelled", 1, 2)


async def test_a_refund_gives_back_exactly_what_the_cancel_kept(ledger: Ledger) -> None:
    await ledger.reserve(BOB, "job1", 10)
    await ledger.settle_cancelled("job1", "cancelled", 30, 100)
    assert await ledger.refund("job1", "telegram:1") == 3
    assert (await ledger.view(BOB)).balance == 200 == await ledger.journal_sum(BOB)


async def test_the_share_follows_the_configured_cancel_charge(db_path: Path, clock: FakeClock) -> None:
    async with await Ledger.open(db_path, CreditsSettings(cancel_charge=0), clock) as free:
        await free.reserve(BOB, "job1", 10)
        assert await free.settle_cancelled("job1", "cancelled", 199, 200) == Settlement("job1", 0, 10)
        assert (await free.view(BOB)).available == 200
