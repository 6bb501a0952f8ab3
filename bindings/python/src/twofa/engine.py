"""The synchronous engine: the operations of `twofa._operations` as methods, each run over
libtwofa with ``twofa_engine_run`` (``twofa_admin_run`` for the admin capability)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ._ffi import c_str, call, call_json, json_arg
from ._native import ffi, lib
from ._operations import AdminOperations, Call, Operations, SyncHandle
from ._operations import StepUp as StepUp
from .errors import TwofaError
from .stores import Host, NativeStore, Store
from .types import Message, SecurityEvent

#: The config: the JSON object the README documents, as text or as a mapping.
ConfigArg = str | Mapping[str, Any]
#: A mailer: called with each message to deliver; raising means it was not delivered.
Mailer = Callable[[Message], object]
#: A clock: the current Unix time in seconds.
Clock = Callable[[], int | float]
#: An audit event handler: called with each `SecurityEvent` after the change it reports has
#: committed. It cannot fail the operation: an exception it raises is logged and ignored.
EventHandler = Callable[[SecurityEvent], object]

_Outcome = TypeVar("_Outcome")


class Engine(SyncHandle, Operations):
    """A twofa engine: a validated config, a store, mail delivery and a clock.

    ``store=None`` opens the embedded SQLite store at the config's ``sqlite_path``; a
    `MemoryStore` or `SqliteStore` is used natively (and may be shared by several engines); any
    other object with ``get``/``put``/``delete`` (`Store`) is called back. ``mailer`` receives
    each `Message` (without one, every delivery fails); ``clock`` returns Unix seconds (default:
    the system clock); ``on_event`` receives each audit `SecurityEvent` (the host's security
    log), on the calling thread, after the change it reports has committed: it cannot fail the
    operation (an exception it raises is logged and ignored; a KeyboardInterrupt or SystemExit
    is raised once the operation returned). Safe to share between threads: calls release the
    GIL while in libtwofa.
    """

    def __init__(
        self,
        config: ConfigArg,
        *,
        store: Store | None = None,
        mailer: Mailer | None = None,
        clock: Clock | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        python_store = None if store is None or isinstance(store, NativeStore) else store
        self._host = Host(python_store, mailer, clock, on_event)
        self._store = store
        out = ffi.new("twofa_engine **")
        cfg = json_arg(config, "config")
        try:
            if store is None:
                call(lib.twofa_engine_new_sqlite, cfg, ffi.NULL, self._host.struct, out)
            elif isinstance(store, NativeStore):
                call(lib.twofa_engine_new_with_store, cfg, store._handle, self._host.struct, out)
            else:
                call(lib.twofa_engine_new, cfg, self._host.struct, out)
        except TwofaError as e:
            self._host.raise_error(e)
        self._engine = ffi.gc(out[0], lib.twofa_engine_free)

    def _run(self, operation: Call[_Outcome]) -> _Outcome:
        """Runs one operation (``twofa_engine_run``) and returns its result."""
        args = (self._engine, c_str(operation.user, "user"), operation.request_json())
        return operation.outcome(self._host.run(call_json, lib.twofa_engine_run, *args))

    def admin(self) -> Admin:
        """The admin capability of this engine (same store, mail, clock and event handler).
        Needs ``"admin": true`` in the config (else `twofa.Forbidden`). Give it only to
        administrative code."""
        return Admin(self)


class Admin(SyncHandle, AdminOperations):
    """Administrative operations, kept off the user-facing `Engine`."""

    def __init__(self, engine: Engine) -> None:
        self._host = engine._host
        out = ffi.new("twofa_admin **")
        call(lib.twofa_admin_new, engine._engine, out)
        self._admin = ffi.gc(out[0], lib.twofa_admin_free)

    def _run(self, operation: Call[_Outcome]) -> _Outcome:
        """Runs one admin operation (``twofa_admin_run``) and returns its result."""
        args = (self._admin, c_str(operation.user, "user"), operation.request_json())
        return operation.outcome(self._host.run(call_json, lib.twofa_admin_run, *args))
