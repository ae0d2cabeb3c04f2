"""Prometheus metrics and health checks over real HTTP, and the counters a job moves."""

from __future__ import annotations

import json

import aiohttp
import pytest
from prometheus_client import REGISTRY

from bot.commands import Message, handle
from generator.contract import metrics
from generator.contract.config import Config
from tests.conftest import Stack, WorkerHandle
from wanbot.bot import health_checks


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_and_health_are_served(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> str | None:
        return "disk full"

    checks = health_checks(stack.service)
    async with metrics.serving(0, checks) as port, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200 and "wanbot_jobs_submitted" in await response.text()
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200 and (await response.json()) == {"ok": True, "problems": {}}
        await stack.service.stop()  # the watcher stops: the bot is no longer healthy
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503
            assert (await response.json())["problems"] == {"delivery": "failing"}
    async with metrics.serving(0, {"disk": broken}) as port, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503 and (await response.json())["problems"] == {"disk": "failing"}
    assert "the delivery watcher stopped" in caplog.text and "disk full" in caplog.text  # the operator's log


async def test_metrics_listen_on_loopback_only_by_default() -> None:
    async with metrics.serving(0, {}) as port, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
        # 127.0.0.2 reaches a socket bound to every interface (0.0.0.0), never one bound to 127.0.0.1
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(f"http://127.0.0.2:{port}/metrics"):
                pass
    assert Config().bot.metrics_host == Config().generator.metrics_host == "127.0.0.1"


async def test_healthz_never_echoes_exception_text() -> None:
    async def leaky() -> str | None:
        raise OSError("cannot open /srv/wanbot/secret-path.sqlite3 as redis://:hunter2@10.0.0.5")

    async with metrics.serving(0, {"sqlite": leaky}) as port, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            body = await response.text()
    assert response.status == 503
    assert json.loads(body) == {"ok": False, "problems": {"sqlite": "failing"}}
    assert "hunter2" not in body and "secret-path" not in body and "OSError" not in body


async def test_a_delivered_job_moves_the_counters(stack: Stack, worker: WorkerHandle) -> None:
    before = {
        "submitted": sample("wanbot_jobs_submitted_total", preset="tiny"),
        "delivered": sample("wanbot_jobs_finished_total", outcome="delivered"),
        "captured": sample("wanbot_credits_captured_total"),
        "rendered": sample("wanbot_worker_jobs_total", preset="tiny", outcome="done"),
        "refused": sample("wanbot_refusals_total", reason="UserError"),
    }
    await worker.start()
    reply = await handle(stack.service, Message(stack.user(), "/video a lighthouse at dusk"))
    assert reply is not None and reply.startswith("🎬")
    await handle(stack.service, Message(stack.user(), "/video a fox --ar 4:3"))
    job_id = reply.split()[2]
    await stack.service.watcher.wait_finished({job_id})
    assert sample("wanbot_jobs_submitted_total", preset="tiny") == before["submitted"] + 1
    assert sample("wanbot_jobs_finished_total", outcome="delivered") == before["delivered"] + 1
    assert sample("wanbot_credits_captured_total") == before["captured"] + 10
    assert sample("wanbot_worker_jobs_total", preset="tiny", outcome="done") == before["rendered"] + 1
    assert sample("wanbot_refusals_total", reason="UserError") == before["refused"] + 1
    assert sample("wanbot_generation_seconds_count", preset="tiny") >= 1
    assert sample("wanbot_worker_heartbeat_timestamp") > 0
