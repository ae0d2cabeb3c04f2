"""Random sequences of ledger operations against a small model of what they should do.

After every step, for every account: balance == sum of its journal, balance ≥ 0,
available ≥ 0, and balance and holds equal the model's.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

from credits.errors import Banned, InsufficientCredits, NotCaptured, QuotaExceeded
from credits.ledger import Ledger
from generator.contract.credits_config import CreditsSettings
from tests.credits.conftest import FakeClock

T = TypeVar("T")

ACCOUNTS = st.sampled_from(["telegram:1", "discord:2", "console:3"])
SETTINGS = CreditsSettings(signup_grant=50, daily_grant=20, max_jobs_in_flight=3)


class LedgerMachine(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.ledger = self.run(Ledger.open(Path(self.tmp.name) / "ledger.sqlite3", SETTINGS, self.clock))
        self.balance: dict[str, int] = {}
        self.last_grant: dict[str, date] = {}
        self.banned: set[str] = set()
        self.holds: dict[str, tuple[str, int]] = {}  # active job -> (account, amount)
        self.captured: dict[str, tuple[str, int]] = {}
        self.refunded: set[str] = set()
        self.next_job = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.ledger.close())
        self.loop.close()
        self.tmp.cleanup()

    # -- the model ------------------------------------------------------------------------

    def touch_model(self, account: str) -> None:
        today = self.clock.now.date()
        if account not in self.balance:
            self.balance[account] = SETTINGS.signup_grant
        elif self.last_grant[account] < today:
            self.balance[account] += SETTINGS.daily_grant
        self.last_grant[account] = today

    def held(self, account: str) -> list[int]:
        return [amount for owner, amount in self.holds.values() if owner == account]

    def available(self, account: str) -> int:
        return self.balance[account] - sum(self.held(account))

    # -- the rules ------------------------------------------------------------------------

    @rule(account=ACCOUNTS)
    def touch(self, account: str) -> None:
        self.touch_model(account)
        assert self.run(self.ledger.touch(account)).balance == self.balance[account]

    @rule(target=jobs, account=ACCOUNTS, amount=st.integers(1, 40))
    def reserve(self, account: str, amount: int) -> object:
        self.touch_model(account)
        job_id = f"job{self.next_job}"
        self.next_job += 1
        expected: type[Exception] | None = None
        if account in self.banned:
            expected = Banned
        elif len(self.held(account)) >= SETTINGS.max_jobs_in_flight:
            expected = QuotaExceeded
        elif amount > self.available(account):
            expected = InsufficientCredits
        if expected is not None:
            with pytest.raises(expected):
                self.run(self.ledger.reserve(account, job_id, amount))
            return multiple()
        self.run(self.ledger.reserve(account, job_id, amount))
        self.holds[job_id] = (account, amount)
        return job_id

    @rule(job_id=jobs)
    def reserve_again(self, job_id: str) -> None:
        account, amount = self.holds.get(job_id) or self.captured.get(job_id) or (None, 0)
        if account is not None:
            self.touch_model(account)
            self.run(self.ledger.reserve(account, job_id, amount))

    @rule(job_id=jobs)
    def capture(self, job_id: str) -> None:
        hold = self.holds.pop(job_id, None)
        assert self.run(self.ledger.capture(job_id)) is (hold is not None)
        if hold is not None:
            self.balance[hold[0]] -= hold[1]
            self.captured[job_id] = hold

    @rule(job_id=jobs)
    def release(self, job_id: str) -> None:
        assert self.run(self.ledger.release(job_id, "test")) is (self.holds.pop(job_id, None) is not None)

    @rule(job_id=jobs, total=st.integers(0, 50), data=st.data())
    def cancel(self, job_id: str, total: int, data: st.DataObject) -> None:
        step = data.draw(st.integers(0, total + 5))  # a worker's count may even overshoot: clamped
        hold = self.holds.pop(job_id, None)
        settlement = self.run(self.ledger.settle_cancelled(job_id, "test", step, total))
        assert (settlement is None) is (hold is None)
        if hold is None or settlement is None:
            return
        kept = SETTINGS.cancel_share(hold[1], step, total)
        assert (settlement.charged, settlement.returned) == (kept, hold[1] - kept)
        self.balance[hold[0]] -= kept
        if kept:
            self.captured[job_id] = (hold[0], kept)

    @rule(job_id=jobs)
    def refund(self, job_id: str) -> None:
        if job_id not in self.captured:
            with pytest.raises(NotCaptured):
                self.run(self.ledger.refund(job_id, "admin"))
            return
        account, amount = self.captured[job_id]
        expected = 0 if job_id in self.refunded else amount
        assert self.run(self.ledger.refund(job_id, "admin")) == expected
        self.balance[account] += expected
        self.refunded.add(job_id)

    @rule(account=ACCOUNTS, amount=st.integers(1, 50))
    def grant(self, account: str, amount: int) -> None:
        self.touch_model(account)
        self.run(self.ledger.grant(account, amount, "admin"))
        self.balance[account] += amount

    @rule(account=ACCOUNTS, amount=st.integers(1, 80))
    def take(self, account: str, amount: int) -> None:
        self.touch_model(account)
        if amount > self.available(account):
            with pytest.raises(InsufficientCredits):
                self.run(self.ledger.take(account, amount, "admin"))
            return
        self.run(self.ledger.take(account, amount, "admin"))
        self.balance[account] -= amount

    @rule(account=ACCOUNTS, banned=st.booleans())
    def ban_or_unban(self, account: str, banned: bool) -> None:
        self.touch_model(account)
        if banned:
            self.run(self.ledger.ban(account, "admin", "test"))
            self.banned.add(account)
        else:
            self.run(self.ledger.unban(account, "admin"))
            self.banned.discard(account)

    @rule(hours=st.integers(1, 30))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    # -- after every step -----------------------------------------------------------------

    @invariant()
    def balances_match_the_journal_and_the_model(self) -> None:
        for account, balance in self.balance.items():
            view = self.run(self.ledger.view(account))
            assert view.balance == self.run(self.ledger.journal_sum(account)) == balance
            assert view.reserved == sum(self.held(account))
            assert view.balance >= 0 and view.available >= 0


LedgerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLedgerInvariants = LedgerMachine.TestCase
