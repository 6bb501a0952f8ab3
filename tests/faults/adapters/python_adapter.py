"""The fault-injection adapter of the Python package (tests/faults/README.md): one `twofa.Engine`
over a store, a mailer and a clock written here in Python, driven by the harness's line protocol
on stdin/stdout. It only translates: the op → method mapping is the scenario runner's
(bindings/python/tests/scenario.py), and so is the `on_event` handler that records the audit
events of each operation as the core's JSON (`Events`); the verdicts are the harness's.

Run: python tests/faults/adapters/python_adapter.py (with the twofa package installed, e.g. in
target/python-venv; the scenario runner also needs pyotp and cryptography).

The faults, the Python way: `fail` raises `OSError`, `crash` raises `ZeroDivisionError` (a bug),
`conflict` raises `twofa.StoreConflict`; `mail-fail` raises `ConnectionError` (an `OSError`, as
smtplib does) and `mail-crash` raises `ZeroDivisionError`.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bindings" / "python" / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kinds import DOMAINS

import twofa

from scenario import Events, ScenarioFailed, as_json, call_op

KINDS = list(DOMAINS)
#: What a `corrupt` get returns: not JSON, not even UTF-8.
CORRUPT = b'{"corrupt\xff'
FIRST_VERSION = 100

Records = dict[str, tuple[bytes, int]]


class AdapterError(Exception):
    """A command the adapter cannot carry out (answered as the `adapter` error)."""


@dataclass
class Fault:
    """The armed fault: its kind, the call of its domain it fires at, the calls counted so far."""

    kind: str
    n: int
    seen: int = 0


class Adapter:
    """The store (`get`/`put`/`delete`, the `twofa.Store` contract over a dict), the mailer
    (`send`), the clock (`now`), the armed fault, and the engine over them."""

    def __init__(self) -> None:
        self.records: Records = {}
        self.slots: dict[str, Records] = {}
        self.next_version = FIRST_VERSION
        self.t = 0
        self.fault: Fault | None = None
        self.fired = False
        self.calls: list[str] = []
        self.mails: list[dict[str, Any]] = []
        #: The audit events of the current operation, as the core's JSON.
        self.events = Events()
        self.engine: twofa.Engine | None = None

    # -- the fault -------------------------------------------------------------------------

    def fires(self, domain: str) -> str | None:
        """Counts a call of `domain`; the fault's kind when it fires at this call."""
        fault = self.fault
        if fault is None or domain not in DOMAINS[fault.kind]:
            return None
        fault.seen += 1
        if fault.seen != fault.n:
            return None
        self.fault = None
        self.fired = True
        return fault.kind

    def inject(self, verb: str, key: str) -> str | None:
        """Counts a store call; raises for the kinds that make it fail (`fail`, `crash`,
        `conflict`), else returns the kind that fires here, if any."""
        kind = self.fires(verb)
        if kind == "fail":
            raise OSError(f"injected store failure: {verb} {key}")
        if kind == "crash":
            raise ZeroDivisionError(f"injected crash: {verb} {key}")
        if kind == "conflict":
            raise twofa.StoreConflict(key)
        return kind

    # -- the store ---------------------------------------------------------------------------

    def get(self, key: str) -> tuple[bytes, int] | None:
        self.calls.append(f"get {key}")
        found = self.records.get(key)
        kind = self.inject("get", key)
        if kind == "corrupt":
            return CORRUPT, found[1] if found else FIRST_VERSION
        if kind == "stale":
            return (found[0], found[1] - 1) if found else None
        return found

    def put(self, key: str, value: bytes, expected_version: int | None) -> int:
        self.calls.append(f"put {key}")
        self.inject("put", key)
        current = self.records.get(key)
        if (current[1] if current else None) != expected_version:
            raise twofa.StoreConflict(key)
        version = self.next_version
        self.next_version += 1
        self.records[key] = (bytes(value), version)
        return version

    def delete(self, key: str, expected_version: int) -> None:
        self.calls.append(f"delete {key}")
        self.inject("delete", key)
        current = self.records.get(key)
        if current is None or current[1] != expected_version:
            raise twofa.StoreConflict(key)
        del self.records[key]

    # -- the mailer and the clock -------------------------------------------------------------

    def send(self, message: twofa.Message) -> None:
        self.calls.append(f"send {message.to}")
        mail = {"to": message.to, "subject": message.subject, "text": message.text, "delivered": False}
        self.mails.append(mail)
        kind = self.fires("send")
        if kind == "mail-fail":
            raise ConnectionError(f"injected delivery failure: {message.to}")
        if kind == "mail-crash":
            raise ZeroDivisionError(f"injected crash: send {message.to}")
        mail["delivered"] = True

    def now(self) -> int:
        return self.t

    # -- the commands -------------------------------------------------------------------------

    def command(self, line: str) -> dict[str, Any]:
        """Answers one command line (README, "Protocol")."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        ok = {"ok": True}
        if name == "hello":
            return {"surface": "python", "kinds": KINDS, "crash_error": "storage"}
        if name == "config":
            self.engine = None
            self.records = {}
            try:
                self.engine = twofa.Engine(
                    json.loads(rest), store=self, mailer=self.send, clock=self.now, on_event=self.events
                )
            except twofa.TwofaError as e:
                return {"error": error_json(e)}
            return ok
        if name == "time":
            self.t = int(rest)
            return ok
        if name == "save":
            self.slots[rest] = dict(self.records)
            return ok
        if name == "load":
            if rest not in self.slots:
                raise AdapterError(f"no slot {rest!r}")
            self.records = dict(self.slots[rest])
            return ok
        if name == "dump":
            records = {
                key: {"value": base64.b64encode(value).decode(), "version": version}
                for key, (value, version) in sorted(self.records.items())
            }
            return {"records": records}
        if name == "fault":
            kind, _, n = rest.partition(" ")
            if kind == "none":
                self.fault = None
            elif kind in DOMAINS and n.strip().isdigit() and int(n) >= 1:
                self.fault = Fault(kind, int(n))
            else:
                raise AdapterError(f"bad fault {rest!r}")
            return ok
        if name in ("run", "admin"):
            user, _, request = rest.partition(" ")
            if not request:
                raise AdapterError(f"{name} needs a user and a request")
            return self.operation(name == "admin", user, request)
        raise AdapterError(f"unknown command {name!r}")

    def operation(self, admin: bool, user: str, request_json: str) -> dict[str, Any]:
        """`run`/`admin`: the request through the Engine method of its op."""
        if self.engine is None:
            raise AdapterError("no engine: send `config` first")
        request = json.loads(request_json)
        op = request.pop("op")
        self.calls, self.mails, self.fired = [], [], False
        self.events.clear()
        outcome: Any = None
        error: dict[str, Any] | None = None
        try:
            outcome = as_json(call_op(self.engine, f"admin.{op}" if admin else op, user, request))
        except twofa.TwofaError as e:
            error = error_json(e)
        except ScenarioFailed as e:
            raise AdapterError(str(e)) from e
        finally:
            self.fault = None
        return {
            "outcome": outcome,
            "error": error,
            "fired": self.fired,
            "calls": self.calls,
            "mails": self.mails,
            "events": list(self.events),
        }


def error_json(e: twofa.TwofaError) -> dict[str, Any]:
    """A `twofa.TwofaError` as the protocol's error object."""
    return {"name": e.name, "code": e.code, "message": e.message, "callback": e.callback}


def main() -> None:
    # The package logs every failed delivery with its traceback; the harness's output is enough.
    logging.getLogger("twofa").addHandler(logging.NullHandler())
    logging.getLogger("twofa").propagate = False
    adapter = Adapter()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = adapter.command(line.strip())
        except Exception as e:
            print(f"python adapter: {line[:200].strip()}: {e!r}", file=sys.stderr)
            answer = {"error": {"name": "adapter", "code": None, "message": str(e), "callback": None}}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
