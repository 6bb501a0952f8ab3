"""The fault-injection harness (tests/faults/README.md): runs the shared scenario on one surface
through its adapter and, for every operation step, injects every fault kind the adapter supports
at every call the step makes, judging each run by the README's rules.

    python tests/faults/harness.py [--kinds fail,stale] [--steps 40-60] [-v] -- <adapter command...>

It needs the Python environment of `make python-tests` (target/python-venv): the scenario's
values come from bindings/python/tests/scenario.py (pyotp, the software authenticator).
Exits 0 with a one-line summary, or 1 with the first violation, in full.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python" / "tests"))

from scenario import ScenarioFailed, Values, outcome_secrets, verify, verify_events, verify_no_secret_in_events

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "twofa.h"
SCENARIO = ROOT / "tests" / "scenarios" / "security_tab.json"

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
#: Generous: a command that has not answered by then has hung.
COMMAND_TIMEOUT = 120.0
#: More calls of one domain than any operation makes: the fault never stops firing.
MAX_N = 200


# -------------------------------------------------------------------------------------------
# Small pieces.


class Violation(Exception):
    """A rule of the README was broken (or the adapter misbehaved)."""


def status_codes(header: Path = HEADER) -> dict[str, int]:
    """The error names and codes of the C header's `TWOFA_*` status defines (`storage` → 12)."""
    codes: dict[str, int] = {}
    for name, value in re.findall(r"^#define TWOFA_([A-Z_]+) (\d+)\s*$", header.read_text(), re.MULTILINE):
        if name != "OK" and not name.startswith(("CALLBACK_", "ACTION_", "MAX_")):
            codes[name.lower()] = int(value)
    if "storage" not in codes or "internal" not in codes:
        raise SystemExit(f"harness: no TWOFA_* status codes found in {header}")
    return codes


def shape(v: Any) -> Any:
    """The structure of a JSON value: every string replaced by its length."""
    if isinstance(v, str):
        return f"<{len(v)} chars>"
    if isinstance(v, list):
        return [shape(x) for x in v]
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    return v


def outline(v: Any) -> Any:
    """The structure of an outcome: every string replaced by ``"<string>"`` (a QR code's SVG
    differs in length from secret to secret)."""
    if isinstance(v, str):
        return "<string>"
    if isinstance(v, list):
        return [outline(x) for x in v]
    if isinstance(v, dict):
        return {k: outline(x) for k, x in v.items()}
    return v


Records = dict[str, tuple[bytes, int]]


def record_shape(value: bytes) -> Any:
    """The structure of a stored value: its JSON's shape, or its length if it is not JSON."""
    try:
        return shape(json.loads(value))
    except (UnicodeDecodeError, ValueError):
        return f"<{len(value)} bytes>"


def key_shape(key: str, known: Records) -> str:
    """A key as structures compare it: itself if the before-state has it, else its prefix and
    the length of its last segment (a new WebAuthn credential's key holds its random id)."""
    if key in known:
        return key
    prefix, _, last = key.rpartition("/")
    return f"{prefix}/<{len(last)} chars>"


def store_shape(records: Records, known: Records) -> list[tuple[str, str]]:
    """The structure of a store: each record's key shape and value shape, sorted."""
    return sorted((key_shape(k, known), json.dumps(record_shape(v))) for k, (v, _) in records.items())


def calls_shape(calls: list[str], known: Records) -> list[str]:
    """A calls log with the keys as `key_shape` gives them."""
    shaped = []
    for call in calls:
        verb, _, key = call.partition(" ")
        shaped.append(call if verb == "send" else f"{verb} {key_shape(key, known)}")
    return shaped


def changed(before: Records, after: Records) -> set[str]:
    """The keys whose presence, bytes or version differ."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def changed_shape(before: Records, after: Records) -> list[str]:
    """`changed` with new keys as their shapes."""
    return sorted(key_shape(k, before) for k in changed(before, after))


def show_records(records: Records, keys: Sequence[str] | None = None) -> str:
    """Records as text, one per line (`key vVERSION: value`)."""
    lines = []
    for key in sorted(records if keys is None else keys):
        if key not in records:
            lines.append(f"    {key}: <absent>")
            continue
        value, version = records[key]
        text = value.decode("utf-8", errors="backslashreplace")
        lines.append(f"    {key} v{version}: {text[:3000]}{'...' if len(text) > 3000 else ''}")
    return "\n".join(lines) or "    <empty>"


def show_diff(before: Records, after: Records) -> str:
    keys = sorted(changed(before, after))
    if not keys:
        return f"  (no difference; {len(before)} records)"
    same = sorted(before.keys() & after.keys() - set(keys))
    return (
        f"  before (records that differ):\n{show_records(before, keys)}\n"
        f"  after:\n{show_records(after, keys)}\n"
        f"  unchanged: {', '.join(same) or '-'}"
    )


@dataclass(frozen=True)
class Mail:
    """A message the adapter's mailer was handed."""

    to: str
    subject: str
    text: str
    delivered: bool


