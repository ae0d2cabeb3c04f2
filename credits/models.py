"""The ledger's data as the rest of wanbot sees it: plain frozen dataclasses and str enums."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from credits.errors import InvalidAccount

PLATFORMS = ("telegram", "discord", "console")
MAX_ID_CHARS = 64


class ReservationState(StrEnum):
    ACTIVE = "active"      # credits held for a job in progress
    CAPTURED = "captured"  # charged: the video was delivered, or a cancel kept a share (see the journal)
    RELEASED = "released"  # the job ended without a video; nothing charged


class JournalReason(StrEnum):
    SIGNUP = "signup"
    DAILY = "daily"
    CAPTURE = "capture"
    GRANT = "grant"
    TAKE = "take"
    REFUND = "refund"
    QUOTA = "quota"
    BAN = "ban"
    UNBAN = "unban"


@dataclass(frozen=True)
class AccountView:
    """One account as its owner sees it; `daily_grant` and `max_in_flight` are the effective values."""

    account: str
    balance: int
    reserved: int
    available: int
    banned: bool
    ban_reason: str | None
    daily_grant: int
    max_in_flight: int
    in_flight: int
    created_at: datetime | None  # None: never seen (nothing stored)


@dataclass(frozen=True)
class Reservation:
    job_id: str
    account: str
    amount: int
    state: ReservationState
    created_at: datetime
    settled_at: datetime | None
    reason: str | None  # why it was released


@dataclass(frozen=True)
class Settlement:
    """How a cancelled job's hold ended: `charged` kept for the steps already rendered, `returned` freed."""

    job_id: str
    charged: int
    returned: int


@dataclass(frozen=True)
class JournalEntry:
    id: int
    account: str
    delta: int
    reason: JournalReason
    job_id: str | None
    actor: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class LedgerStats:
    accounts: int
    total_balance: int
    active_reservations: int
    reserved_credits: int
    captured_today: int  # credits charged since UTC midnight, before refunds
    granted_today: int   # signup, daily and admin grants since UTC midnight
    banned: int


def parse_account(text: str) -> str:
    """`platform:id` as typed by an admin or operator, normalised; InvalidAccount otherwise.

    Telegram and Discord ids are ASCII digits only: `str.isdigit` also accepts full-width and other
    scripts' digits, which `int()` reads as a different account than the one shown. Console ids are
    visible ASCII, so what an admin reads is what the ledger stores.
    """
    platform, sep, user_id = text.strip().partition(":")
    platform = platform.lower()
    if not sep or platform not in PLATFORMS or not 0 < len(user_id) <= MAX_ID_CHARS or not _valid_id(platform, user_id):
        raise InvalidAccount(text)
    return f"{platform}:{user_id}"


def _valid_id(platform: str, user_id: str) -> bool:
    if platform == "console":
        return all("!" <= char <= "~" for char in user_id)
    return all("0" <= char <= "9" for char in user_id)
