"""The synchronous engine: one method per canonical operation, over libtwofa."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from ._ffi import c_str, call, call_json, json_arg, text_arg
from ._native import ffi, lib
from .errors import TwofaError
from .stores import Host, NativeStore, Store
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

#: The config: the JSON object the README documents, as text or as a mapping.
ConfigArg = str | Mapping[str, Any]
#: A step-up token, as returned by a sign-in or a first method, or its text.
StepUp = StepUpToken | str | None
#: A mailer: called with each message to deliver; raising means it was not delivered.
Mailer = Callable[[Message], object]
#: A clock: the current Unix time in seconds.
Clock = Callable[[], int | float]
#: An audit event handler: called with each `SecurityEvent` after the change it reports has
#: committed. It cannot fail the operation: an exception it raises is logged and ignored.
EventHandler = Callable[[SecurityEvent], object]


def config_json(config: ConfigArg) -> Any:
    """The config argument as a C string."""
    return json_arg(config, "config")


def step_up_text(step_up: StepUp) -> str | None:
    """The step-up argument as its text (None: none), checked like every str argument."""
    return text_arg(step_up.token if isinstance(step_up, StepUpToken) else step_up, "step_up")


def step_up_arg(step_up: StepUp) -> Any:
    """The step-up argument as a C string (None: NULL)."""
    return c_str(step_up_text(step_up), "step_up")


def credential_arg(value: str | Mapping[str, Any], name: str) -> Any:
    """A browser's `PublicKeyCredential.toJSON()` (text or dict), or any other proof value."""
    return json_arg(value, name)


