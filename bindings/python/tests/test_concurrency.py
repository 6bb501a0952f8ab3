"""Concurrency: one engine serving many threads, and the asyncio engine serving many tasks. A
code is accepted exactly once however many sign-ins race with it."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pyotp
import pytest

import twofa
import twofa.aio

from conftest import CONFIG, AsyncDictStore, Clock, in_threads

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_sixteen_threads_one_code_one_success(engine: twofa.Engine, clock: Clock) -> None:
    engine.admin().totp_import("alice", SECRET)
    challenges = [engine.login_begin("alice").challenge_id for _ in range(16)]
    code = pyotp.TOTP(SECRET).at(clock.t)
    assert code == "406058"
    barrier = threading.Barrier(16)
    results: list[str] = []
    lock = threading.Lock()

    def verify(challenge: str | None) -> None:
        assert challenge is not None
        barrier.wait()
        try:
            engine.login_verify("alice", challenge, "totp", code)
            outcome = "ok"
        except twofa.TwofaError as e:
            outcome = e.name
        with lock:
            results.append(outcome)

    in_threads(verify, [(c,) for c in challenges])
    assert sorted(results) == ["ok"] + ["replayed"] * 15


def test_threads_on_many_users_all_succeed(engine: twofa.Engine, clock: Clock) -> None:
    users = [f"user-{i}" for i in range(8)]
    for user in users:
        engine.admin().totp_import(user, SECRET)
    results: dict[str, str] = {}
    barrier = threading.Barrier(len(users))

    def sign_in(user: str) -> None:
        challenge = engine.login_begin(user).challenge_id
        assert challenge is not None
        barrier.wait()
        try:
            results[user] = engine.login_verify(user, challenge, "totp", "406058").method
        except twofa.TwofaError as e:
            results[user] = e.name

    in_threads(sign_in, [(u,) for u in users])
    assert results == {user: "totp" for user in users}


def test_calls_release_the_gil(clock: Clock) -> None:
    """While one thread waits inside libtwofa (its store callback blocks in C-level sleep with
    the GIL released by time.sleep), another Python thread keeps running."""
    entered, release = threading.Event(), threading.Event()

    class SlowStore:
        def __init__(self) -> None:
            self.inner = twofa.MemoryStore()

        def get(self, key: str) -> tuple[bytes, int] | None:
            entered.set()
            release.wait(10)
            return self.inner.get(key)

        def put(self, key: str, value: bytes, expected_version: int | None) -> int:
            return self.inner.put(key, value, expected_version)

        def delete(self, key: str, expected_version: int) -> None:
            self.inner.delete(key, expected_version)

    engine = twofa.Engine(CONFIG, store=SlowStore(), clock=clock)
    worker = threading.Thread(target=engine.security_status, args=("alice",))
    worker.start()
    assert entered.wait(10)
    other = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock)
    started = time.monotonic()
    assert other.security_status("bob").methods == []  # not blocked behind the first call
    release.set()
    worker.join()
    assert time.monotonic() - started < 10


async def verify_at_once(engine: twofa.aio.Engine, challenges: list[str | None], code: str) -> list[str]:
    """Alice's `code` on every challenge, as concurrent tasks: each outcome, "ok" or the error's
    name."""

    async def verify(challenge: str | None) -> str:
        assert challenge is not None
        try:
            await engine.login_verify("alice", challenge, "totp", code)
            return "ok"
        except twofa.TwofaError as e:
            return e.name

    return list(await asyncio.gather(*(verify(c) for c in challenges)))


@pytest.mark.parametrize("store_kind", ["async-dict", "memory"])
def test_asyncio_tasks_one_code_one_success(store_kind: str) -> None:
    async def main() -> list[str]:
        store: Any = AsyncDictStore() if store_kind == "async-dict" else twofa.MemoryStore()
        engine = twofa.aio.Engine(CONFIG, store=store, clock=Clock())
        await engine.admin().totp_import("alice", SECRET)
        challenges = [(await engine.login_begin("alice")).challenge_id for _ in range(16)]
        return await verify_at_once(engine, challenges, "406058")

    assert sorted(asyncio.run(main())) == ["ok"] + ["replayed"] * 15


def test_asyncio_wrong_codes_are_counted_exactly() -> None:
    async def main() -> tuple[list[str], int | None]:
        clock = Clock()
        engine = twofa.aio.Engine(CONFIG, store=AsyncDictStore(), clock=clock)
        await engine.admin().totp_import("alice", SECRET)
        # 16 challenges (the most a user may have open) with 2 wrong codes each.
        challenges = [(await engine.login_begin("alice")).challenge_id for _ in range(16)] * 2
        names = await verify_at_once(engine, challenges, "000000")
        return names, (await engine.security_status("alice")).locked_until

    names, locked_until = asyncio.run(main())
    assert names.count("invalid_code") == 10 and names.count("locked_out") == 22
    assert locked_until is not None


@pytest.mark.parametrize("kind", ["async-dict", "memory"])
def test_the_conformance_suite_runs_on_async_stores(kind: str) -> None:
    store: Any = AsyncDictStore() if kind == "async-dict" else twofa.MemoryStore()
    passed = asyncio.run(twofa.aio.check_store(store))
    assert "concurrent_increments" in passed and passed[-1] == "cleanup"


def test_the_async_conformance_suite_names_the_broken_check_and_the_cause() -> None:
    class Broken(AsyncDictStore):
        async def get(self, key: str) -> tuple[bytes, int] | None:
            raise ConnectionError("database is gone")

    with pytest.raises(twofa.Storage, match="get_missing") as failed:
        asyncio.run(twofa.aio.check_store(Broken()))
    assert isinstance(failed.value.__cause__, ConnectionError)
