"""Shared fixtures: a real redis-server on a free loopback port, tiny Wan pipelines built once, how fast
this machine runs them right now, and a running wanbot stack (service + console front end + in-process
arq worker)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import itertools
import math
import statistics
import threading
import time
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
from generator.contract.encode import encode_mp4
from generator.contract.options import GeneratorSettings
from generator.contract.presets import get_preset
from generator.engine.audio import load_audio_pipeline
from generator.engine.loader import LoadedModels, load_models
from generator.engine.run import GenerationSpec, generate
from generator.worker import serve
from wanbot.app import FrontEndStart, frontends_started, open_service
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


@dataclass(frozen=True)
class Pace:
    """How fast this machine runs a tiny job now, measured once a session: a test that needs a job timeout
    derives it from these, so a busy machine gets longer ones instead of failing."""

    fixed_s: float  # one job's seconds outside its sampling steps (prompt, VAE decode, MP4 encode)
    step_s: float  # one sampling step's seconds

    SAFETY = 4  # a job may run this many times slower than measured (other processes share the CPU)

    def job_s(self, steps: int) -> float:
        return self.fixed_s + steps * self.step_s

    def job_timeout_s(self, steps: int, floor_s: int = 8) -> int:
        """A whole-second job timeout that a job of `steps` steps meets with room to spare (never under floor_s)."""
        return max(floor_s, math.ceil(self.SAFETY * self.job_s(steps)))


@pytest.fixture(scope="session")
def pace(tiny_models: LoadedModels) -> Pace:
    steps = 12
    models = dataclasses.replace(tiny_models, settings=tiny_models.settings.model_copy(update={"steps": steps}))
    preset = models.preset
    width, height = preset.size_for(preset.resolutions[0], "16:9")
    spec = GenerationSpec("a red fox runs through the snow", None, width, height, preset.frames_for(preset.max_seconds),
                          seed=1)

    def measured() -> Pace:
        step_times: list[float] = []
        started = time.perf_counter()
        video = generate(models, spec, lambda step, total: step_times.append(time.perf_counter()), threading.Event())
        encode_mp4(video.frames, video.fps)
        total_s = time.perf_counter() - started
        step_s = statistics.median(later - earlier for earlier, later in itertools.pairwise(step_times))
        return Pace(fixed_s=max(0.0, total_s - steps * step_s), step_s=step_s)

    measured()  # the first run in a process pays one-off set-up a worker pays before its first job
    return min((measured() for _ in range(2)), key=lambda pace: pace.job_s(steps))


async def settled(service: BotService, *job_ids: str) -> None:
    """Until the delivery watcher stops following the jobs: a job's final state is stored before its credits
    are captured or released and its user is told, so a test reading the ledger waits for this."""
    await service.watcher.wait_finished(set(job_ids))


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
        async with frontends_started(service, [FrontEndStart(frontend)]):
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