def code_in(text: str) -> str | None:
    found = re.search(r"\d{6,}", text)
    return found.group() if found else None


@dataclass
class Answer:
    """The answer to a `run`/`admin` command."""

    outcome: Any
    error: dict[str, Any] | None
    fired: bool
    calls: list[str]
    mails: list[Mail]
    events: list[dict[str, Any]]
    raw: dict[str, Any]

    @property
    def got(self) -> str:
        """``"ok"`` or the error's name."""
        return "ok" if self.error is None else str(self.error["name"])

    def subject(self) -> Any:
        """What a step's `check` paths and `save` read: the outcome, or the error's name, code
        and retry_after (read from the message, `retry in N s`, when the adapter gives none)."""
        if self.error is None:
            return self.outcome
        retry_after = self.error.get("retry_after")
        if retry_after is None:
            found = re.search(r"retry in (\d+) s", str(self.error.get("message", "")))
            retry_after = int(found.group(1)) if found else None
        return {"name": self.error["name"], "code": self.error["code"], "retry_after": retry_after}

    def delivered(self) -> list[Mail]:
        return [m for m in self.mails if m.delivered]

    def summary(self) -> str:
        what = "ok" if self.error is None else json.dumps(self.error)
        mails = ", ".join(f"{m.to} ({'delivered' if m.delivered else 'not delivered'})" for m in self.mails)
        return f"answer {what}; fired {self.fired}; calls {self.calls}; mails [{mails}]"


# -------------------------------------------------------------------------------------------
# The adapter process.


class Adapter:
    """An adapter process and the line protocol."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.fd = self.proc.stdout.fileno()
        self.buffer = b""
        self.commands = 0
        #: Every audit event any command reported (none may contain a secret).
        self.events: list[dict[str, Any]] = []

    def close(self) -> int:
        """Ends the adapter (end of input) and returns its exit status (a sanitizer's leak
        report at exit makes it non-zero)."""
        try:
            self.stdin.close()
            return self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            return self.proc.wait()

    def _line(self, command: str) -> bytes:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                raise Violation(f"the adapter did not answer `{command[:200]}` within {COMMAND_TIMEOUT:.0f} s")
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                status = self.proc.poll()
                raise Violation(f"the adapter exited (status {status}) instead of answering `{command[:200]}`")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def ask(self, command: str) -> dict[str, Any]:
        """Sends one command; its JSON answer."""
        self.commands += 1
        try:
            self.stdin.write(command.encode() + b"\n")
            self.stdin.flush()
        except BrokenPipeError as e:
            raise Violation(f"the adapter exited (status {self.proc.poll()}) before `{command[:200]}`") from e
        line = self._line(command)
        try:
            answer = json.loads(line)
        except ValueError as e:
            raise Violation(f"`{command[:200]}`: the adapter answered a line that is not JSON: {line[:500]!r}") from e
        if not isinstance(answer, dict):
            raise Violation(f"`{command[:200]}`: the answer is not an object: {line[:500]!r}")
        return answer

    def ok(self, command: str) -> None:
        answer = self.ask(command)
        if answer != {"ok": True}:
            raise Violation(f'`{command[:200]}` answered {json.dumps(answer)[:2000]}, not {{"ok": true}}')

    def dump(self) -> Records:
        answer = self.ask("dump")
        records = answer.get("records")
        if not isinstance(records, dict):
            raise Violation(f"`dump` answered {json.dumps(answer)[:2000]}")
        try:
            return {k: (base64.b64decode(r["value"], validate=True), int(r["version"])) for k, r in records.items()}
        except (KeyError, TypeError, ValueError) as e:
            raise Violation(f"`dump` answered a malformed record ({e}): {json.dumps(answer)[:2000]}") from e

    def run(self, admin: bool, user: str, request: dict[str, Any]) -> Answer:
        command = f"{'admin' if admin else 'run'} {user} {json.dumps(request)}"
        raw = self.ask(command)
        try:
            if set(raw) != {"outcome", "error", "fired", "calls", "mails", "events"}:
                raise ValueError(f"fields {sorted(raw)}")
            outcome, error, fired, calls = raw["outcome"], raw["error"], raw["fired"], raw["calls"]
            if (outcome is None) == (error is None):
                raise ValueError("exactly one of outcome and error must be null")
            if error is not None and not (
                isinstance(error, dict) and {"name", "code", "message", "callback"} <= set(error)
            ):
                raise ValueError("error needs name, code, message and callback")
            if not isinstance(fired, bool) or not all(isinstance(c, str) for c in calls):
                raise ValueError("fired is a boolean, calls a list of strings")
            mails = [Mail(str(m["to"]), str(m["subject"]), str(m["text"]), bool(m["delivered"])) for m in raw["mails"]]
            events = raw["events"]
            if not isinstance(events, list) or not all(isinstance(e, dict) and "kind" in e for e in events):
                raise ValueError("events is a list of event objects")
        except (KeyError, TypeError, ValueError) as e:
            raise Violation(f"`{command[:300]}`: malformed answer ({e}): {json.dumps(raw)[:3000]}") from e
        self.events.extend(events)
        return Answer(outcome, error, fired, list(calls), mails, events, raw)


# -------------------------------------------------------------------------------------------
# The scenario's state on the driver's side.


@dataclass
class Clock:
    t: int = 0


class State(Values):
    """The driver's state: saved variables, software authenticators, delivered messages, clock."""

    clock: Clock
    outbox: list[Mail]

    def __init__(self, origin: str) -> None:
        super().__init__(Clock(), [], origin)

    def copy(self) -> State:
        """A deep copy (authenticators are cloned: same keys, their own counters)."""
        twin = State(self.origin)
        twin.clock.t = self.clock.t
        twin.outbox = list(self.outbox)
        twin.vars = copy.deepcopy(self.vars)
        twin.authenticators = {name: key.clone() for name, key in self.authenticators.items()}
        return twin


