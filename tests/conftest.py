"""Shared fixtures: a real redis-server on a free loopback port, tiny Wan pipelines built once,
and a running wanbot stack (service + console front end + in-process arq worker)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.console import ConsoleFrontEnd
from bot.frontend import User
from bot.service import BotService
from generator.contract.audio_presets import get_audio_preset
from generator.contract.config import AdminSettings, BotSettings, Config, RedisSettings
from generator.contract.options import GeneratorSettings
from generator.contract.presets import get_preset
from generator.engine.audio import load_audio_pipeline
from generator.engine.loader import LoadedModels, load_models
from generator.worker import serve
from wanbot.app import open_service
from wanbot.redis_server import LocalRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    server = LocalRedis().start()
    yield server
    server.cleanup()


@pytest.fixture
async def redis_url(redis_server: LocalRedis) -> AsyncIterator[str]:
    """A clean database for each test."""
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    yield redis_server.url


@pytest.fixture(scope="session")
def tiny_models() -> LoadedModels:
    return load_models(get_preset("tiny"), GeneratorSettings())


@pytest.fixture(scope="session")
def tiny_models_with_audio(tiny_models: LoadedModels) -> LoadedModels:
    """The same video pipelines plus the tiny Stable Audio pipeline ([generator] audio = "tiny")."""
    preset = get_audio_preset("tiny")
    return dataclasses.replace(tiny_models, audio=load_audio_pipeline(preset), audio_preset=preset)


@pytest.fixture
def audio_config(config: Config) -> Config:
    """A deployment that makes sound: the bot accepts --audio and prices it."""
    return config.model_copy(update={"generator": config.generator.model_copy(update={"audio": "tiny"})})


@pytest.fixture
def config(redis_url: str, tmp_path: Path) -> Config:
    return Config(
        redis=RedisSettings(url=redis_url, queue="wanbot:test"),
        admins=AdminSettings(console=["admin"]),
        bot=BotSettings(status_interval_s=0, poll_interval_s=0.1, output_dir=str(tmp_path / "videos")),
        credits={"database": str(tmp_path / "wanbot.sqlite3")},
    )


@dataclass
class Stack:
    """A running bot service with the console front end writing to a buffer."""

    service: BotService
    frontend: ConsoleFrontEnd
    out: io.StringIO

    def user(self, user_id: str = "alice") -> User:
        return User("console", user_id)


class WorkerHandle:
    """An in-process worker (`wanbot worker`'s serve loop) on the tiny models that tests can start and stop."""

    def __init__(self, config: Config, models: LoadedModels) -> None:
        self.config = config
        self.models = models
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(serve(self.config, self.models, poll_delay=0.05, handle_signals=False))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None


@contextlib.asynccontextmanager
async def running_stack(config: Config) -> AsyncIterator[Stack]:
    async with open_service(config) as service:
        out = io.StringIO()
        frontend = ConsoleFrontEnd(Path(config.bot.output_dir), out)
        service.add_frontend(frontend)
        await service.start()
        yield Stack(service, frontend, out)


@pytest.fixture
async def worker(config: Config, tiny_models: LoadedModels) -> AsyncIterator[WorkerHandle]:
    handle = WorkerHandle(config, tiny_models)
    yield handle
    await handle.stop()


@pytest.fixture
async def stack(config: Config) -> AsyncIterator[Stack]:
    async with running_stack(config) as running:
        yield running
