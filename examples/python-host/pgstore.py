"""twofa's store on PostgreSQL, over psycopg 3: `PostgresStore` for `twofa.Engine` and
`AsyncPostgresStore` for `twofa.aio.Engine`.

twofa keeps each user's second factors under one key and writes it by compare-and-swap (see
`twofa.Store`). Here every key is a row of one table, and versions come from one sequence, so a
version is never handed out twice, not even to a key deleted and written again::

    store = PostgresStore("postgresql://app@db.internal/app")
    store.create_schema()  # once, or run SCHEMA with your migrations
    engine = twofa.Engine(config, store=store, mailer=send)

Several app servers may share the database: each statement is atomic on its own, so no
transaction spans two calls and nothing is cached between them. A version mismatch raises
`twofa.StoreConflict`; any other error (the server is down, ...) is a storage failure, which
twofa reports as `twofa.Storage` with the psycopg exception as its cause.

Both stores are safe to share: a call borrows one of at most `connections` connections (in
autocommit mode, opened when first needed) and waits while all are in use. A connection left
in an unknown state (broken, or interrupted mid-query) is closed and replaced by a new one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

import psycopg
from psycopg.pq import TransactionStatus

import twofa

#: The table and the sequence of versions, created if missing. The advisory lock makes concurrent
#: runs (several app servers starting at once) wait for each other: CREATE ... IF NOT EXISTS
#: alone can fail when two sessions create the same object at the same moment. Sent as one
#: simple query, the statements run as one transaction, which holds the lock to the end.
SCHEMA: Final = """\
SELECT pg_advisory_xact_lock(hashtext('twofa schema'));
CREATE SEQUENCE IF NOT EXISTS twofa_versions;
CREATE TABLE IF NOT EXISTS twofa (
  key text PRIMARY KEY,
  value bytea NOT NULL,
  version bigint NOT NULL
)"""

# The four statements of the contract, each a single atomic statement.
GET: Final = "SELECT value, version FROM twofa WHERE key = %s"
#: Insert-only: nothing is returned when the key exists.
INSERT: Final = (
    "INSERT INTO twofa (key, value, version) VALUES (%s, %s, nextval('twofa_versions'))"
    " ON CONFLICT (key) DO NOTHING RETURNING version"
)
#: Compare-and-swap: nothing is returned when the key is gone or its version differs.
UPDATE: Final = (
    "UPDATE twofa SET value = %s, version = nextval('twofa_versions') WHERE key = %s AND version = %s RETURNING version"
)
DELETE: Final = "DELETE FROM twofa WHERE key = %s AND version = %s"

#: How many connections a store opens at most, unless told.
DEFAULT_CONNECTIONS: Final = 4

Row = tuple[Any, ...]


def _conflict(key: str) -> twofa.StoreConflict:
    return twofa.StoreConflict(f"version conflict on {key!r}")


def _reusable(conn: psycopg.Connection[Row] | psycopg.AsyncConnection[Row]) -> bool:
    """Whether a connection can serve the next call: open and idle (not broken, not mid-query)."""
    return not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE


class PostgresStore:
    """A `twofa.Store` on PostgreSQL (see the module documentation); safe to share between threads.

    `conninfo` is a libpq URL or key=value string, `connections` the most connections it opens.
    """

    def __init__(self, conninfo: str, *, connections: int = DEFAULT_CONNECTIONS) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self._conninfo = conninfo
        self._slots = threading.BoundedSemaphore(connections)
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[Row]] = []
        self._closed = False

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Row]]:
        """Borrows an idle connection (or opens one) for one call."""
        with self._slots:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the store is closed")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = psycopg.connect(self._conninfo, autocommit=True)
            try:
                yield conn
            finally:
                with self._lock:
                    keep = _reusable(conn) and not self._closed
                    if keep:
                        self._idle.append(conn)
                if not keep:
                    conn.close()

    def create_schema(self) -> None:
        """Creates the table and the sequence if they do not exist (safe to run concurrently)."""
        with self._connection() as conn:
            conn.execute(SCHEMA)

    def get(self, key: str) -> tuple[bytes, int] | None:
        """The value under `key` and its version, or None."""
        with self._connection() as conn:
            row = conn.execute(GET, (key,)).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        """Writes `value` if the version matches (None: insert only); returns the new version."""
        with self._connection() as conn:
            if expected_version is None:
                row = conn.execute(INSERT, (key, value)).fetchone()
            else:
                row = conn.execute(UPDATE, (value, key, expected_version)).fetchone()
        if row is None:
            raise _conflict(key)
        return int(row[0])

    def delete(self, key: str, expected_version: int) -> None:
        """Deletes `key` if its version matches."""
        with self._connection() as conn:
            deleted = conn.execute(DELETE, (key, expected_version)).rowcount
        if deleted == 0:
            raise _conflict(key)

    def close(self) -> None:
        """Closes the idle connections now and the others when their calls end; later calls fail."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPostgresStore:
    """A `twofa.AsyncStore` on PostgreSQL (see the module documentation), the same as
    `PostgresStore` over psycopg's AsyncConnection; use it from one event loop."""

    def __init__(self, conninfo: str, *, connections: int = DEFAULT_CONNECTIONS) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self._conninfo = conninfo
        self._slots = asyncio.BoundedSemaphore(connections)
        self._idle: list[psycopg.AsyncConnection[Row]] = []
        self._closed = False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """Borrows an idle connection (or opens one) for one call."""
        async with self._slots:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = (
                self._idle.pop()
                if self._idle
                else await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            )
            try:
                yield conn
            finally:
                if _reusable(conn) and not self._closed:
                    self._idle.append(conn)
                else:
                    await conn.close()

    async def create_schema(self) -> None:
        """Creates the table and the sequence if they do not exist (safe to run concurrently)."""
        async with self._connection() as conn:
            await conn.execute(SCHEMA)

    async def get(self, key: str) -> tuple[bytes, int] | None:
        """The value under `key` and its version, or None."""
        async with self._connection() as conn:
            row = await (await conn.execute(GET, (key,))).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    async def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        """Writes `value` if the version matches (None: insert only); returns the new version."""
        async with self._connection() as conn:
            if expected_version is None:
                cursor = await conn.execute(INSERT, (key, value))
            else:
                cursor = await conn.execute(UPDATE, (value, key, expected_version))
            row = await cursor.fetchone()
        if row is None:
            raise _conflict(key)
        return int(row[0])

    async def delete(self, key: str, expected_version: int) -> None:
        """Deletes `key` if its version matches."""
        async with self._connection() as conn:
            deleted = (await conn.execute(DELETE, (key, expected_version))).rowcount
        if deleted == 0:
            raise _conflict(key)

    async def close(self) -> None:
        """Closes the idle connections now and the others when their calls end; later calls fail."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def __aenter__(self) -> AsyncPostgresStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