@dataclass
class OpStep:
    """One run of an operation step (a step with `repeat` gives several), and what the
    fault-free run recorded for it."""

    pos: int
    index: int
    rep: int
    step: dict[str, Any]
    state: State = field(init=False)
    before: Records = field(init=False)
    after: Records = field(init=False)
    answer: Answer = field(init=False)

    @property
    def op(self) -> str:
        return str(self.step["op"])

    @property
    def user(self) -> str:
        return str(self.step["user"])

    @property
    def slot(self) -> str:
        return f"s{self.pos}"

    def where(self) -> str:
        note = f": {self.step['note']}" if "note" in self.step else ""
        repeats = self.step.get("repeat", 1)
        rep = f" (run {self.rep + 1} of {repeats})" if repeats > 1 else ""
        return f"step {self.index}{rep} ({self.op} {self.user}{note})"


# -------------------------------------------------------------------------------------------
# The harness.


@dataclass
class Tally:
    absorbed: int = 0
    failed: int = 0


class Harness:
    def __init__(self, adapter: Adapter, scenario: dict[str, Any], verbose: bool) -> None:
        self.adapter = adapter
        self.scenario = scenario
        self.verbose = verbose
        self.codes = status_codes()
        hello = adapter.ask("hello")
        try:
            self.surface = str(hello["surface"])
            self.kinds = [str(k) for k in hello["kinds"]]
            self.crash_error = str(hello["crash_error"])
        except (KeyError, TypeError) as e:
            raise Violation(f"`hello` answered {json.dumps(hello)}") from e
        unknown = [k for k in self.kinds if k not in DOMAINS]
        if unknown:
            raise Violation(f"`hello`: unknown fault kinds {unknown}")
        self.ops: list[OpStep] = []
        self.tally = {kind: Tally() for kind in self.kinds}
        self.code_tries = 0
        self.renewed = 0
        #: Failed runs that left an address budget charged (`charged`).
        self.charges = 0
        #: Absorbed runs that left a credential claim behind (`unreleased_claim`).
        self.stale_claims = 0
        #: Absorbed runs whose discard of a refused code failed (`undiscarded_code`).
        self.undiscarded = 0
        #: Runs that met a damaged address budget (`damaged_budget`).
        self.budget_resets = 0
        #: Traps that left a pending code holding the cooldown (`dead_pending`).
        self.dead_hosts = 0
        self.partial = 0
        self.committed = 0
        #: Every value the runs handled as a secret (codes computed or mailed, secret outcome
        #: fields): no event may contain one.
        self.secrets: set[str] = set()

    # -- checks shared by every run -----------------------------------------------------------

    def check_error(self, answer: Answer, context: str) -> None:
        """The error's code is the surface's code for its name (C header), or the crash error."""
        if answer.error is None:
            return
        name, code = answer.error["name"], answer.error["code"]
        if name in self.codes:
            if code != self.codes[name]:
                raise Violation(
                    f"{context}: error {name} has code {code!r}, the header says {self.codes[name]}"
                    f"\n  {answer.summary()}"
                )
        elif name != self.crash_error:
            raise Violation(f"{context}: an error that is no twofa error\n  {answer.summary()}")
        elif code is not None:
            raise Violation(f"{context}: {name} is no twofa error, its code must be null\n  {answer.summary()}")
        if not isinstance(answer.error["message"], str):
            raise Violation(f"{context}: the error has no message\n  {answer.summary()}")

    def expect(self, op: OpStep, answer: Answer, context: str, state: State, handed: bool = False) -> None:
        """The scenario's expectations of one run of `op` (expect, check, mails); then its `save`
        values go to the state's variables. With `handed`, `mails` counts the messages handed to
        the mailer, delivered or not (a run that absorbed a failed notice)."""
        self.check_error(answer, context)
        try:
            verify(context, op.step, answer.got, answer.subject())
        except ScenarioFailed as e:
            message = str(e) if str(e).startswith(context) else f"{context}: {e}"
            raise Violation(f"{message}\n  {answer.summary()}") from e
        except (IndexError, ValueError, TypeError) as e:
            raise Violation(f"{context}: cannot check the answer ({e!r})\n  {answer.summary()}") from e
        if "events" in op.step:
            try:
                verify_events(context, op.step["events"], answer.events)
            except ScenarioFailed as e:
                raise Violation(f"{e}\n  {answer.summary()}") from e
        delivered = len(answer.mails if handed else answer.delivered())
        if "mails" in op.step and delivered != op.step["mails"]:
            raise Violation(
                f"{context}: {delivered} mails {'handed to the mailer' if handed else 'delivered'}, expected"
                f" {op.step['mails']}\n  {answer.summary()}"
            )
        try:
            state.save(op.step, answer.subject())
        except ScenarioFailed as e:
            raise Violation(f"{context}: {e}\n  {answer.summary()}") from e

    # -- running a step -----------------------------------------------------------------------

    def perform(self, op: OpStep, state: State, fault: tuple[str, int] | None = None) -> tuple[Answer, dict[str, Any]]:
        """Runs `op` with freshly evaluated values (the fault armed first); delivered mails go
        to the state's outbox."""
        try:
            args = state.value(op.step.get("args", {}))
        except (ScenarioFailed, ValueError, KeyError) as e:
            raise Violation(f"{op.where()}: cannot evaluate the arguments: {e}") from e
        if fault is not None:
            self.adapter.ok(f"fault {fault[0]} {fault[1]}")
        admin = op.op.startswith("admin.")
        answer = self.adapter.run(admin, op.user, {"op": op.op.removeprefix("admin."), **args})
        state.outbox.extend(answer.delivered())
        self.secrets |= state.secrets | set(outcome_secrets(answer.outcome))
        self.secrets |= {code for code in (code_in(m.text) for m in answer.mails) if code is not None}
        return answer, args

    def set_time(self, state: State, t: int) -> None:
        state.clock.t = t
        self.adapter.ok(f"time {t}")

    # -- the fault-free run -------------------------------------------------------------------

    def reference(self) -> None:
        """Runs the scenario fault-free, recording every op step's before-state, driver state,
        answer and after-state, and checking the scenario's expectations."""
        self.adapter.ok(f"config {json.dumps(self.scenario['config'])}")
        state = State(self.scenario["origin"])
        self.set_time(state, 0)
        for index, step in enumerate(self.scenario["steps"]):
            if "time" in step:
                self.set_time(state, int(step["time"]))
                continue
            if "advance" in step:
                self.set_time(state, state.clock.t + int(step["advance"]))
                continue
            if step.get("without_admin"):
                # A refusal on a handle without the admin capability changes nothing and calls
                # nothing (the scenario runners check it on every surface); an adapter hosts
                # one admin-capable engine only.
                continue
            for rep in range(step.get("repeat", 1)):
                op = OpStep(len(self.ops), index, rep, step)
                self.adapter.ok(f"save {op.slot}")
                op.before = self.adapter.dump()
                op.state = state.copy()
                answer, _ = self.perform(op, state)
                context = f"fault-free run, {op.where()}"
                self.expect(op, answer, context, state)
                if answer.fired:
                    raise Violation(f"{context}: fired is true with no fault armed\n  {answer.summary()}")
                op.answer = answer
                op.after = self.adapter.dump()
                self.ops.append(op)

    # -- the fault runs -----------------------------------------------------------------------

    def expected_error(self, op: OpStep, kind: str) -> str | None:
        """The error a failed run of `kind` must answer (None: it must not fail). A failed notice
        never fails its operation: only the code-sending operations answer `mail` (a crash that
        is a trap ends any operation)."""
        if kind in ("crash", "mail-crash") and self.crash_error != "storage":
            return self.crash_error
        if kind.startswith("mail-") and op.op not in CODE_OPS:
            return None
        return KIND_ERRORS[kind]

    def fault_run(self, op: OpStep, kind: str, n: int) -> bool:
        """One run of `op` with `kind` armed at call `n`; whether the fault fired."""
        state = op.state.copy()
        self.adapter.ok(f"load {op.slot}")
        self.set_time(state, op.state.clock.t)
        restored = self.adapter.dump()
        label = f"{op.where()}, fault {kind} at call {n} [{self.surface}]"
        if restored != op.before:
            raise Violation(f"{label}: `load {op.slot}` did not restore the store\n{show_diff(op.before, restored)}")
        answer, args = self.perform(op, state, (kind, n))
        domain = [c for c in answer.calls if c.split(" ", 1)[0] in DOMAINS[kind]]
        if answer.fired != (len(domain) >= n):
            raise Violation(
                f"{label}: the adapter says fired={answer.fired} but made {len(domain)} calls of the"
                f" domain {DOMAINS[kind]}\n  {answer.summary()}"
            )
        after = self.adapter.dump()
        details = f"\n  {answer.summary()}\n  fault-free: {op.answer.summary()}\n{show_diff(op.before, after)}"
        self.check_error(answer, label)

        if not answer.fired:
            # Rule 1: exactly the fault-free run.
            ref = op.answer
            same = (
                calls_shape(answer.calls, op.before) == calls_shape(ref.calls, op.before)
                and answer.got == ref.got
                and outline(answer.outcome) == outline(ref.outcome)
                and store_shape(after, op.before) == store_shape(op.after, op.before)
                and changed_shape(op.before, after) == changed_shape(op.before, op.after)
                and event_kinds(answer) == event_kinds(ref)
            )
            if not same:
                raise Violation(
                    f"{label}: the fault did not fire, yet the run differs from the fault-free one{details}"
                )
            self.expect(op, answer, label, state)
            return False

        faulted_at = [i for i, c in enumerate(answer.calls) if c.split(" ", 1)[0] in DOMAINS[kind]][n - 1]
        faulted = answer.calls[faulted_at]
        if self.verbose:
            print(f"  {label}: {answer.got} (faulted `{faulted}`)", file=sys.stderr)
        if kind == "corrupt" and faulted.startswith(f"get {BUDGET_PREFIX}"):
            self.damaged_budget(op, label, answer, after, state, details, faulted)
            self.tally[kind].absorbed += 1
            return True
        if answer.got == op.step.get("expect", "ok"):
            self.absorbed(op, kind, label, answer, after, state, details, faulted_at)
            self.tally[kind].absorbed += 1
            self.next_step(op, state, label, details)
        else:
            committed = self.failed(op, kind, label, answer, after, args, faulted_at, details)
            self.tally[kind].failed += 1
            if not committed:
                # Only the scenario's expectations: the retry's values are evaluated afresh (a
                # WebAuthn assertion carries the next signature counter), so its records may
                # differ in numbers from the fault-free run's.
                if self.charged(op, answer, faulted_at) & changed(op.before, after):
                    # The scenario counts an address's codes exactly (`address_limit`): the
                    # retry starts from the before-state, without the failed run's charge.
                    self.adapter.ok(f"load {op.slot}")
                elif answer.got == self.crash_error != "storage" and op.op in CODE_OPS and after != op.before:
                    # The instance died after writing its pending code, as a host that dies
                    # between the write and the send: the code holds the resend cooldown (so a
                    # burst cannot get around it), and no longer than that.
                    self.dead_pending(op, state, label)
                retry, _ = self.perform(op, state)
                self.expect(op, retry, f"{label}, then the step again without fault", state)
            else:
                # The trap came after the commit (at a notice): the step's saved values are the
                # fault-free run's, whose committed record has the same structure (a step-up
                # token, for one, verifies against it all the same).
                state.save(op.step, op.answer.subject())
            self.next_step(op, state, label, details)
        return True

    def dead_pending(self, op: OpStep, state: State, label: str) -> None:
        """After a trap left a pending code: the step answers `rate_limited` until the code is
        older than the cooldown, and as the scenario says once it is. Then the store and the
        clock go back to the step's before-state, so that the retry and the op step after it
        meet the scenario's times and counts."""
        cooldown = int(self.scenario["config"].get("email_code", {}).get("resend_cooldown_secs", COOLDOWN))
        refused, _ = self.perform(op, state)
        self.check_error(refused, f"{label}, then the step again at once")
        retry_after = refused.subject().get("retry_after") if refused.error is not None else None
        if refused.got != "rate_limited" or not (isinstance(retry_after, int) and 0 < retry_after <= cooldown):
            raise Violation(
                f"{label}: a trap left a pending code, yet the step again at once answered {refused.got}"
                f" (retry_after {retry_after}), not rate_limited within the cooldown\n  {refused.summary()}"
            )
        t = state.clock.t
        self.set_time(state, t + cooldown)
        later, _ = self.perform(op, state)
        self.expect(op, later, f"{label}, then the step again after the cooldown", state)
        self.adapter.ok(f"load {op.slot}")
        self.set_time(state, t)
        self.dead_hosts += 1

    def absorbed(
        self,
        op: OpStep,
        kind: str,
        label: str,
        answer: Answer,
        after: Records,
        state: State,
        details: str,
        faulted_at: int,
    ) -> None:
        """Rule 2: the answer the scenario expects, and the fault-free after-state's structure.

        A run may absorb any store fault at a WebAuthn credential claim released after the
        record's write committed (the change stands; the claim stays behind, stale, exactly as
        it was before the step, and the next registration of that credential takes it over). A
        code the address budget refused is discarded from the record after the refusal; a fault
        there still answers the refusal (the first error): the discard may succeed all the same
        (it puts back the before-state without reading the record when its version is the
        pending write's), or the unsent pending code stays in the record (it never verifies, and
        holds the cooldown only until it is older than that)."""
        stale_claim = self.unreleased_claim(op, answer, faulted_at)
        reference = None
        if stale_claim is not None:
            reference = {**op.after, stale_claim: op.before[stale_claim]}
        # A fault in the discard of a code the budget refused (the refusal stands).
        discard = self.undiscarded_code(op, answer, faulted_at)
        if discard is not None and after.get(discard) != op.after.get(discard):
            if discard not in after:
                raise Violation(f"{label}: a failed discard, but no record {discard} holds the pending code{details}")
            reference = {**op.after, discard: after[discard]}
            self.undiscarded += 1
        if kind in NEVER_ABSORBED and stale_claim is None and discard is None:
            raise Violation(
                f"{label}: answered {answer.got} as the scenario expects, but a {kind} fault cannot be absorbed"
                f" (the engine ignored a failed call or an unreadable record){details}"
            )
        self.expect(op, answer, f"{label} (absorbed)", state, handed=kind.startswith("mail-"))
        if kind in STORE_KINDS and outline(answer.outcome) != outline(op.answer.outcome):
            raise Violation(
                f"{label}: absorbed, but the outcome has another structure than the fault-free one:\n"
                f"  {json.dumps(outline(answer.outcome))}\n"
                f"  fault-free: {json.dumps(outline(op.answer.outcome))}{details}"
            )
        self.like_reference(op, f"{label} (absorbed)", after, answer.summary(), reference)
        if stale_claim is not None:
            if after.get(stale_claim) != op.before[stale_claim]:
                raise Violation(f"{label}: the claim {stale_claim} whose release failed changed{details}")
            self.stale_claims += 1
        if event_kinds(answer) != event_kinds(op.answer):
            raise Violation(
                f"{label}: absorbed, but emitted events {event_kinds(answer)}, fault-free"
                f" {event_kinds(op.answer)}{details}"
            )

    def damaged_budget(
        self, op: OpStep, label: str, answer: Answer, after: Records, state: State, details: str, faulted: str
    ) -> None:
        """A `corrupt` get of an address budget: the budget holds no secret, and a damaged one
        starts a new window (so it never blocks an address for good). The step answers as
        fault-free, or, where the budget refused the code fault-free, sends it; either way the
        budget now counts one code from now. The scenario's counts of that address no longer
        hold, so the op step after it is not run."""
        budget = faulted.partition(" ")[2]
        fresh = json.loads(after[budget][0]) if budget in after else None
        if fresh != {"since": state.clock.t, "sent": 1}:
            raise Violation(f"{label}: the damaged budget {budget} was not replaced by a new window: {fresh}{details}")
        if answer.got == op.answer.got:
            self.expect(op, answer, f"{label} (absorbed)", state)
            self.like_reference(op, f"{label} (absorbed)", after, answer.summary(), {**op.after, budget: after[budget]})
            if event_kinds(answer) != event_kinds(op.answer):
                raise Violation(
                    f"{label}: absorbed, but emitted events {event_kinds(answer)}, fault-free"
                    f" {event_kinds(op.answer)}{details}"
                )
        elif not (op.answer.got == "rate_limited" and answer.got == "ok" and len(answer.delivered()) == 1):
            raise Violation(
                f"{label}: answered {answer.got} after a damaged budget, fault-free {op.answer.got}{details}"
            )
        self.budget_resets += 1

    def reference_mismatch(self, op: OpStep, after: Records, reference: Records | None = None) -> str | None:
        """Why the store does not have the structure of the fault-free after-state (or of
        `reference`), or where a record changed that did not change fault-free, or the other way
        round (None: it has)."""
        ref = op.after if reference is None else reference
        got, want = store_shape(after, op.before), store_shape(ref, op.before)
        if got != want:
            keys = sorted({k for k in after.keys() | op.after.keys() if after.get(k) != op.before.get(k)})
            return (
                f"the stored records have another structure than the fault-free after-state\n"
                f"  structure: {got}\n  fault-free: {want}\n  after:\n{show_records(after, keys)}\n"
                f"  fault-free after:\n{show_records(ref, keys)}"
            )
        if changed_shape(op.before, after) != changed_shape(op.before, ref):
            return (
                f"records changed: {sorted(changed(op.before, after))}; fault-free:"
                f" {sorted(changed(op.before, ref))}\n{show_diff(op.before, after)}"
            )
        return None

    def like_reference(
        self, op: OpStep, label: str, after: Records, summary: str, reference: Records | None = None
    ) -> None:
        """The store has the structure of the fault-free after-state (or of `reference`), and a
        record changed iff it changed fault-free."""
        mismatch = self.reference_mismatch(op, after, reference)
        if mismatch is not None:
            raise Violation(f"{label}: {mismatch}\n  {summary}")

    def failed(
        self,
        op: OpStep,
        kind: str,
        label: str,
        answer: Answer,
        after: Records,
        args: dict[str, Any],
        faulted_at: int,
        details: str,
    ) -> bool:
        """Rule 3: the kind's error, the before-state exactly, and no code the failed run mailed
        (delivered or not: a failed operation arms none) is accepted.

        A trap (an error that is no twofa error: the component's `crash_error`) ends the instance
        mid-operation, and the outcome is unknown as after a panic: the records the run wrote
        before the trap may keep what it wrote. Returns whether the run committed the step (the
        store has the fault-free after-state's structure): then the step is not run again."""
        faulted = answer.calls[faulted_at]
        want = self.expected_error(op, kind)
        if want is None or answer.got != want:
            expected = f"the answer {op.step.get('expect', 'ok')} (absorbed)" + (f" or {want}" if want else "")
            raise Violation(f"{label}: answered {answer.got}, expected {expected}{details}")
        assert answer.error is not None
        callback = answer.error["callback"]
        if callback is not None:
            verb = faulted.split(" ", 1)[0]
            if kind in STORE_KINDS and callback != f"store.{verb}":
                raise Violation(
                    f"{label}: the error names callback {callback!r}, the fault was at `{faulted}`{details}"
                )
            if kind not in STORE_KINDS and str(callback).startswith("store."):
                raise Violation(f"{label}: a mail fault, but the error names callback {callback!r}{details}")
        charged = self.charged(op, answer, faulted_at)
        self.charges += bool(charged & changed(op.before, after))
        same_bytes = {k: v for k, (v, _) in after.items() if k not in charged} == {
            k: v for k, (v, _) in op.before.items() if k not in charged
        }
        renewed = {k for k in changed(op.before, after) if k in after and k in op.before} - charged
        committed = False
        if not same_bytes or renewed - self.written_back(op, answer, faulted_at):
            if answer.got in self.codes:
                raise Violation(
                    f"{label}: the step failed ({answer.got}) but the store is not its before-state{details}"
                )
            written = {
                call.partition(" ")[2]
                for i, call in enumerate(answer.calls)
                if call.startswith(("put ", "delete ")) and i != faulted_at
            }
            if changed(op.before, after) - written:
                raise Violation(
                    f"{label}: the step ended in {answer.got} and changed records it never wrote"
                    f" ({sorted(changed(op.before, after) - written)}){details}"
                )
            # A trap at a claim's release came after the commit: the claim stays, stale.
            claim = self.unreleased_claim(op, answer, faulted_at)
            reference = None if claim is None else {**op.after, claim: op.before[claim]}
            committed = self.reference_mismatch(op, after, reference) is None
            self.partial += not committed
            self.committed += committed
            if self.verbose:
                state = "committed" if committed else "half-written"
                print(f"    {answer.got}: {sorted(changed(op.before, after))} {state}", file=sys.stderr)
        else:
            self.renewed += bool(renewed)
        # Events follow the commit (before any notice): a trap at a notice comes after them.
        emitted = event_kinds(op.answer) if committed else []
        if event_kinds(answer) != emitted:
            raise Violation(
                f"{label}: the step failed ({answer.got}, {'after' if committed else 'before'} its commit) but"
                f" emitted {event_kinds(answer)}, expected {emitted}{details}"
            )
        for mail in answer.mails:
            code = code_in(mail.text)
            if code is None or op.op not in CODE_OPS:
                continue
            if op.op in CONFIRM_OPS:
                request: dict[str, Any] = {"op": CONFIRM_OPS[op.op], "code": code}
                if args.get("step_up") is not None:
                    request["step_up"] = args["step_up"]
            else:
                request = {
                    "op": "login_verify",
                    "challenge": args["challenge"],
                    "proof": {"kind": "email", "value": code},
                }
            tried = self.adapter.run(False, op.user, request)
            self.code_tries += 1
            what = "delivered" if mail.delivered else "undelivered"
            self.check_error(tried, f"{label}, trying the {what} code")
            if tried.error is None:
                raise Violation(
                    f"{label}: the code of a failed run's {what} mail to {mail.to} was accepted by {request['op']}"
                    f"\n  the try: {tried.summary()}{details}"
                )
            if self.verbose:
                print(f"    {what} code to {mail.to}: {tried.got}", file=sys.stderr)
        return committed

    @staticmethod
    def unreleased_claim(op: OpStep, answer: Answer, faulted_at: int) -> str | None:
        """The credential claim (`webauthn-credential/...`) whose release the fault hit: a call
        on a claim the before-state has, after the call that wrote or deleted the user's record
        (a registration writes its claim before the record; removal, reset and deletion release
        claims after it)."""
        verb, _, key = answer.calls[faulted_at].partition(" ")
        if not key.startswith(CLAIM_PREFIX) or key not in op.before or verb not in ("get", "delete"):
            return None
        record = f"user/{op.user}"
        committed = any(c in (f"put {record}", f"delete {record}") for c in answer.calls[:faulted_at])
        return key if committed else None

    @staticmethod
    def undiscarded_code(op: OpStep, answer: Answer, faulted_at: int) -> str | None:
        """The user's record, when the fault hit the discard of a pending code that the address
        budget refused (fault-free, the step answers `rate_limited` after reading the budget):
        a call on the record after the budget's get, the run having written the pending code."""
        record = f"user/{op.user}"
        if op.op not in CONFIRM_OPS or op.answer.got != "rate_limited":
            return None
        if answer.calls[faulted_at].partition(" ")[2] != record:
            return None
        before = answer.calls[:faulted_at]
        refused = any(c.startswith(f"get {BUDGET_PREFIX}") for c in before)
        return record if refused and f"put {record}" in before else None

    @staticmethod
    def charged(op: OpStep, answer: Answer, faulted_at: int) -> set[str]:
        """The address budgets (`email-address/...`) a failed enrolment or notice-address code
        may leave charged: the code is counted against its address before it is sent, and the
        charge stands once its write went through (the mailer may have delivered it)."""
        if op.op not in CONFIRM_OPS:
            return set()
        return {
            call.partition(" ")[2]
            for i, call in enumerate(answer.calls)
            if call.startswith(f"put {BUDGET_PREFIX}") and i != faulted_at
        }

    @staticmethod
    def written_back(op: OpStep, answer: Answer, faulted_at: int) -> set[str]:
        """The records a failed code-sending operation may leave with their before bytes under a
        new version: it wrote the pending code, then put the before bytes back (a version is
        never reused, so the write-back cannot restore it). Their last call is a `put` that the
        fault did not hit."""
        if op.op not in CODE_OPS:
            return set()
        last: dict[str, int] = {}
        for i, call in enumerate(answer.calls):
            verb, _, key = call.partition(" ")
            if verb in ("get", "put", "delete"):
                last[key] = i
        return {k for k, i in last.items() if answer.calls[i].startswith("put ") and i != faulted_at}

    def next_step(self, op: OpStep, state: State, label: str, details: str) -> None:
        """The op step after `op` (the clock moved as the scenario says) goes as it says."""
        if op.pos + 1 >= len(self.ops):
            return
        nxt = self.ops[op.pos + 1]
        if nxt.state.clock.t != state.clock.t:
            self.set_time(state, nxt.state.clock.t)
        answer, _ = self.perform(nxt, state)
        self.expect(nxt, answer, f"{label}, then {nxt.where()}", state)

    def traps(self) -> str:
        if not self.partial + self.committed:
            return ""
        return f", {self.committed} traps after the step committed, {self.partial} traps left a record half-written"

    def run(self, kinds: Sequence[str] | None, steps: range | None) -> None:
        started = time.monotonic()
        self.reference()
        reference_time = time.monotonic() - started
        kinds = [k for k in self.kinds if kinds is None or k in kinds]
        for op in self.ops:
            if steps is not None and op.index not in steps:
                continue
            for kind in kinds:
                n = 1
                while self.fault_run(op, kind, n):
                    n += 1
                    if n > MAX_N:
                        raise Violation(f"{op.where()}, fault {kind}: still firing at call {MAX_N}")
        try:
            verify_no_secret_in_events(self.adapter.events, self.secrets)
        except ScenarioFailed as e:
            raise Violation(str(e)) from e
        elapsed = time.monotonic() - started
        runs = ", ".join(
            f"{k} {t.absorbed + t.failed} ({t.absorbed} absorbed, {t.failed} failed)"
            for k, t in self.tally.items()
            if k in kinds
        )
        total = sum(t.absorbed + t.failed for t in self.tally.values())
        print(
            f"fault-tests {self.surface}: {len(self.ops)} op steps, {total} fault runs in {elapsed:.1f} s"
            f" (fault-free run {reference_time:.1f} s, {self.adapter.commands} commands,"
            f" {self.code_tries} mailed codes of failed runs refused, {self.renewed} failed runs wrote the"
            f" before bytes back under a new version, {self.charges} kept an address budget's charge,"
            f" {self.stale_claims} absorbed runs left a credential claim stale, {self.undiscarded} left a refused"
            f" code pending, {self.budget_resets} replaced a damaged address budget{self.traps()}"
            f"{f', {self.dead_hosts} pending codes of dead instances waited out' if self.dead_hosts else ''},"
            f" {len(self.adapter.events)} events"
            f" without a secret): {runs}"
        )


