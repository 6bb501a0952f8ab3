"""The results of the operations, as frozen dataclasses (the core's JSON outcomes, field for field)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

#: A kind of second factor.
MethodKind = Literal["totp", "email", "webauthn", "recovery"]
#: Advice for the Security tab, most important first.
Recommendation = Literal[
    "enable_two_factor",
    "add_second_method",
    "add_non_webauthn_method",
    "add_stronger_method",
    "generate_recovery_codes",
]
#: Problems the user should fix.
Warning = Literal["no_notice_address", "device_flagged"]
#: What an audit event reports.
EventKind = Literal[
    "method_added",
    "method_renamed",
    "method_removed",
    "login_succeeded",
    "login_failed",
    "locked_out",
    "replay_refused",
    "counter_regressed",
    "recovery_code_used",
    "recovery_codes_generated",
    "device_remembered",
    "remembered_devices_revoked",
    "contact_email_changed",
    "two_factor_required",
    "admin_reset",
    "user_exported",
    "user_imported",
    "user_deleted",
]

_Parsed = TypeVar("_Parsed")


def _optional(parse: Callable[[dict[str, Any]], _Parsed], value: dict[str, Any] | None) -> _Parsed | None:
    """A nullable JSON object, parsed (None for null)."""
    return None if value is None else parse(value)


@dataclass(frozen=True, slots=True)
class Notices:
    """Security notices an operation sent; a notice that fails never undoes the change."""

    sent: int
    #: ``"address: reason"`` for each notice that failed.
    failed: list[str] = field(default_factory=list)

    @staticmethod
    def from_json(j: dict[str, Any]) -> Notices:
        """From the JSON object."""
        return Notices(sent=j["sent"], failed=list(j["failed"]))


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """A confirmed method as the Security tab lists it."""

    id: str
    kind: MethodKind
    #: The friendly name (device name, email address, "Authenticator app").
    label: str
    #: Unix time it was confirmed.
    created: int
    #: Unix time of the last sign-in with it.
    last_used: int | None
    #: A WebAuthn device refused after a counter regression (possible clone).
    flagged: bool

    @staticmethod
    def from_json(j: dict[str, Any]) -> MethodInfo:
        """From the JSON object."""
        return MethodInfo(j["id"], j["kind"], j["label"], j["created"], j["last_used"], j["flagged"])


@dataclass(frozen=True, slots=True)
class PendingEnrollments:
    """Enrolments started but not confirmed."""

    totp: bool
    #: The address awaiting its code.
    email: str | None
    webauthn: bool


@dataclass(frozen=True, slots=True)
class RememberedDevice:
    """A remembered browser ("Don't ask again"), as the Security tab lists it (its token is
    never shown again)."""

    #: Stable id, for ``revoke_remembered_device``.
    id: str
    #: The kind of second factor passed when it was remembered.
    method: MethodKind
    #: Unix time it was remembered.
    created: int
    #: Unix time it stops working.
    expires_at: int
    #: Unix time of the last sign-in it allowed.
    last_used: int | None

    @staticmethod
    def from_json(j: dict[str, Any]) -> RememberedDevice:
        """From the JSON object."""
        return RememberedDevice(j["id"], j["method"], j["created"], j["expires_at"], j["last_used"])


@dataclass(frozen=True, slots=True)
class ResetInfo:
    """Who reset the user's second factors, when and why."""

    #: The administrator.
    actor: str
    #: The reason given.
    reason: str
    #: Unix time of the reset.
    at: int


@dataclass(frozen=True, slots=True)
class SecurityStatus:
    """What the Security tab shows."""

    methods: list[MethodInfo]
    recovery_codes_left: int
    #: Whether policy requires 2FA (the account has created orders).
    two_factor_required: bool
    #: Whether the user meets the policy.
    compliant: bool
    recommendations: list[Recommendation]
    warnings: list[Warning]
    #: The address notices go to, if set.
    contact_email: str | None
    pending: PendingEnrollments
    #: Unix time until which code attempts are refused.
    locked_until: int | None
    #: 2FA is required but not set up: until this Unix time the user may still sign in without
    #: it (the grace period); from then on sign-in answers ``enrollment_required``.
    enrollment_deadline: int | None
    #: Browsers that skip the second factor, oldest first.
    remembered_devices: list[RememberedDevice]
    #: The last administrator reset, if any.
    last_reset: ResetInfo | None

    @staticmethod
    def from_json(j: dict[str, Any]) -> SecurityStatus:
        """From the JSON object."""
        p = j["pending"]
        reset = j["last_reset"]
        return SecurityStatus(
            methods=[MethodInfo.from_json(m) for m in j["methods"]],
            recovery_codes_left=j["recovery_codes_left"],
            two_factor_required=j["two_factor_required"],
            compliant=j["compliant"],
            recommendations=list(j["recommendations"]),
            warnings=list(j["warnings"]),
            contact_email=j["contact_email"],
            pending=PendingEnrollments(p["totp"], p["email"], p["webauthn"]),
            locked_until=j["locked_until"],
            enrollment_deadline=j["enrollment_deadline"],
            remembered_devices=[RememberedDevice.from_json(d) for d in j["remembered_devices"]],
            last_reset=None if reset is None else ResetInfo(reset["actor"], reset["reason"], reset["at"]),
        )


