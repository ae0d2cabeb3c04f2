"""The price table and the `[credits]` section's validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from credits.errors import InvalidAccount
from credits.models import parse_account
from generator.contract.credits_config import CreditsSettings


def test_480p_for_5_seconds_costs_10() -> None:
    assert CreditsSettings().price("wan2.2-t2v-a14b", "480p", 5) == 10
    assert CreditsSettings().price("wan2.2-t2v-a14b", "720p", 5) == 25


def test_preset_multiplier_applies_and_rounds_up_without_float_noise() -> None:
    settings = CreditsSettings(preset_multiplier={"wan2.2-ti2v-5b": 0.6, "wan2.1-t2v-1.3b": 0.45})
    assert settings.price("wan2.2-ti2v-5b", "480p", 5) == 6  # 2.0 * 5 * 0.6 is 6.000000000000001 in floats
    assert settings.price("wan2.1-t2v-1.3b", "480p", 5) == 5  # 4.5 rounds up
    assert settings.price("not-listed", "480p", 5) == 10


def test_every_job_costs_at_least_one_credit() -> None:
    assert CreditsSettings(price_per_second={"480p": 0.0}).price("tiny", "480p", 1) == 1
    assert CreditsSettings().price("tiny", "480p", 0.1) == 1


def test_unknown_resolution_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no price for resolution '1080p' \(priced: 480p, 720p\)"):
        CreditsSettings().price("tiny", "1080p", 5)


@pytest.mark.parametrize(
    "section",
    [
        {"signup_grant": -1},
        {"daily_grant": -5},
        {"max_jobs_in_flight": -1},
        {"price_per_second": {"480p": -2.0}},
        {"preset_multiplier": {"tiny": float("nan")}},
        {"unknown_key": 1},
    ],
)
def test_bad_settings_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CreditsSettings.model_validate(section)


@pytest.mark.parametrize(
    ("text", "account"),
    [("telegram:12345", "telegram:12345"), (" Discord:6789 ", "discord:6789"), ("console:local", "console:local")],
)
def test_accounts_are_platform_and_id(text: str, account: str) -> None:
    assert parse_account(text) == account


@pytest.mark.parametrize("text", ["12345", "slack:1", "telegram:", "telegram:a b", "console:" + "x" * 65, ":1"])
def test_bad_accounts_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidAccount) as raised:
        parse_account(text)
    assert "telegram:12345" in raised.value.user_message


def test_a_soundtrack_adds_its_per_second_price() -> None:
    settings = CreditsSettings(preset_multiplier={"wan2.2-ti2v-5b": 0.6})
    assert settings.price("wan2.2-t2v-a14b", "480p", 5.0, audio=True) == 15
    assert settings.price("wan2.2-ti2v-5b", "720p", 5.0, audio=True) == 18  # (5 + 1) × 5 × 0.6
    with pytest.raises(ValueError, match=r"no price for resolution 'audio' \(priced: 480p, 720p\)"):
        settings.price("tiny", "audio", 5.0)
    free_sound = CreditsSettings(price_per_second={"480p": 2.0})
    assert free_sound.price("tiny", "480p", 5.0, audio=True) == 10


@pytest.mark.parametrize("text", [
    "telegram:３００３",      # full-width digits: int() reads 3003, the admin saw something else
    "discord:٤٢",            # Arabic-Indic digits
    "telegram:12a",
    "discord:42 1000000",    # a Discord option holding a second word
    "discord:42\u200b",      # zero-width space
    "console:café",
    "console:\u0430dmin",    # Cyrillic a
])
def test_account_ids_are_ascii_digits_or_visible_ascii(text: str) -> None:
    with pytest.raises(InvalidAccount):
        parse_account(text)
    assert parse_account("console:ops-1_A.b") == "console:ops-1_A.b"
