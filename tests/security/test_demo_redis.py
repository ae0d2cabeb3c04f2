"""`wanbot demo` trusts no Redis it was not told about: without a configured URL it starts its own, on a
random port with a random password, its files in a folder only its user can open."""

from __future__ import annotations

import asyncio
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from redis import Redis

from generator.contract.config import load_config
from wanbot.demo import configured_redis_url
from wanbot.redis_server import LocalRedis, ensure_redis, reachable

DEFAULT_PORT = 6379


def test_only_a_url_someone_wrote_down_counts_as_configured(tmp_path: Path) -> None:
    bare, named = tmp_path / "bare.toml", tmp_path / "named.toml"
    bare.write_text('[redis]\nqueue = "wanbot:demo"\n')
    named.write_text('[redis]\nurl = "redis://127.0.0.1:6379/0"\n')
    assert configured_redis_url(load_config(bare, environ={})) is None
    assert configured_redis_url(load_config(named, environ={})) == "redis://127.0.0.1:6379/0"
    from_env = load_config(bare, environ={"REDIS_URL": "redis://:pw@redis:6379/0"})
    assert configured_redis_url(from_env) == "redis://:pw@redis:6379/0"


async def test_the_private_redis_has_a_password_no_one_else_can_read() -> None:
    url, local = await ensure_redis(None)
    assert local is not None and local.process is not None
    try:
        password = unquote(urlparse(url).password or "")
        assert len(password) >= 24 and password == local.password
        assert await reachable(url)
        assert not await reachable(url.replace(f":{urlparse(url).password}@", ""))  # NOAUTH without it
        assert stat.S_IMODE(local.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(local.config_path.stat().st_mode) == 0o600
        command_line = await asyncio.to_thread(Path(f"/proc/{local.process.pid}/cmdline").read_bytes)
        assert password.encode() not in command_line  # `ps` shows it to every local user
    finally:
        local.cleanup()


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def squatter() -> Iterator[LocalRedis]:
    """Another local user's Redis on the default URL, no password: what the demo used to adopt."""
    if not port_is_free(DEFAULT_PORT):
        pytest.skip(f"port {DEFAULT_PORT} is in use on this machine; the squatter needs it")
    server = LocalRedis(port=DEFAULT_PORT).start()
    yield server
    server.cleanup()


def test_the_demo_ignores_a_redis_squatting_the_default_url(tmp_path: Path, squatter: LocalRedis) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[credits]\ndatabase = "{tmp_path / "demo.sqlite3"}"\n'
                      f'[bot]\noutput_dir = "{tmp_path / "videos"}"\npoll_interval_s = 0.2\n')
    run = subprocess.run(
        [sys.executable, "-m", "wanbot.cli", "--config", str(config), "--log-level", "INFO", "demo"],
        input="/video a fox in the snow\n", capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert re.search(r"✅ Job \w+ done", run.stdout), run.stdout
    port = re.search(r"started a private redis-server on port (\d+)", run.stderr)
    assert port is not None and int(port.group(1)) != DEFAULT_PORT, run.stderr
    client = Redis.from_url(squatter.url)
    try:
        assert client.dbsize() == 0  # no job, result or heartbeat ever reached it
    finally:
        client.close()
