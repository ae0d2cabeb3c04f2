"""Platform events already handled, so a redelivered update or interaction is answered once.

Telegram re-sends an update whose offset was not confirmed (a bot that crashed, two pollers);
a resumed Discord gateway session can replay events. Front ends ask `first_time` with the
event's platform id before doing anything with it. Kept in the bot's SQLite file so a restart
remembers; entries older than `KEEP_S` are pruned, long after any redelivery.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiosqlite

from credits.schema import connect, migrate

SEEN_MIGRATIONS = [
    """
    CREATE TABLE seen_events (
        event_key TEXT PRIMARY KEY,
        seen_at   REAL NOT NULL
    );
    CREATE INDEX seen_events_age ON seen_events (seen_at);
    """,
]

KEEP_S = 7 * 24 * 3600


class SeenEvents:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._inserted = 0

    @classmethod
    async def open(cls, path: str | Path) -> SeenEvents:
        db = await connect(path)
        await migrate(db, "seen", SEEN_MIGRATIONS)
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def first_time(self, event_key: str) -> bool:
        """Record the event; True only for the first call with this key (atomic: one INSERT)."""
        now = time.time()
        cursor = await self._db.execute(
            "INSERT INTO seen_events (event_key, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (event_key, now)
        )
        first = cursor.rowcount == 1
        self._inserted += first
        if self._inserted % 1000 == 1:
            await self._db.execute("DELETE FROM seen_events WHERE seen_at < ?", (now - KEEP_S,))
        return first
