"""A private `redis-server` on loopback for the demo and the tests, started only when needed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

logger = logging.getLogger("wanbot.redis")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def reachable(url: str, timeout_s: float = 1.0) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(await client.ping())
    except Exception:  # refused, timed out, auth: all mean "not usable"
        return False
    finally:
        await client.aclose()


class LocalRedis:
    """`redis-server` bound to 127.0.0.1 on a free port, data in a temporary folder, no persistence."""

    def __init__(self, port: int | None = None, directory: Path | None = None) -> None:
        self.port = port or free_port()
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="wanbot-redis-")
        self.directory = directory or Path(self._tmp.name)  # type: ignore[union-attr]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def _log_tail(self) -> str:
        try:
            return " ".join(self.log_path.read_text(errors="replace").splitlines()[-3:]) or "no log"
        except OSError:
            return "no log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make setup` (or apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--loglevel", "warning", "--logfile", str(self.log_path)],
            # Its own session and no inherited pipes: a Ctrl-C in the terminal reaches only us,
            # and a caller reading our output is not kept waiting by the server's copy of it.
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    logger.info("redis-server started on port %d", self.port)
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode}: {self._log_tail()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Stop abruptly (fault-injection tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


async def ensure_redis(url: str) -> tuple[str, LocalRedis | None]:
    """The configured Redis if it answers, else a private one (the caller stops it)."""
    if await reachable(url):
        return url, None
    local = await asyncio.to_thread(LocalRedis().start)
    logger.warning("no Redis at the configured URL; started a private redis-server on port %d", local.port)
    return local.url, local
