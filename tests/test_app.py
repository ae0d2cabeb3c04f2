"""The start order every entry point shares: front ends added, service started, then receiving; reversed on exit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from wanbot.app import FrontEndStart, frontends_started


class RecordingService:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def add_frontend(self, frontend: Any) -> None:
        self.events.append(f"add {frontend}")

    async def start(self) -> None:
        self.events.append("service start")

    async def stop(self) -> None:
        self.events.append("service stop")


def receiving(name: str, events: list[str]) -> contextlib.AbstractAsyncContextManager[None]:
    @contextlib.asynccontextmanager
    async def receive() -> AsyncIterator[None]:
        events.append(f"{name} receiving")
        try:
            yield
        finally:
            events.append(f"{name} stops receiving")

    return receive()


async def test_front_ends_are_added_before_the_service_starts_and_receive_after_it() -> None:
    events: list[str] = []
    service: Any = RecordingService(events)
    starts = [FrontEndStart("telegram", receiving("telegram", events)),  # type: ignore[arg-type]
              FrontEndStart("console"),  # type: ignore[arg-type]
              FrontEndStart("discord", receiving("discord", events))]  # type: ignore[arg-type]
    async with frontends_started(service, starts):
        events.append("running")
    assert events == ["add telegram", "add console", "add discord", "service start",
                      "telegram receiving", "discord receiving", "running",
                      "discord stops receiving", "telegram stops receiving", "service stop"]


async def test_the_service_stops_when_a_front_end_fails_to_start_receiving() -> None:
    events: list[str] = []
    service: Any = RecordingService(events)

    @contextlib.asynccontextmanager
    async def refused() -> AsyncIterator[None]:
        raise ConnectionError("gateway refused")
        yield

    starts = [FrontEndStart("telegram", receiving("telegram", events)),  # type: ignore[arg-type]
              FrontEndStart("discord", refused())]  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        async with frontends_started(service, starts):
            events.append("running")
    assert events == ["add telegram", "add discord", "service start", "telegram receiving",
                      "telegram stops receiving", "service stop"]
