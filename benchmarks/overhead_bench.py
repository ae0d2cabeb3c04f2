"""Where a tiny-preset job's time goes outside the pipeline call.

Runs the real stack (redis-server, SQLite ledger, in-process arq worker, console front end)
and submits jobs one after another. For each job it takes the bot's submit → arq enqueue
time, the queue pick-up delay, the pipeline and encode seconds reported by the worker, and
the submit → delivered time, then prints medians and the share of the job spent outside
the pipeline call.

    .venv/bin/python -m benchmarks.overhead_bench [--jobs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path

from arq.jobs import Job

from bot.commands import Message, handle
from bot.console import ConsoleFrontEnd
from bot.frontend import User
from bot.jobstore import JobState
from generator.contract.config import BotSettings, Config, RedisSettings
from generator.contract.options import GeneratorSettings
from generator.contract.presets import get_preset
from generator.engine.loader import load_models
from generator.worker import serve
from wanbot.app import FrontEndStart, frontends_started, open_service
from wanbot.redis_server import LocalRedis


async def measure(jobs: int) -> list[dict[str, float]]:
    redis = LocalRedis().start()
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            redis=RedisSettings(url=redis.url),
            credits={"database": f"{tmp}/bench.sqlite3", "signup_grant": 100_000, "max_jobs_in_flight": 1},
            bot=BotSettings(poll_interval_s=0.05, status_interval_s=0.5, output_dir=f"{tmp}/videos"),
        )
        models = load_models(get_preset("tiny"), GeneratorSettings())
        worker_task = asyncio.create_task(serve(config, models, poll_delay=0.01, handle_signals=False))
        try:
            frontend = ConsoleFrontEnd(Path(tmp) / "videos", io.StringIO())
            async with open_service(config) as service, frontends_started(service, [FrontEndStart(frontend)]):
                user = User("console", "bench")
                for _ in range(jobs):
                    started = time.time()
                    reply = await handle(service, Message(user, "/video a red fox running through snow"))
                    submitted = time.time()
                    assert reply is not None and reply.startswith("🎬"), reply
                    job_id = reply.split()[2]
                    await service.watcher.wait_finished({job_id})
                    delivered = time.time()
                    record = await service.jobs.get(job_id)
                    assert record is not None
                    assert record.state is JobState.DELIVERED, record
                    info = await Job(job_id, service.queue.redis, _queue_name=config.redis.queue,
                                     _deserializer=service.queue.redis.job_deserializer).info()
                    result = record.result
                    assert info is not None and result is not None
                    enqueued = info.enqueue_time.timestamp()
                    picked = info.start_time.timestamp() if hasattr(info, "start_time") else enqueued
                    total = delivered - started
                    rows.append({
                        "submit→enqueue ms": (enqueued - started) * 1000,
                        "submit reply ms": (submitted - started) * 1000,
                        "queue pick-up ms": (picked - enqueued) * 1000,
                        "pipeline s": result.pipeline_s,
                        "encode s": result.encode_s,
                        "submit→delivered s": total,
                        "outside pipeline %": 100 * (total - result.pipeline_s) / total,
                    })
        finally:
            worker_task.cancel()
            await asyncio.gather(worker_task, return_exceptions=True)
            redis.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=15)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.jobs))
    print(f"tiny preset, {len(rows)} sequential jobs (first one included)")
    print(f"{'measure':<22}{'median':>10}{'min':>10}{'max':>10}")
    for key in rows[0]:
        values = [row[key] for row in rows]
        print(f"{key:<22}{statistics.median(values):>10.3f}{min(values):>10.3f}{max(values):>10.3f}")


if __name__ == "__main__":
    main()
