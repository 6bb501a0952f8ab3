"""The verdicts on a run whose fault fired (README, "The verdict"): rule 2 for a run that
answered as the scenario expects (the fault absorbed), rule 3 for one that failed, and the calls
of a run that single out where a fault may leave a trace."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from driver import Driver
from kinds import (
    BUDGET_PREFIX,
    CLAIM_PREFIX,
    CODE_OPS,
    CONFIRM_OPS,
    COOLDOWN,
    NEVER_ABSORBED,
    STORE_KINDS,
    expected_error,
)
from protocol import Answer, Violation, code_in
from snapshots import Records, changed, mismatch, outline
from steps import OpStep, State, event_kinds


@dataclass(frozen=True)
class FaultRun:
    """A run of an op step whose fault fired: what it answered, the store after it, and the
    call the fault hit."""

    op: OpStep
    kind: str
    #: The run as a violation names it.
    label: str
    answer: Answer
    after: Records
    #: The driver's state after the run.
    state: State
    #: The values the step's arguments were evaluated to.
    args: dict[str, Any]
    #: The index in `answer.calls` of the call the fault hit.
    faulted_at: int
    #: The answer, the fault-free answer and the store's difference, for a violation.
    details: str

    @property
    def faulted(self) -> str:
        """The call the fault hit (`verb key`)."""
        return self.answer.calls[self.faulted_at]


def absorbed(driver: Driver, run: FaultRun) -> None:
    """Rule 2: the answer the scenario expects, and the fault-free after-state's structure.

    A run may absorb any store fault at a WebAuthn credential claim released after the
    record's write committed: the change stands, and either the engine read the claim again
    and released it after all (a conflict or a stale read is retried), or the claim stays
    behind, stale, exactly as it was before the step (the next registration of that
    credential takes it over). A
    code the address budget refused is discarded from the record after the refusal; a fault
    there still answers the refusal (the first error): the discard may succeed all the same
    (it puts back the before-state without reading the record when its version is the
    pending write's), or the unsent pending code stays in the record (it never verifies, and
    holds the cooldown only until it is older than that)."""
    op, answer, after, label, details = run.op, run.answer, run.after, run.label, run.details
    stale_claim = unreleased_claim(op, answer, run.faulted_at)
    if stale_claim is not None and stale_claim not in after:
        stale_claim = None  # released on a retry: the fault-free after-state
    reference = None
    if stale_claim is not None:
        reference = {**op.after, stale_claim: op.before[stale_claim]}
    # A fault in the discard of a code the budget refused (the refusal stands).
    discard = undiscarded_code(op, answer, run.faulted_at)
    if discard is not None and after.get(discard) != op.after.get(discard):
        if discard not in after:
            raise Violation(f"{label}: a failed discard, but no record {discard} holds the pending code{details}")
        reference = {**op.after, discard: after[discard]}
        driver.counts.undiscarded += 1
    if run.kind in NEVER_ABSORBED and stale_claim is None and discard is None:
        raise Violation(
            f"{label}: answered {answer.got} as the scenario expects, but a {run.kind} fault cannot be absorbed"
            f" (the engine ignored a failed call or an unreadable record){details}"
        )
    driver.expect(op, answer, f"{label} (absorbed)", run.state, handed=run.kind.startswith("mail-"))
    if run.kind in STORE_KINDS and outline(answer.outcome) != outline(op.answer.outcome):
        raise Violation(
            f"{label}: absorbed, but the outcome has another structure than the fault-free one:\n"
            f"  {json.dumps(outline(answer.outcome))}\n"
            f"  fault-free: {json.dumps(outline(op.answer.outcome))}{details}"
        )
    like_reference(op, f"{label} (absorbed)", after, answer.summary(), reference)
    if stale_claim is not None:
        if after.get(stale_claim) != op.before[stale_claim]:
            raise Violation(f"{label}: the claim {stale_claim} whose release failed changed{details}")
        driver.counts.stale_claims += 1
    if event_kinds(answer) != event_kinds(op.answer):
        raise Violation(
            f"{label}: absorbed, but emitted events {event_kinds(answer)}, fault-free {event_kinds(op.answer)}{details}"
        )


def damaged_budget(driver: Driver, run: FaultRun) -> None:
    """A `corrupt` get of an address budget: the budget holds no secret, and a damaged one
    starts a new window (so it never blocks an address for good). The step answers as
    fault-free, or, where the budget refused the code fault-free, sends it; either way the
    budget now counts one code from now. The scenario's counts of that address no longer
    hold, so the op step after it is not run."""
    op, answer, after, label, details = run.op, run.answer, run.after, run.label, run.details
    budget = run.faulted.partition(" ")[2]
    fresh = json.loads(after[budget][0]) if budget in after else None
    if fresh != {"since": run.state.clock.t, "sent": 1}:
        raise Violation(f"{label}: the damaged budget {budget} was not replaced by a new window: {fresh}{details}")
    if answer.got == op.answer.got:
        driver.expect(op, answer, f"{label} (absorbed)", run.state)
        like_reference(op, f"{label} (absorbed)", after, answer.summary(), {**op.after, budget: after[budget]})
        if event_kinds(answer) != event_kinds(op.answer):
            raise Violation(
                f"{label}: absorbed, but emitted events {event_kinds(answer)}, fault-free"
                f" {event_kinds(op.answer)}{details}"
            )
    elif not (op.answer.got == "rate_limited" and answer.got == "ok" and len(answer.delivered()) == 1):
        raise Violation(f"{label}: answered {answer.got} after a damaged budget, fault-free {op.answer.got}{details}")
    driver.counts.budget_resets += 1


def like_reference(op: OpStep, label: str, after: Records, summary: str, reference: Records | None = None) -> None:
    """The store has the structure of the fault-free after-state (or of `reference`), and a
    record changed iff it changed fault-free."""
    found = mismatch(op.before, after, op.after if reference is None else reference)
    if found is not None:
        raise Violation(f"{label}: {found}\n  {summary}")


def failed(driver: Driver, run: FaultRun) -> bool:
    """Rule 3: the kind's error, the before-state exactly, and no code the failed run mailed
    (delivered or not: a failed operation arms none) is accepted.

    A trap (an error that is no twofa error: the component's `crash_error`) ends the instance
    mid-operation, and the outcome is unknown as after a panic: the records the run wrote
    before the trap may keep what it wrote. Returns whether the run committed the step (the
    store has the fault-free after-state's structure): then the step is not run again."""
    op, answer, after, label, details = run.op, run.answer, run.after, run.label, run.details
    want = expected_error(run.kind, op.op, driver.crash_error)
    if want is None or answer.got != want:
        expected = f"the answer {op.step.get('expect', 'ok')} (absorbed)" + (f" or {want}" if want else "")
        raise Violation(f"{label}: answered {answer.got}, expected {expected}{details}")
    assert answer.error is not None
    callback = answer.error["callback"]
    if callback is not None:
        verb = run.faulted.split(" ", 1)[0]
        if run.kind in STORE_KINDS and callback != f"store.{verb}":
            raise Violation(
                f"{label}: the error names callback {callback!r}, the fault was at `{run.faulted}`{details}"
            )
        if run.kind not in STORE_KINDS and str(callback).startswith("store."):
            raise Violation(f"{label}: a mail fault, but the error names callback {callback!r}{details}")
    charges = charged(op, answer, run.faulted_at)
    driver.counts.charges += bool(charges & changed(op.before, after))
    same_bytes = {k: v for k, (v, _) in after.items() if k not in charges} == {
        k: v for k, (v, _) in op.before.items() if k not in charges
    }
    renewed = {k for k in changed(op.before, after) if k in after and k in op.before} - charges
    committed = False
    if not same_bytes or renewed - written_back(op, answer, run.faulted_at):
        if answer.got in driver.codes:
            raise Violation(f"{label}: the step failed ({answer.got}) but the store is not its before-state{details}")
        written = {
            call.partition(" ")[2]
            for i, call in enumerate(answer.calls)
            if call.startswith(("put ", "delete ")) and i != run.faulted_at
        }
        if changed(op.before, after) - written:
            raise Violation(
                f"{label}: the step ended in {answer.got} and changed records it never wrote"
                f" ({sorted(changed(op.before, after) - written)}){details}"
            )
        # A trap at a claim's release came after the commit: the claim stays, stale.
        claim = unreleased_claim(op, answer, run.faulted_at)
        reference = None if claim is None else {**op.after, claim: op.before[claim]}
        committed = mismatch(op.before, after, op.after if reference is None else reference) is None
        driver.counts.partial += not committed
        driver.counts.committed += committed
        if driver.verbose:
            how = "committed" if committed else "half-written"
            print(f"    {answer.got}: {sorted(changed(op.before, after))} {how}", file=sys.stderr)
    else:
        driver.counts.renewed += bool(renewed)
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
            if run.args.get("step_up") is not None:
                request["step_up"] = run.args["step_up"]
        else:
            request = {
                "op": "login_verify",
                "challenge": run.args["challenge"],
                "proof": {"kind": "email", "value": code},
            }
        tried = driver.adapter.run(False, op.user, request)
        driver.counts.code_tries += 1
        what = "delivered" if mail.delivered else "undelivered"
        driver.check_error(tried, f"{label}, trying the {what} code")
        if tried.error is None:
            raise Violation(
                f"{label}: the code of a failed run's {what} mail to {mail.to} was accepted by {request['op']}"
                f"\n  the try: {tried.summary()}{details}"
            )
        if driver.verbose:
            print(f"    {what} code to {mail.to}: {tried.got}", file=sys.stderr)
    return committed


def dead_pending(driver: Driver, op: OpStep, state: State, label: str) -> None:
    """After a trap left a pending code: the step answers `rate_limited` until the code is
    older than the cooldown, and as the scenario says once it is. Then the store and the
    clock go back to the step's before-state, so that the retry and the op step after it
    meet the scenario's times and counts."""
    cooldown = int(driver.scenario["config"].get("email_code", {}).get("resend_cooldown_secs", COOLDOWN))
    refused, _ = driver.perform(op, state)
    driver.check_error(refused, f"{label}, then the step again at once")
    retry_after = refused.subject().get("retry_after") if refused.error is not None else None
    if refused.got != "rate_limited" or not (isinstance(retry_after, int) and 0 < retry_after <= cooldown):
        raise Violation(
            f"{label}: a trap left a pending code, yet the step again at once answered {refused.got}"
            f" (retry_after {retry_after}), not rate_limited within the cooldown\n  {refused.summary()}"
        )
    t = state.clock.t
    driver.set_time(state, t + cooldown)
    later, _ = driver.perform(op, state)
    driver.expect(op, later, f"{label}, then the step again after the cooldown", state)
    driver.adapter.ok(f"load {op.slot}")
    driver.set_time(state, t)
    driver.counts.dead_hosts += 1


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
