"""Fault injection: each test gets a redis-server of its own (tests kill it) and waits on real processes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bot.commands import Message, handle
from bot.jobstore import JobState
from bot.service import BotService
from generator.contract.jobs import Progress, Stage, progress_key
from tests.conftest import Pace, Stack, settled
from tests.discord.conftest import discord_config, discord_env  # noqa: F401  (fixtures of the platform faults)
from tests.telegram.conftest import api, telegram, telegram_config  # noqa: F401
from wanbot.redis_server import LocalRedis

SLOW_STEPS = 60  # a job long enough to kill its worker mid-render


@dataclass(frozen=True)
class SlowJob:
    """A job of SLOW_STEPS steps with a job timeout it meets on this machine now: a timeout only just above
    the job's length fails it on a busy machine instead of testing anything."""

    steps: int
    job_timeout_s: int

    @property
    def config(self) -> dict[str, int]:
        """`write_config` keys."""
        return {"steps": self.steps, "job_timeout_s": self.job_timeout_s}

    @property
    def handed_on_s(self) -> float:
        """How long a dead worker's job may take to end elsewhere: arq hands it on once its timeout and
        10 s have passed since it started, and the next try may run as long again."""
        return 2 * self.job_timeout_s + 60


@pytest.fixture
def slow_job(pace: Pace) -> SlowJob:
    return SlowJob(SLOW_STEPS, pace.job_timeout_s(SLOW_STEPS))


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """Persistent, like a production Redis: killed and restarted on its folder, it comes back with its data."""
    server = LocalRedis(persist=True).start()
    yield server
    server.cleanup()


async def submit(stack: Stack, text: str, user: str = "alice") -> str:
    reply = await handle(stack.service, Message(stack.user(user), text))
    assert reply is not None and reply.startswith("🎬 Job "), reply
    return reply.split()[2]


async def wait_state(service: BotService, job_id: str, *states: JobState, timeout_s: float = 120) -> JobState:
    """The job's state once it is one of `states` (any final state when none are named); a final state once
    the watcher has settled the job's credits too."""
    async with asyncio.timeout(timeout_s):
        while True:
            record = await service.jobs.get(job_id)
            if record is not None and (record.state in states or (not states and record.state.finished)):
                if record.state.finished:
                    await settled(service, job_id)
                return record.state
            await asyncio.sleep(0.1)


async def wait_told(stack: Stack, text: str, timeout_s: float = 120) -> None:
    """Until the console has told the user `text`: a job's state is stored before its user is told."""
    async with asyncio.timeout(timeout_s):
        while text not in stack.out.getvalue():  # noqa: ASYNC110 (a console buffer has no event to wait on)
            await asyncio.sleep(0.05)


async def wait_rendering(stack: Stack, job_id: str, timeout_s: float = 120) -> Progress:
    """The job's progress once a worker is denoising it (its `worker` says which: host:pid)."""
    async with asyncio.timeout(timeout_s):
        while True:
            raw = await stack.service.queue.redis.get(progress_key(job_id))
            if raw is not None and (progress := Progress.model_validate_json(raw)).stage is Stage.DENOISING:
                return progress
            await asyncio.sleep(0.05)
