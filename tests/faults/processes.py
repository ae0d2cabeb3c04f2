"""wanbot processes started the way operators start them (`python -m wanbot.cli … bot|worker`), for tests
that kill them, plus the config files they read."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, *, redis_url: str, database: Path, steps: int = 0, job_timeout_s: int = 0,
                 audio: str = "", extra: str = "") -> Path:
    """A config.toml with the keys these tests vary; `extra` appends whole sections."""
    path.write_text(
        f'[redis]\nurl = "{redis_url}"\nqueue = "wanbot:faults"\n'
        f'[credits]\ndatabase = "{database}"\n'
        f'[generator]\npreset = "tiny"\nsteps = {steps}\njob_timeout_s = {job_timeout_s}\naudio = "{audio}"\n'
        f'[bot]\npoll_interval_s = 0.2\nstatus_interval_s = 0\noutput_dir = "{path.parent / "videos"}"\n'
        + extra
    )
    return path


class WanbotProcess:
    """One `wanbot` process with its output in a log file."""

    def __init__(self, config: Path, command: str, log: Path, *arguments: str, log_level: str = "INFO") -> None:
        self.argv = [sys.executable, "-m", "wanbot.cli", "--config", str(config), "--log-level", log_level, command,
                     *arguments]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WanbotProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=ROOT, env=env)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait_for_log(self, pattern: str, timeout_s: float = 120, after: int = 0) -> re.Match[str]:
        """The first match of `pattern` in the log (from character `after` on), waiting for it to appear
        without blocking the event loop (emulated platforms the process talks to run in it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output()[after:])
            if found:
                return found
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.argv[-1]} exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no {pattern!r} in the log within {timeout_s}s:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when the machine or the OOM killer takes it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> int | None:
        """SIGTERM, as systemd or Docker stop a service; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
