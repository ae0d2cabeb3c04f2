"""The jobs table: what each user sees, the source of truth across bot restarts.

It lives in the ledger's SQLite file (its own schema component) but only the bot service
touches it; front ends address their messages through the opaque `reply_to`/`status_ref`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiosqlite

from bot.requests import VideoRequest
from credits.schema import connect, migrate
from generator.contract.jobs import VideoJob, VideoResult

JOBS_MIGRATIONS = [
    """
    CREATE TABLE jobs (
        job_id     TEXT PRIMARY KEY,
        account    TEXT NOT NULL,
        platform   TEXT NOT NULL,
        reply_to   TEXT NOT NULL,
        payload    TEXT NOT NULL,
        cost       INTEGER NOT NULL,
        state      TEXT NOT NULL,
        status_ref TEXT,
        result     TEXT,
        error      TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN ('reserved', 'queued', 'running', 'delivering');
    CREATE INDEX jobs_account ON jobs(account, created_at);
    """,
    # The request as the user made it (prompt and flags), so a job can be re-rolled or varied.
    """
    ALTER TABLE jobs ADD COLUMN request TEXT NOT NULL DEFAULT '{}';
    """,
    # Where a job was asked for and how big its input image is: the caps on waiting jobs per chat
    # and on queued image bytes per account are read from these (the partial indexes keep it cheap).
    """
    ALTER TABLE jobs ADD COLUMN chat_key TEXT;
    ALTER TABLE jobs ADD COLUMN image_bytes INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET chat_key = json_extract(reply_to, '$.chat_key');
    CREATE INDEX jobs_unfinished_chat ON jobs(chat_key)
        WHERE state IN ('reserved', 'queued', 'running', 'delivering');
    CREATE INDEX jobs_unfinished_account ON jobs(account)
        WHERE state IN ('reserved', 'queued', 'running', 'delivering');
    """,
]
# The partial indexes' condition, written out literally: SQLite uses a partial index only for a
# query whose WHERE contains the same terms, and never for states bound as parameters.
UNFINISHED_SQL = "state IN ('reserved', 'queued', 'running', 'delivering')"
TOKEN_SWEEP_INTERVAL_S = 60.0  # expired Discord tokens are blanked this often (a scan of the table)


class JobState(StrEnum):
    RESERVED = "reserved"      # credits held, not yet on the queue
    QUEUED = "queued"
    RUNNING = "running"
    DELIVERING = "delivering"  # the MP4 is ready, the front end is uploading it
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"              # Redis forgot the job or its result

    @property
    def finished(self) -> bool:
        return self in (JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED, JobState.LOST)


@dataclass
class JobRecord:
    """One row of the jobs table, typed: the JSON columns are read into their models here, once."""

    job_id: str
    account: str
    platform: str
    reply_to: dict[str, Any]
    payload: VideoJob  # what was put on the queue
    cost: int
    state: JobState
    status_ref: dict[str, Any] | None = None
    result: VideoResult | None = None  # set when the worker's video is ready (delivering and after)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    request: VideoRequest | None = None  # the request as the user made it; None for jobs older than that column
    image_bytes: int = 0  # the size of the input image held in Redis until a worker reads it
    charged: int = 0  # credits a cancel kept for steps already rendered (set by Settler.cancel)

    @property
    def returned(self) -> int:
        """Credits a cancel gave back: the price less the share it kept."""
        return self.cost - self.charged

    @property
    def chat_key(self) -> str | None:
        """`platform:chat` where the job was asked for (the front end puts it in `reply_to`)."""
        key = self.reply_to.get("chat_key")
        return None if key is None else str(key)

    @property
    def prompt(self) -> str:
        return self.payload.prompt


class JobStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._next_token_sweep = 0.0

    @classmethod
    async def open(cls, path: str | Path) -> JobStore:
        db = await connect(path)
        await migrate(db, "jobs", JOBS_MIGRATIONS)
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def insert(self, job: JobRecord) -> None:
        await self._write(
            "INSERT INTO jobs (job_id, account, platform, reply_to, payload, cost, state, status_ref, result,"
            " error, created_at, updated_at, request, chat_key, image_bytes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (job.job_id, job.account, job.platform, json.dumps(job.reply_to), job.payload.model_dump_json(),
             job.cost, job.state.value, _dump(job.status_ref), _dump_result(job.result), job.error,
             job.created_at, job.updated_at, _dump_request(job.request), job.chat_key, job.image_bytes),
        )

    async def set_state(
        self,
        job_id: str,
        state: JobState,
        *,
        only_from: tuple[JobState, ...] | None = None,
        result: VideoResult | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a job to `state`; with `only_from`, only if it is in one of those states (a CAS)."""
        sql = "UPDATE jobs SET state = ?, updated_at = ?, result = COALESCE(?, result), error = COALESCE(?, error)"
        sql += " WHERE job_id = ?"
        params: list[Any] = [state.value, time.time(), _dump_result(result), error, job_id]
        if only_from:
            sql += f" AND state IN ({','.join('?' * len(only_from))})"
            params += [s.value for s in only_from]
        return await self._write(sql, params) == 1

    async def set_status_ref(self, job_id: str, status_ref: dict[str, Any]) -> None:
        await self._write("UPDATE jobs SET status_ref = ? WHERE job_id = ?", (json.dumps(status_ref), job_id))

    async def get(self, job_id: str) -> JobRecord | None:
        rows = await self._read("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return _record(rows[0]) if rows else None

    async def unfinished(self, account: str | None = None) -> list[JobRecord]:
        sql = f"SELECT * FROM jobs WHERE {UNFINISHED_SQL}"
        params: list[Any] = []
        if account is not None:
            sql += " AND account = ?"
            params.append(account)
        return [_record(row) for row in await self._read(sql + " ORDER BY created_at", params)]

    async def recent(self, account: str, limit: int = 10) -> list[JobRecord]:
        rows = await self._read("SELECT * FROM jobs WHERE account = ? ORDER BY created_at DESC LIMIT ?",
                                (account, limit))
        return [_record(row) for row in rows]

    async def count_unfinished(self, chat_key: str | None = None) -> int:
        """Jobs not yet ended, in all chats or in one (the caps against floods of new accounts)."""
        sql = f"SELECT COUNT(*) FROM jobs WHERE {UNFINISHED_SQL}"
        params: tuple[str, ...] = ()
        if chat_key is not None:
            sql, params = sql + " AND chat_key = ?", (chat_key,)
        return int((await self._read(sql, params))[0][0])

    async def queued_image_bytes(self, account: str) -> int:
        """Input-image bytes of the account's unfinished jobs: what it holds in Redis at most."""
        rows = await self._read(
            f"SELECT COALESCE(SUM(image_bytes), 0) FROM jobs WHERE {UNFINISHED_SQL} AND account = ?", (account,))
        return int(rows[0][0])

    async def drop_expired_tokens(self, now: float) -> int:
        """Blank the Discord interaction tokens that expired by `now`; how many (at most one sweep a minute).

        A live token lets anyone holding it post as the bot in that channel; once expired it is
        worthless to the bot, so it is not kept in the file (and its backups) for ever.
        """
        if now < self._next_token_sweep:
            return 0
        self._next_token_sweep = now + TOKEN_SWEEP_INTERVAL_S
        return await self._write(
            "UPDATE jobs SET reply_to = json_set(reply_to, '$.token', '')"
            " WHERE platform = 'discord' AND json_extract(reply_to, '$.token') != ''"
            " AND json_extract(reply_to, '$.token_expires_at') <= ?",
            (now,),
        )

    async def count_by_state(self) -> dict[str, int]:
        rows = await self._read("SELECT state, COUNT(*) FROM jobs GROUP BY state", ())
        return {state: count for state, count in rows}

    async def _read(self, sql: str, params: Any) -> list[aiosqlite.Row]:
        """All rows in one trip to the connection's thread, the statement run to its end.

        A cursor read row by row keeps its statement (and so a read transaction) open across awaits;
        a write queued meanwhile on the same connection would then start from a stale snapshot, which
        WAL refuses at once with "database is locked" instead of waiting out the busy timeout.
        """
        return list(await self._db.execute_fetchall(sql, params))

    async def _write(self, sql: str, params: Any) -> int:
        async with self._lock:
            cursor = await self._db.execute(sql, params)
            await self._db.commit()
            return cursor.rowcount


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


def _dump_result(result: VideoResult | None) -> str | None:
    return None if result is None else result.model_dump_json()


def _dump_request(request: VideoRequest | None) -> str:
    return "{}" if request is None else json.dumps(dataclasses.asdict(request))


def _load_request(raw: str) -> VideoRequest | None:
    fields = json.loads(raw)
    return VideoRequest(**fields) if fields else None


def _record(row: aiosqlite.Row) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        account=row["account"],
        platform=row["platform"],
        reply_to=json.loads(row["reply_to"]),
        payload=VideoJob.model_validate_json(row["payload"]),
        cost=row["cost"],
        state=JobState(row["state"]),
        status_ref=json.loads(row["status_ref"]) if row["status_ref"] else None,
        result=VideoResult.model_validate_json(row["result"]) if row["result"] else None,
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        request=_load_request(row["request"]),
        image_bytes=row["image_bytes"],
    )
