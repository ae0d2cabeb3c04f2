"""Redis as operators secure it: a password (with characters URLs must escape) and TLS (`rediss://`),
for the bot and the worker alike."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands import Message, handle
from bot.jobstore import JobState
from generator.contract.config import Config, RedisSettings
from generator.engine.loader import LoadedModels
from generator.worker import redis_settings
from tests.conftest import WorkerHandle, running_stack
from tests.faults.conftest import submit, wait_state
from wanbot.redis_server import LocalRedis, TlsFiles

PASSWORD = "s3cret pass/w@rd"


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1, which is also its own CA."""
    cert, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return TlsFiles(cert=cert, key=key, ca=cert)


@pytest.fixture
def secured_redis(tls_files: TlsFiles) -> Iterator[LocalRedis]:
    server = LocalRedis(password=PASSWORD, tls=tls_files).start()
    yield server
    server.cleanup()


def test_worker_settings_read_the_url_as_redis_py_does(tls_files: TlsFiles) -> None:
    url = f"rediss://:s3cret%20pass%2Fw%40rd@127.0.0.1:6380/2?ssl_cert_reqs=required&ssl_ca_certs={tls_files.ca}"
    settings = redis_settings(url)
    assert (settings.password, settings.ssl, settings.database, settings.port) == (PASSWORD, True, 2, 6380)
    assert (settings.ssl_ca_certs, settings.ssl_cert_reqs) == (str(tls_files.ca), "required")
    assert PASSWORD not in repr(Config(redis=RedisSettings(url=url)))


async def test_bot_and_worker_work_over_tls_with_a_password(config: Config, secured_redis: LocalRedis,
                                                            tiny_models: LoadedModels) -> None:
    assert secured_redis.url.startswith("rediss://:s3cret%20pass%2Fw%40rd@")
    secured = config.model_copy(update={"redis": RedisSettings(url=secured_redis.url, queue="wanbot:tls")})
    worker = WorkerHandle(secured, tiny_models)
    await worker.start()
    try:
        async with running_stack(secured) as stack:
            job_id = await submit(stack, "/video a padlock opening")
            assert await wait_state(stack.service, job_id, JobState.DELIVERED, JobState.FAILED) is JobState.DELIVERED
    finally:
        await worker.stop()


async def test_a_wrong_password_is_refused_clearly_and_costs_nothing(config: Config,
                                                                    secured_redis: LocalRedis) -> None:
    wrong = secured_redis.url.replace("s3cret%20pass", "guess")
    async with running_stack(config.model_copy(update={"redis": RedisSettings(url=wrong)})) as stack:
        reply = await handle(stack.service, Message(stack.user(), "/video a locked door"))
        assert reply == "The video queue is unavailable right now; nothing was charged. Please try again soon."
        assert (await stack.service.ledger.view("console:alice")).available == 200
