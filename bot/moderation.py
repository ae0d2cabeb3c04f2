"""Prompt moderation: blocked words (everywhere and per chat) and chats where /video is off.

Words match whole, in any case, after Unicode compatibility folding, so `ＢＡＤ`, `Bad` and `bad`
are one word; refusals are free and say why without echoing the word back.
"""

from __future__ import annotations

import re
import unicodedata

from bot.errors import UserError
from generator.contract.config import ModerationSettings


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _pattern(words: list[str]) -> re.Pattern[str] | None:
    folded = sorted({_fold(word).strip() for word in words if word.strip()}, key=len, reverse=True)
    if not folded:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(word) for word in folded) + r")(?!\w)")


class Moderation:
    def __init__(self, settings: ModerationSettings) -> None:
        self._everywhere = _pattern(settings.blocked_words)
        self._chats = {chat: (policy, _pattern(policy.blocked_words)) for chat, policy in settings.chats.items()}

    def check(self, prompt: str, negative_prompt: str | None, chat_key: str | None) -> None:
        """Raise a UserError when this prompt may not be made in this chat."""
        policy, chat_pattern = self._chats.get(chat_key or "", (None, None))
        if policy is not None and not policy.allow_video:
            raise UserError("Videos can't be made in this chat; please use another one.")
        text = _fold(f"{prompt}\n{negative_prompt or ''}")
        for pattern in (self._everywhere, chat_pattern):
            if pattern is not None and pattern.search(text):
                raise UserError("That prompt uses a word that isn't allowed here; please rephrase it. "
                                "Nothing was charged.")
