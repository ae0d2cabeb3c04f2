"""A ledger on a real SQLite file in tmp_path, with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from credits.ledger import Ledger
from generator.contract.credits_config import CreditsSettings

START = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)


class FakeClock:
    """Stands in for `utc_now`; `advance` crosses UTC midnights on demand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> CreditsSettings:
    return CreditsSettings()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
async def ledger(db_path: Path, settings: CreditsSettings, clock: FakeClock) -> AsyncIterator[Ledger]:
    async with await Ledger.open(db_path, settings, clock) as opened:
        yield opened
