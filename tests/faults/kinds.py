"""The fault kinds of the harness (README, "Faults"): the calls each fires at, the error a
failed run answers, and the operations and keys the rules single out."""

from __future__ import annotations

#: The calls each kind counts and fires at (the verbs of the `calls` log).
DOMAINS: dict[str, tuple[str, ...]] = {
    "fail": ("get", "put", "delete"),
    "crash": ("get", "put", "delete"),
    "conflict": ("put", "delete"),
    "corrupt": ("get",),
    "stale": ("get",),
    "mail-fail": ("send",),
    "mail-crash": ("send",),
}
#: The kinds that fire at store calls.
STORE_KINDS = ("fail", "crash", "conflict", "corrupt", "stale")
#: Kinds a run can never absorb: a failed store call or an unreadable record is neither retried
#: nor ignored.
NEVER_ABSORBED = ("fail", "crash", "corrupt")
#: The error a failed run of each kind answers (None: the kind must always be absorbed);
#: `crash`/`mail-crash` are resolved with the adapter's `crash_error` (see `expected_error`).
KIND_ERRORS: dict[str, str | None] = {
    "fail": "storage",
    "crash": "storage",
    "conflict": "conflict",
    "corrupt": "storage",
    "stale": None,
    "mail-fail": "mail",
    "mail-crash": "mail",
}
#: Operations whose mails carry a one-time code, and how an undelivered one is tried.
CODE_OPS = ("email_enroll_begin", "contact_email_begin", "login_send_email_code")
#: The key prefix of the per-address budgets of enrolment and notice-address codes.
BUDGET_PREFIX = "email-address/"
#: The default of `email_code.resend_cooldown_secs`.
COOLDOWN = 60
#: The key prefix of the WebAuthn credential claims.
CLAIM_PREFIX = "webauthn-credential/"
#: The confirmation that takes the code of each code-sending operation but sign-in's.
CONFIRM_OPS = {"email_enroll_begin": "email_enroll_confirm", "contact_email_begin": "contact_email_confirm"}


def expected_error(kind: str, op: str, crash_error: str) -> str | None:
    """The error a failed run of `kind` in operation `op` must answer (None: it must not fail).
    A failed notice never fails its operation: only the code-sending operations answer `mail`
    (a crash that is a trap, the adapter's `crash_error`, ends any operation)."""
    if kind in ("crash", "mail-crash") and crash_error != "storage":
        return crash_error
    if kind.startswith("mail-") and op not in CODE_OPS:
        return None
    return KIND_ERRORS[kind]
