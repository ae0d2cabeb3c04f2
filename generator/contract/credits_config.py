"""The `[credits]` section of the TOML config: grants, quotas and the price table."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The most credits an account may hold (the ledger's schema triggers enforce it): far below SQLite's
# 2^63, so balances, journal sums and totals over every account stay exact integers.
MAX_CREDITS = 10**12
# Prices are rounded to this many decimals before rounding up, so 2.0 * 5 * 0.6 costs 6, not 7.
PRICE_DECIMALS = 6
AUDIO = "audio"  # the price table's key for a soundtrack, added per second to the resolution's price


class CreditsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: str = Field(default="wanbot.sqlite3", min_length=1)
    signup_grant: int = Field(default=200, ge=0, le=MAX_CREDITS)
    daily_grant: int = Field(default=100, ge=0, le=MAX_CREDITS)
    max_jobs_in_flight: int = Field(default=2, ge=0)
    # The share of a running job's pro-rata price a cancel keeps (GPU time was spent); 0: cancels are free.
    cancel_charge: float = Field(default=1.0, ge=0, le=1)
    # The largest number one admin action may set or move (grant, take, quota): a typo can't mint billions.
    max_admin_amount: int = Field(default=1_000_000, ge=1, le=MAX_CREDITS)
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

    def cancel_share(self, price: int, step: int, total: int) -> int:
        """Credits a cancel at `step` of `total` keeps: price × cancel_charge × step/total, rounded up.

        Steps are clamped to 0..total (they come from a worker through Redis), so the share
        never exceeds the price; no step done (a job still queued) costs nothing.
        """
        if total <= 0 or step <= 0:
            return 0
        share = price * self.cancel_charge * min(step, total) / total
        return min(price, math.ceil(round(share, PRICE_DECIMALS)))
