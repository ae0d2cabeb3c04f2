"""Many reservations at once on one wallet: never more held than the balance, in one process or two."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from credits.errors import InsufficientCredits, QuotaExceeded
from credits.ledger import Ledger
from credits.models import ReservationState
from generator.contract.credits_config import CreditsSettings

PRICE = 10
JOBS = 37  # the wallet holds enough for exactly this many
TASKS = 100


async def reserve_all(ledgers: list[Ledger], account: str) -> list[object]:
    tasks = [ledgers[n % len(ledgers)].reserve(account, f"job{n:03}", PRICE) for n in range(TASKS)]
    return await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("connections", [1, 2], ids=["one-connection", "two-processes"])
async def test_exactly_the_affordable_jobs_get_reserved(db_path: Path, connections: int) -> None:
    settings = CreditsSettings(signup_grant=JOBS * PRICE + PRICE - 1, max_jobs_in_flight=TASKS)
    ledgers = [await Ledger.open(db_path, settings) for _ in range(connections)]
    try:
        await ledgers[0].touch("telegram:1")
        results = await reserve_all(ledgers, "telegram:1")
        refusals = [result for result in results if isinstance(result, BaseException)]
        assert all(isinstance(refusal, InsufficientCredits) for refusal in refusals), refusals
        assert len(results) - len(refusals) == JOBS
        view = await ledgers[-1].view("telegram:1")
        assert (view.reserved, view.available, view.in_flight) == (JOBS * PRICE, PRICE - 1, JOBS)

        captures = await asyncio.gather(*(ledgers[n % connections].capture(f"job{n:03}") for n in range(TASKS)
                                          for _ in range(2) if not isinstance(results[n], BaseException)))
        assert captures.count(True) == JOBS
        assert await ledgers[0].journal_sum("telegram:1") == (await ledgers[0].view("telegram:1")).balance == PRICE - 1
    finally:
        for ledger in ledgers:
            await ledger.close()


async def test_the_in_flight_quota_holds_under_concurrency(db_path: Path) -> None:
    async with await Ledger.open(db_path, CreditsSettings(max_jobs_in_flight=3)) as ledger:
        results = await reserve_all([ledger], "telegram:1")
        reserved = [result for result in results if not isinstance(result, BaseException)]
        assert len(reserved) == 3 and all(r.state is ReservationState.ACTIVE for r in reserved)  # type: ignore[union-attr]
        assert all(isinstance(result, QuotaExceeded) for result in results if result not in reserved)


async def test_cancelled_callers_leave_no_transaction_open(ledger: Ledger) -> None:
    await ledger.touch("telegram:1")
    for steps in range(30):  # cancel at different points of the transaction
        task = asyncio.create_task(ledger.grant("telegram:1", 1, "admin"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ledger.grant("telegram:1", 1000, "admin")
    assert await ledger.journal_sum("telegram:1") == (await ledger.view("telegram:1")).balance >= 200 + 30 * 1000
