"""`CountingStore`: a store wrapper that counts the compare-and-swap writes that lost (the engine
retries them), shared by the race test's worker and the scaling benchmark's worker."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

import twofa

S = TypeVar("S", bound=twofa.Store)


class CountingStore(Generic[S]):
    """`inner`, counting its conflicts; safe to share between threads."""

    def __init__(self, inner: S) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self.conflicts = 0

    def _lost(self) -> None:
        with self._lock:
            self.conflicts += 1

    def take_conflicts(self) -> int:
        """The conflicts counted since the last call."""
        with self._lock:
            n, self.conflicts = self.conflicts, 0
        return n

    def get(self, key: str) -> tuple[bytes, int] | None:
        return self.inner.get(key)

    def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        try:
            return self.inner.put(key, value, expected_version)
        except twofa.StoreConflict:
            self._lost()
            raise

    def delete(self, key: str, expected_version: int) -> None:
        try:
            self.inner.delete(key, expected_version)
        except twofa.StoreConflict:
            self._lost()
            raise
