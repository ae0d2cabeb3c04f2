"""`/video` text → request: flags, quoting, limits, and the messages users see."""

from __future__ import annotations

import pytest

from bot.commands import split_command
from bot.errors import UserError
from bot.requests import parse_video_request
from generator.contract.presets import get_preset

A14B = get_preset("wan2.2-t2v-a14b")


def parse(text: str, max_chars: int = 800):
    return parse_video_request(text, A14B, max_chars)


def test_prompt_and_every_flag() -> None:
    request = parse('a red fox running through snow --ar 9:16 --res 720p --seconds 3 --seed 42 --neg "blurry, text"')
    assert request.prompt == "a red fox running through snow"
    assert (request.aspect, request.resolution, request.seconds, request.seed) == ("9:16", "720p", 3.0, 42)
    assert request.negative_prompt == "blurry, text"


def test_defaults_come_from_the_preset() -> None:
    request = parse("waves")
    assert (request.aspect, request.resolution, request.seconds, request.seed) == ("16:9", "480p", 5.0, None)


def test_flags_anywhere_and_curly_quotes_and_equals() -> None:
    request = parse("--ar=1:1 a cat’s nap --neg “dark, noisy” in the sun")
    assert request.prompt == "a cat’s nap in the sun"
    assert request.negative_prompt == "dark, noisy"
    assert request.aspect == "1:1"


def test_prompt_text_is_normalised() -> None:
    assert parse("a  fox\u200b\n in   snow").prompt == "a fox in snow"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Please describe the video"),
        ("--ar 16:9", "Please describe the video"),
        ("fox --ar", "needs a value"),
        ("fox --ar 4:3", "--ar must be one of 16:9, 9:16, 1:1"),
        ("fox --res 1080p", "--res must be one of 480p, 720p"),
        ("fox --seconds ten", "--seconds must be a number"),
        ("fox --seconds 0", "--seconds must be between"),
        ("fox --seconds nan", "--seconds must be between"),
        ("fox --seed 4294967296", "--seed must be a whole number"),
        ("fox --seed ²", "--seed must be a whole number"),
        ("fox --ar 1:1 --ar 9:16", "given twice"),
        ("fox --style anime", "Unknown flag --style"),
        ("fox \x07 bell", "control character"),
        ("x" * 801, "the limit is 800"),
    ],
)
def test_bad_requests_are_explained(text: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        parse(text)
    assert message in caught.value.user_message


def test_command_words_with_bot_mentions() -> None:
    assert split_command("/video@wanbot_bot a fox --ar 1:1") == ("video", "a fox --ar 1:1")
    assert split_command("/BALANCE") == ("balance", "")
    assert split_command("hello") is None
