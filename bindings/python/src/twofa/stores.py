"""Stores: the versioned key-value contract, the built-in stores, and the conformance suite.

A store keeps bytes under string keys with versions (DESIGN: compare-and-swap):

- ``get(key)`` returns ``(value, version)`` or None;
- ``put(key, value, expected_version)`` writes if the key's version is ``expected_version``
  (None: only if the key does not exist) and returns the new version (a positive int, never
  reused for the key, even after a delete); on a mismatch it raises `StoreConflict`;
- ``delete(key, expected_version)`` deletes if the version matches, else raises `StoreConflict`.

Any other exception is a failure of the store; it reaches the caller as `twofa.Storage` with the
exception as its ``__cause__``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from ._ffi import c_str, call, call_json, raise_with_cause
from ._native import ffi, lib
from .errors import StoreConflict, TwofaError, take_error
from .types import Message, SecurityEvent

#: Where failed deliveries are logged (a notice that fails does not fail its operation).
log = logging.getLogger("twofa")


@runtime_checkable
class Store(Protocol):
    """A synchronous store (see the module documentation)."""

    def get(self, key: str) -> tuple[bytes, int] | None:
        """The value under `key` and its version, or None."""

    def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        """Writes `value` if the version matches (None: insert only); returns the new version."""

    def delete(self, key: str, expected_version: int) -> None:
        """Deletes `key` if its version matches."""


class AsyncStore(Protocol):
    """An asynchronous store for `twofa.aio.Engine`: the same contract, as coroutines."""

    async def get(self, key: str) -> tuple[bytes, int] | None:
        """The value under `key` and its version, or None."""

    async def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        """Writes `value` if the version matches (None: insert only); returns the new version."""

    async def delete(self, key: str, expected_version: int) -> None:
        """Deletes `key` if its version matches."""


class NativeStore:
    """A store implemented inside libtwofa; engines opened on it share it. Thread-safe."""

    def __init__(self, handle: Any) -> None:
        self._handle = ffi.gc(handle, lib.twofa_store_free)

    def get(self, key: str) -> tuple[bytes, int] | None:
        """The value under `key` and its version, or None."""
        out = ffi.new("uint8_t **")
        length = ffi.new("uintptr_t *")
        version = ffi.new("uint64_t *")
        call(lib.twofa_store_get, self._handle, c_str(key, "key"), out, length, version)
        if version[0] == 0:
            return None
        try:
            return bytes(ffi.buffer(out[0], length[0])), int(version[0])
        finally:
            lib.twofa_bytes_free(out[0], length[0])

    def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        """Writes `value` if the version matches (None: insert only); returns the new version."""
        version = ffi.new("uint64_t *")
        err = ffi.new("twofa_error **")
        data = ffi.from_buffer("uint8_t[]", value)
        status = lib.twofa_store_put(
            self._handle, c_str(key, "key"), data, len(value), expected_version or 0, version, err
        )
        _raise_store_status(status, err[0])
        return int(version[0])

    def delete(self, key: str, expected_version: int) -> None:
        """Deletes `key` if its version matches."""
        err = ffi.new("twofa_error **")
        _raise_store_status(lib.twofa_store_delete(self._handle, c_str(key, "key"), expected_version, err), err[0])


def _raise_store_status(status: int, err: Any) -> None:
    if status == lib.TWOFA_CONFLICT:
        lib.twofa_error_free(err)
        raise StoreConflict("version conflict")
    if status != lib.TWOFA_OK:
        raise take_error(status, err)


class MemoryStore(NativeStore):
    """The in-memory store (lost when the last engine using it is gone)."""

    def __init__(self) -> None:
        out = ffi.new("twofa_store **")
        call(lib.twofa_store_new_memory, out)
        super().__init__(out[0])


class SqliteStore(NativeStore):
    """The embedded SQLite store at `path` (created if missing; WAL mode)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        out = ffi.new("twofa_store **")
        call(lib.twofa_store_new_sqlite, c_str(os.fspath(path), "path"), out)
        super().__init__(out[0])


