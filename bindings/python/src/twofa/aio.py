"""The asyncio engine: the same operations as coroutines, over an async store and mailer.

Each operation runs libtwofa's sans-IO state machine (`twofa_operation_*`): libtwofa decides
and says what to do next (load a key, write it if its version matches, delete it, send a
message); this module only performs that action with ``await`` and feeds the result back. The
retries after conflicts and the pending → sent → armed sequence of one-time codes stay in the
core.

The store may be an `AsyncStore` (coroutines), a synchronous `Store` (called directly, so it
should not block), a `MemoryStore`, or a `SqliteStore`. For the last two, libtwofa performs all
of an operation's store actions in one call (in a worker thread for SQLite), and only mail
comes here;
``store=None`` opens the SQLite store at the config's ``sqlite_path``. The mailer and the event
handler may return an awaitable. The clock is a plain callable returning Unix seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._ffi import c_str, call, call_json, raise_with_cause
from ._native import ffi, lib
from ._operations import AdminOperations, AsyncHandle, Call, Operations
from .engine import Clock, ConfigArg
from .errors import Internal, InvalidInput, Mail, Storage, StoreConflict, TwofaError
from .stores import CALLBACK_FAILED, AsyncStore, NativeStore, SqliteStore, Store, check_version, deliver_event, log
from .types import Message, SecurityEvent

#: An async mailer (or a plain one): called with each message; raising means not delivered.
AsyncMailer = Callable[[Message], Awaitable[object] | object]
#: An async audit event handler (or a plain one): called with each `SecurityEvent` after the
#: change it reports has committed; it cannot fail the operation (an exception is logged).
AsyncEventHandler = Callable[[SecurityEvent], Awaitable[object] | object]


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _reason(e: BaseException) -> Any:
    """What a failed action is reported as (the exception's type and text, NUL-free, capped);
    an exception whose text cannot be built is described, never re-raised."""
    try:
        text = f"{type(e).__name__}: {e}"
    except Exception:
        text = f"{type(e).__name__} (its text cannot be shown)"
    return text.replace("\0", " ")[:1000].encode()


def _text(p: Any) -> str:
    text: bytes = ffi.string(p)
    return text.decode()


_Outcome = TypeVar("_Outcome")


class Engine(AsyncHandle, Operations):
    """A twofa engine for asyncio: `twofa.Engine`'s operations as coroutines. ``on_event``
    receives each audit `SecurityEvent` (awaited when it returns an awaitable) before the
    operation returns; an exception it raises is logged and ignored."""

    def __init__(
        self,
        config: ConfigArg,
        *,
        store: AsyncStore | Store | None = None,
        mailer: AsyncMailer | None = None,
        clock: Clock | None = None,
        on_event: AsyncEventHandler | None = None,
    ) -> None:
        config_text = config if isinstance(config, str) else json.dumps(config)
        out = ffi.new("twofa_core **")
        call(lib.twofa_core_new, c_str(config_text, "config"), out)
        self._core = ffi.gc(out[0], lib.twofa_core_free)
        if store is None:
            path = json.loads(config_text).get("sqlite_path")
            if not isinstance(path, str):
                raise InvalidInput("invalid input: no store given and config.sqlite_path is unset")
            store = SqliteStore(path)
        self._store: Any = store
        self._native = store if isinstance(store, NativeStore) else None
        self._mailer = mailer
        self._on_event = on_event
        self._clock: Clock = clock or time.time

    async def _run(self, operation: Call[_Outcome]) -> _Outcome:
        """Runs one operation (``twofa_operation_new``) and returns its result."""
        return operation.outcome(await self._drive(lib.twofa_operation_new, operation))

    async def _drive(self, new: Any, operation: Call[Any]) -> Any:
        """Starts an operation with `new` and performs its actions to its end; returns its JSON
        outcome."""
        out = ffi.new("twofa_operation **")
        now = int(self._clock())
        call(new, self._core, c_str(operation.user, "user"), operation.request_json(), now, out)
        op = ffi.gc(out[0], lib.twofa_operation_free)
        action = ffi.new("twofa_action *")
        causes: dict[int, tuple[BaseException, str]] = {}
        while True:
            await self._next(op, action)
            if action.kind == lib.TWOFA_ACTION_DONE:
                break
            status = await self._perform(op, action, causes)
            if status != lib.TWOFA_OK:
                # libtwofa refused the answer (a bug here): stop rather than loop.
                raise TwofaError(_text(lib.twofa_last_error_message()), code=status)
        try:
            return call_json(lib.twofa_operation_finish, op)
        except TwofaError as e:
            cause, e.callback = causes.get(e.code or 0, (None, None))
            raise_with_cause(e, cause)
            raise

    async def _next(self, op: Any, action: Any) -> None:
        """Describes the next action in `action`; with a built-in store, libtwofa first performs
        every store action itself (SQLite's in a worker thread), so the next is SEND, EMIT or
        DONE."""
        native = self._native
        if native is None:
            call(lib.twofa_operation_next, op, action)
        elif isinstance(native, SqliteStore):
            await asyncio.to_thread(call, lib.twofa_store_run_operation, native._handle, op, action)
        else:
            call(lib.twofa_store_run_operation, native._handle, op, action)

    async def _perform(self, op: Any, action: Any, causes: dict[int, tuple[BaseException, str]]) -> int:
        """Performs one action and feeds its result; remembers the exception of a failure and
        the callback that raised it (named as libtwofa's callback engine names them)."""
        kind = action.kind
        if kind == lib.TWOFA_ACTION_EMIT:
            if self._on_event is not None:
                await _emit(self._on_event, _text(action.event_json))
            return int(lib.twofa_operation_feed_emitted(op, ffi.NULL))
        if kind == lib.TWOFA_ACTION_SEND:
            message = Message(_text(action.to), _text(action.subject), _text(action.text), _text(action.html))
            try:
                if self._mailer is None:
                    raise RuntimeError("no mailer")
                await _maybe_await(self._mailer(message))
            except Exception as e:
                causes[Mail.CODE] = (e, "send_mail")
                log.warning("delivering a message to %s failed", message.to, exc_info=e)
                return int(lib.twofa_operation_feed_send(op, CALLBACK_FAILED, _reason(e)))
            return int(lib.twofa_operation_feed_send(op, lib.TWOFA_CALLBACK_OK, ffi.NULL))
        failures: list[BaseException] = []
        answer = await _answer(self._store, _copy(action), failures)
        if failures:
            causes[Storage.CODE] = (failures[-1], _STORE_CALLBACKS[kind])
        return int(_OPERATION_FEEDS[kind](op, *answer))

    def admin(self) -> Admin:
        """The admin capability of this engine. Give it only to administrative code. Its
        operations fail with `twofa.Forbidden` unless the config has ``"admin": true``."""
        return Admin(self)


class Admin(AsyncHandle, AdminOperations):
    """Administrative operations as coroutines, kept off the user-facing `Engine`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def _run(self, operation: Call[_Outcome]) -> _Outcome:
        """Runs one admin operation (``twofa_admin_operation_new``) and returns its result."""
        return operation.outcome(await self._engine._drive(lib.twofa_admin_operation_new, operation))


async def _emit(handler: AsyncEventHandler, event_json: str) -> None:
    """Delivers one event to the handler, awaiting it if it returns an awaitable; an exception
    it raises is logged and ignored (cancellation still propagates)."""
    result = deliver_event(handler, event_json)
    if inspect.isawaitable(result):
        try:
            await result
        except Exception as e:
            log.warning("the event handler failed", exc_info=e)


# How each kind of store action is answered, in an operation and in a conformance session.
_OPERATION_FEEDS = {
    lib.TWOFA_ACTION_LOAD: lib.twofa_operation_feed_load,
    lib.TWOFA_ACTION_WRITE: lib.twofa_operation_feed_write,
    lib.TWOFA_ACTION_DELETE: lib.twofa_operation_feed_delete,
}
#: The store callback each action is performed by, as a failed one is named in `TwofaError.callback`.
_STORE_CALLBACKS = {
    lib.TWOFA_ACTION_LOAD: "store.get",
    lib.TWOFA_ACTION_WRITE: "store.put",
    lib.TWOFA_ACTION_DELETE: "store.delete",
}
_CONFORMANCE_FEEDS = {
    lib.TWOFA_ACTION_LOAD: lib.twofa_conformance_feed_load,
    lib.TWOFA_ACTION_WRITE: lib.twofa_conformance_feed_write,
    lib.TWOFA_ACTION_DELETE: lib.twofa_conformance_feed_delete,
}


def _copy(action: Any) -> dict[str, Any]:
    """A store action copied out of a `twofa_action` (whose pointers die at the next call)."""
    write = action.kind == lib.TWOFA_ACTION_WRITE
    return {
        "kind": action.kind,
        "key": _text(action.key),
        "bytes": bytes(ffi.buffer(action.bytes, action.len)) if write else b"",
        "expected": int(action.expected_version),
    }


async def _answer(store: Any, action: dict[str, Any], failures: list[BaseException]) -> tuple[Any, ...]:
    """Performs a copied store action on `store`; returns the arguments of its feed function
    after the handle (and id); an exception of the store is appended to `failures`."""
    kind, key, expected = action["kind"], action["key"], action["expected"]
    try:
        if kind == lib.TWOFA_ACTION_LOAD:
            found = await _maybe_await(store.get(key))
            if found is None:
                return (lib.TWOFA_CALLBACK_OK, ffi.NULL, ffi.NULL, 0, 0)
            check_version("store.get", found[1])
            return (lib.TWOFA_CALLBACK_OK, ffi.NULL, ffi.from_buffer("uint8_t[]", found[0]), len(found[0]), found[1])
        if kind == lib.TWOFA_ACTION_WRITE:
            version = await _maybe_await(store.put(key, action["bytes"], expected or None))
            check_version("store.put", version)
            return (lib.TWOFA_CALLBACK_OK, ffi.NULL, version)
        await _maybe_await(store.delete(key, expected))
        return (lib.TWOFA_CALLBACK_OK, ffi.NULL)
    except StoreConflict as e:
        if kind == lib.TWOFA_ACTION_LOAD:  # only a write or a delete can conflict
            failures.append(e)
            return (CALLBACK_FAILED, _reason(e), ffi.NULL, 0, 0)
        rc: tuple[Any, ...] = (lib.TWOFA_CALLBACK_CONFLICT, ffi.NULL)
    except Exception as e:
        failures.append(e)
        rc = (CALLBACK_FAILED, _reason(e))
    if kind == lib.TWOFA_ACTION_LOAD:
        return (*rc, ffi.NULL, 0, 0)
    return (*rc, 0) if kind == lib.TWOFA_ACTION_WRITE else rc


async def check_store(store: AsyncStore | Store) -> list[str]:
    """Runs the core's store conformance suite against an async (or sync) store, with several
    store calls in flight at once, as concurrent app servers would make them. Returns the names
    of the checks passed; raises `twofa.Storage` naming the first failed check."""
    out = ffi.new("twofa_conformance **")
    call(lib.twofa_conformance_new, out)
    session = ffi.gc(out[0], lib.twofa_conformance_free)
    failures: list[BaseException] = []
    inflight: set[asyncio.Task[None]] = set()

    async def run(action_id: int, action: dict[str, Any]) -> None:
        answer = await _answer(store, action, failures)
        if _CONFORMANCE_FEEDS[action["kind"]](session, action_id, *answer) != lib.TWOFA_OK:
            raise Internal(_text(lib.twofa_last_error_message()))

    action = ffi.new("twofa_action *")
    action_id = ffi.new("uint64_t *")
    try:
        while True:
            call(lib.twofa_conformance_next, session, action, action_id)
            if action.kind == lib.TWOFA_ACTION_DONE:
                break
            if action.kind == lib.TWOFA_ACTION_WAIT:
                done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
                continue
            inflight.add(asyncio.ensure_future(run(int(action_id[0]), _copy(action))))
        return list(call_json(lib.twofa_conformance_finish, session)["passed"])
    except TwofaError as e:
        raise_with_cause(e, failures[-1] if failures else None)
        raise
    finally:
        for task in inflight:
            task.cancel()


__all__ = ["Admin", "AsyncEventHandler", "AsyncMailer", "Engine", "check_store"]
