"""Prometheus metrics of the bot and the workers, and the small HTTP server that serves them.

`/metrics` is Prometheus' text format; `/healthz` answers 200 while the process can do its job
(the checks are the process's own: SQLite and Redis for the bot, models and Redis for a worker)
and 503 with the failing checks' names otherwise, for Docker, systemd or Kubernetes probes.

There is no authentication, so both listen on 127.0.0.1 unless `metrics_host` says otherwise, and
`/healthz` names a failing check with one fixed word: what went wrong (paths, hosts, exception text)
goes to the log only.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

logger = logging.getLogger("wanbot.metrics")

JOBS_SUBMITTED = Counter("wanbot_jobs_submitted", "Video jobs queued", ["preset"])
JOBS_FINISHED = Counter("wanbot_jobs_finished", "Video jobs ended, by outcome", ["outcome"])
QUEUE_WAITING = Gauge("wanbot_queue_waiting", "Jobs waiting for a worker", ["queue"])
JOBS_FOLLOWED = Gauge("wanbot_jobs_followed", "Unfinished jobs the bot follows")
CREDITS_CAPTURED = Counter("wanbot_credits_captured", "Credits charged: delivered videos, shares kept by cancels")
CREDITS_GRANTED = Counter("wanbot_credits_granted", "Credits granted by admins")
REFUSALS = Counter("wanbot_refusals", "Requests refused before anything was charged", ["reason"])
GENERATION_SECONDS = Histogram(
    "wanbot_generation_seconds", "Pipeline seconds per clip", ["preset"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 2400, 3600),
)
WORKER_JOBS = Counter("wanbot_worker_jobs", "Jobs a worker ran, by outcome", ["preset", "outcome"])
WORKER_BUSY = Gauge("wanbot_worker_busy", "1 while this worker renders a job")
WORKER_HEARTBEAT = Gauge("wanbot_worker_heartbeat_timestamp", "Unix time of the worker's last sign of life")

HealthCheck = Callable[[], Awaitable[str | None]]  # None: healthy; else what is wrong (for the log)
FAILING = "failing"  # all /healthz says about a failing check
DEFAULT_HOST = "127.0.0.1"


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _health(checks: dict[str, HealthCheck]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def health(request: web.Request) -> web.Response:
        problems = {}
        for name, check in checks.items():
            try:
                problem = await check()
            except Exception as error:  # a check that fails is a failed check
                logger.warning("health check %s raised", name, exc_info=error)
                problem = type(error).__name__
            if problem is not None:
                logger.warning("health check %s failing: %s", name, problem)
                problems[name] = FAILING
        return web.json_response({"ok": not problems, "problems": problems}, status=503 if problems else 200)

    return health


@contextlib.asynccontextmanager
async def serving(port: int, checks: dict[str, HealthCheck], host: str = DEFAULT_HOST) -> AsyncIterator[int]:
    """Serve /metrics and /healthz on `host`:`port` (0: a free one) while the block runs; yields the port."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _health(checks))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.create_server((host, port), reuse_port=False)
    await web.SockSite(runner, sock).start()
    bound = int(sock.getsockname()[1])
    logger.info("metrics and health on %s:%d", host, bound)
    try:
        yield bound
    finally:
        await runner.cleanup()