@dataclass(frozen=True, slots=True)
class TotpSetup:
    """A new authenticator-app enrolment, shown once until confirmed."""

    #: The secret in base32, for manual entry.
    secret: str = field(repr=False)
    #: The ``otpauth://totp/...`` URI.
    uri: str = field(repr=False)
    #: The URI as an SVG QR code.
    qr_svg: str = field(repr=False)
    #: Unix time at which the pending enrolment lapses.
    expires_at: int

    @staticmethod
    def from_json(j: dict[str, Any]) -> TotpSetup:
        """From the JSON object."""
        return TotpSetup(j["secret"], j["uri"], j["qr_svg"], j["expires_at"])


@dataclass(frozen=True, slots=True)
class StepUpToken:
    """Proof of a recent second factor, passed to operations that change methods."""

    token: str = field(repr=False)
    #: Unix time at which it stops working.
    expires_at: int

    @staticmethod
    def from_json(j: dict[str, Any]) -> StepUpToken:
        """From the JSON object."""
        return StepUpToken(j["token"], j["expires_at"])


@dataclass(frozen=True, slots=True)
class MethodAdded:
    """A method was added."""

    method: MethodInfo
    #: A step-up token when this was the user's first method.
    step_up: StepUpToken | None
    notices: Notices

    @staticmethod
    def from_json(j: dict[str, Any]) -> MethodAdded:
        """From the JSON object."""
        step_up = _optional(StepUpToken.from_json, j["step_up"])
        return MethodAdded(MethodInfo.from_json(j["method"]), step_up, Notices.from_json(j["notices"]))


@dataclass(frozen=True, slots=True)
class CodeSent:
    """A one-time code was delivered."""

    #: Where it went (masked at sign-in: ``j***@example.com``).
    sent_to: list[str]
    #: Unix time at which the code expires.
    expires_at: int
    #: Unix time from which another code may be requested.
    resend_after: int

    @staticmethod
    def from_json(j: dict[str, Any]) -> CodeSent:
        """From the JSON object."""
        return CodeSent(list(j["sent_to"]), j["expires_at"], j["resend_after"])


@dataclass(frozen=True, slots=True)
class WebauthnRegistration:
    """Options for ``navigator.credentials.create``."""

    #: PublicKeyCredentialCreationOptions JSON (``{"publicKey": {...}}``), base64url fields.
    options_json: str
    #: Unix time at which the pending registration lapses.
    expires_at: int

    @property
    def options(self) -> dict[str, Any]:
        """The options as a dict."""
        return cast(dict[str, Any], json.loads(self.options_json))

    @staticmethod
    def from_json(j: dict[str, Any]) -> WebauthnRegistration:
        """From the JSON object."""
        return WebauthnRegistration(j["options_json"], j["expires_at"])


@dataclass(frozen=True, slots=True)
class RecoveryCodes:
    """A fresh set of recovery codes, shown once."""

    codes: list[str] = field(repr=False)
    notices: Notices

    @staticmethod
    def from_json(j: dict[str, Any]) -> RecoveryCodes:
        """From the JSON object."""
        return RecoveryCodes(list(j["codes"]), Notices.from_json(j["notices"]))