_Result = TypeVar("_Result")

#: What a callback answers libtwofa: done, a version conflict, or a failure (the header names
#: no constant for a failure: any other status is one).
CALLBACK_OK: int = lib.TWOFA_CALLBACK_OK
CALLBACK_CONFLICT: int = lib.TWOFA_CALLBACK_CONFLICT
CALLBACK_FAILED = 2


class Host:
    """The host callbacks of one engine (or one conformance run): the Python store, mailer,
    clock and event handler behind the C function pointers, and the exceptions they raised."""

    def __init__(self, store: Store | None, mailer: Any, clock: Any, on_event: Any = None) -> None:
        self.store = store
        self.mailer = mailer
        self.clock = clock
        self.on_event = on_event
        self._local = threading.local()
        self._lock = threading.Lock()
        self._any_cause: BaseException | None = None
        self._handle = ffi.new_handle(self)
        self.struct = ffi.new(
            "twofa_host *",
            {
                "user_data": self._handle,
                "store_get": lib._twofa_py_store_get if store is not None else ffi.NULL,
                "store_put": lib._twofa_py_store_put if store is not None else ffi.NULL,
                "store_delete": lib._twofa_py_store_delete if store is not None else ffi.NULL,
                "send_mail": lib._twofa_py_send_mail if mailer is not None else ffi.NULL,
                "now": lib._twofa_py_now if clock is not None else ffi.NULL,
                "emit_event": lib._twofa_py_emit_event if on_event is not None else ffi.NULL,
            },
        )

    def failed(self, cause: BaseException) -> None:
        """Remembers the exception a callback raised on this thread."""
        self._local.cause = cause
        with self._lock:
            self._any_cause = cause

    def begin(self) -> None:
        """Forgets earlier exceptions before a call."""
        self._local.cause = None
        self._local.interrupt = None

    def interrupted(self, interrupt: BaseException) -> None:
        """Remembers a KeyboardInterrupt or SystemExit the event handler raised on this thread
        (the operation itself cannot fail; `reraise_interrupt` raises it once it returned)."""
        self._local.interrupt = interrupt

    def reraise_interrupt(self) -> None:
        """Raises what `interrupted` remembered during the call, if anything."""
        interrupt: BaseException | None = getattr(self._local, "interrupt", None)
        if interrupt is not None:
            self._local.interrupt = None
            raise interrupt

    def cause(self, from_any_thread: bool = False) -> BaseException | None:
        """The last exception a callback raised during the call."""
        cause: BaseException | None = getattr(self._local, "cause", None)
        if cause is None and from_any_thread:
            with self._lock:
                cause = self._any_cause
        return cause

    def run(self, fn: Callable[..., _Result], *args: Any) -> _Result:
        """Calls `fn(*args)` (a libtwofa call through `call` or `call_json`) as one operation:
        raises its error with the callback's exception as the cause, and then any interrupt the
        event handler raised."""
        self.begin()
        try:
            result = fn(*args)
        except TwofaError as e:
            self.raise_error(e)
            raise
        finally:
            self.reraise_interrupt()
        return result

    def answer(self, callback: Callable[[], object], conflicts: bool = False) -> int:
        """Performs what a C callback asks and answers it: CALLBACK_OK; CALLBACK_CONFLICT for a
        `StoreConflict` where a version conflict is an answer (`conflicts`: put and delete);
        else CALLBACK_FAILED, remembering the exception (`failed`)."""
        try:
            callback()
        except BaseException as e:
            if conflicts and isinstance(e, StoreConflict):
                return CALLBACK_CONFLICT
            self.failed(e)
            return CALLBACK_FAILED
        return CALLBACK_OK

    def raise_error(self, error: TwofaError, from_any_thread: bool = False) -> None:
        """Raises `error`, with the callback's exception as the cause when a callback failed."""
        raise_with_cause(error, self.cause(from_any_thread) if error.callback is not None else None)


