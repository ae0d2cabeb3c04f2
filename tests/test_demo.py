"""`wanbot demo` as a user runs it: a scripted chat on stdin, its own redis-server, real MP4s."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from generator.encode import probe_mp4
from wanbot.redis_server import free_port


def test_scripted_demo_starts_redis_renders_and_exits(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[redis]\nurl = "redis://127.0.0.1:{free_port()}/0"\n'  # nothing listens: the demo starts its own
        f'[credits]\ndatabase = "{tmp_path / "demo.sqlite3"}"\n'
        f'[bot]\noutput_dir = "{tmp_path / "videos"}"\npoll_interval_s = 0.2\n'
    )
    script = "/video a red fox running through snow --ar 16:9 --seed 3\n/balance\n/credits\n"
    run = subprocess.run(
        [sys.executable, "-m", "wanbot.cli", "--config", str(config), "demo"],
        input=script, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "> /video a red fox" in out
    assert "Balance: 200 credits, 10 held" in out or "Balance: 190 credits" in out
    assert "Unknown command /credits" in out
    done = re.search(r"✅ Job (\w+) done: (\S+\.mp4)", out)
    assert done is not None, out
    info = probe_mp4(Path(done.group(2)).read_bytes())
    assert (info.width, info.height) == (64, 32) and info.codec == "h264"
    assert "seed 3" in out
