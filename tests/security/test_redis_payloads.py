"""Nothing read from Redis can run code: arq's job definitions and results travel as JSON, both ways.

Each attack plants what someone with write access to Redis would: a pickle whose loading runs a
command (it creates a marker file), bytes nobody can decode, a result of the wrong shape. The bot and
the worker run no code, fail only the job that was tampered with (credits released, user told),
and deliver everyone else's videos.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import shlex
from pathlib import Path
from typing import Any

import pytest
from arq.constants import job_key_prefix, result_key_prefix, retry_key_prefix
from arq.jobs import DeserializationError, deserialize_result, serialize_result
from arq.worker import JobExecutionFailed
from redis.asyncio import Redis

from bot.commands import Message, handle
from bot.jobstore import JobState
from bot.queue import describe_failure
from credits.models import ReservationState
from generator.contract import wire
from generator.contract.config import Config
from generator.contract.jobs import JobFailed, progress_key
from generator.engine.loader import LoadedModels
from generator.worker import MAX_TRIES, serve
from tests.conftest import Stack
from tests.faults.conftest import submit, wait_state

TIMEOUT_S = 60


class Exploit:
    """Unpickling this runs a shell command: what a pickled arq payload can do to whoever loads it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def arq_result(result: Any, success: bool = False) -> dict[str, Any]:
    """A result in arq's layout, as a worker would store it."""
    return {"t": 1, "f": "generate_video", "a": [], "k": {}, "et": 0, "s": success, "r": result, "st": 0, "ft": 0}


