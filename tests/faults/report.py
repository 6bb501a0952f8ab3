"""What the fault runs counted, and the summary line the harness prints at the end."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Tally:
    """The fault runs of one kind that fired: absorbed by the engine, or failed."""

    absorbed: int = 0
    failed: int = 0


@dataclass
class Counts:
    """The counters of a harness run, beside the tally per kind."""

    tally: dict[str, Tally]
    #: Codes mailed by failed runs that were tried, and refused.
    code_tries: int = 0
    #: Failed runs that wrote the before bytes back under a new version (`written_back`).
    renewed: int = 0
    #: Failed runs that left an address budget charged (`charged`).
    charges: int = 0
    #: Absorbed runs that left a credential claim behind (`unreleased_claim`).
    stale_claims: int = 0
    #: Absorbed runs whose discard of a refused code failed (`undiscarded_code`).
    undiscarded: int = 0
    #: Runs that met a damaged address budget (`damaged_budget`).
    budget_resets: int = 0
    #: Traps that left a pending code holding the cooldown (`dead_pending`).
    dead_hosts: int = 0
    #: Traps that left a record half-written.
    partial: int = 0
    #: Traps after the step committed.
    committed: int = 0

    def traps(self) -> str:
        """The traps, if any."""
        if not self.partial + self.committed:
            return ""
        return f", {self.committed} traps after the step committed, {self.partial} traps left a record half-written"

    def summary(
        self, surface: str, op_steps: int, kinds: list[str], seconds: tuple[float, float], commands: int, events: int
    ) -> str:
        """The line a passing run prints; `seconds`: the whole run's and the fault-free run's."""
        elapsed, reference_time = seconds
        runs = ", ".join(
            f"{k} {t.absorbed + t.failed} ({t.absorbed} absorbed, {t.failed} failed)"
            for k, t in self.tally.items()
            if k in kinds
        )
        total = sum(t.absorbed + t.failed for t in self.tally.values())
        return (
            f"fault-tests {surface}: {op_steps} op steps, {total} fault runs in {elapsed:.1f} s"
            f" (fault-free run {reference_time:.1f} s, {commands} commands,"
            f" {self.code_tries} mailed codes of failed runs refused, {self.renewed} failed runs wrote the"
            f" before bytes back under a new version, {self.charges} kept an address budget's charge,"
            f" {self.stale_claims} absorbed runs left a credential claim stale, {self.undiscarded} left a refused"
            f" code pending, {self.budget_resets} replaced a damaged address budget{self.traps()}"
            f"{f', {self.dead_hosts} pending codes of dead instances waited out' if self.dead_hosts else ''},"
            f" {events} events"
            f" without a secret): {runs}"
        )
