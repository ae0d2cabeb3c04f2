"""How many reserve + capture pairs per second the SQLite ledger settles.

Opens a fresh ledger in a temp dir, funds one account, then times the same number of
pairs run one after another and spread over concurrent tasks (as the bot's delivery
watcher and chat handlers share one connection). Each mode is repeated; the table shows
the median and the range.

    .venv/bin/python -m benchmarks.ledger_bench [--pairs 2000] [--tasks 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from credits.ledger import Ledger
from generator.contract.credits_config import CreditsSettings

ACCOUNT = "console:bench"
PRICE = 10


async def pairs(ledger: Ledger, job_ids: list[str]) -> None:
    for job_id in job_ids:
        await ledger.reserve(ACCOUNT, job_id, PRICE)
        await ledger.capture(job_id)


async def run_once(ledger: Ledger, ids: itertools.count[int], count: int, tasks: int) -> float:
    """Pairs per second for `count` pairs over `tasks` concurrent tasks."""
    job_ids = [f"job{next(ids)}" for _ in range(count)]
    started = time.perf_counter()
    await asyncio.gather(*(pairs(ledger, job_ids[n::tasks]) for n in range(tasks)))
    return count / (time.perf_counter() - started)


async def measure(count: int, tasks: int, repeats: int) -> dict[str, list[float]]:
    settings = CreditsSettings(signup_grant=0, max_jobs_in_flight=tasks)
    results: dict[str, list[float]] = {"sequential": [], f"{tasks} concurrent tasks": []}
    ids = itertools.count()
    with tempfile.TemporaryDirectory() as tmp:
        async with await Ledger.open(Path(tmp) / "bench.sqlite3", settings) as ledger:
            await ledger.grant(ACCOUNT, count * PRICE * repeats * len(results), "bench")
            for _ in range(repeats):
                for mode, concurrency in zip(results, (1, tasks), strict=True):
                    results[mode].append(await run_once(ledger, ids, count, concurrency))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(measure(args.pairs, args.tasks, args.repeats))
    print(f"reserve + capture pairs per second ({args.pairs} pairs per run, {args.repeats} runs, WAL, one connection)")
    print(f"{'mode':<22}{'median':>10}{'min':>10}{'max':>10}")
    for mode, values in results.items():
        print(f"{mode:<22}{statistics.median(values):>10.0f}{min(values):>10.0f}{max(values):>10.0f}")


if __name__ == "__main__":
    main()