def event_kinds(answer: Answer) -> list[str]:
    """The kinds of the events an answer reports, in order."""
    return [str(e["kind"]) for e in answer.events]


def parse_steps(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def fail(message: str) -> NoReturn:
    print(f"fault-tests: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def main(argv: list[str]) -> None:
    if "--" not in argv:
        fail("usage: harness.py [--kinds K,K] [--steps I-J] [--scenario FILE] [-v] -- <adapter command...>")
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", help="only these fault kinds (comma-separated)")
    parser.add_argument("--steps", type=parse_steps, help="only the op steps of these scenario step indexes (I or I-J)")
    parser.add_argument("--scenario", type=Path, default=SCENARIO, help="the scenario file")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per fault run (stderr)")
    options = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        fail("no adapter command after --")
    scenario = json.loads(options.scenario.read_text())
    adapter = Adapter(command)
    try:
        harness = Harness(adapter, scenario, options.verbose)
        harness.run(options.kinds.split(",") if options.kinds else None, options.steps)
    except Violation as e:
        adapter.close()
        fail(f"{' '.join(command)}:\n{e}")
    status = adapter.close()
    if status != 0:
        fail(f"{' '.join(command)}: the adapter exited with status {status} at the end of its input")


if __name__ == "__main__":
    main(sys.argv[1:])
