"""The runner of the shared scenarios (tests/scenarios/*.json, format in its README.md) for the
Python engines: it only translates each step into a call of `twofa.Engine` or
`twofa.aio.Engine`; the expectations are in the JSON.

The pieces that do not need an engine (`Values`: value expressions; `verify`: expectations;
`call_op`: the op → method mapping) are also used by the fault-injection harness and its Python
adapter (tests/faults)."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pyotp

import twofa

from softauthn import SoftAuthenticator

SCENARIOS = Path(__file__).resolve().parents[3] / "tests" / "scenarios"
DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


class ScenarioFailed(AssertionError):
    """A step did not go as the scenario says."""


def load(name: str) -> dict[str, Any]:
    """A scenario file by name (``"security_tab"``)."""
    scenario: dict[str, Any] = json.loads((SCENARIOS / f"{name}.json").read_text())
    return scenario


def totp_code(secret: str, t: int, algorithm: str = "SHA1", digits: int = 6, period: int = 30) -> str:
    """The TOTP code of a base32 secret at `t`, by pyotp (independent of twofa)."""
    return pyotp.TOTP(secret, digits=digits, digest=DIGESTS[algorithm], interval=period).at(t)


def wrong_totp(secret: str, t: int) -> str:
    """A well-formed code that is none of the secret's codes within two steps of `t`."""
    valid = {totp_code(secret, t + 30 * k) for k in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)


class Mailed(Protocol):
    """A delivered message, as far as the values need it (`twofa.Message` is one)."""

    @property
    def to(self) -> str: ...

    @property
    def text(self) -> str: ...


class Timed(Protocol):
    """A clock the runner reads (and sets) in Unix seconds (`conftest.Clock` is one)."""

    t: int


def mailed_code(outbox: Sequence[Mailed], address: str) -> str:
    """The first run of 6+ digits in the last message to `address`."""
    for message in reversed(outbox):
        if message.to == address:
            found = re.search(r"\d{6,}", message.text)
            if found is None:
                raise ScenarioFailed(f"no code in the mail to {address}")
            return found.group()
    raise ScenarioFailed(f"no mail to {address}")


def lookup(value: Any, path: str) -> Any:
    """The value at a dotted path (field names, array indexes, ``length``)."""
    for segment in path.split(".") if path else []:
        if segment == "length" and isinstance(value, (list, str)):
            value = len(value)
        elif isinstance(value, list):
            value = value[int(segment)]
        elif isinstance(value, dict) and segment in value:
            value = value[segment]
        else:
            raise ScenarioFailed(f"no {segment!r} in {value!r} (path {path!r})")
    return value


def matches(value: Any, expected: Any) -> bool:
    """Whether `value` meets `expected` (a JSON value or a matcher object)."""
    if isinstance(expected, dict) and len(expected) == 1:
        ((matcher, arg),) = expected.items()
        if matcher == "gt":
            return isinstance(value, (int, float)) and not isinstance(value, bool) and value > arg
        if matcher == "prefix":
            return isinstance(value, str) and value.startswith(arg)
        if matcher == "contains":
            return isinstance(value, (str, list)) and arg in value
        if matcher == "not":
            return not matches(value, arg)
    return bool(value == expected)


def as_json(outcome: Any) -> Any:
    """An outcome as the core's JSON (dataclasses field for field; nothing is `{}`)."""
    if outcome is None:
        return {}
    return json.loads(json.dumps(dataclasses.asdict(outcome)))


