"""The bot process never imports torch: its Docker image has none (a worker-only dependency)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BOT_MODULES = ["wanbot.cli", "wanbot.bot", "wanbot.app", "bot.telegram.app", "bot.discord.client", "bot.delivery",
               "credits.cli", "wanbot.discord_sync", "generator.contract.metrics"]


def test_the_bot_side_imports_no_torch() -> None:
    code = (f"import sys; import {', '.join(BOT_MODULES)}; "
            "heavy = [name for name in ('torch', 'diffusers', 'transformers') if name in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 0, run.stdout + run.stderr