# The C callbacks of `Host` (declared as `extern "Python"` by setup.py). Each turns the C
# arguments into Python values and calls the host's object through `Host.answer`, which reports
# any exception as a failed callback, remembering it as the cause of the error the call returns.

_Callback = TypeVar("_Callback", bound=Callable[..., int | None])


def _extern(callback: _Callback) -> _Callback:
    """Registers `callback` as the implementation of its `extern "Python"` declaration."""
    ffi.def_extern()(callback)
    return callback


def check_version(what: str, version: object) -> None:
    """Refuses a version outside the contract (a positive int that fits in 64 bits)."""
    if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 1 << 64:
        raise ValueError(f"{what} returned version {version!r}: versions are positive 64-bit ints")


def _text(p: Any) -> str:
    text: bytes = ffi.string(p)
    return text.decode()


@_extern
def _twofa_py_store_get(user_data: Any, key: Any, out: Any) -> int:
    host: Host = ffi.from_handle(user_data)

    def get() -> None:
        assert host.store is not None
        found = host.store.get(_text(key))
        if found is not None:
            value, version = found
            check_version("store.get", version)
            lib.twofa_store_value_set(out, ffi.from_buffer("uint8_t[]", value), len(value), version)

    return host.answer(get)


@_extern
def _twofa_py_store_put(user_data: Any, key: Any, data: Any, length: int, expected: int, out: Any) -> int:
    host: Host = ffi.from_handle(user_data)

    def put() -> None:
        assert host.store is not None
        version = host.store.put(_text(key), bytes(ffi.buffer(data, length)), expected or None)
        check_version("store.put", version)
        lib.twofa_store_value_set_version(out, version)

    return host.answer(put, conflicts=True)


@_extern
def _twofa_py_store_delete(user_data: Any, key: Any, expected: int) -> int:
    host: Host = ffi.from_handle(user_data)

    def delete() -> None:
        assert host.store is not None
        host.store.delete(_text(key), expected)

    return host.answer(delete, conflicts=True)


@_extern
def _twofa_py_send_mail(user_data: Any, to: Any, subject: Any, text: Any, html: Any) -> int:
    host: Host = ffi.from_handle(user_data)
    status = host.answer(lambda: host.mailer(Message(_text(to), _text(subject), _text(text), _text(html))))
    if status == CALLBACK_FAILED:
        log.warning("delivering a message to %s failed", _text(to), exc_info=host.cause())
    return status


@_extern
def _twofa_py_now(user_data: Any, out: Any) -> int:
    host: Host = ffi.from_handle(user_data)

    def now() -> None:
        out[0] = int(host.clock())

    return host.answer(now)


def deliver_event(handler: Callable[[SecurityEvent], object], event_json: str) -> object:
    """Calls the event handler with one event; an exception it raises is logged and ignored (the
    handler cannot fail the operation: the change is already durable). Returns what the handler
    returned (an awaitable, for an async handler of `twofa.aio.Engine`)."""
    try:
        return handler(SecurityEvent.from_json(json.loads(event_json)))
    except Exception as e:
        log.warning("the event handler failed", exc_info=e)
        return None


@_extern
def _twofa_py_emit_event(user_data: Any, event_json: Any) -> None:
    host: Host = ffi.from_handle(user_data)
    try:
        deliver_event(host.on_event, _text(event_json))
    except BaseException as e:  # KeyboardInterrupt, SystemExit: raised after the call
        host.interrupted(e)


def check_store(store: Store) -> list[str]:
    """Runs the core's store conformance suite (insert-only, compare-and-swap, versions never
    reused, concurrent writers from several threads) against `store`, writing and then deleting
    keys under a random ``twofa-conformance/`` prefix. Returns the names of the checks passed;
    raises `twofa.Storage` naming the first failed check."""
    if isinstance(store, NativeStore):
        return list(call_json(lib.twofa_store_check, store._handle)["passed"])
    host = Host(store, None, None)
    host.begin()
    try:
        return list(call_json(lib.twofa_check_store, host.struct)["passed"])
    except TwofaError as e:
        host.raise_error(e, from_any_thread=True)
        raise
