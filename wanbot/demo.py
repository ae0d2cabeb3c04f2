"""`wanbot demo`: the whole job on one machine — Redis, a worker on the tiny preset, the console chat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from pydantic import SecretStr

from bot.console import ConsoleFrontEnd, run_console
from bot.frontend import User
from generator.contract.config import Config
from generator.worker import serve
from wanbot.app import FrontEndStart, frontends_started, open_service
from wanbot.redis_server import ensure_redis

logger = logging.getLogger("wanbot.demo")


def configured_redis_url(config: Config) -> str | None:
    """The Redis URL the operator chose (config file or REDIS_URL), None when it is only the default.

    The default, 127.0.0.1:6379, is a port any local user can take first: only a URL someone wrote
    down is worth trusting with prompts and images.
    """
    return config.redis.url.get_secret_value() if "url" in config.redis.model_fields_set else None


async def run_demo(config: Config, user_id: str = "local") -> int:
    url, local_redis = await ensure_redis(configured_redis_url(config))
    try:
        config = config.model_copy(update={"redis": config.redis.model_copy(update={"url": SecretStr(url)})})
        worker_task = asyncio.create_task(serve(config, handle_signals=False), name="worker")
        try:
            async with open_service(config) as service:
                frontend = ConsoleFrontEnd(Path(config.bot.output_dir))
                async with frontends_started(service, [FrontEndStart(frontend)]):
                    await run_console(service, frontend, User("console", user_id, "you"), sys.stdin)
            return 0
        finally:
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
    finally:
        if local_redis is not None:
            local_redis.cleanup()
