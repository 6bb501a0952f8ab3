"""Every operation once: its arguments, the core's request JSON and the result it reads.

`Operations` and `AdminOperations` hold one builder per operation, which makes its `Call` (the
user, the core's request, how the JSON outcome becomes the result). The `Operation` decorator
makes each builder a method of the classes that inherit them, with the builder's signature
(``self`` first) and docstring: on `twofa.Engine` and `twofa.engine.Admin` (`SyncHandle`s, which
send the request through ``twofa_engine_run`` and ``twofa_admin_run``) it returns the result, on
`twofa.aio.Engine` and `twofa.aio.Admin` (`AsyncHandle`s, which drive the sans-IO
``twofa_operation_new`` and ``twofa_admin_operation_new``) it is a coroutine. The core parses,
validates and decides.
"""

from __future__ import annotations

import inspect
import json
import re
import types
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from ._ffi import text_arg
from .types import (
    CodeSent,
    LoginChallenge,
    LoginSuccess,
    MethodAdded,
    MethodInfo,
    Notices,
    RecoveryCodes,
    ResetDone,
    SecurityStatus,
    StepUpToken,
    TotpSetup,
    UserExport,
    UserImported,
    WebauthnRegistration,
)

#: A step-up token, as returned by a sign-in or a first method, or its text.
StepUp = StepUpToken | str | None
#: A JSON value given as text or as a mapping (serialised here): a browser's credential.
JsonArg = str | Mapping[str, Any]

#: JSON text of a request, compact (a request holds no cycle to check for).
_encode = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode

_Arguments = ParamSpec("_Arguments")
_Outcome = TypeVar("_Outcome")
_Result = TypeVar("_Result")


@dataclass(slots=True)
class Call(Generic[_Outcome]):
    """One operation for one user: the core's request (tagged by ``"op"``) and how its JSON
    outcome becomes the method's result."""

    user: str
    request: dict[str, Any]
    outcome: Callable[[Any], _Outcome]

    def request_json(self) -> bytes:
        """The request as the C string the core parses."""
        return _encode(self.request).encode()


class SyncHandle:
    """A handle whose operations return their results (`twofa.Engine`, `twofa.engine.Admin`)."""

    def _run(self, operation: Call[_Outcome]) -> _Outcome:
        """Runs one operation to its result."""
        raise NotImplementedError


class AsyncHandle:
    """A handle whose operations are coroutines (`twofa.aio.Engine`, `twofa.aio.Admin`)."""

    async def _run(self, operation: Call[_Outcome]) -> _Outcome:
        """Runs one operation to its result."""
        raise NotImplementedError


class Operation(Generic[_Arguments, _Outcome]):
    """One operation as a method: on a `SyncHandle` it returns the result, on an `AsyncHandle`
    it is a coroutine."""

    def __init__(self, build: Callable[_Arguments, Call[_Outcome]]) -> None:
        def run(handle: SyncHandle, /, *args: _Arguments.args, **kwargs: _Arguments.kwargs) -> _Outcome:
            return handle._run(build(*args, **kwargs))

        async def run_async(handle: AsyncHandle, /, *args: _Arguments.args, **kwargs: _Arguments.kwargs) -> _Outcome:
            return await handle._run(build(*args, **kwargs))

        self._method = _like(run, build)
        self._coroutine = _like(run_async, build)

    @overload
    def __get__(self, handle: None, owner: type[Any]) -> Callable[..., Any]: ...

    @overload
    def __get__(self, handle: AsyncHandle, owner: type[Any]) -> Callable[_Arguments, Coroutine[Any, Any, _Outcome]]: ...

    @overload
    def __get__(self, handle: SyncHandle, owner: type[Any]) -> Callable[_Arguments, _Outcome]: ...

    def __get__(self, handle: SyncHandle | AsyncHandle | None, owner: type[Any]) -> Callable[..., Any]:
        function: Callable[..., Any] = self._coroutine if issubclass(owner, AsyncHandle) else self._method
        return function if handle is None else types.MethodType(function, handle)


def _like(function: _Result, build: Callable[..., Call[Any]]) -> _Result:
    """`function` (``self`` then the builder's arguments) under the builder's name and
    docstring, with the signature and annotations `inspect`, `typing` and `help` show: the
    builder's after ``self``, returning what its `Call` yields."""
    signature = inspect.signature(build)
    found = re.fullmatch(r"Call\[(.+)\]", str(signature.return_annotation))
    outcome = found.group(1) if found else signature.return_annotation
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *signature.parameters.values()]
    target: Any = function
    target.__signature__ = signature.replace(parameters=parameters, return_annotation=outcome)
    target.__annotations__ = {**build.__annotations__, "return": outcome}
    target.__name__, target.__qualname__ = build.__name__, build.__qualname__
    target.__doc__ = build.__doc__
    return function