@dataclass(frozen=True, slots=True)
class LoginChallenge:
    """A sign-in challenge."""

    #: Pass to ``login_verify``; None when no second factor is needed or possible.
    challenge_id: str | None
    #: Whether the user must pass a second factor now.
    second_factor_required: bool
    #: Policy demands 2FA the user has not set up: send them to the Security tab first.
    enrollment_required: bool
    #: The kinds the user can use.
    methods: list[MethodKind]
    #: PublicKeyCredentialRequestOptions JSON when a WebAuthn device is registered.
    webauthn_options: str | None
    #: Unix time at which the challenge lapses.
    expires_at: int | None
    #: 2FA is required but not set up and the grace period runs until this Unix time (sign-in
    #: goes on without a second factor until then; show the deadline).
    enrollment_deadline: int | None
    #: The id of the remembered device whose token let this sign-in skip the second factor.
    remembered_device: str | None

    @property
    def webauthn_options_dict(self) -> dict[str, Any] | None:
        """`webauthn_options` as a dict, if any."""
        if self.webauthn_options is None:
            return None
        return cast(dict[str, Any], json.loads(self.webauthn_options))

    @staticmethod
    def from_json(j: dict[str, Any]) -> LoginChallenge:
        """From the JSON object."""
        return LoginChallenge(
            j["challenge_id"],
            j["second_factor_required"],
            j["enrollment_required"],
            list(j["methods"]),
            j["webauthn_options"],
            j["expires_at"],
            j["enrollment_deadline"],
            j["remembered_device"],
        )


@dataclass(frozen=True, slots=True)
class DeviceToken:
    """A device token ("Don't ask again"), shown once: keep it on this browser only (an
    HttpOnly, Secure cookie) and pass it to ``login_begin``."""

    #: The opaque token.
    token: str = field(repr=False)
    #: The remembered device's id (as ``security_status`` lists it).
    device_id: str
    #: Unix time at which it stops working.
    expires_at: int

    @staticmethod
    def from_json(j: dict[str, Any]) -> DeviceToken:
        """From the JSON object."""
        return DeviceToken(j["token"], j["device_id"], j["expires_at"])


@dataclass(frozen=True, slots=True)
class LoginSuccess:
    """A second factor was verified."""

    #: The kind of factor used.
    method: MethodKind
    #: The method used (None for recovery codes).
    method_id: str | None
    #: Proof of a recent second factor, for management operations.
    step_up: StepUpToken
    #: Recovery codes left, after a recovery code was used.
    recovery_codes_left: int | None
    #: The device token, when ``remember_device`` was asked (and the config enables it).
    device_token: DeviceToken | None
    notices: Notices

    @staticmethod
    def from_json(j: dict[str, Any]) -> LoginSuccess:
        """From the JSON object."""
        return LoginSuccess(
            j["method"],
            j["method_id"],
            StepUpToken.from_json(j["step_up"]),
            j["recovery_codes_left"],
            _optional(DeviceToken.from_json, j["device_token"]),
            Notices.from_json(j["notices"]),
        )


@dataclass(frozen=True, slots=True)
class ResetDone:
    """An administrator reset the user's second factors."""

    #: How many confirmed methods were removed.
    methods_removed: int
    #: The notices telling the user (at every known address).
    notices: Notices

    @staticmethod
    def from_json(j: dict[str, Any]) -> ResetDone:
        """From the JSON object."""
        return ResetDone(j["methods_removed"], Notices.from_json(j["notices"]))


@dataclass(frozen=True, slots=True)
class UserExport:
    """A user's second factors, exported as a sealed, versioned document (docs/export.md)."""

    #: The sealed document (JSON text), for ``import_user`` with the same key.
    document: str = field(repr=False)

    @staticmethod
    def from_json(j: dict[str, Any]) -> UserExport:
        """From the JSON object."""
        return UserExport(j["document"])


@dataclass(frozen=True, slots=True)
class UserImported:
    """What an import restored."""

    #: The methods the user now has.
    methods: list[MethodInfo]
    #: Methods of the document that were not imported, with the reason.
    skipped: list[str]

    @staticmethod
    def from_json(j: dict[str, Any]) -> UserImported:
        """From the JSON object."""
        return UserImported([MethodInfo.from_json(m) for m in j["methods"]], list(j["skipped"]))


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """An audit event, delivered to the engine's ``on_event`` handler after the change it
    reports has committed. It never carries a secret, code or token."""

    #: What happened.
    kind: EventKind
    #: The host's user id.
    user: str
    #: Unix time.
    at: int
    #: The kind of method concerned, if one.
    method: MethodKind | None
    #: The method (or remembered device) concerned, if one.
    method_id: str | None
    #: Why, or a detail (an error name, a count, an administrator's reason).
    reason: str | None
    #: The administrator who acted, for admin operations that name one.
    actor: str | None

    @staticmethod
    def from_json(j: dict[str, Any]) -> SecurityEvent:
        """From the JSON object."""
        return SecurityEvent(j["kind"], j["user"], j["at"], j["method"], j["method_id"], j["reason"], j["actor"])


@dataclass(frozen=True, slots=True)
class Message:
    """An email twofa asks the host to deliver."""

    to: str
    subject: str
    #: The plain-text body.
    text: str = field(repr=False)
    #: The HTML body.
    html: str = field(repr=False)
