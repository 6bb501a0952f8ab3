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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from ._ffi import c_str, call, call_json, raise_with_cause
from ._native import ffi, lib
from .engine import Clock, ConfigArg, StepUp
from .errors import Internal, InvalidInput, Mail, Storage, StoreConflict, TwofaError
from .stores import CALLBACK_FAILED, AsyncStore, NativeStore, SqliteStore, Store, check_version, deliver_event, log
from .types import (
    CodeSent,
    LoginChallenge,
    LoginSuccess,
    Message,
    MethodAdded,
    MethodInfo,
    Notices,
    RecoveryCodes,
    ResetDone,
    SecurityEvent,
    SecurityStatus,
    StepUpToken,
    TotpSetup,
    UserExport,
    UserImported,
    WebauthnRegistration,
)

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


def _step_up(step_up: StepUp) -> str | None:
    return step_up.token if isinstance(step_up, StepUpToken) else step_up


def _json_text(value: str | Mapping[str, Any]) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class Engine:
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
        config_text = _json_text(config)
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

    async def _run(self, user: str, request: dict[str, Any], admin: bool = False) -> Any:
        """Runs one operation to its end and returns its JSON outcome."""
        out = ffi.new("twofa_operation **")
        new = lib.twofa_admin_operation_new if admin else lib.twofa_operation_new
        now = int(self._clock())
        call(new, self._core, c_str(user, "user"), c_str(json.dumps(request), "request"), now, out)
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

    async def security_status(self, user: str) -> SecurityStatus:
        """The user's methods, policy state and advice."""
        return SecurityStatus.from_json(await self._run(user, {"op": "security_status"}))

    async def set_contact_email(self, user: str, address: str, step_up: StepUp = None) -> Notices:
        """Sets where security notices go, for an address your application has already proved
        (else use `contact_email_begin`); both the previous and the new address are told. Once
        the user has a method (or recovery codes) it needs a `step_up` (else
        `twofa.StepUpRequired`)."""
        request = {"op": "set_contact_email", "address": address, "step_up": _step_up(step_up)}
        return Notices.from_json(await self._run(user, request))

    async def contact_email_begin(self, user: str, address: str, step_up: StepUp = None) -> CodeSent:
        """Emails a code to a new notice address, to prove it; nothing changes until
        `contact_email_confirm`. Needs a `step_up` once the user has a method (or recovery
        codes)."""
        request = {"op": "contact_email_begin", "address": address, "step_up": _step_up(step_up)}
        return CodeSent.from_json(await self._run(user, request))

    async def contact_email_confirm(self, user: str, code: str, step_up: StepUp = None) -> Notices:
        """Makes the address of `contact_email_begin` the notice address with the code mailed to
        it; both the previous and the new address are told."""
        request = {"op": "contact_email_confirm", "code": code, "step_up": _step_up(step_up)}
        return Notices.from_json(await self._run(user, request))

    async def mark_order_created(self, user: str) -> None:
        """Records that the account has created orders: from now on 2FA is required."""
        await self._run(user, {"op": "mark_order_created"})

    async def totp_enroll_begin(self, user: str, account_name: str, step_up: StepUp = None) -> TotpSetup:
        """Starts an authenticator-app enrolment: the secret, otpauth URI and QR code."""
        request = {"op": "totp_enroll_begin", "account_name": account_name, "step_up": _step_up(step_up)}
        return TotpSetup.from_json(await self._run(user, request))

    async def totp_enroll_confirm(self, user: str, code: str, step_up: StepUp = None) -> MethodAdded:
        """Confirms the pending authenticator app with a code from it."""
        request = {"op": "totp_enroll_confirm", "code": code, "step_up": _step_up(step_up)}
        return MethodAdded.from_json(await self._run(user, request))

    async def email_enroll_begin(self, user: str, address: str, step_up: StepUp = None) -> CodeSent:
        """Emails a code to a new address."""
        request = {"op": "email_enroll_begin", "address": address, "step_up": _step_up(step_up)}
        return CodeSent.from_json(await self._run(user, request))

    async def email_enroll_confirm(self, user: str, code: str, step_up: StepUp = None) -> MethodAdded:
        """Confirms the pending address with the emailed code."""
        request = {"op": "email_enroll_confirm", "code": code, "step_up": _step_up(step_up)}
        return MethodAdded.from_json(await self._run(user, request))

    async def webauthn_register_begin(
        self, user: str, friendly_name: str, step_up: StepUp = None
    ) -> WebauthnRegistration:
        """Starts registering a WebAuthn device: options for ``navigator.credentials.create``."""
        request = {"op": "webauthn_register_begin", "friendly_name": friendly_name, "step_up": _step_up(step_up)}
        return WebauthnRegistration.from_json(await self._run(user, request))

    async def webauthn_register_finish(
        self, user: str, credential: str | Mapping[str, Any], step_up: StepUp = None
    ) -> MethodAdded:
        """Finishes the registration with the browser's ``PublicKeyCredential.toJSON()``."""
        request = {
            "op": "webauthn_register_finish",
            "credential_json": _json_text(credential),
            "step_up": _step_up(step_up),
        }
        return MethodAdded.from_json(await self._run(user, request))

    async def rename_method(self, user: str, method_id: str, label: str, step_up: StepUp = None) -> MethodInfo:
        """Renames a method."""
        request = {"op": "rename_method", "method_id": method_id, "label": label, "step_up": _step_up(step_up)}
        return MethodInfo.from_json(await self._run(user, request))

    async def remove_method(self, user: str, method_id: str, step_up: StepUp = None) -> Notices:
        """Removes a method, unless policy forbids it (`twofa.PolicyViolation`). Every step-up
        token of the user is revoked: further changes need a new sign-in."""
        request = {"op": "remove_method", "method_id": method_id, "step_up": _step_up(step_up)}
        return Notices.from_json(await self._run(user, request))

    async def recovery_codes_generate(self, user: str, step_up: StepUp = None) -> RecoveryCodes:
        """Replaces the recovery codes with a fresh set, shown once."""
        request = {"op": "recovery_codes_generate", "step_up": _step_up(step_up)}
        return RecoveryCodes.from_json(await self._run(user, request))

    async def login_begin(self, user: str, device_token: str | None = None) -> LoginChallenge:
        """Starts a sign-in (after the host checked the password). A valid `device_token` (from
        a sign-in with ``remember_device``) skips the second factor, unless enrolment is
        required; an invalid, expired or revoked one is ignored."""
        request = {"op": "login_begin", "device_token": device_token}
        return LoginChallenge.from_json(await self._run(user, request))

    async def login_send_email_code(self, user: str, challenge: str) -> CodeSent:
        """Emails a fresh sign-in code for the challenge."""
        return CodeSent.from_json(await self._run(user, {"op": "login_send_email_code", "challenge": challenge}))

    async def login_verify(
        self, user: str, challenge: str, kind: str, value: str | Mapping[str, Any], remember_device: bool = False
    ) -> LoginSuccess:
        """Verifies a second factor of `kind` ``"totp"``, ``"email"``, ``"recovery"`` (a code) or
        ``"webauthn"`` (the browser's ``PublicKeyCredential.toJSON()``, as text or dict). With
        `remember_device` (and ``remember_device.enabled`` in the config), the success carries a
        `DeviceToken` for this browser."""
        request = {
            "op": "login_verify",
            "challenge": challenge,
            "proof": {"kind": kind, "value": _json_text(value)},
            "remember_device": bool(remember_device),
        }
        return LoginSuccess.from_json(await self._run(user, request))

    async def revoke_remembered_device(self, user: str, device_id: str) -> None:
        """Revokes one remembered device (its id from ``security_status``)."""
        await self._run(user, {"op": "revoke_remembered_device", "device_id": device_id})

    async def revoke_remembered_devices(self, user: str) -> None:
        """Revokes every remembered device of the user."""
        await self._run(user, {"op": "revoke_remembered_devices"})

    def admin(self) -> Admin:
        """The admin capability of this engine. Give it only to administrative code. Its
        operations fail with `twofa.Forbidden` unless the config has ``"admin": true``."""
        return Admin(self)


