"""The results of the operations, as frozen dataclasses (the core's JSON outcomes, field for field)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, cast

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

    @staticmethod
    def from_json(j: dict[str, Any]) -> SecurityStatus:
        """From the JSON object."""
        p = j["pending"]
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
        step_up = j["step_up"]
        return MethodAdded(
            MethodInfo.from_json(j["method"]),
            None if step_up is None else StepUpToken.from_json(step_up),
            Notices.from_json(j["notices"]),
        )


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
        )


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
    notices: Notices

    @staticmethod
    def from_json(j: dict[str, Any]) -> LoginSuccess:
        """From the JSON object."""
        return LoginSuccess(
            j["method"],
            j["method_id"],
            StepUpToken.from_json(j["step_up"]),
            j["recovery_codes_left"],
            Notices.from_json(j["notices"]),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """An email twofa asks the host to deliver."""

    to: str
    subject: str
    #: The plain-text body.
    text: str = field(repr=False)
    #: The HTML body.
    html: str = field(repr=False)
