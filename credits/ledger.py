"""The ledger's operations: grants, reservations for jobs, admin actions, and what they leave in the journal.

Every write is one short `BEGIN IMMEDIATE` transaction. One aiosqlite connection is shared by
all coroutines of a process, so a lock keeps their transactions (and reads) from interleaving;
other processes on the same file (the operator CLI) wait on SQLite's busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import aiosqlite

from credits.errors import (
    Banned,
    InsufficientCredits,
    InvalidAccount,
    InvalidAmount,
    LedgerError,
    NotCaptured,
    QuotaExceeded,
    UnknownJob,
)
from credits.models import (
    AccountView,
    JournalEntry,
    JournalReason,
    LedgerStats,
    Reservation,
    ReservationState,
    Settlement,
    parse_account,
)
from credits.schema import LEDGER_MIGRATIONS, backup, connect, migrate, rollback
from generator.contract.credits_config import MAX_CREDITS, CreditsSettings

logger = logging.getLogger("wanbot.credits")

SYSTEM: Final = "system"  # the actor of automatic grants

_ACCOUNT_SQL = """
    SELECT a.*,
        (SELECT COUNT(*) FROM reservations r WHERE r.account = a.account AND r.state = 'active') AS in_flight,
        (SELECT COALESCE(SUM(r.amount), 0) FROM reservations r WHERE r.account = a.account AND r.state = 'active')
            AS reserved
    FROM accounts a WHERE a.account = ?