def call_op(engine: Any, op: str, user: str, a: dict[str, Any]) -> Any:
    """Calls the engine method of a canonical operation (``admin.`` prefixed for the admin
    handle) with its arguments by their canonical names; returns what the method returns."""
    e = engine
    step_up = a.get("step_up")
    calls = {
        "security_status": lambda: e.security_status(user),
        "set_contact_email": lambda: e.set_contact_email(user, a["address"], step_up),
        "contact_email_begin": lambda: e.contact_email_begin(user, a["address"], step_up),
        "contact_email_confirm": lambda: e.contact_email_confirm(user, a["code"], step_up),
        "mark_order_created": lambda: e.mark_order_created(user),
        "totp_enroll_begin": lambda: e.totp_enroll_begin(user, a["account_name"], step_up),
        "totp_enroll_confirm": lambda: e.totp_enroll_confirm(user, a["code"], step_up),
        "email_enroll_begin": lambda: e.email_enroll_begin(user, a["address"], step_up),
        "email_enroll_confirm": lambda: e.email_enroll_confirm(user, a["code"], step_up),
        "webauthn_register_begin": lambda: e.webauthn_register_begin(user, a["friendly_name"], step_up),
        "webauthn_register_finish": lambda: e.webauthn_register_finish(user, a["credential_json"], step_up),
        "rename_method": lambda: e.rename_method(user, a["method_id"], a["label"], step_up),
        "remove_method": lambda: e.remove_method(user, a["method_id"], step_up),
        "recovery_codes_generate": lambda: e.recovery_codes_generate(user, step_up),
        "login_begin": lambda: e.login_begin(user, a.get("device_token")),
        "login_send_email_code": lambda: e.login_send_email_code(user, a["challenge"]),
        "login_verify": lambda: e.login_verify(
            user, a["challenge"], a["proof"]["kind"], a["proof"]["value"], a.get("remember_device", False)
        ),
        "revoke_remembered_device": lambda: e.revoke_remembered_device(user, a["device_id"]),
        "revoke_remembered_devices": lambda: e.revoke_remembered_devices(user),
        "admin.totp_import": lambda: e.admin().totp_import(
            user, a["secret"], algorithm=a["algorithm"], digits=a["digits"], period=a["period"]
        ),
        "admin.delete_user": lambda: e.admin().delete_user(user),
        "admin.reset_user": lambda: e.admin().reset_user(user, a["actor"], a["reason"]),
        "admin.export_user": lambda: e.admin().export_user(user, a["key"]),
        "admin.import_user": lambda: e.admin().import_user(user, a["document"], a["key"]),
    }
    if op not in calls:
        raise ScenarioFailed(f"unknown op {op!r}")
    return calls[op]()


#: The outcome fields whose strings are secrets (README, "Events").
SECRET_FIELDS = frozenset({"secret", "uri", "token", "codes", "document"})


def outcome_secrets(subject: Any, under_secret: bool = False) -> list[str]:
    """Every string of an outcome's JSON under a field named in `SECRET_FIELDS`."""
    if isinstance(subject, str):
        return [subject] if under_secret else []
    if isinstance(subject, list):
        return [found for item in subject for found in outcome_secrets(item, under_secret)]
    if isinstance(subject, dict):
        return [
            found
            for name, value in subject.items()
            for found in outcome_secrets(value, under_secret or name in SECRET_FIELDS)
        ]
    return []


class Events(list[dict[str, Any]]):
    """An event handler (for `twofa.Engine` and `twofa.aio.Engine`) that records each event as
    the core's JSON."""

    def __call__(self, event: twofa.SecurityEvent) -> None:
        self.append(as_json(event))


def verify_events(where: str, expected: list[dict[str, Any]], emitted: Sequence[dict[str, Any]]) -> None:
    """Checks the events a step emitted against its `events`: as many, each listed field
    matching (values may be matchers)."""
    if len(emitted) != len(expected):
        raise ScenarioFailed(f"{where}: {len(emitted)} events emitted, expected {len(expected)}: {list(emitted)!r}")
    for index, (event, fields) in enumerate(zip(emitted, expected, strict=True)):
        for name, want in fields.items():
            if name not in event or not matches(event[name], want):
                raise ScenarioFailed(f"{where}: event {index} has {name}={event.get(name)!r}, expected {want!r}")


def verify_no_secret_in_events(events: Sequence[dict[str, Any]], secrets: set[str]) -> None:
    """Checks that no string of a recorded event contains a secret the run handled (numbers are
    not searched: a 6-digit code may well occur inside a timestamp)."""
    for event in events:
        for text in (v for v in event.values() if isinstance(v, str)):
            if any(secret and secret in text for secret in secrets):
                raise ScenarioFailed(f"event {json.dumps(event)} contains a secret the run handled")


def verify(where: str, step: dict[str, Any], got: str, subject: Any) -> None:
    """Checks one run of an operation step against its `expect` and `check`: `got` is ``"ok"``
    or the error name, `subject` the outcome JSON (or ``{name, code, retry_after}``)."""
    expect = step.get("expect", "ok")
    if got != expect:
        raise ScenarioFailed(f"{where}: expected {expect}, got {got}")
    for path, expected in step.get("check", {}).items():
        actual = lookup(subject, path)
        if not matches(actual, expected):
            raise ScenarioFailed(f"{where}: {path} is {actual!r}, expected {expected!r}")


