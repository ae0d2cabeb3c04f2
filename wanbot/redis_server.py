"""A private `redis-server` on loopback for the demo and the tests, started only when needed."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate, its key, and the CA that clients check it against."""

    cert: Path
    key: Path
    ca: Path


class LocalRedis:
    """`redis-server` bound to 127.0.0.1 on a free port, data in a folder of its own.

    By default nothing persists (a restart comes back empty); `persist` keeps an append-only file
    so a restart on the same folder and port comes back with its data, as a production Redis does.
    `password` and `tls` prove wanbot connects to Redis the way operators secure it, and the demo's own
    Redis gets a random password: it goes in a 0600 redis.conf in the (0700) folder, never on the
    command line, which every local user can read.
    """

    def __init__(self, port: int | None = None, directory: Path | None = None, *, persist: bool = False,
                 password: str | None = None, tls: TlsFiles | None = None) -> None:
        self.port = port or free_port()
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="wanbot-redis-")
        self.directory = directory or Path(self._tmp.name)  # type: ignore[union-attr]
        self.persist = persist
        self.password = password
        self.tls = tls
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
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={quote(str(self.tls.ca))}"

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make setup` (or apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, *self._arguments()],
            # Its own session and no inherited pipes: a Ctrl-C in the terminal reaches only us,
            # and a caller reading our output is not kept waiting by the server's copy of it.
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._answers():
                logger.info("redis-server started on port %d", self.port)
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode}: {self._log_tail()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer in time")

    @property
    def config_path(self) -> Path:
        return self.directory / "redis.conf"

    def _write_config(self) -> None:
        """The settings that are secret: readable by this user only."""
        lines = [f"requirepass {_quoted(self.password)}\n"] if self.password else []
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.writelines(lines)

    def _arguments(self) -> list[str]:
        self._write_config()
        arguments = [str(self.config_path), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.directory),
                     "--loglevel", "warning", "--logfile", str(self.log_path)]
        arguments += ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        if self.tls is None:
            return [*arguments, "--port", str(self.port)]
        return [*arguments, "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
                "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "no"]

    def _answers(self) -> bool:
        """A PING (after AUTH, over TLS) that gets its answer: the server accepts clients."""
        hello = (_command("AUTH", self.password) if self.password else b"") + _command("PING")
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2) as raw:
                conn = raw
                if self.tls is not None:
                    conn = ssl.create_default_context(cafile=str(self.tls.ca)).wrap_socket(
                        raw, server_hostname="127.0.0.1")
                conn.sendall(hello)
                return b"+PONG" in _read_until(conn, b"PONG", 64)
        except OSError:
            return False

    def restart(self, timeout_s: float = 10.0) -> LocalRedis:
        """Kill the server and start it again on the same port and folder (empty unless `persist`)."""
        self.kill()
        return self.start(timeout_s)

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


async def ensure_redis(url: str | None) -> tuple[str, LocalRedis | None]:
    """The configured Redis if it answers, else a private one (the caller stops it).

    With no URL configured nothing is probed: whatever answers on 127.0.0.1:6379 may belong to any
    local user, who would then read every prompt and image. The private one has a random port and
    password, listens on loopback only and keeps its files in a folder only this user can open.
    """
    if url is not None and await reachable(url):
        return url, None
    local = await asyncio.to_thread(LocalRedis(password=secrets.token_urlsafe(24)).start)
    if url is None:
        logger.info("no Redis URL configured: started a private redis-server on port %d", local.port)
    else:
        logger.warning("no Redis at the configured URL; started a private redis-server on port %d", local.port)
    return local.url, local


def _quoted(value: str) -> str:
    """A value for redis.conf: double-quoted and escaped, so spaces, quotes and newlines survive its parser."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _command(*words: str) -> bytes:
    """A command in Redis' wire format (RESP), so a password may hold spaces."""
    encoded = [word.encode() for word in words]
    return f"*{len(encoded)}\r\n".encode() + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded)


def _read_until(conn: socket.socket, marker: bytes, limit: int) -> bytes:
    data = b""
    while marker not in data and len(data) < limit:
        chunk = conn.recv(limit)
        if not chunk:
            break
        data += chunk
    return data
