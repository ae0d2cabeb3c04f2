"""Blocked words and per-chat policies, through the service: refusals are clear and free."""

from __future__ import annotations

import pytest

from bot.commands import Message, handle
from bot.errors import UserError
from bot.moderation import Moderation
from generator.contract.config import ChatPolicy, Config, ModerationSettings
from tests.conftest import running_stack

SETTINGS = ModerationSettings(
    blocked_words=["gore", "bad word"],
    chats={"telegram:-100": ChatPolicy(blocked_words=["spoiler"]), "discord:77": ChatPolicy(allow_video=False)},
)


@pytest.mark.parametrize("prompt", ["GORE everywhere", "a ｇｏｒｅ scene", "a Bad Word",
                                    "so, gore!"])
def test_blocked_words_match_whole_words_in_any_case_and_width(prompt: str) -> None:
    with pytest.raises(UserError, match="isn't allowed here"):
        Moderation(SETTINGS).check(prompt, None, None)


@pytest.mark.parametrize("prompt", ["gorey hills", "a goreless fox", "badword"])
def test_parts_of_other_words_pass(prompt: str) -> None:
    Moderation(SETTINGS).check(prompt, None, None)


def test_per_chat_words_and_chats_without_video() -> None:
    moderation = Moderation(SETTINGS)
    moderation.check("a spoiler", None, "telegram:-200")
    with pytest.raises(UserError, match="isn't allowed here"):
        moderation.check("a calm lake", "spoiler", "telegram:-100")  # the negative prompt counts too
    with pytest.raises(UserError, match="can't be made in this chat"):
        moderation.check("a calm lake", None, "discord:77")


async def test_a_refused_prompt_costs_nothing(config: Config) -> None:
    config = config.model_copy(update={"moderation": ModerationSettings(blocked_words=["gore"])})
    async with running_stack(config) as stack:
        reply = await handle(stack.service, Message(stack.user(), "/video gore in the snow",
                                                    reply_to={"chat_key": "console:alice"}))
        assert reply is not None and "isn't allowed here" in reply and "Nothing was charged" in reply
        view = await stack.service.ledger.view("console:alice")
        assert (view.balance, view.reserved) == (200, 0)
        assert await stack.service.jobs.unfinished("console:alice") == []
