"""Local emulations of the platforms' servers, for tests and benchmarks that drive the real client libraries.

`telegram_bot_api` is the Telegram Bot API over HTTP (python-telegram-bot connects to it with `base_url`);
`discord_rest` is Discord's REST API and attachment CDN, and `discord_gateway` its gateway plus the payload
builders and the harness that connects a discord.py client to both. Their own tests sit beside them.
"""
