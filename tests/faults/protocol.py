"""The adapter process and its line protocol (README, "Protocol"): the commands, the answers
of `run`/`admin`, and the status codes of the C header an error's code must match."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snapshots import Records

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "twofa.h"
#: Generous: a command that has not answered by then has hung.
COMMAND_TIMEOUT = 120.0


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


@dataclass(frozen=True)
class Mail:
    """A message the adapter's mailer was handed."""

    to: str
    subject: str
    text: str
    delivered: bool


def code_in(text: str) -> str | None:
    """The one-time code in a message's text (its first run of six or more digits)."""
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
        """The mails the adapter's mailer delivered."""
        return [m for m in self.mails if m.delivered]

    def summary(self) -> str:
        """The answer in one line, for a violation's details."""
        what = "ok" if self.error is None else json.dumps(self.error)
        mails = ", ".join(f"{m.to} ({'delivered' if m.delivered else 'not delivered'})" for m in self.mails)
        return f"answer {what}; fired {self.fired}; calls {self.calls}; mails [{mails}]"


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
        """The next line the adapter answers `command` with."""
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
        """Sends a command that answers `{"ok": true}`."""
        answer = self.ask(command)
        if answer != {"ok": True}:
            raise Violation(f'`{command[:200]}` answered {json.dumps(answer)[:2000]}, not {{"ok": true}}')

    def dump(self) -> Records:
        """The adapter's store, every record with its version."""
        answer = self.ask("dump")
        records = answer.get("records")
        if not isinstance(records, dict):
            raise Violation(f"`dump` answered {json.dumps(answer)[:2000]}")
        try:
            return {k: (base64.b64decode(r["value"], validate=True), int(r["version"])) for k, r in records.items()}
        except (KeyError, TypeError, ValueError) as e:
            raise Violation(f"`dump` answered a malformed record ({e}): {json.dumps(answer)[:2000]}") from e

    def run(self, admin: bool, user: str, request: dict[str, Any]) -> Answer:
        """Runs one request (`admin`: on the admin handle) and checks the answer's form."""
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
