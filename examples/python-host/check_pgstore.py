"""Tests of the PostgreSQL stores (pgstore.py) against a real server at TWOFA_PG_URL: twofa's
store conformance suite (sync and async), sign-in with an authenticator app through engines on
two stores sharing the database (two app servers), and the store's own behaviour.

They need a server, so their file name is not one pytest collects on its own (``pytest
examples/python-host`` leaves it out); name it to run it. Without TWOFA_PG_URL every test fails.
From the repository root:

    tests/pg/with-postgres.sh python -m pytest -q examples/python-host/check_pgstore.py
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pyotp
import pytest
from psycopg import sql

import twofa
import twofa.aio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgstore import AsyncPostgresStore, PostgresStore

T0 = 1_700_000_000
CONFIG: dict[str, Any] = {
    "issuer": "Example Shop",
    "keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}],
    "webauthn": {"rp_id": "localhost", "rp_name": "Example Shop", "origins": ["http://localhost:8080"]},
}


class Clock:
    """A clock the test moves forward (Unix seconds), so each code is for a new time step."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        return self.t


def no_mail(message: twofa.Message) -> None:
    raise AssertionError(f"unexpected mail to {message.to}")


@pytest.fixture(scope="module")
def url() -> str:
    """The database's URL, from TWOFA_PG_URL (tests/pg/with-postgres.sh sets it)."""
    url = os.environ.get("TWOFA_PG_URL")
    if not url:
        pytest.fail("TWOFA_PG_URL is not set: run through tests/pg/with-postgres.sh (see tests/pg/pg.mk)")
    with PostgresStore(url) as store:
        store.create_schema()
    return url


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    with PostgresStore(url) as store:
        yield store


def test_the_store_passes_the_conformance_suite(store: PostgresStore) -> None:
    passed = twofa.check_store(store)
    assert {"reinsert_fresh_version", "concurrent_increments", "cleanup"} <= set(passed)


def test_the_async_store_passes_the_conformance_suite(url: str) -> None:
    async def check() -> list[str]:
        async with AsyncPostgresStore(url) as store:
            return await twofa.aio.check_store(store)

    assert {"reinsert_fresh_version", "concurrent_increments", "cleanup"} <= set(asyncio.run(check()))


def test_versions_are_not_reused_after_a_delete_even_by_another_store(store: PostgresStore, url: str) -> None:
    key = f"test/{secrets.token_hex(8)}"
    first = store.put(key, b"a", None)
    with pytest.raises(twofa.StoreConflict):
        store.put(key, b"b", None)
    store.delete(key, first)
    with PostgresStore(url) as other:
        assert other.get(key) is None
        second = other.put(key, b"c", None)
    assert second > first
    assert store.get(key) == (b"c", second)
    with pytest.raises(twofa.StoreConflict):
        store.put(key, b"d", first)
    with pytest.raises(twofa.StoreConflict):
        store.delete(key, first)
    store.delete(key, second)


def sign_in(engine: twofa.Engine, user: str, code: str) -> twofa.LoginSuccess:
    challenge = engine.login_begin(user)
    assert challenge.second_factor_required and challenge.challenge_id is not None
    return engine.login_verify(user, challenge.challenge_id, "totp", code)


def test_totp_sign_in_across_two_app_servers(url: str) -> None:
    clock = Clock()
    user = secrets.token_urlsafe(12)
    with PostgresStore(url) as store_a, PostgresStore(url) as store_b:
        server_a = twofa.Engine(CONFIG, store=store_a, mailer=no_mail, clock=clock)
        server_b = twofa.Engine(CONFIG, store=store_b, mailer=no_mail, clock=clock)
        setup = server_a.totp_enroll_begin(user, "alice@example.com")
        totp = pyotp.TOTP(setup.secret)
        server_b.totp_enroll_confirm(user, totp.at(clock.t))
        clock.t += 30
        code = totp.at(clock.t)
        assert sign_in(server_a, user, code).method == "totp"
        with pytest.raises(twofa.Replayed):
            sign_in(server_b, user, code)
        assert [m.kind for m in server_b.security_status(user).methods] == ["totp"]


def test_totp_sign_in_over_the_async_store(url: str) -> None:
    async def run() -> None:
        clock = Clock()
        user = secrets.token_urlsafe(12)
        async with AsyncPostgresStore(url) as store:
            engine = twofa.aio.Engine(CONFIG, store=store, clock=clock)
            setup = await engine.totp_enroll_begin(user, "alice@example.com")
            totp = pyotp.TOTP(setup.secret)
            await engine.totp_enroll_confirm(user, totp.at(clock.t))
            clock.t += 30
            challenge = await engine.login_begin(user)
            assert challenge.challenge_id is not None
            await engine.login_verify(user, challenge.challenge_id, "totp", totp.at(clock.t))
            challenge = await engine.login_begin(user)
            assert challenge.challenge_id is not None
            with pytest.raises(twofa.Replayed):
                await engine.login_verify(user, challenge.challenge_id, "totp", totp.at(clock.t))

    asyncio.run(run())


def test_create_schema_is_idempotent_and_safe_when_concurrent(url: str) -> None:
    # A fresh PostgreSQL schema first in the search path, so the table and sequence are new.
    schema = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        scoped = f"{url}?options={quote(f'-csearch_path={schema}')}"
        stores = [PostgresStore(scoped) for _ in range(4)]
        barrier = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def create(store: PostgresStore) -> None:
            barrier.wait()
            try:
                store.create_schema()
                store.create_schema()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=create, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert stores[0].put("k", b"v", None) > 0
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()
        assert row == (1,)
        for store in stores:
            store.close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_an_unreachable_server_is_a_storage_error_with_the_cause() -> None:
    # Port 1 on the loopback refuses connections.
    with PostgresStore("postgresql://twofa@127.0.0.1:1/twofa?connect_timeout=5") as store:
        engine = twofa.Engine(CONFIG, store=store, mailer=no_mail, clock=Clock())
        with pytest.raises(twofa.Storage) as failure:
            engine.security_status("alice")
    assert isinstance(failure.value.__cause__, psycopg.OperationalError)


def test_a_closed_store_refuses_calls(url: str) -> None:
    store = PostgresStore(url)
    assert store.get("missing/key") is None
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.get("missing/key")
