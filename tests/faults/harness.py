"""The fault-injection harness (tests/faults/README.md): runs the shared scenario on one surface
through its adapter and, for every operation step, injects every fault kind the adapter supports
at every call the step makes, judging each run by the README's rules.

    python tests/faults/harness.py [--kinds fail,stale] [--steps 40-60] [-v] -- <adapter command...>

It needs the Python environment of `make python-tests` (target/python-venv): the scenario's
values come from bindings/python/tests/scenario.py (pyotp, the software authenticator).
Exits 0 with a one-line summary, or 1 with the first violation, in full.

The pieces, beside this enumeration: `protocol` (the adapter process), `kinds` (the faults),
`snapshots` (store structures), `steps` (the driver's state, the op steps), `driver` (the checks
every run gets), `rules` (the verdicts on a fired fault) and `report` (the counts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python" / "tests"))

import rules
from driver import Driver
from kinds import BUDGET_PREFIX, CODE_OPS, DOMAINS
from protocol import ROOT, Adapter, Violation
from snapshots import calls_shape, changed, changed_shape, outline, show_diff, store_shape
from steps import OpStep, State, event_kinds

from scenario import ScenarioFailed, verify_no_secret_in_events

#: What `tests/export/cross_surface.py` takes from here.
__all__ = ["Adapter", "State", "Violation", "main"]

SCENARIO = ROOT / "tests" / "scenarios" / "security_tab.json"
#: More calls of one domain than any operation makes: the fault never stops firing.
MAX_N = 200


class Harness(Driver):
    """The fault-free run of the scenario, then every fault at every call of every op step."""

    def __init__(self, adapter: Adapter, scenario: dict[str, Any], verbose: bool) -> None:
        super().__init__(adapter, scenario, verbose)
        self.ops: list[OpStep] = []

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
        fired = rules.FaultRun(op, kind, label, answer, after, state, args, faulted_at, details)
        if self.verbose:
            print(f"  {label}: {answer.got} (faulted `{fired.faulted}`)", file=sys.stderr)
        tally = self.counts.tally[kind]
        if kind == "corrupt" and fired.faulted.startswith(f"get {BUDGET_PREFIX}"):
            rules.damaged_budget(self, fired)
            tally.absorbed += 1
            return True
        if answer.got == op.step.get("expect", "ok"):
            rules.absorbed(self, fired)
            tally.absorbed += 1
            self.next_step(op, state, label, details)
        else:
            committed = rules.failed(self, fired)
            tally.failed += 1
            if not committed:
                # Only the scenario's expectations: the retry's values are evaluated afresh (a
                # WebAuthn assertion carries the next signature counter), so its records may
                # differ in numbers from the fault-free run's.
                if rules.charged(op, answer, faulted_at) & changed(op.before, after):
                    # The scenario counts an address's codes exactly (`address_limit`): the
                    # retry starts from the before-state, without the failed run's charge.
                    self.adapter.ok(f"load {op.slot}")
                elif answer.got == self.crash_error != "storage" and op.op in CODE_OPS and after != op.before:
                    # The instance died after writing its pending code, as a host that dies
                    # between the write and the send: the code holds the resend cooldown (so a
                    # burst cannot get around it), and no longer than that.
                    rules.dead_pending(self, op, state, label)
                retry, _ = self.perform(op, state)
                self.expect(op, retry, f"{label}, then the step again without fault", state)
            else:
                # The trap came after the commit (at a notice): the step's saved values are the
                # fault-free run's, whose committed record has the same structure (a step-up
                # token, for one, verifies against it all the same).
                state.save(op.step, op.answer.subject())
            self.next_step(op, state, label, details)
        return True

    def next_step(self, op: OpStep, state: State, label: str, details: str) -> None:
        """The op step after `op` (the clock moved as the scenario says) goes as it says."""
        if op.pos + 1 >= len(self.ops):
            return
        nxt = self.ops[op.pos + 1]
        if nxt.state.clock.t != state.clock.t:
            self.set_time(state, nxt.state.clock.t)
        answer, _ = self.perform(nxt, state)
        self.expect(nxt, answer, f"{label}, then {nxt.where()}", state)

    def run(self, kinds: Sequence[str] | None, steps: range | None) -> None:
        """The fault-free run, then every fault run of the op steps of `steps` (None: all) for
        `kinds` (None: every kind the adapter supports); prints the summary."""
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
        commands, events = self.adapter.commands, len(self.adapter.events)
        print(self.counts.summary(self.surface, len(self.ops), kinds, (elapsed, reference_time), commands, events))


def parse_steps(text: str) -> range:
    """`--steps`: ``I`` or ``I-J``, both included."""
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def fail(message: str) -> NoReturn:
    """Ends the run with a message and exit status 1."""
    print(f"fault-tests: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def main(argv: list[str]) -> None:
    """The command line (see the module documentation)."""
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
