"""`wanbot demo` as a user runs it: a scripted chat on stdin, its own redis-server, real MP4s."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from generator.contract.encode import probe_mp4
from generator.contract.mux import probe_audio
from wanbot.redis_server import free_port


def test_scripted_demo_starts_redis_renders_and_exits(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[redis]\nurl = "redis://127.0.0.1:{free_port()}/0"\n'  # nothing listens: the demo starts its own
        f'[credits]\ndatabase = "{tmp_path / "demo.sqlite3"}"\n'
        f'[bot]\noutput_dir = "{tmp_path / "videos"}"\npoll_interval_s = 0.2\n'
    )
    script = "\n".join(["/video a red fox running through snow --ar 16:9 --seed 3", "/video surf at dusk --audio",
                        "/balance", "/credits"]) + "\n"
    run = subprocess.run(
        [sys.executable, "-m", "wanbot.cli", "--config", str(config), "demo"],
        input=script, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "> /video a red fox" in out
    assert re.search(r"Balance: \d+ credits", out) and "Unknown command /credits" in out
    done = dict(re.findall(r"✅ Job \w+ done: (\S+\.mp4) .* — “(.+)”", out))
    assert set(done.values()) == {"a red fox running through snow", "surf at dusk"}, out
    for path, prompt in done.items():
        data = Path(path).read_bytes()
        info = probe_mp4(data)
        assert (info.width, info.height, info.codec) == (64, 32, "h264")
        assert (probe_audio(data) is not None) == (prompt == "surf at dusk")
    assert "seed 3" in out
