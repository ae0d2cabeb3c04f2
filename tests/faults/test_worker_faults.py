"""Workers dying mid-job, and jobs outlasting their timeout: nothing is lost, nothing is charged twice.

Real `wanbot worker` processes, SIGKILLed. A job of 60 sampling steps on the tiny models takes under a
second on an idle machine and many on a busy one; its job timeout comes from the session's measured pace
(`slow_job`: at least 8 s), and arq hands a dead worker's job to another one 10 s after that.
"""

from __future__ import annotations

from pathlib import Path

from bot.jobstore import JobState
from credits.models import JournalReason, ReservationState
from generator.contract.config import load_config
from tests.conftest import Stack, running_stack
from tests.faults.conftest import SlowJob, submit, wait_rendering, wait_state, wait_told
from tests.faults.processes import WanbotProcess, write_config
from wanbot.redis_server import LocalRedis


async def workers(config_path: Path, tmp_path: Path, count: int, first: int = 0) -> list[WanbotProcess]:
    started = [WanbotProcess(config_path, "worker", tmp_path / f"worker{first + n}.log").start() for n in range(count)]
    for worker in started:
        await worker.wait_for_log("ready on queue")
    return started


def running_it(progress_worker: str, candidates: list[WanbotProcess]) -> WanbotProcess:
    return next(worker for worker in candidates if progress_worker.endswith(f":{worker.pid}"))


async def journal_of(stack: Stack, job_id: str) -> list[JournalReason]:
    history = await stack.service.ledger.history("console:alice", 100)
    return [entry.reason for entry in history if entry.job_id == job_id]


async def test_the_survivor_finishes_a_killed_worker_s_job(tmp_path: Path, own_redis: LocalRedis,
                                                           slow_job: SlowJob) -> None:
    path = write_config(tmp_path / "config.toml", redis_url=own_redis.url, database=tmp_path / "bot.sqlite3",
                        **slow_job.config)
    pool = await workers(path, tmp_path, 2)
    try:
        async with running_stack(load_config(path)) as stack:
            job_id = await submit(stack, "/video a kite in the wind")
            victim = running_it((await wait_rendering(stack, job_id)).worker, pool)
            victim.kill()
            survivor = next(worker for worker in pool if worker is not victim)
            assert await wait_state(stack.service, job_id, JobState.DELIVERED, JobState.FAILED,
                                    timeout_s=slow_job.handed_on_s) is JobState.DELIVERED
            await survivor.wait_for_log(rf"job {job_id}: start \(try 2")
            assert job_id in stack.frontend.delivered
            assert await journal_of(stack, job_id) == [JournalReason.CAPTURE]  # charged once, never released
            reservation = await stack.service.ledger.reservation(job_id)
            assert reservation is not None and reservation.state is ReservationState.CAPTURED
    finally:
        for worker in pool:
            worker.stop()


async def test_a_job_whose_workers_keep_dying_ends_failed_and_released_once(tmp_path: Path, own_redis: LocalRedis,
                                                                            slow_job: SlowJob) -> None:
    path = write_config(tmp_path / "config.toml", redis_url=own_redis.url, database=tmp_path / "bot.sqlite3",
                        **slow_job.config)
    pool = await workers(path, tmp_path, 2)
    try:
        async with running_stack(load_config(path)) as stack:
            job_id = await submit(stack, "/video a house of cards")
            first = running_it((await wait_rendering(stack, job_id)).worker, pool)
            first.kill()
            second = next(worker for worker in pool if worker is not first)
            await second.wait_for_log(rf"job {job_id}: start \(try 2", timeout_s=slow_job.handed_on_s)
            second.kill()
            pool += await workers(path, tmp_path, 1, first=2)  # a third worker finds the job out of tries
            assert await wait_state(stack.service, job_id, JobState.DELIVERED, JobState.FAILED,
                                    timeout_s=slow_job.handed_on_s) is JobState.FAILED
            await pool[-1].wait_for_log("max retries 2 exceeded")
            await wait_told(stack, "the GPU worker running it stopped each time it tried")
            reservation = await stack.service.ledger.reservation(job_id)
            assert reservation is not None and reservation.state is ReservationState.RELEASED
            assert await journal_of(stack, job_id) == []  # nothing charged, nothing to refund
            view = await stack.service.ledger.view("console:alice")
            assert (view.balance, view.reserved) == (200, 0)
    finally:
        for worker in pool:
            worker.stop()


async def test_a_job_longer_than_its_timeout_is_stopped_released_and_told(tmp_path: Path,
                                                                          own_redis: LocalRedis) -> None:
    path = write_config(tmp_path / "config.toml", redis_url=own_redis.url, database=tmp_path / "bot.sqlite3",
                        steps=2000, job_timeout_s=2)
    (worker,) = await workers(path, tmp_path, 1)
    try:
        async with running_stack(load_config(path)) as stack:
            job_id = await submit(stack, "/video a very long day")
            assert await wait_state(stack.service, job_id, JobState.DELIVERED, JobState.FAILED) is JobState.FAILED
            await wait_told(stack, "it took longer than the time limit")
            assert (await stack.service.ledger.view("console:alice")).available == 200
            await worker.wait_for_log(rf"job {job_id}: cancelled, waiting for the GPU thread to stop")
            other = await submit(stack, "/video the next one")
            await worker.wait_for_log(rf"job {other}: start")  # the next job runs: the GPU thread was freed
    finally:
        worker.stop()
