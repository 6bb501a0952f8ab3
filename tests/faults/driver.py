"""The scenario on one adapter: the surface's `hello`, the checks every run gets (an error's
code, the scenario's expectations), running one op step and setting the clock.

The scenario runner (bindings/python/tests/scenario.py) comes from the path harness.py sets up."""

from __future__ import annotations

import json
from typing import Any

from kinds import DOMAINS
from protocol import Adapter, Answer, Violation, code_in, status_codes
from report import Counts, Tally
from steps import OpStep, State

from scenario import ScenarioFailed, outcome_secrets, verify, verify_events


class Driver:
    """One adapter driven through the scenario, and what its runs counted."""

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
        self.counts = Counts({kind: Tally() for kind in self.kinds})
        #: Every value the runs handled as a secret (codes computed or mailed, secret outcome
        #: fields): no event may contain one.
        self.secrets: set[str] = set()

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
        """Sets the clock of the state and of the adapter."""
        state.clock.t = t
        self.adapter.ok(f"time {t}")