class Engine:
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
        cfg = config_json(config)
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

    def _run(self, fn: Any, user: str, *args: Any) -> Any:
        """Runs one operation and returns its JSON outcome."""
        return self._host.run(call_json, fn, self._engine, c_str(user, "user"), *args)

    def _call(self, fn: Any, user: str, *args: Any) -> None:
        """Runs one operation that returns nothing."""
        self._host.run(call, fn, self._engine, c_str(user, "user"), *args)

    def security_status(self, user: str) -> SecurityStatus:
        """The user's methods, policy state and advice."""
        return SecurityStatus.from_json(self._run(lib.twofa_security_status, user))

    def _request(self, user: str, request: Mapping[str, Any]) -> Any:
        """Runs one operation given as the core's request JSON (`twofa_engine_run`) and returns
        its JSON outcome."""
        return self._run(lib.twofa_engine_run, user, json_arg(request, "request"))

    def set_contact_email(self, user: str, address: str, step_up: StepUp = None) -> Notices:
        """Sets where security notices go, for an address your application has already proved
        (else use `contact_email_begin`); both the previous and the new address are told. Once
        the user has a method (or recovery codes) it needs a `step_up` (else
        `twofa.StepUpRequired`)."""
        request = {"op": "set_contact_email", "address": text_arg(address, "address"), "step_up": step_up_text(step_up)}
        return Notices.from_json(self._request(user, request))

    def contact_email_begin(self, user: str, address: str, step_up: StepUp = None) -> CodeSent:
        """Emails a code to a new notice address, to prove it; nothing changes until
        `contact_email_confirm`. Needs a `step_up` once the user has a method (or recovery
        codes)."""
        request = {
            "op": "contact_email_begin",
            "address": text_arg(address, "address"),
            "step_up": step_up_text(step_up),
        }
        return CodeSent.from_json(self._request(user, request))

    def contact_email_confirm(self, user: str, code: str, step_up: StepUp = None) -> Notices:
        """Makes the address of `contact_email_begin` the notice address with the code mailed to
        it; both the previous and the new address are told."""
        request = {"op": "contact_email_confirm", "code": text_arg(code, "code"), "step_up": step_up_text(step_up)}
        return Notices.from_json(self._request(user, request))

    def mark_order_created(self, user: str) -> None:
        """Records that the account has created orders: from now on 2FA is required (after the
        config's grace period, ``policy.grace_period_secs``)."""
        self._call(lib.twofa_mark_order_created, user)

    def totp_enroll_begin(self, user: str, account_name: str, step_up: StepUp = None) -> TotpSetup:
        """Starts an authenticator-app enrolment: the secret, otpauth URI and QR code."""
        args = (c_str(account_name, "account_name"), step_up_arg(step_up))
        return TotpSetup.from_json(self._run(lib.twofa_totp_enroll_begin, user, *args))

    def totp_enroll_confirm(self, user: str, code: str, step_up: StepUp = None) -> MethodAdded:
        """Confirms the pending authenticator app with a code from it."""
        args = (c_str(code, "code"), step_up_arg(step_up))
        return MethodAdded.from_json(self._run(lib.twofa_totp_enroll_confirm, user, *args))

    def email_enroll_begin(self, user: str, address: str, step_up: StepUp = None) -> CodeSent:
        """Emails a code to a new address."""
        args = (c_str(address, "address"), step_up_arg(step_up))
        return CodeSent.from_json(self._run(lib.twofa_email_enroll_begin, user, *args))

    def email_enroll_confirm(self, user: str, code: str, step_up: StepUp = None) -> MethodAdded:
        """Confirms the pending address with the emailed code."""
        args = (c_str(code, "code"), step_up_arg(step_up))
        return MethodAdded.from_json(self._run(lib.twofa_email_enroll_confirm, user, *args))

    def webauthn_register_begin(self, user: str, friendly_name: str, step_up: StepUp = None) -> WebauthnRegistration:
        """Starts registering a WebAuthn device: options for ``navigator.credentials.create``."""
        args = (c_str(friendly_name, "friendly_name"), step_up_arg(step_up))
        return WebauthnRegistration.from_json(self._run(lib.twofa_webauthn_register_begin, user, *args))

    def webauthn_register_finish(
        self, user: str, credential: str | Mapping[str, Any], step_up: StepUp = None
    ) -> MethodAdded:
        """Finishes the registration with the browser's ``PublicKeyCredential.toJSON()``."""
        args = (credential_arg(credential, "credential"), step_up_arg(step_up))
        return MethodAdded.from_json(self._run(lib.twofa_webauthn_register_finish, user, *args))

    def rename_method(self, user: str, method_id: str, label: str, step_up: StepUp = None) -> MethodInfo:
        """Renames a method."""
        args = (c_str(method_id, "method_id"), c_str(label, "label"), step_up_arg(step_up))
        return MethodInfo.from_json(self._run(lib.twofa_rename_method, user, *args))

    def remove_method(self, user: str, method_id: str, step_up: StepUp = None) -> Notices:
        """Removes a method, unless policy forbids it (`twofa.PolicyViolation`). Every step-up
        token of the user is revoked: further changes need a new sign-in."""
        args = (c_str(method_id, "method_id"), step_up_arg(step_up))
        return Notices.from_json(self._run(lib.twofa_remove_method, user, *args))

    def recovery_codes_generate(self, user: str, step_up: StepUp = None) -> RecoveryCodes:
        """Replaces the recovery codes with a fresh set, shown once."""
        return RecoveryCodes.from_json(self._run(lib.twofa_recovery_codes_generate, user, step_up_arg(step_up)))

    def login_begin(self, user: str, device_token: str | None = None) -> LoginChallenge:
        """Starts a sign-in (after the host checked the password). A valid `device_token` (from
        a sign-in with ``remember_device``) skips the second factor, unless enrolment is
        required; an invalid, expired or revoked one is ignored."""
        token = c_str(device_token, "device_token")
        return LoginChallenge.from_json(self._run(lib.twofa_login_begin_remembered, user, token))

    def login_send_email_code(self, user: str, challenge: str) -> CodeSent:
        """Emails a fresh sign-in code for the challenge."""
        return CodeSent.from_json(self._run(lib.twofa_login_send_email_code, user, c_str(challenge, "challenge")))

    def login_verify(
        self, user: str, challenge: str, kind: str, value: str | Mapping[str, Any], remember_device: bool = False
    ) -> LoginSuccess:
        """Verifies a second factor of `kind` ``"totp"``, ``"email"``, ``"recovery"`` (a code) or
        ``"webauthn"`` (the browser's ``PublicKeyCredential.toJSON()``, as text or dict). With
        `remember_device` (and ``remember_device.enabled`` in the config), the success carries a
        `DeviceToken` for this browser."""
        args = (c_str(challenge, "challenge"), c_str(kind, "kind"), credential_arg(value, "value"))
        remember = bool(remember_device)
        return LoginSuccess.from_json(self._run(lib.twofa_login_verify_remembering, user, *args, remember))

    def revoke_remembered_device(self, user: str, device_id: str) -> None:
        """Revokes one remembered device (its id from ``security_status``)."""
        self._call(lib.twofa_revoke_remembered_device, user, c_str(device_id, "device_id"))

    def revoke_remembered_devices(self, user: str) -> None:
        """Revokes every remembered device of the user."""
        self._call(lib.twofa_revoke_remembered_devices, user)

    def admin(self) -> Admin:
        """The admin capability of this engine (same store, mail, clock and event handler).
        Needs ``"admin": true`` in the config (else `twofa.Forbidden`). Give it only to
        administrative code."""
        return Admin(self)


