"""The configuration contract: the example file loads, documents every key, and secrets stay secret."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from generator.contract.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def keys_of(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= keys_of(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_the_example_loads_and_mentions_every_key() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.generator.preset == "tiny" and config.redis.url.get_secret_value().startswith("redis://")
    text = EXAMPLE.read_text()
    missing = {key for key in keys_of(Config) if f"{key.rsplit('.', 1)[-1]} =" not in text
               and f"[{key}]" not in text and f"[{key}." not in text}
    assert missing == set()


def test_design_contract_names() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    assert set(data) >= {"redis", "credits", "generator", "telegram", "discord", "admins"}
    assert {"url"} <= set(data["redis"]) and {"database", "signup_grant", "daily_grant"} <= set(data["credits"])
    assert {"token", "base_url", "base_file_url"} <= set(data["telegram"]) and "token" in data["discord"]


def test_tokens_come_from_the_environment_and_never_show_in_reprs(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[telegram]\ntoken = "from-file"\n[redis]\nurl = "redis://:hunter2@example:6379/0"\n')
    config = load_config(path, environ={"TELEGRAM_TOKEN": "123:env-secret", "DISCORD_TOKEN": "discord-secret"})
    assert config.telegram.token.get_secret_value() == "123:env-secret"
    assert config.discord.token.get_secret_value() == "discord-secret"
    shown = repr(config) + str(config) + config.model_dump_json()
    assert "env-secret" not in shown and "discord-secret" not in shown and "hunter2" not in shown


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[credits]\nsignup_grnat = 5\n')
    with pytest.raises(ValidationError, match="signup_grnat"):
        load_config(path, environ={})
