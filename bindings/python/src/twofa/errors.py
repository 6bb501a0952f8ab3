"""Errors: one class per stable libtwofa error code, all subclasses of `TwofaError`.

The codes come from the C header (`lib.TWOFA_*`) and the names from libtwofa itself, so they are
exactly those of every other twofa surface. A code this package does not know yet becomes a
plain `TwofaError` with that code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ._native import ffi, lib

_BY_CODE: dict[int, type[TwofaError]] = {}


def status_name(code: int) -> str:
    """The snake_case name of a status code, e.g. ``"locked_out"`` (``"unknown"`` if unknown)."""
    name: bytes = ffi.string(lib.twofa_status_name(code))
    return name.decode()


class TwofaError(Exception):
    """A failure reported by twofa.

    Attributes: ``code`` (the stable number), ``name`` (its snake_case name), ``message`` (human
    readable, never containing a secret or code), ``retry_after`` (seconds to wait, for
    `RateLimited` and `LockedOut`), ``callback`` (the host callback whose failure caused it, e.g.
    ``"store.put"``). An exception raised by a Python store, mailer or clock is the
    ``__cause__``.
    """

    code: int
    name: str
    #: The code of the subclass.
    CODE: ClassVar[int] = -1

    def __init__(
        self, message: str, *, code: int | None = None, retry_after: int | None = None, callback: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = self.CODE if code is None else code
        self.name = status_name(self.code)
        self.message = message
        self.retry_after = retry_after
        self.callback = callback

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _BY_CODE[cls.CODE] = cls

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code})"


class InvalidInput(TwofaError):
    """Malformed input: a bad argument, config or JSON, a code of the wrong shape."""

    CODE = lib.TWOFA_INVALID_INPUT


class InvalidCode(TwofaError):
    """A well-formed code that does not match (counted in the attempt budget)."""

    CODE = lib.TWOFA_INVALID_CODE


class Expired(TwofaError):
    """The code, challenge, enrolment or token expired: start again."""

    CODE = lib.TWOFA_EXPIRED


class Replayed(TwofaError):
    """The code was already used."""

    CODE = lib.TWOFA_REPLAYED


class RateLimited(TwofaError):
    """A new code was asked for too soon: wait ``retry_after`` seconds."""

    CODE = lib.TWOFA_RATE_LIMITED


class LockedOut(TwofaError):
    """Too many failed attempts: codes are not checked for ``retry_after`` seconds."""

    CODE = lib.TWOFA_LOCKED_OUT


class NotEnrolled(TwofaError):
    """The user has no such method or pending enrolment."""

    CODE = lib.TWOFA_NOT_ENROLLED


class StepUpRequired(TwofaError):
    """The operation changes second factors and needs a valid step-up token."""

    CODE = lib.TWOFA_STEP_UP_REQUIRED


class PolicyViolation(TwofaError):
    """Refused by policy (e.g. removing the last method of a user who must have 2FA)."""

    CODE = lib.TWOFA_POLICY_VIOLATION


class NotFound(TwofaError):
    """The challenge, method, user or code does not exist."""

    CODE = lib.TWOFA_NOT_FOUND


class WebauthnRejected(TwofaError):
    """The browser's WebAuthn response failed a check of the ceremony."""

    CODE = lib.TWOFA_WEBAUTHN_REJECTED


class Storage(TwofaError):
    """The store failed (or returned a record that cannot be read)."""

    CODE = lib.TWOFA_STORAGE


class Conflict(TwofaError):
    """Concurrent writers kept winning; nothing was decided: retry."""

    CODE = lib.TWOFA_CONFLICT


class Mail(TwofaError):
    """Delivering a one-time code failed; no code was made usable."""

    CODE = lib.TWOFA_MAIL


class UnsupportedSchema(TwofaError):
    """The stored record was written by a newer twofa."""

    CODE = lib.TWOFA_UNSUPPORTED_SCHEMA


class Panic(TwofaError):
    """A panic inside libtwofa was caught; read the state again."""

    CODE = lib.TWOFA_PANIC


class Internal(TwofaError):
    """A bug or impossible state (also: the clock callable failed)."""

    CODE = lib.TWOFA_INTERNAL


class Forbidden(TwofaError):
    """An admin operation on a handle whose config lacks ``"admin": true``."""

    CODE = lib.TWOFA_FORBIDDEN


class StoreConflict(Exception):
    """Raised by a store's ``put`` or ``delete`` when the compare-and-swap fails (the key exists,
    is missing, or has another version). Not a `TwofaError`: twofa reloads and decides again."""


def error_class(code: int) -> type[TwofaError]:
    """The exception class of a status code (`TwofaError` for unknown codes)."""
    return _BY_CODE.get(code, TwofaError)


def take_error(status: int, err: Any) -> TwofaError:
    """Turns a failed status and its `twofa_error *` (which it frees) into an exception."""
    if err == ffi.NULL:
        message: bytes = ffi.string(lib.twofa_last_error_message())
        return error_class(status)(message.decode(errors="replace"), code=status)
    try:
        callback = ffi.string(err.callback).decode() if err.callback != ffi.NULL else None
        return error_class(status)(
            ffi.string(err.message).decode(errors="replace"),
            code=status,
            retry_after=int(err.retry_after) or None,  # libtwofa sets it (non-zero) where it applies
            callback=callback,
        )
    finally:
        lib.twofa_error_free(err)