class Admin:
    """Administrative operations as coroutines, kept off the user-facing `Engine`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def totp_import(
        self,
        user: str,
        secret: str,
        *,
        algorithm: Literal["SHA1", "SHA256", "SHA512"] = "SHA1",
        digits: int = 6,
        period: int = 30,
    ) -> MethodAdded:
        """Imports a confirmed TOTP secret (base32), replacing any authenticator app of the user."""
        request = {"op": "totp_import", "secret": secret, "algorithm": algorithm, "digits": digits, "period": period}
        return MethodAdded.from_json(await self._engine._run(user, request, admin=True))

    async def delete_user(self, user: str) -> None:
        """Deletes everything twofa stores about the user (`twofa.NotFound` if nothing)."""
        await self._engine._run(user, {"op": "delete_user"}, admin=True)

    async def reset_user(self, user: str, actor: str, reason: str) -> ResetDone:
        """Removes every method, recovery code and remembered device of a user who lost access,
        records who did it (`actor`) and why (`reason`, mailed to the user), and tells the user
        at every known address."""
        request = {"op": "reset_user", "actor": actor, "reason": reason}
        return ResetDone.from_json(await self._engine._run(user, request, admin=True))

    async def export_user(self, user: str, key: str) -> UserExport:
        """Exports the user's second factors as a document sealed with `key` (at least 32 bytes,
        standard base64)."""
        return UserExport.from_json(await self._engine._run(user, {"op": "export_user", "key": key}, admin=True))

    async def import_user(self, user: str, document: str | UserExport, key: str) -> UserImported:
        """Imports a document made by `export_user` for this same user id, with its key (an
        altered document is `twofa.InvalidInput` and changes nothing)."""
        text = document.document if isinstance(document, UserExport) else document
        request = {"op": "import_user", "document": text, "key": key}
        return UserImported.from_json(await self._engine._run(user, request, admin=True))


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