class Values:
    """The state value expressions read: saved variables, the software authenticators, the
    delivered messages and the clock; evaluates the expressions of a step's arguments."""

    def __init__(self, clock: Timed, outbox: Sequence[Mailed], origin: str) -> None:
        self.clock = clock
        self.outbox = outbox
        self.origin = origin
        self.vars: dict[str, Any] = {}
        self.authenticators: dict[str, SoftAuthenticator] = {}
        #: The codes computed or read from mail so far (secrets no event may contain).
        self.secrets: set[str] = set()

    def value(self, v: Any) -> Any:
        """Evaluates a value expression."""
        if isinstance(v, str) and v.startswith("$"):
            name, _, path = v[1:].partition(".")
            if name not in self.vars:
                raise ScenarioFailed(f"variable {name!r} was never saved")
            return lookup(self.vars[name], path)
        if isinstance(v, dict):
            now = self.clock.t
            if "totp" in v:
                extra = {k: v[k] for k in ("algorithm", "digits", "period") if k in v}
                code = totp_code(self.value(v["totp"]), now, **extra)
                self.secrets.add(code)
                return code
            if "wrong_totp" in v:
                return wrong_totp(self.value(v["wrong_totp"]), now)
            if "mailed_code" in v:
                code = mailed_code(self.outbox, v["mailed_code"])
                self.secrets.add(code)
                return code
            if "wrong_mailed_code" in v:
                code = mailed_code(self.outbox, v["wrong_mailed_code"])
                return "".join(str((int(d) + 1) % 10) for d in code)
            if "webauthn_create" in v or "webauthn_get" in v:
                key = self.authenticators.setdefault(v["authenticator"], SoftAuthenticator(self.origin))
                if "webauthn_create" in v:
                    same = bool(v.get("same_credential", False))
                    return json.dumps(key.register(self.value(v["webauthn_create"]), same_credential=same))
                return json.dumps(key.sign_in(self.value(v["webauthn_get"]), sign_count=v.get("sign_count")))
            return {k: self.value(x) for k, x in v.items()}
        return v

    def save(self, step: dict[str, Any], subject: Any) -> None:
        """Keeps the step's `save` values of an outcome."""
        for name, path in step.get("save", {}).items():
            self.vars[name] = lookup(subject, path)


class Runner(Values):
    """Runs one scenario against an engine whose clock, outbox and event handler (`events`) the
    runner controls; `without_admin` is an engine over the same store, mailer, clock and
    handler whose config has ``"admin": false``, for the steps marked ``without_admin``."""

    def __init__(
        self,
        engine: Any,
        clock: Any,
        outbox: list[twofa.Message],
        origin: str,
        events: Events,
        without_admin: Any,
    ) -> None:
        super().__init__(clock, outbox, origin)
        self.engine = engine
        self.events = events
        self.without_admin = without_admin
        self.transcript: list[str] = []

    def call(self, op: str, user: str, a: dict[str, Any], without_admin: bool = False) -> Any:
        """Calls the engine method of a canonical operation with the step's arguments."""
        return call_op(self.without_admin if without_admin else self.engine, op, user, a)

    async def step(self, index: int, step: dict[str, Any]) -> None:
        """Runs one step (all its repeats)."""
        if "time" in step:
            self.clock.t = step["time"]
            return
        if "advance" in step:
            self.clock.t += step["advance"]
            return
        op, user = step["op"], step["user"]
        where = f"step {index} ({op} {user}{': ' + step['note'] if 'note' in step else ''})"
        for _ in range(step.get("repeat", 1)):
            args = self.value(step.get("args", {}))
            sent_before, events_before = len(self.outbox), len(self.events)
            try:
                result = self.call(op, user, args, step.get("without_admin", False))
                if inspect.isawaitable(result):
                    result = await result
                got, subject = "ok", as_json(result)
                self.secrets.update(outcome_secrets(subject))
                self.transcript.append(f"{op} {user}: ok")
            except twofa.TwofaError as err:
                got = err.name
                subject = {"name": err.name, "code": err.code, "retry_after": err.retry_after}
                suffix = f" retry_after={err.retry_after}" if err.retry_after is not None else ""
                self.transcript.append(f"{op} {user}: {err.name}{suffix}")
                if step.get("expect", "ok") == "ok":
                    raise ScenarioFailed(f"{where}: expected success, got {err!r}") from err
            verify(where, step, got, subject)
            self.save(step, subject)
            if "mails" in step and len(self.outbox) - sent_before != step["mails"]:
                raise ScenarioFailed(f"{where}: {len(self.outbox) - sent_before} mails sent, expected {step['mails']}")
            if "events" in step:
                verify_events(where, step["events"], self.events[events_before:])

    async def run(self, scenario: dict[str, Any]) -> list[str]:
        """Runs every step, then checks that no event contains a secret; returns the transcript."""
        for index, step in enumerate(scenario["steps"]):
            await self.step(index, step)
        verify_no_secret_in_events(self.events, self.secrets)
        return self.transcript