def _nothing(_outcome: Any) -> None:
    """The result of an operation that returns nothing."""


def _call(
    user: str,
    op: str,
    outcome: Callable[[Any], _Outcome],
    /,
    values: Mapping[str, Any] | None = None,
    **texts: StepUp,
) -> Call[_Outcome]:
    """The `Call` of `op` with its str arguments `texts` (a step-up token as its text; each
    checked as `twofa._ffi.text_arg` checks every str argument; None is null) and its other
    `values`."""
    checked = {name: text_arg(_text(value), name) for name, value in texts.items()}
    return Call(user, {"op": op, **checked, **(values or {})}, outcome)


def _text(value: StepUp) -> str | None:
    """A str argument, or a step-up token's text."""
    return value.token if isinstance(value, StepUpToken) else value


def _json_text(value: JsonArg) -> str:
    """A JSON argument as its text."""
    return value if isinstance(value, str) else json.dumps(value)


class Operations:
    """The operations of a user (and of sign-in): each builds its `Call` from its arguments,
    and `Operation` makes it a method of `twofa.Engine` and of `twofa.aio.Engine`."""

    @Operation
    def security_status(user: str) -> Call[SecurityStatus]:
        """The user's methods, policy state and advice."""
        return _call(user, "security_status", SecurityStatus.from_json)

    @Operation
    def set_contact_email(user: str, address: str, step_up: StepUp = None) -> Call[Notices]:
        """Sets where security notices go, for an address your application has already proved
        (else use `contact_email_begin`); both the previous and the new address are told. Once
        the user has a method (or recovery codes) it needs a `step_up` (else
        `twofa.StepUpRequired`)."""
        return _call(user, "set_contact_email", Notices.from_json, address=address, step_up=step_up)

    @Operation
    def contact_email_begin(user: str, address: str, step_up: StepUp = None) -> Call[CodeSent]:
        """Emails a code to a new notice address, to prove it; nothing changes until
        `contact_email_confirm`. Needs a `step_up` once the user has a method (or recovery
        codes)."""
        return _call(user, "contact_email_begin", CodeSent.from_json, address=address, step_up=step_up)

    @Operation
    def contact_email_confirm(user: str, code: str, step_up: StepUp = None) -> Call[Notices]:
        """Makes the address of `contact_email_begin` the notice address with the code mailed to
        it; both the previous and the new address are told."""
        return _call(user, "contact_email_confirm", Notices.from_json, code=code, step_up=step_up)

    @Operation
    def mark_order_created(user: str) -> Call[None]:
        """Records that the account has created orders: from now on 2FA is required (after the
        config's grace period, ``policy.grace_period_secs``)."""
        return _call(user, "mark_order_created", _nothing)

    @Operation
    def totp_enroll_begin(user: str, account_name: str, step_up: StepUp = None) -> Call[TotpSetup]:
        """Starts an authenticator-app enrolment: the secret, otpauth URI and QR code, shown
        once (until `totp_enroll_confirm` or ``expires_at``)."""
        return _call(user, "totp_enroll_begin", TotpSetup.from_json, account_name=account_name, step_up=step_up)

    @Operation
    def totp_enroll_confirm(user: str, code: str, step_up: StepUp = None) -> Call[MethodAdded]:
        """Confirms the pending authenticator app with a code from it. The user's first method
        also brings a step-up token."""
        return _call(user, "totp_enroll_confirm", MethodAdded.from_json, code=code, step_up=step_up)

    @Operation
    def email_enroll_begin(user: str, address: str, step_up: StepUp = None) -> Call[CodeSent]:
        """Emails a code to a new address: `twofa.RateLimited` within the resend cooldown or over
        the address's budget, `twofa.Mail` when it reached no one."""
        return _call(user, "email_enroll_begin", CodeSent.from_json, address=address, step_up=step_up)

    @Operation
    def email_enroll_confirm(user: str, code: str, step_up: StepUp = None) -> Call[MethodAdded]:
        """Confirms the pending address with the emailed code."""
        return _call(user, "email_enroll_confirm", MethodAdded.from_json, code=code, step_up=step_up)

    @Operation
    def webauthn_register_begin(user: str, friendly_name: str, step_up: StepUp = None) -> Call[WebauthnRegistration]:
        """Starts registering a WebAuthn device: options for ``navigator.credentials.create``."""
        return _call(
            user,
            "webauthn_register_begin",
            WebauthnRegistration.from_json,
            friendly_name=friendly_name,
            step_up=step_up,
        )

    @Operation
    def webauthn_register_finish(user: str, credential: JsonArg, step_up: StepUp = None) -> Call[MethodAdded]:
        """Finishes the registration with the browser's ``PublicKeyCredential.toJSON()``."""
        credential_json = text_arg(_json_text(credential), "credential")
        return _call(
            user,
            "webauthn_register_finish",
            MethodAdded.from_json,
            credential_json=credential_json,
            step_up=step_up,
        )

    @Operation
    def rename_method(user: str, method_id: str, label: str, step_up: StepUp = None) -> Call[MethodInfo]:
        """Renames a method."""
        return _call(user, "rename_method", MethodInfo.from_json, method_id=method_id, label=label, step_up=step_up)

    @Operation
    def remove_method(user: str, method_id: str, step_up: StepUp = None) -> Call[Notices]:
        """Removes a method, unless policy forbids it (`twofa.PolicyViolation`). Every step-up
        token of the user is revoked: further changes need a new sign-in."""
        return _call(user, "remove_method", Notices.from_json, method_id=method_id, step_up=step_up)

    @Operation
    def recovery_codes_generate(user: str, step_up: StepUp = None) -> Call[RecoveryCodes]:
        """Replaces the recovery codes with a fresh set, shown once."""
        return _call(user, "recovery_codes_generate", RecoveryCodes.from_json, step_up=step_up)

    @Operation
    def login_begin(user: str, device_token: str | None = None) -> Call[LoginChallenge]:
        """Starts a sign-in (after the host checked the password). A valid `device_token` (from
        a sign-in with ``remember_device``) skips the second factor, unless enrolment is
        required; an invalid, expired or revoked one is ignored."""
        return _call(user, "login_begin", LoginChallenge.from_json, device_token=device_token)

    @Operation
    def login_send_email_code(user: str, challenge: str) -> Call[CodeSent]:
        """Emails a fresh sign-in code for the challenge."""
        return _call(user, "login_send_email_code", CodeSent.from_json, challenge=challenge)

    @Operation
    def login_verify(
        user: str, challenge: str, kind: str, value: JsonArg, remember_device: bool = False
    ) -> Call[LoginSuccess]:
        """Verifies a second factor of `kind` ``"totp"``, ``"email"``, ``"recovery"`` (a code) or
        ``"webauthn"`` (the browser's ``PublicKeyCredential.toJSON()``, as text or dict). With
        `remember_device` (and ``remember_device.enabled`` in the config), the success carries a
        `DeviceToken` for this browser."""
        proof = {"kind": text_arg(kind, "kind"), "value": text_arg(_json_text(value), "value")}
        values = {"proof": proof, "remember_device": bool(remember_device)}
        return _call(user, "login_verify", LoginSuccess.from_json, values, challenge=challenge)

    @Operation
    def revoke_remembered_device(user: str, device_id: str) -> Call[None]:
        """Revokes one remembered device (its id from ``security_status``)."""
        return _call(user, "revoke_remembered_device", _nothing, device_id=device_id)

    @Operation
    def revoke_remembered_devices(user: str) -> Call[None]:
        """Revokes every remembered device of the user."""
        return _call(user, "revoke_remembered_devices", _nothing)


