"""Buttons under status and result messages, and the vary dialog.

One `DynamicItem` matches every button by its custom_id `wanbot:<action>:<job id>`, so buttons
posted before a restart keep working: the job is read back from SQLite when one is pressed.
What a button does lives with the command handlers (`bot.discord.commands`), which hold the service;
the client carries them as `handlers`, and their `on_error` answers what a button's work raised.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

REROLL, VARY, DELETE, CANCEL = "reroll", "vary", "delete", "cancel"
LOOKS = {
    REROLL: ("Re-roll", "🎲", discord.ButtonStyle.primary),
    VARY: ("Vary", "✏️", discord.ButtonStyle.secondary),
    DELETE: ("Delete", "🗑️", discord.ButtonStyle.danger),
    CANCEL: ("Cancel", "✖", discord.ButtonStyle.secondary),
}


class ButtonHandlers(Protocol):
    """What the buttons and the vary dialog call (`bot.discord.commands.DiscordCommands`)."""

    async def button_pressed(self, interaction: discord.Interaction[Any], action: str, job_id: str) -> None: ...

    async def vary_submitted(self, interaction: discord.Interaction[Any], job_id: str, prompt: str) -> None: ...

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception) -> None: ...


def handlers_of(interaction: discord.Interaction[Any]) -> ButtonHandlers:
    found: ButtonHandlers = interaction.client.handlers
    return found


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                template=r"wanbot:(?P<action>reroll|vary|delete|cancel):(?P<job_id>[0-9a-f]{12})"):
    def __init__(self, action: str, job_id: str) -> None:
        label, emoji, style = LOOKS[action]
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style,
                                           custom_id=f"wanbot:{action}:{job_id}"))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> JobButton:
        return cls(match["action"], match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handlers = handlers_of(interaction)
        try:
            await handlers.button_pressed(interaction, self.action, self.job_id)
        except Exception as error:  # the components' path to the one error handler
            await handlers.on_error(interaction, error)


class VaryModal(discord.ui.Modal, title="Vary this video"):
    """The earlier prompt, ready to edit; flags may be added, the rest (and the seed) stays."""

    def __init__(self, job_id: str, prompt: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.prompt: discord.ui.TextInput[VaryModal] = discord.ui.TextInput(
            label="New prompt", style=discord.TextStyle.paragraph, default=prompt[:4000], max_length=4000)
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:  # type: ignore[override]
        await handlers_of(interaction).vary_submitted(interaction, self.job_id, self.prompt.value)

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception) -> None:  # type: ignore[override]
        await handlers_of(interaction).on_error(interaction, error)


def status_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(CANCEL, job_id))
    return view


def result_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in (REROLL, VARY, DELETE):
        view.add_item(JobButton(action, job_id))
    return view