"""


class Unchanged(Enum):
    """The type of `UNCHANGED` (an enum, so type checkers can tell it apart from int and None)."""

    UNCHANGED = "unchanged"


UNCHANGED: Final = Unchanged.UNCHANGED
"""`set_quota` default: leave that override as it is (None clears it)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    def __init__(
        self, db: aiosqlite.Connection, settings: CreditsSettings, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: str | Path, settings: CreditsSettings, clock: Callable[[], datetime] = utc_now
    ) -> Ledger:
        db = await connect(path)
        try:
            await migrate(db, "ledger", LEDGER_MIGRATIONS)
        except BaseException:
            await db.close()
            raise
        return cls(db, settings, clock)

    async def backup(self, destination: Path) -> None:
        """Copy the whole database file to `destination` while the bot keeps running (see schema.backup)."""
        async with self._lock:
            await backup(self._db, destination)

    async def close(self) -> None:
        """Close once the transaction under way (if any) is done."""
        async with self._lock:
            await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- accounts and grants ------------------------------------------------------------

    async def touch(self, account: str) -> AccountView:
        """First contact gives the signup grant, the first contact of each UTC day the daily grant."""
        async with self._transaction() as now:
            return await self._touch(account, now)

    async def view(self, account: str) -> AccountView:
        """The account as stored, granting nothing; an unknown account reads as empty."""
        async with self._lock:
            row = await self._account_row(account)
        if row is None:
            return AccountView(account, balance=0, reserved=0, available=0, banned=False, ban_reason=None,
                               daily_grant=self._settings.daily_grant,
                               max_in_flight=self._settings.max_jobs_in_flight, in_flight=0, created_at=None)
        return self._account_view(row)

    # -- reservations ---------------------------------------------------------------------

    async def reserve(self, account: str, job_id: str, amount: int) -> Reservation:
        """Hold `amount` credits for a job, or refuse with the numbers; idempotent per job id.

        A refusal still keeps the day's grants that touching the account gave.
        """
        _check_amount(amount)
        async with self._transaction() as now:
            view = await self._touch(account, now)
            row = await self._reservation_row(job_id)
            if row is not None:
                if row["account"] != account:
                    raise ValueError(f"job {job_id} is already reserved for {row['account']}, not {account}")
                return _reservation(row)
            refusal = _reserve_refusal(view, amount)
            if refusal is None:
                await self._db.execute(
                    "INSERT INTO reservations (job_id, account, amount, state, created_at) VALUES (?, ?, ?, ?, ?)",
                    (job_id, account, amount, ReservationState.ACTIVE, _stamp(now)),
                )
        if refusal is not None:
            raise refusal
        logger.info("job %s: reserved %d credits of %s", job_id, amount, account)
        return Reservation(job_id, account, amount, ReservationState.ACTIVE, now, None, None)

    async def capture(self, job_id: str) -> bool:
        """Charge a job's held credits; True only for the call that charged them."""
        async with self._transaction() as now:
            row = await self._settle(job_id, ReservationState.CAPTURED, None, now)
            if row is None:
                return False
            await self._journal(row["account"], -row["amount"], JournalReason.CAPTURE, SYSTEM, now, job_id=job_id)
        logger.info("job %s: captured %d credits of %s", job_id, row["amount"], row["account"])
        return True

    async def release(self, job_id: str, reason: str) -> bool:
        """Give a job's held credits back to the available balance; True only for the call that did."""
        async with self._transaction() as now:
            row = await self._settle(job_id, ReservationState.RELEASED, reason, now)
        if row is None:
            return False
        logger.info("job %s: released %d credits of %s (%s)", job_id, row["amount"], row["account"], reason)
        return True

    async def settle_cancelled(self, job_id: str, reason: str, step: int, total: int) -> Settlement | None:
        """End a cancelled job's hold: keep the share of its price for `step` of `total` steps rendered
        (`[credits] cancel_charge`), free the rest, in one transaction; None when it was settled already.

        A share is journaled as the job's one capture (the schema allows one per job id), so a refund
        later gives back exactly what was kept. No step rendered: a plain release, nothing charged.
        """
        async with self._transaction() as now:
            row = await self._reservation_row(job_id)
            if row is None:
                raise UnknownJob(job_id)
            charged = self._settings.cancel_share(row["amount"], step, total)
            state = ReservationState.CAPTURED if charged else ReservationState.RELEASED
            if await self._settle(job_id, state, reason, now) is None:
                return None
            if charged:
                await self._journal(row["account"], -charged, JournalReason.CAPTURE, SYSTEM, now, job_id=job_id,
                                    note=f"{reason} at step {step}/{total}: kept {charged} of {row['amount']}")
        settlement = Settlement(job_id, charged, row["amount"] - charged)
        logger.info("job %s: cancelled at step %d/%d, %d credits of %s kept, %d released (%s)", job_id, step,
                    total, settlement.charged, row["account"], settlement.returned, reason)
        return settlement

    async def refund(self, job_id: str, actor: str) -> int:
        """Credit a charged job back (what its capture took), once; 0 when it was refunded already."""
        async with self._transaction() as now:
            row = await self._reservation_row(job_id)
            if row is None:
                raise UnknownJob(job_id)
            if row["state"] != ReservationState.CAPTURED:
                raise NotCaptured(job_id, row["state"])
            if await self._one("SELECT 1 FROM journal WHERE job_id = ? AND reason = ?",
                               (job_id, JournalReason.REFUND)):
                return 0
            capture = await self._one("SELECT -delta FROM journal WHERE job_id = ? AND reason = ?",
                                      (job_id, JournalReason.CAPTURE))
            assert capture is not None, job_id  # a captured reservation always has its capture row
            amount = int(capture[0])
            await self._journal(row["account"], amount, JournalReason.REFUND, actor, now, job_id=job_id)
        logger.info("job %s: refunded %d credits to %s by %s", job_id, amount, row["account"], actor)
        return amount

    async def reservation(self, job_id: str) -> Reservation | None:
        async with self._lock:
            row = await self._reservation_row(job_id)
        return None if row is None else _reservation(row)

    async def active_reservations(self, account: str | None = None) -> list[Reservation]:
        """Jobs holding credits, oldest first (the bot reconciles these after a restart)."""
        sql = "SELECT * FROM reservations WHERE state = 'active'"
        params: tuple[str, ...] = ()
        if account is not None:
            sql += " AND account = ?"
            params = (account,)
        async with self._lock:
            rows = await self._db.execute_fetchall(sql + " ORDER BY created_at, job_id", params)
        return [_reservation(row) for row in rows]

    # -- admin actions --------------------------------------------------------------------

    async def grant(self, account: str, amount: int, actor: str, note: str = "") -> AccountView:
        """Add credits, at most `max_admin_amount` at once and never past MAX_CREDITS in one account."""
        self._check_admin_amount(amount)
        async with self._transaction() as now:
            view = await self._touch(account, now)
            refusal = _over_the_top(view, amount)
            if refusal is None:
                await self._journal(account, amount, JournalReason.GRANT, actor, now, note=note)
                view = await self._view(account)
        if refusal is not None:
            raise refusal
        logger.info("%s granted %d credits to %s: %s", actor, amount, account, note or "no note")
        return view

    async def take(self, account: str, amount: int, actor: str, note: str = "") -> AccountView:
        """Remove credits, never more than are available (held credits stay with their jobs)."""
        self._check_admin_amount(amount)
        async with self._transaction() as now:
            view = await self._touch(account, now)
            refusal = InsufficientCredits(amount, view.available) if amount > view.available else None
            if refusal is None:
                await self._journal(account, -amount, JournalReason.TAKE, actor, now, note=note)
                view = await self._view(account)
        if refusal is not None:
            raise refusal
        logger.info("%s took %d credits from %s: %s", actor, amount, account, note or "no note")
        return view

    async def set_quota(
        self,
        account: str,
        actor: str,
        *,
        daily_grant: int | Unchanged | None = UNCHANGED,
        max_in_flight: int | Unchanged | None = UNCHANGED,
    ) -> AccountView:
        """Set or clear (None) an account's overrides of the configured daily grant and jobs in flight."""
        changes = {
            column: value
            for column, value in (("daily_grant", daily_grant), ("max_in_flight", max_in_flight))
            if value is not UNCHANGED
        }
        for value in changes.values():
            if value is not None:
                self._check_admin_amount(value, allow_zero=True)
        async with self._transaction() as now:
            before = await self._touch(account, now)
            if not changes:
                return before
            await self._db.execute(
                f"UPDATE accounts SET {', '.join(f'{column} = ?' for column in changes)} WHERE account = ?",
                (*changes.values(), account),
            )
            note = "; ".join(
                f"{column} {getattr(before, column)} -> {'default' if value is None else value}"
                for column, value in changes.items()
            )
            await self._journal(account, 0, JournalReason.QUOTA, actor, now, note=note)
            view = await self._view(account)
        logger.info("%s set the quota of %s: %s", actor, account, note)
        return view

    async def ban(self, account: str, actor: str, reason: str) -> AccountView:
        """Refuse the account's new jobs; jobs already holding credits finish as usual."""
        async with self._transaction() as now:
            await self._touch(account, now)
            await self._db.execute("UPDATE accounts SET banned = 1, ban_reason = ? WHERE account = ?",
                                   (reason, account))
            await self._journal(account, 0, JournalReason.BAN, actor, now, note=reason)
            view = await self._view(account)
        logger.info("%s banned %s (%s)", actor, account, reason)
        return view

    async def unban(self, account: str, actor: str) -> AccountView:
        async with self._transaction() as now:
            await self._touch(account, now)
            await self._db.execute("UPDATE accounts SET banned = 0, ban_reason = NULL WHERE account = ?", (account,))
            await self._journal(account, 0, JournalReason.UNBAN, actor, now)
            view = await self._view(account)
        logger.info("%s unbanned %s", actor, account)
        return view

    # -- reading the journal --------------------------------------------------------------

    async def history(self, account: str, limit: int = 20) -> list[JournalEntry]:
        """The account's journal, newest first."""
        async with self._lock:
            rows = await self._db.execute_fetchall(
                "SELECT * FROM journal WHERE account = ? ORDER BY id DESC LIMIT ?", (account, limit)
            )
        return [_journal_entry(row) for row in rows]

    async def journal_sum(self, account: str) -> int:
        """The balance as the journal tells it; always equal to the stored balance."""
        async with self._lock:
            row = await self._one("SELECT COALESCE(SUM(delta), 0) FROM journal WHERE account = ?", (account,))
        assert row is not None
        return int(row[0])

    async def stats(self) -> LedgerStats:
        midnight = _stamp(datetime.combine(self._now().date(), time(), UTC))
        async with self._lock:
            row = await self._one(
                """
                SELECT
                    (SELECT COUNT(*) FROM accounts),
                    (SELECT COALESCE(SUM(balance), 0) FROM accounts),
                    (SELECT COUNT(*) FROM reservations WHERE state = 'active'),
                    (SELECT COALESCE(SUM(amount), 0) FROM reservations WHERE state = 'active'),
                    (SELECT COALESCE(-SUM(delta), 0) FROM journal WHERE created_at >= ? AND reason = 'capture'),
                    (SELECT COALESCE(SUM(delta), 0) FROM journal
                        WHERE created_at >= ? AND reason IN ('signup', 'daily', 'grant')),
                    (SELECT COUNT(*) FROM accounts WHERE banned)
                """,
                (midnight, midnight),
            )
        assert row is not None
        return LedgerStats(*(int(value) for value in row))

    # -- inside a transaction -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[datetime]:
        """One write transaction, committed on success and rolled back on any error; yields its time."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._now()
                await self._db.execute("COMMIT")
            except BaseException:
                await rollback(self._db)
                raise

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _check_admin_amount(self, amount: Any, allow_zero: bool = False) -> None:
        """A whole number up to `max_admin_amount`: 2^63 - 1 once turned a balance into REAL."""
        _check_amount(amount, allow_zero)
        maximum = self._settings.max_admin_amount
        if amount > maximum:
            raise InvalidAmount(amount, f"at most {maximum:,} per admin action ([credits] max_admin_amount)")

    async def _touch(self, account: str, now: datetime) -> AccountView:
        row = await self._account_row(account)
        today = now.date().isoformat()
        if row is None:
            if parse_account(account) != account:
                raise InvalidAccount(account)
            await self._db.execute(
                "INSERT INTO accounts (account, balance, created_at, last_daily) VALUES (?, 0, ?, ?)",
                (account, _stamp(now), today),
            )
            await self._journal(account, self._settings.signup_grant, JournalReason.SIGNUP, SYSTEM, now)
            logger.info("%s signed up with %d credits", account, self._settings.signup_grant)
            return await self._view(account)
        if row["last_daily"] >= today:
            return self._account_view(row)
        await self._db.execute("UPDATE accounts SET last_daily = ? WHERE account = ?", (today, account))
        grant = self._effective(row["daily_grant"], self._settings.daily_grant)
        if grant:
            await self._journal(account, grant, JournalReason.DAILY, SYSTEM, now)
            logger.info("%s got the daily grant of %d credits", account, grant)
        return await self._view(account)

    async def _view(self, account: str) -> AccountView:
        row = await self._account_row(account)
        assert row is not None, account
        return self._account_view(row)

    async def _one(self, sql: str, params: tuple[Any, ...]) -> aiosqlite.Row | None:
        """The first row, in one trip to the connection's thread (a cursor would take three)."""
        return next(iter(await self._db.execute_fetchall(sql, params)), None)

    async def _account_row(self, account: str) -> aiosqlite.Row | None:
        return await self._one(_ACCOUNT_SQL, (account,))

    async def _reservation_row(self, job_id: str) -> aiosqlite.Row | None:
        return await self._one("SELECT * FROM reservations WHERE job_id = ?", (job_id,))

    async def _settle(
        self, job_id: str, state: ReservationState, reason: str | None, now: datetime
    ) -> aiosqlite.Row | None:
        """Move an active reservation to `state`; its account and amount, or None when it was settled already."""
        row = await self._one(
            "UPDATE reservations SET state = ?, settled_at = ?, reason = ? WHERE job_id = ? AND state = 'active'"
            " RETURNING account, amount",
            (state, _stamp(now), reason, job_id),
        )
        if row is None and await self._reservation_row(job_id) is None:
            raise UnknownJob(job_id)
        return row

    async def _journal(
        self, account: str, delta: int, reason: JournalReason, actor: str, now: datetime,
        *, job_id: str | None = None, note: str = "",
    ) -> None:
        """Record a change; the schema's trigger adds `delta` to the balance, the only way it moves."""
        await self._db.execute(
            "INSERT INTO journal (account, delta, reason, job_id, actor, note, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (account, delta, reason, job_id, actor, note, _stamp(now)),
        )

    def _account_view(self, row: aiosqlite.Row) -> AccountView:
        return AccountView(
            account=row["account"],
            balance=row["balance"],
            reserved=row["reserved"],
            available=row["balance"] - row["reserved"],
            banned=bool(row["banned"]),
            ban_reason=row["ban_reason"],
            daily_grant=self._effective(row["daily_grant"], self._settings.daily_grant),
            max_in_flight=self._effective(row["max_in_flight"], self._settings.max_jobs_in_flight),
            in_flight=row["in_flight"],
            created_at=datetime.fromisoformat(row["created_at"]),
        )

    @staticmethod
    def _effective(override: int | None, default: int) -> int:
        return default if override is None else override


