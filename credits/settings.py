"""The `[credits]` section of the TOML config: grants, quotas and the price table."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Prices are rounded to this many decimals before rounding up, so 2.0 * 5 * 0.6 costs 6, not 7.
PRICE_DECIMALS = 6
AUDIO = "audio"  # the price table's key for a soundtrack, added per second to the resolution's price


class CreditsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: str = Field(default="wanbot.sqlite3", min_length=1)
    signup_grant: int = Field(default=200, ge=0)
    daily_grant: int = Field(default=100, ge=0)
    max_jobs_in_flight: int = Field(default=2, ge=0)
    price_per_second: dict[str, float] = {"480p": 2.0, "720p": 5.0, AUDIO: 1.0}
    preset_multiplier: dict[str, float] = {}

    @field_validator("price_per_second", "preset_multiplier")
    @classmethod
    def _non_negative(cls, table: dict[str, float]) -> dict[str, float]:
        negative = {key: value for key, value in table.items() if not (math.isfinite(value) and value >= 0)}
        if negative:
            raise ValueError(f"prices and multipliers must be finite and >= 0, got {negative}")
        return table

    def price(self, preset: str, resolution: str, seconds: float, audio: bool = False) -> int:
        """Credits for one job: per-second price (plus sound's) × seconds × preset multiplier, rounded up, ≥ 1."""
        if resolution == AUDIO or resolution not in self.price_per_second:
            known = ", ".join(sorted(key for key in self.price_per_second if key != AUDIO)) or "none"
            raise ValueError(f"no price for resolution {resolution!r} (priced: {known})")
        per_second = self.price_per_second[resolution] + (self.price_per_second.get(AUDIO, 0.0) if audio else 0.0)
        cost = per_second * seconds * self.preset_multiplier.get(preset, 1.0)
        return max(1, math.ceil(round(cost, PRICE_DECIMALS)))
