"""Results and their statistics: each case's median and range over the rounds, and each pair's
ratio taken within each round."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measurements import BenchError, is_measurement
from peers import PAIRS, Pair


@dataclass(frozen=True)
class Measure:
    """One case in one round: ns per operation (unit "ns"), or a value in its unit."""

    value: float
    unit: str


@dataclass(frozen=True)
class Results:
    """A run's results: its context and, per round, every case measured."""

    date: str
    command: str
    quick: bool
    machine: dict[str, str]
    versions: dict[str, str]
    loadavg: list[str]
    rounds: list[dict[str, Measure]]


def results_from_raw(raw: dict[str, Any]) -> Results:
    """Checks raw results (as saved) and indexes each round's cases."""
    if raw.get("format") != 1 or not raw.get("rounds"):
        raise BenchError("not a bench/run.py results file (format 1, at least one round)")
    rounds = []
    for index, entry in enumerate(raw["rounds"], 1):
        cases: dict[str, Measure] = {}
        for suite, lines in entry["suites"].items():
            for line in lines:
                if not is_measurement(line) or line["case"] in cases:
                    raise BenchError(f"round {index}, suite {suite}: bad or repeated measurement {line!r}")
                ns = "ns" in line
                cases[line["case"]] = Measure(float(line["ns"] if ns else line["value"]), "ns" if ns else line["unit"])
        rounds.append(cases)
    return Results(
        date=raw["date"],
        command=raw["command"],
        quick=raw["quick"],
        machine=raw["machine"],
        versions=raw["versions"],
        loadavg=[entry["loadavg"] for entry in raw["rounds"]],
        rounds=rounds,
    )


def load_results(path: Path) -> Results:
    """Reads a results file written by `measure`."""
    try:
        return results_from_raw(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise BenchError(f"cannot use {path}: {error!r}") from None


@dataclass(frozen=True)
class Stat:
    """The median and range of one figure over the rounds that have it."""

    median: float
    low: float
    high: float
    rounds: int


def stat(values: list[float]) -> Stat:
    """The median, min and max of a non-empty list."""
    return Stat(statistics.median(values), min(values), max(values), len(values))


def case_stats(rounds: list[dict[str, Measure]]) -> dict[str, Stat]:
    """Per case, its statistics over the rounds."""
    values: dict[str, list[float]] = {}
    for cases in rounds:
        for case, measure in cases.items():
            values.setdefault(case, []).append(measure.value)
    return {case: stat(found) for case, found in sorted(values.items())}


def case_units(rounds: list[dict[str, Measure]]) -> dict[str, str]:
    """Per case, its unit ("ns" for times)."""
    return {case: measure.unit for cases in rounds for case, measure in cases.items()}


def ratio_stat(rounds: list[dict[str, Measure]], pair: Pair) -> Stat | None:
    """The statistics of twofa / peer taken within each round that has both; None if none has."""
    ratios = [
        cases[pair.twofa].value / cases[pair.peer].value for cases in rounds if {pair.twofa, pair.peer} <= cases.keys()
    ]
    return stat(ratios) if ratios else None


@dataclass(frozen=True)
class Summary:
    """Everything the report shows, computed from the results."""

    results: Results
    cases: dict[str, Stat]
    units: dict[str, str]
    ratios: dict[Pair, Stat]

    @classmethod
    def of(cls, results: Results) -> Summary:
        """Aggregates results."""
        pairs = {pair: ratio_stat(results.rounds, pair) for pair in PAIRS}
        ratios = {pair: found for pair, found in pairs.items() if found is not None}
        return cls(results, case_stats(results.rounds), case_units(results.rounds), ratios)

    def times(self, predicate: Callable[[str], bool]) -> list[str]:
        """The time cases (ns) whose workload satisfies `predicate`."""
        return [case for case in self.cases if self.units[case] == "ns" and predicate(case.split("/")[0])]

    def values(self, workload: str) -> list[str]:
        """The value cases of one workload."""
        return [case for case in self.cases if case.split("/")[0] == workload and self.units[case] != "ns"]