async def finish_with(redis: Redis, queue_name: str, job_id: str, raw_result: bytes) -> None:
    """The job as arq leaves it once a worker is done, but with `raw_result` as its stored result."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(job_key_prefix + job_id)
        pipe.zrem(queue_name, job_id)
        pipe.set(result_key_prefix + job_id, raw_result)
        await pipe.execute()


async def run_worker_burst(config: Config, models: LoadedModels) -> None:
    """An arq worker (the real worker settings) that stops once the queue is empty."""
    await serve(config, models, burst=True, poll_delay=0, handle_signals=False)


async def assert_released_and_told(stack: Stack, job_id: str) -> None:
    reservation = await stack.service.ledger.reservation(job_id)
    assert reservation is not None and reservation.state is ReservationState.RELEASED
    assert f"Sorry, job {job_id} failed: something went wrong on our side (job {job_id})" in stack.out.getvalue()


async def test_planted_results_run_nothing_in_the_bot_and_fail_only_their_own_job(
        stack: Stack, config: Config, tiny_models: LoadedModels, tmp_path: Path) -> None:
    marker = tmp_path / "bot-ran-planted-code"
    redis = stack.service.queue.redis
    pickled = await submit(stack, "/video a pickled result", "mallory")
    garbage = await submit(stack, "/video a result nobody can read", "mallory")
    misshapen = await submit(stack, "/video a result of the wrong shape", "trudy")
    honest = await submit(stack, "/video an honest fox")

    await finish_with(redis, config.redis.queue, pickled, pickle.dumps(arq_result(Exploit(marker))))
    await finish_with(redis, config.redis.queue, garbage, b"\x80\x05\x95 neither a pickle nor JSON")
    await finish_with(redis, config.redis.queue, misshapen, wire.dumps(arq_result({"seed": "?"}, success=True)))
    await redis.set(progress_key(honest), b"{not progress")  # until the worker writes real progress
    await run_worker_burst(config, tiny_models)

    for job_id in (pickled, garbage, misshapen):
        assert await wait_state(stack.service, job_id, timeout_s=TIMEOUT_S) is JobState.FAILED
        await assert_released_and_told(stack, job_id)
    assert await wait_state(stack.service, honest, timeout_s=TIMEOUT_S) is JobState.DELIVERED
    assert not marker.exists()
    assert (await stack.service.ledger.view("console:mallory")).reserved == 0


async def test_a_planted_job_runs_nothing_in_the_worker_and_fails_cleanly(
        stack: Stack, config: Config, tiny_models: LoadedModels, tmp_path: Path) -> None:
    marker = tmp_path / "worker-ran-planted-code"
    redis = stack.service.queue.redis
    planted = await submit(stack, "/video a job rewritten in Redis", "mallory")
    honest = await submit(stack, "/video an honest fox")
    definition = {"t": 1, "f": "generate_video", "a": [Exploit(marker)], "k": {}, "et": 0}
    await redis.set(job_key_prefix + planted, pickle.dumps(definition), ex=3600)

    await run_worker_burst(config, tiny_models)

    assert await wait_state(stack.service, planted, timeout_s=TIMEOUT_S) is JobState.FAILED
    await assert_released_and_told(stack, planted)
    assert await wait_state(stack.service, honest, timeout_s=TIMEOUT_S) is JobState.DELIVERED
    assert not marker.exists()
    record = await stack.service.jobs.get(planted)
    assert record is not None and record.error == "unable to deserialize job"


async def test_cancelling_decodes_nothing_the_job_holds_in_redis(stack: Stack, tmp_path: Path) -> None:
    marker = tmp_path / "cancel-ran-planted-code"
    redis = stack.service.queue.redis
    job_id = await submit(stack, "/video a job to cancel", "mallory")
    definition = {"t": 1, "f": "generate_video", "a": [Exploit(marker)], "k": {}, "et": 0}
    await redis.set(job_key_prefix + job_id, pickle.dumps(definition), ex=3600)

    await handle(stack.service, Message(stack.user("mallory"), f"/cancel {job_id}"))

    record = await stack.service.jobs.get(job_id)
    assert record is not None and record.state is JobState.CANCELLED
    assert (await stack.service.ledger.view("console:mallory")).reserved == 0
    assert not marker.exists()


async def test_arq_s_own_failures_still_tell_the_user_why(stack: Stack, config: Config,
                                                          tiny_models: LoadedModels) -> None:
    redis = stack.service.queue.redis
    expired = await submit(stack, "/video a job whose definition expired")
    exhausted = await submit(stack, "/video a job tried too often", "bob")
    await redis.delete(job_key_prefix + expired)  # what arq finds once a job waited past its expiry
    await redis.set(retry_key_prefix + exhausted, MAX_TRIES)  # every try so far died with its worker

    await run_worker_burst(config, tiny_models)

    assert await wait_state(stack.service, expired, timeout_s=TIMEOUT_S) is JobState.FAILED
    assert await wait_state(stack.service, exhausted, timeout_s=TIMEOUT_S) is JobState.FAILED
    out = stack.out.getvalue()
    assert f"Sorry, job {expired} failed: no GPU worker was free to take it in time." in out
    assert f"Sorry, job {exhausted} failed: the GPU worker running it stopped each time it tried." in out


@pytest.mark.parametrize(("error", "described"), [
    (TimeoutError(), ("timed out", "it took longer than the time limit")),
    (asyncio.CancelledError(), ("cancelled on the worker", "it was cancelled")),
    (JobExecutionFailed("max 2 retries exceeded"),
     ("max 2 retries exceeded", "the GPU worker running it stopped each time it tried")),
    (JobExecutionFailed("job expired"), ("job expired", "no GPU worker was free to take it in time")),
    (JobFailed("BadImage: not a picture", "send a JPEG, PNG or WebP"),
     ("BadImage: not a picture", "send a JPEG, PNG or WebP")),
    (DeserializationError("unable to deserialize job"), ("unable to deserialize job", None)),
    (object(), ("unable to serialize result", None)),  # arq's own fallback for a result JSON can't hold
])
def test_every_failure_arq_stores_travels_as_plain_data(error: Any, described: tuple[str, str | None]) -> None:
    raw = serialize_result("generate_video", (), {}, 1, 0, False, error, 0, 0, "ref", "wanbot:test", "job-1",
                           serializer=wire.dumps)
    assert raw is not None and b"\x80" not in raw  # JSON, no pickle opcodes
    result = deserialize_result(raw, deserializer=wire.loads)
    assert not result.success and describe_failure(result) == described


def test_the_serializer_refuses_a_pickle_without_loading_it(tmp_path: Path) -> None:
    marker = tmp_path / "loaded"
    with pytest.raises(ValueError):
        wire.loads(pickle.dumps(arq_result(Exploit(marker))))
    with pytest.raises(ValueError):
        wire.loads(b"[1, 2]")  # JSON, but not arq's layout
    assert not marker.exists()
