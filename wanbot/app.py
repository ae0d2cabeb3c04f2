"""Wiring: open the ledger, the jobs table and the queue once, hand out the service, start the front ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from bot.frontend import FrontEnd
from bot.jobstore import JobStore
from bot.queue import VideoQueue
from bot.seen import SeenEvents
from bot.service import BotService
from credits.ledger import Ledger
from generator.contract.config import Config
from generator.contract.presets import get_preset


@contextlib.asynccontextmanager
async def open_service(config: Config) -> AsyncIterator[BotService]:
    """The bot service with its watcher running; everything closed again on exit."""
    ledger = await Ledger.open(config.credits.database, config.credits)
    jobs = await JobStore.open(config.credits.database)
    seen = await SeenEvents.open(config.credits.database)
    queue = VideoQueue.connect(config.redis.url.get_secret_value(), config.redis.queue,
                               config.redis.result_ttl_s)
    service = BotService(config, get_preset(config.generator.preset), ledger, jobs, queue, seen)
    try:
        yield service
    finally:
        await service.stop()
        await queue.close()
        await seen.close()
        await jobs.close()
        await ledger.close()


@dataclass(frozen=True)
class FrontEndStart:
    """A front end for the service, and how it starts receiving (None: it is driven from outside, as the console)."""

    frontend: FrontEnd
    receiving: contextlib.AbstractAsyncContextManager[None] | None = None


@contextlib.asynccontextmanager
async def frontends_started(service: BotService, starts: Sequence[FrontEndStart]) -> AsyncIterator[BotService]:
    """Every front end added to the service, then the service started, then the front ends receiving.

    The order matters: the delivery watcher may deliver at once what a previous run left behind, so
    it needs every front end first; and no command may arrive before the watcher follows jobs. On
    exit the front ends stop receiving, then the service stops, before the caller closes any client,
    so no delivery meets a closed one.
    """
    for start in starts:
        service.add_frontend(start.frontend)
    await service.start()
    try:
        async with contextlib.AsyncExitStack() as receiving:
            for start in starts:
                if start.receiving is not None:
                    await receiving.enter_async_context(start.receiving)
            yield service
    finally:
        await service.stop()