class Admin:
    """Administrative operations, kept off the user-facing `Engine`."""

    def __init__(self, engine: Engine) -> None:
        self._host = engine._host
        out = ffi.new("twofa_admin **")
        call(lib.twofa_admin_new, engine._engine, out)
        self._admin = ffi.gc(out[0], lib.twofa_admin_free)

    def _run(self, fn: Any, user: str, *args: Any) -> Any:
        """Runs one admin operation and returns its JSON outcome."""
        return self._host.run(call_json, fn, self._admin, c_str(user, "user"), *args)

    def totp_import(
        self,
        user: str,
        secret: str,
        *,
        algorithm: Literal["SHA1", "SHA256", "SHA512"] = "SHA1",
        digits: int = 6,
        period: int = 30,
    ) -> MethodAdded:
        """Imports a confirmed TOTP secret (base32), replacing any authenticator app of the user."""
        args = (c_str(secret, "secret"), c_str(algorithm, "algorithm"), digits, period)
        return MethodAdded.from_json(self._run(lib.twofa_admin_totp_import, user, *args))

    def delete_user(self, user: str) -> None:
        """Deletes everything twofa stores about the user (`twofa.NotFound` if nothing)."""
        self._host.run(call, lib.twofa_admin_delete_user, self._admin, c_str(user, "user"))

    def reset_user(self, user: str, actor: str, reason: str) -> ResetDone:
        """Removes every method, recovery code and remembered device of a user who lost access,
        records who did it (`actor`, 1 to 128 characters) and why (`reason`, 1 to 512, mailed to
        the user), and tells the user at every known address. If 2FA is required, their next
        sign-in answers ``enrollment_required``."""
        args = (c_str(actor, "actor"), c_str(reason, "reason"))
        return ResetDone.from_json(self._run(lib.twofa_admin_reset_user, user, *args))

    def export_user(self, user: str, key: str) -> UserExport:
        """Exports the user's second factors as a document sealed with `key` (at least 32 bytes,
        standard base64), for `import_user` on another deployment."""
        return UserExport.from_json(self._run(lib.twofa_admin_export_user, user, c_str(key, "key")))

    def import_user(self, user: str, document: str | UserExport, key: str) -> UserImported:
        """Imports a document made by `export_user` for this same user id, with its key. A
        document that was altered or sealed with another key is `twofa.InvalidInput` and
        changes nothing."""
        text = document.document if isinstance(document, UserExport) else document
        args = (c_str(text, "document"), c_str(key, "key"))
        return UserImported.from_json(self._run(lib.twofa_admin_import_user, user, *args))