def _reserve_refusal(view: AccountView, amount: int) -> LedgerError | None:
    if view.banned:
        return Banned(view.account, view.ban_reason)
    if view.in_flight >= view.max_in_flight:
        return QuotaExceeded(view.max_in_flight, view.in_flight)
    if amount > view.available:
        return InsufficientCredits(amount, view.available)
    return None


def _over_the_top(view: AccountView, amount: int) -> InvalidAmount | None:
    if view.balance + amount <= MAX_CREDITS:
        return None
    return InvalidAmount(amount, f"at most {MAX_CREDITS - view.balance:,}: an account holds at most "
                                 f"{MAX_CREDITS:,} credits")


def _check_amount(amount: Any, allow_zero: bool = False) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < (0 if allow_zero else 1):
        raise InvalidAmount(amount, "a whole number, 0 or more" if allow_zero else "a positive whole number of credits")


def _stamp(moment: datetime) -> str:
    """Fixed-width UTC ISO time, so stored stamps sort as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _reservation(row: aiosqlite.Row) -> Reservation:
    return Reservation(
        job_id=row["job_id"],
        account=row["account"],
        amount=row["amount"],
        state=ReservationState(row["state"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        settled_at=datetime.fromisoformat(row["settled_at"]) if row["settled_at"] else None,
        reason=row["reason"],
    )


def _journal_entry(row: aiosqlite.Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        account=row["account"],
        delta=row["delta"],
        reason=JournalReason(row["reason"]),
        job_id=row["job_id"],
        actor=row["actor"],
        note=row["note"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )
