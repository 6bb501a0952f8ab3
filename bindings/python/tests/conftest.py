"""Fixtures of the Python binding's tests: a config, a settable clock, a mail outbox, and stores
written in Python (a thread-safe dict store, its async twin, and a store that fails on cue)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import twofa

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
ORIGIN = "http://localhost:8080"
T0 = 1_700_000_000
CONFIG: dict[str, Any] = {
    "issuer": "Example Shop",
    "keys": [{"id": "k1", "secret": KEY}],
    "webauthn": {"rp_id": "localhost", "rp_name": "Example Shop", "origins": [ORIGIN]},
    # The tests open admin handles (TOTP import, deletion, reset, export) from this config.
    "admin": True,
}


def in_threads(target: Callable[..., object], arguments: Iterable[tuple[Any, ...]]) -> None:
    """Calls `target` once per argument tuple, each call in a thread of its own, and waits for
    them all."""
    threads = [threading.Thread(target=target, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Clock:
    """A clock the test sets (Unix seconds)."""

    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


class Outbox(list[twofa.Message]):
    """A mailer that keeps every message."""

    def __call__(self, message: twofa.Message) -> None:
        self.append(message)


class DictStore:
    """The versioned store contract over a dict, safe to share between threads."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, int]] = {}
        self.version = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> tuple[bytes, int] | None:
        with self.lock:
            return self.data.get(key)

    def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        with self.lock:
            current = self.data.get(key)
            if (current[1] if current else None) != expected_version:
                raise twofa.StoreConflict(key)
            self.version += 1
            self.data[key] = (bytes(value), self.version)
            return self.version

    def delete(self, key: str, expected_version: int) -> None:
        with self.lock:
            current = self.data.get(key)
            if current is None or current[1] != expected_version:
                raise twofa.StoreConflict(key)
            del self.data[key]

    def snapshot(self) -> dict[str, bytes]:
        """The stored bytes (without versions)."""
        with self.lock:
            return {k: v for k, (v, _) in self.data.items()}


class AsyncDictStore:
    """The same contract as coroutines, yielding to the event loop inside every call."""

    def __init__(self) -> None:
        self.inner = DictStore()

    async def get(self, key: str) -> tuple[bytes, int] | None:
        await asyncio.sleep(0)
        return self.inner.get(key)

    async def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        await asyncio.sleep(0)
        return self.inner.put(key, value, expected_version)

    async def delete(self, key: str, expected_version: int) -> None:
        await asyncio.sleep(0)
        self.inner.delete(key, expected_version)


class StoreDown(Exception):
    """What `FaultyStore` raises."""


class FaultyStore:
    """Wraps a store; its `fail_at`-th call (counting from 1) raises `StoreDown`."""

    def __init__(self, inner: Any, fail_at: int = 0) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.calls = 0

    def _tick(self, what: str) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise StoreDown(f"{what} failed on call {self.calls}")

    def get(self, key: str) -> tuple[bytes, int] | None:
        self._tick("get")
        result: tuple[bytes, int] | None = self.inner.get(key)
        return result

    def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        self._tick("put")
        version: int = self.inner.put(key, value, expected_version)
        return version

    def delete(self, key: str, expected_version: int) -> None:
        self._tick("delete")
        self.inner.delete(key, expected_version)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture(params=["dict", "memory", "sqlite"])
def engine(request: pytest.FixtureRequest, clock: Clock, outbox: Outbox, tmp_path: Path) -> Iterator[twofa.Engine]:
    """An engine on each kind of store: a Python dict store, the native memory store, and the
    embedded SQLite default (store=None, the config's sqlite_path)."""
    if request.param == "dict":
        yield twofa.Engine(CONFIG, store=DictStore(), mailer=outbox, clock=clock)
    elif request.param == "memory":
        yield twofa.Engine(CONFIG, store=twofa.MemoryStore(), mailer=outbox, clock=clock)
    else:
        config = {**CONFIG, "sqlite_path": str(tmp_path / "twofa.db")}
        yield twofa.Engine(config, mailer=outbox, clock=clock)
