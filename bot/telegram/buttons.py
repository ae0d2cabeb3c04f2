"""Inline buttons and their callback data: `<action>:<job id>`, well under Telegram's 64 bytes.

The job id is all a button carries, so buttons keep working after a bot restart: the job and
its request are read back from SQLite when one is pressed.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

REROLL, VARY, CANCEL = "reroll", "vary", "cancel"
ACTIONS = (REROLL, VARY, CANCEL)


def callback_data(action: str, job_id: str) -> str:
    return f"{action}:{job_id}"


def parse_callback(data: str | None) -> tuple[str, str] | None:
    """(action, job id) of one of our buttons, None for anything else."""
    action, _, job_id = (data or "").partition(":")
    return (action, job_id) if action in ACTIONS and job_id else None


def result_buttons(job_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("🎲 Re-roll", callback_data=callback_data(REROLL, job_id)),
        InlineKeyboardButton("✏️ Vary", callback_data=callback_data(VARY, job_id)),
    ]])


def status_buttons(job_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("✖ Cancel", callback_data=callback_data(CANCEL, job_id))]])
