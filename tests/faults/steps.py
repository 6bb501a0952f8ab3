"""The scenario's state on the driver's side: the clock, the values (saved variables, software
authenticators, delivered mails) and the op steps with what the fault-free run recorded.

The scenario runner's `Values` (bindings/python/tests/scenario.py) comes from the path
harness.py sets up."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from protocol import Answer, Mail
from snapshots import Records

from scenario import Values


@dataclass
class Clock:
    """The scenario's time, as the adapter's clock is set (`time`)."""

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
        """The step's operation (``admin.`` prefixed for the admin handle)."""
        return str(self.step["op"])

    @property
    def user(self) -> str:
        """The step's user."""
        return str(self.step["user"])

    @property
    def slot(self) -> str:
        """The adapter's store slot that keeps the before-state (`save`, `load`)."""
        return f"s{self.pos}"

    def where(self) -> str:
        """The step as a violation names it."""
        note = f": {self.step['note']}" if "note" in self.step else ""
        repeats = self.step.get("repeat", 1)
        rep = f" (run {self.rep + 1} of {repeats})" if repeats > 1 else ""
        return f"step {self.index}{rep} ({self.op} {self.user}{note})"


def event_kinds(answer: Answer) -> list[str]:
    """The kinds of the events an answer reports, in order."""
    return [str(e["kind"]) for e in answer.events]
