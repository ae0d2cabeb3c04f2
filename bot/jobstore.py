"""The jobs table: what each user sees, the source of truth across bot restarts.

It lives in the ledger's SQLite file (its own schema component) but only the bot service
touches it; front ends address their messages through the opaque `reply_to`/`status_ref`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiosqlite

from credits.schema import connect, migrate

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
]


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


UNFINISHED = tuple(state.value for state in JobState if not state.finished)


@dataclass
class JobRecord:
    job_id: str
    account: str
    platform: str
    reply_to: dict[str, Any]
    payload: dict[str, Any]
    cost: int
    state: JobState
    status_ref: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    request: dict[str, Any] = field(default_factory=dict)  # bot.requests.VideoRequest as a dict

    @property
    def prompt(self) -> str:
        return str(self.payload["prompt"])


class JobStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

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
            " error, created_at, updated_at, request) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (job.job_id, job.account, job.platform, json.dumps(job.reply_to), json.dumps(job.payload),
             job.cost, job.state.value, _dump(job.status_ref), _dump(job.result), job.error,
             job.created_at, job.updated_at, json.dumps(job.request)),
        )

    async def set_state(
        self,
        job_id: str,
        state: JobState,
        *,
        only_from: tuple[JobState, ...] | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a job to `state`; with `only_from`, only if it is in one of those states (a CAS)."""
        sql = "UPDATE jobs SET state = ?, updated_at = ?, result = COALESCE(?, result), error = COALESCE(?, error)"
        sql += " WHERE job_id = ?"
        params: list[Any] = [state.value, time.time(), _dump(result), error, job_id]
        if only_from:
            sql += f" AND state IN ({','.join('?' * len(only_from))})"
            params += [s.value for s in only_from]
        return await self._write(sql, params) == 1

    async def set_status_ref(self, job_id: str, status_ref: dict[str, Any]) -> None:
        await self._write("UPDATE jobs SET status_ref = ? WHERE job_id = ?", (json.dumps(status_ref), job_id))

    async def get(self, job_id: str) -> JobRecord | None:
        async with self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)) as cursor:
            row = await cursor.fetchone()
        return _record(row) if row else None

    async def unfinished(self, account: str | None = None) -> list[JobRecord]:
        sql = f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(UNFINISHED))})"
        params: list[Any] = list(UNFINISHED)
        if account is not None:
            sql += " AND account = ?"
            params.append(account)
        async with self._db.execute(sql + " ORDER BY created_at", params) as cursor:
            return [_record(row) for row in await cursor.fetchall()]

    async def recent(self, account: str, limit: int = 10) -> list[JobRecord]:
        async with self._db.execute(
            "SELECT * FROM jobs WHERE account = ? ORDER BY created_at DESC LIMIT ?", (account, limit)
        ) as cursor:
            return [_record(row) for row in await cursor.fetchall()]

    async def count_by_state(self) -> dict[str, int]:
        async with self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state") as cursor:
            return {state: count for state, count in await cursor.fetchall()}

    async def _write(self, sql: str, params: Any) -> int:
        async with self._lock:
            cursor = await self._db.execute(sql, params)
            await self._db.commit()
            return cursor.rowcount


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


def _record(row: aiosqlite.Row) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        account=row["account"],
        platform=row["platform"],
        reply_to=json.loads(row["reply_to"]),
        payload=json.loads(row["payload"]),
        cost=row["cost"],
        state=JobState(row["state"]),
        status_ref=json.loads(row["status_ref"]) if row["status_ref"] else None,
        result=json.loads(row["result"]) if row["result"] else None,
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        request=json.loads(row["request"]),
    )
