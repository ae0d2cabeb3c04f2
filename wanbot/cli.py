"""`wanbot demo|bot|worker|generate|credits`: one entry point for every process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from generator.contract.config import Config, load_config
from generator.contract.logs import setup_logging

logger = logging.getLogger("wanbot.cli")


def build_parser() -> argparse.ArgumentParser:
    from credits import cli as credits_cli
    from generator import generate

    parser = argparse.ArgumentParser(prog="wanbot", description=__doc__)
    parser.add_argument("--config", type=Path, default=None, help="TOML file (default: ./config.toml if present)")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: INFO; demo: WARNING)")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line (for collectors)")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="Redis + tiny worker + console chat on this machine")
    demo.add_argument("--preset", default="tiny", help="generator preset for the in-process worker")
    demo.add_argument("--audio", default="tiny", help="soundtrack preset for --audio ('' for none)")
    demo.add_argument("--user", default="local", help="console user id (account console:<id>)")
    bot = commands.add_parser("bot", help="the chat front ends and the ledger")
    bot.add_argument("--console", action="store_true", help="also chat on this terminal")
    commands.add_parser("worker", help="a GPU worker consuming the queue (one per GPU)")
    sync = commands.add_parser("discord-sync", help="publish the Discord slash commands (after an upgrade)")
    sync.add_argument("--guild", type=int, help="one server, at once (default: globally, within an hour)")
    generate.add_parser(commands)
    credits_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    default_level = "WARNING" if args.command in ("demo", "credits", "generate") else "INFO"
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as error:
        print(f"wanbot: bad configuration: {error}", file=sys.stderr)
        return 2
    setup_logging(args.log_level or default_level, secrets=config.secrets(), json_lines=args.log_json)
    return run_command(args, config)


def run_command(args: argparse.Namespace, config: Config) -> int:
    if args.command == "demo":
        from wanbot.demo import run_demo

        generator = config.generator.model_copy(update={"preset": args.preset, "audio": args.audio})
        return asyncio.run(run_demo(config.model_copy(update={"generator": generator}), args.user))
    if args.command == "bot":
        from wanbot.bot import run_bot

        return asyncio.run(run_bot(config, console=args.console))
    if args.command == "worker":
        from generator.worker import serve

        asyncio.run(serve(config))
        return 0
    if args.command == "discord-sync":
        from wanbot.discord_sync import run_sync

        return asyncio.run(run_sync(config, args.guild))
    if args.command == "generate":
        from generator import generate

        return generate.run(args, config.generator)
    if args.command == "credits":
        from credits import cli as credits_cli

        return asyncio.run(credits_cli.run(args, config.credits))
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
