"""Wiring: open the ledger, the jobs table and the queue once, and hand out the service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

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
