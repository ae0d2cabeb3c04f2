"""The TOML configuration: one model per section, composed here.

Section names and keys are a contract (see design.md); secrets may come from the
environment (`DISCORD_TOKEN`, `TELEGRAM_TOKEN`, `REDIS_URL` with its password) instead of the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from generator.contract.credits_config import CreditsSettings
from generator.contract.options import GeneratorSettings

DEFAULT_CONFIG_PATH = Path("config.toml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RedisSettings(Section):
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    queue: str = "wanbot:video"
    result_ttl_s: int = Field(default=24 * 3600, ge=60)


class TelegramSettings(Section):
    token: SecretStr = SecretStr("")
    base_url: str = ""  # a self-hosted Bot API server, e.g. "http://127.0.0.1:8081/bot"
    base_file_url: str = ""
    upload_limit_mb: int = Field(default=50, ge=1)  # cloud Bot API: 50 MB; a local server: up to 2000
    download_limit_mb: int = Field(default=20, ge=1)  # cloud Bot API: 20 MB; a local server: up to 2000
    upload_timeout_s: float = Field(default=120, gt=0)  # sending one video, before it is tried again


class DiscordSettings(Section):
    token: SecretStr = SecretStr("")


class AdminSettings(Section):
    telegram: list[str] = []
    discord: list[str] = []
    console: list[str] = []

    @field_validator("telegram", "discord", "console", mode="before")
    @classmethod
    def _ids_as_text(cls, value: list[int | str]) -> list[str]:
        return [str(item) for item in value]

    def is_admin(self, platform: str, user_id: str) -> bool:
        return str(user_id) in getattr(self, platform, [])


class BotSettings(Section):
    max_prompt_chars: int = Field(default=800, ge=10)
    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=4096)
    image_check_timeout_s: float = Field(default=10, gt=0)  # CPU seconds to decode one upload; slower: refused
    status_interval_s: float = Field(default=2.0, ge=0)
    poll_interval_s: float = Field(default=1.0, ge=0.05)
    output_dir: str = "videos"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = Field(default="127.0.0.1", min_length=1)  # /metrics and /healthz have no auth
    audio_default: bool = False  # videos get a soundtrack unless the user says --audio off (needs [generator] audio)
    commands_per_minute: float = Field(default=20, gt=0)  # per user, after a burst of `command_burst`
    command_burst: int = Field(default=8, ge=1)
    # Caps that hold however many accounts one person makes (0: no cap).
    max_jobs_waiting: int = Field(default=500, ge=0)  # unfinished jobs of everyone together
    max_jobs_waiting_per_chat: int = Field(default=50, ge=0)  # in one Telegram chat or Discord channel
    max_queued_image_bytes: int = Field(default=40 * 1024 * 1024, ge=0)  # input images one account has in Redis


class ChatPolicy(BaseModel):
    """`[moderation.chats."telegram:-100123"]`: one chat's (or Discord channel's) own rules."""

    model_config = ConfigDict(extra="forbid")

    blocked_words: list[str] = []  # added to the global list in this chat
    allow_video: bool = True  # false: /video is refused here (a support channel, say)


class ModerationSettings(BaseModel):
    """The `[moderation]` config section."""

    model_config = ConfigDict(extra="forbid")

    blocked_words: list[str] = []
    chats: dict[str, ChatPolicy] = {}


class Config(Section):
    """The whole configuration; `secrets()` lists what must never reach a log line."""

    redis: RedisSettings = RedisSettings()
    credits: CreditsSettings = CreditsSettings()
    generator: GeneratorSettings = GeneratorSettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    admins: AdminSettings = AdminSettings()
    bot: BotSettings = BotSettings()
    moderation: ModerationSettings = ModerationSettings()

    def secrets(self) -> list[str]:
        """Tokens (whole, and the part after the bot id) and the Redis password, to be redacted from logs."""
        found = []
        for token in (self.telegram.token.get_secret_value(), self.discord.token.get_secret_value()):
            found += [token, token.partition(":")[2]] if token else []
        password = urlparse(self.redis.url.get_secret_value()).password  # as written: percent-encoded
        if password:
            found += [password, unquote(password)]
        return [secret for secret in found if secret]


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read the TOML file (a missing default file means all defaults) and apply env secrets."""
    environ = dict(os.environ) if environ is None else environ
    if path is None:
        path = DEFAULT_CONFIG_PATH
        data = tomllib.loads(path.read_text()) if path.exists() else {}
    else:
        data = tomllib.loads(path.read_text())
    for section, key, variable in (("telegram", "token", "TELEGRAM_TOKEN"), ("discord", "token", "DISCORD_TOKEN"),
                                   ("redis", "url", "REDIS_URL")):
        if environ.get(variable):
            data.setdefault(section, {})[key] = environ[variable]
    return Config.model_validate(data)
