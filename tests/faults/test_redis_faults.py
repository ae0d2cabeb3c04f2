"""Redis going away mid-job, coming back with its data or empty: bot and worker carry on by themselves,
jobs Redis forgot are released with a message, and /balance works throughout."""

from __future__ import annotations

from pathlib import Path

from bot.commands import Message, handle
from bot.jobstore import JobState
from credits.models import ReservationState
from generator.contract.config import load_config
from tests.conftest import running_stack
from tests.faults.conftest import SlowJob, submit, wait_rendering, wait_state, wait_told
from tests.faults.processes import WanbotProcess, write_config
from wanbot.redis_server import LocalRedis


async def start_worker(path: Path, log: Path) -> WanbotProcess:
    worker = WanbotProcess(path, "worker", log).start()
    await worker.wait_for_log("ready on queue")
    return worker


async def test_redis_down_mid_job_and_back_with_its_data(tmp_path: Path, own_redis: LocalRedis,
                                                         slow_job: SlowJob) -> None:
    path = write_config(tmp_path / "config.toml", redis_url=own_redis.url, database=tmp_path / "bot.sqlite3",
                        **slow_job.config)
    worker = await start_worker(path, tmp_path / "worker.log")
    try:
        async with running_stack(load_config(path)) as stack:
            job_id = await submit(stack, "/video lanterns on a lake")
            await wait_rendering(stack, job_id)
            own_redis.kill()

            balance = await handle(stack.service, Message(stack.user(), "/balance"))
            assert balance == "Balance: 200 credits, 10 held for jobs in progress. Available: 190."
            refused = await handle(stack.service, Message(stack.user(), "/video another one"))
            assert refused == "The video queue is unavailable right now; nothing was charged. Please try again soon."
            assert (await stack.service.ledger.view("console:alice")).reserved == 10
            await worker.wait_for_log("lost Redis")

            own_redis.restart()
            # The worker connects again; arq runs the interrupted job again once its in-progress key expires.
            assert await wait_state(stack.service, job_id, JobState.DELIVERED, JobState.FAILED,
                                    timeout_s=slow_job.handed_on_s) is JobState.DELIVERED
            after = await submit(stack, "/video one more, now that Redis is back")
            assert await wait_state(stack.service, after, JobState.DELIVERED, JobState.FAILED) is JobState.DELIVERED
            view = await stack.service.ledger.view("console:alice")
            assert (view.balance, view.reserved) == (180, 0)
    finally:
        worker.stop()


async def test_redis_back_empty_the_lost_jobs_are_released_and_told(tmp_path: Path) -> None:
    forgetful = LocalRedis().start()  # no persistence: a restart comes back empty
    path = write_config(tmp_path / "config.toml", redis_url=forgetful.url, database=tmp_path / "bot.sqlite3")
    try:
        async with running_stack(load_config(path)) as stack:
            waiting = await submit(stack, "/video a queue that will be forgotten")  # no worker yet
            forgetful.restart()
            assert await wait_state(stack.service, waiting, JobState.LOST) is JobState.LOST
            await wait_told(stack, f"Sorry, job {waiting} failed: the queue lost it")
            reservation = await stack.service.ledger.reservation(waiting)
            assert reservation is not None and reservation.state is ReservationState.RELEASED
            worker = await start_worker(path, tmp_path / "worker.log")
            try:
                fresh = await submit(stack, "/video after the restart")
                assert await wait_state(stack.service, fresh, JobState.DELIVERED, JobState.FAILED) is JobState.DELIVERED
            finally:
                worker.stop()
            view = await stack.service.ledger.view("console:alice")
            assert (view.balance, view.reserved) == (190, 0)
    finally:
        forgetful.cleanup()