class AdminOperations:
    """The operations of the admin capability, as methods of `twofa.engine.Admin` and
    `twofa.aio.Admin` (kept off the user-facing engines)."""

    @Operation
    def totp_import(
        user: str,
        secret: str,
        *,
        algorithm: Literal["SHA1", "SHA256", "SHA512"] = "SHA1",
        digits: int = 6,
        period: int = 30,
    ) -> Call[MethodAdded]:
        """Imports a confirmed TOTP secret (base32), replacing any authenticator app of the user."""
        values = {"digits": digits, "period": period}
        return _call(user, "totp_import", MethodAdded.from_json, values, secret=secret, algorithm=algorithm)

    @Operation
    def delete_user(user: str) -> Call[None]:
        """Deletes everything twofa stores about the user (`twofa.NotFound` if nothing)."""
        return _call(user, "delete_user", _nothing)

    @Operation
    def reset_user(user: str, actor: str, reason: str) -> Call[ResetDone]:
        """Removes every method, recovery code and remembered device of a user who lost access,
        records who did it (`actor`, 1 to 128 characters) and why (`reason`, 1 to 512, mailed to
        the user), and tells the user at every known address. If 2FA is required, their next
        sign-in answers ``enrollment_required``."""
        return _call(user, "reset_user", ResetDone.from_json, actor=actor, reason=reason)

    @Operation
    def export_user(user: str, key: str) -> Call[UserExport]:
        """Exports the user's second factors as a document sealed with `key` (at least 32 bytes,
        standard base64), for `import_user` on another deployment."""
        return _call(user, "export_user", UserExport.from_json, key=key)

    @Operation
    def import_user(user: str, document: str | UserExport, key: str) -> Call[UserImported]:
        """Imports a document made by `export_user` for this same user id, with its key. A
        document that was altered or sealed with another key is `twofa.InvalidInput` and
        changes nothing."""
        text = document.document if isinstance(document, UserExport) else document
        return _call(user, "import_user", UserImported.from_json, document=text, key=key)
