"""The emulated Discord the mention tests drive, shared with the Discord suite."""

from tests.discord.conftest import discord_env  # noqa: F401  (a fixture)
