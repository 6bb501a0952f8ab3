#!/usr/bin/env python3
"""The benchmark orchestrator (`make bench`): runs the suites of bench/README.md in rounds,
keeps their raw results, and writes docs/benchmarks.md and docs/benchmarks.svg.

    python3 bench/run.py [--rounds N] [--quick] [--only rust,python,node]
                         [--out docs/benchmarks.md] [--results target/bench/results.json]
                         [--from-results FILE]

Per case it reports the median and min-max over the rounds; per pair, the ratio twofa / peer
computed within each round, then the median and min-max of those ratios.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "bench" / "fixture.json"
BENCH_PYTHON = ROOT / "target" / "bench-venv" / "bin" / "python"
NOTES_BEGIN = "<!-- notes -->"
NOTES_END = "<!-- /notes -->"
DEFAULT_NOTES = (
    "_Hand-written: explain here every missed goal and every surprise (what costs the time, what was\n"
    "tried). `bench/run.py` keeps this block when it writes the page again._"
)
TIMES = "\u00d7"  # the multiplication sign of "0.5x"
DASH = "\u2013"  # the en dash of "min-max" ranges
MIN_MAX = f"Min{DASH}max"
MICRO = "µs"
LE = "≤"

# The suites (bench/README.md) and the file each needs; `suite_command` gives their command lines.
SUITE_FILES = {"rust": "bench/rust/Cargo.toml", "python": "bench/python/bench.py", "node": "bench/node/bench.mjs"}
# Rust crates whose versions the report lists (read from Cargo.lock).
PEER_CRATES = ["totp-rs", "webauthn-rs-core", "ring", "p256", "hmac", "sha1", "wasmtime", "rusqlite"]


class BenchError(Exception):
    """A suite failed or broke the protocol, or a results file cannot be used."""


# ---------------------------------------------------------------------------------------------
# What is compared


@dataclass(frozen=True)
class Pair:
    """A ratio row: the twofa case divided by the peer case, both in ns per operation."""

    twofa: str
    peer: str

    @property
    def workload(self) -> str:
        """The workload of the twofa case (`totp`, `webauthn`)."""
        return self.twofa.split("/")[0]


@dataclass(frozen=True)
class Goal:
    """A target for the median ratio of one of the PAIRS: at most `limit`, or below it if `strict`."""

    label: str
    pair: Pair
    limit: float
    strict: bool = False
    aim: bool = False

    def met(self, ratio: float) -> bool:
        """Whether `ratio` meets the goal."""
        return ratio < self.limit if self.strict else ratio <= self.limit

    @property
    def bound(self) -> str:
        """The goal as text, e.g. "<= 0.5x" (with the proper signs)."""
        return f"{'<' if self.strict else LE} {self.limit:g}{TIMES}"


def cross(workload: str, subjects: list[str], variants: list[str], peers: list[str]) -> list[Pair]:
    """Every `workload/subject/variant` divided by every `workload/peer`."""
    return [
        Pair(f"{workload}/{subject}/{variant}", f"{workload}/{peer}")
        for subject in subjects
        for variant in variants
        for peer in peers
    ]


BOTH = ["memory", "sqlite"]
RUST = ["native", "c", "wasmtime"]
PAIRS = [
    *cross("totp", ["python"], BOTH, ["pyotp"]),
    *cross("totp", ["node-koffi"], BOTH, ["otplib"]),
    *cross("totp", ["node-jco"], ["memory"], ["otplib"]),
    *cross("totp", RUST, BOTH, ["totp-rs", "floor-hmac-sha1x3"]),
    Pair("totp/wasmtime/memory", "totp/native/memory"),
    *cross("webauthn", ["python"], BOTH, ["py_webauthn"]),
    *cross("webauthn", ["node-koffi"], BOTH, ["simplewebauthn"]),
    *cross("webauthn", ["node-jco"], ["memory"], ["simplewebauthn"]),
    *cross("webauthn", RUST, BOTH, ["webauthn-rs-core"]),
    *cross("webauthn", ["native"], ["memory"], ["floor-ring-p256", "floor-p256"]),
]
GOALS = [
    Goal("Python · TOTP", Pair("totp/python/memory", "totp/pyotp"), 0.5),
    Goal("Python · WebAuthn", Pair("webauthn/python/memory", "webauthn/py_webauthn"), 1, strict=True),
    Goal("Node · TOTP", Pair("totp/node-koffi/memory", "totp/otplib"), 0.2),
    Goal("Node · WebAuthn", Pair("webauthn/node-koffi/memory", "webauthn/simplewebauthn"), 1, strict=True),
    Goal("Rust · TOTP", Pair("totp/native/memory", "totp/floor-hmac-sha1x3"), 10, aim=True),
    Goal("Rust · WebAuthn", Pair("webauthn/native/memory", "webauthn/webauthn-rs-core"), 1, strict=True),
    Goal("WASI · TOTP", Pair("totp/wasmtime/memory", "totp/native/memory"), 3),
]
WORKLOAD_TITLES = {"totp": "TOTP", "webauthn": "WebAuthn"}


# ---------------------------------------------------------------------------------------------
# Running the suites


def is_number(value: object) -> bool:
    """A finite JSON number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_measurement(obj: object) -> bool:
    """Whether a parsed line follows the protocol: a case id with `ns` + `ops`, or `value` + `unit`."""
    if not isinstance(obj, dict) or not isinstance(obj.get("case"), str) or "/" not in obj["case"]:
        return False
    if "ns" in obj:
        return is_number(obj["ns"]) and obj["ns"] > 0 and isinstance(obj.get("ops"), int)
    return is_number(obj.get("value")) and isinstance(obj.get("unit"), str) and obj["unit"] != ""


def parse_output(suite: str, stdout: str) -> list[dict[str, Any]]:
    """The measurements a suite printed, one JSON object per non-empty line; BenchError otherwise."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            raise BenchError(f"suite {suite}: stdout line {number} is not JSON ({error.msg}): {line!r}") from None
        if not is_measurement(obj):
            raise BenchError(f"suite {suite}: stdout line {number} breaks the protocol of bench/README.md: {line!r}")
        if obj["case"] in seen:
            raise BenchError(f"suite {suite}: case {obj['case']} printed twice")
        seen.add(obj["case"])
        lines.append(obj)
    return lines


def run_suite(suite: str, command: list[str]) -> list[dict[str, Any]]:
    """Runs one suite (its stderr goes straight to ours) and returns its measurements."""
    print(f"== {suite}: {shlex.join(command)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    except OSError as error:
        raise BenchError(f"suite {suite} could not start: {error}") from None
    if done.returncode != 0:
        raise BenchError(f"suite {suite} failed with exit status {done.returncode} (its stderr is above)")
    lines = parse_output(suite, done.stdout)
    if not lines:
        raise BenchError(f"suite {suite} printed no measurements")
    print(f"== {suite}: {len(lines)} measurements in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return lines


def suite_command(suite: str, python: str, quick: bool) -> list[str]:
    """The command line of one suite run."""
    args = [*(["--quick"] if quick else []), "--fixture", str(FIXTURE)]
    if suite == "rust":
        return ["cargo", "run", "--quiet", "--release", "-p", "twofa-bench", "--bin", "twofa-bench", "--", *args]
    if suite == "python":
        return [python, str(ROOT / SUITE_FILES["python"]), *args]
    return ["node", str(ROOT / SUITE_FILES["node"]), *args]


def round_order(suites: list[str], index: int) -> list[str]:
    """The suites in the order of round `index` (0-based): rotated by one place per round."""
    shift = index % len(suites)
    return suites[shift:] + suites[:shift]


def measure(suites: list[str], rounds: int, quick: bool, argv: list[str], save_to: Path) -> dict[str, Any]:
    """Runs every suite once per round and returns the raw results, saving them after each round."""
    missing = [suite for suite in suites if not (ROOT / SUITE_FILES[suite]).exists()]
    if missing:
        raise BenchError(f"no suite {', '.join(missing)} ({', '.join(SUITE_FILES[s] for s in missing)} missing)")
    python = str(BENCH_PYTHON) if BENCH_PYTHON.exists() else sys.executable
    raw: dict[str, Any] = {
        "format": 1,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["bench/run.py", *argv]),
        "quick": quick,
        "machine": machine_info(),
        "versions": versions(python),
        "rounds": [],
    }
    for index in range(rounds):
        order = round_order(suites, index)
        print(f"== round {index + 1}/{rounds}: {', '.join(order)}", file=sys.stderr, flush=True)
        entry: dict[str, Any] = {"order": order, "loadavg": load_average(), "suites": {}}
        for suite in order:
            entry["suites"][suite] = run_suite(suite, suite_command(suite, python, quick))
        raw["rounds"].append(entry)
        save_to.parent.mkdir(parents=True, exist_ok=True)
        save_to.write_text(json.dumps(raw, indent=1) + "\n")
    return raw


# ---------------------------------------------------------------------------------------------
# Machine and versions


def read_text(path: str | Path) -> str:
    """A file's text, or "" if it cannot be read."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def command_output(command: list[str]) -> str:
    """The first line a command prints, or "unknown"."""
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    lines = done.stdout.strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else "unknown"


def machine_info() -> dict[str, str]:
    """CPU model, cores, memory and kernel (from /proc and uname)."""
    cpu = re.search(r"^model name\s*:\s*(.+)$", read_text("/proc/cpuinfo"), re.MULTILINE)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", read_text("/proc/meminfo"), re.MULTILINE)
    uname = platform.uname()
    return {
        "cpu": cpu.group(1).strip() if cpu else "unknown",
        "cores": str(os.cpu_count() or "unknown"),
        "memory": f"{int(memory.group(1)) / 1024**2:.1f} GiB" if memory else "unknown",
        "kernel": f"{uname.system} {uname.release} {uname.machine}",
    }


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them."""
    return " ".join(read_text("/proc/loadavg").split()[:3]) or "unknown"


def requirement_names(path: Path) -> list[str]:
    """The distribution names of a pip requirements file."""
    names = []
    for line in read_text(path).splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s=<>!~\[;]", line)[0])
    return names


# Prints, as one JSON line, Python's version and the installed version of each distribution named.
VERSIONS_SCRIPT = """
import importlib.metadata, json, sys
def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
print(json.dumps({"Python": sys.version.split()[0], **{f"{name} (PyPI)": version(name) for name in sys.argv[1:]}}))
"""


def python_versions(python: str) -> dict[str, str]:
    """Python's version and the bench requirements' installed versions, asked of `python`."""
    names = requirement_names(ROOT / "bench" / "python" / "requirements.txt")
    found = command_output([python, "-c", VERSIONS_SCRIPT, *names])
    return dict(json.loads(found)) if found.startswith("{") else {"Python": "unknown"}


def node_versions() -> dict[str, str]:
    """Node's version and the versions installed in bench/node/node_modules."""
    found = {"Node.js": command_output(["node", "--version"])}
    package = read_text(ROOT / "bench" / "node" / "package.json")
    manifest = json.loads(package) if package else {}
    for name in sorted({**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}):
        installed = read_text(ROOT / "bench" / "node" / "node_modules" / name / "package.json")
        found[f"{name} (npm)"] = json.loads(installed)["version"] if installed else "not installed"
    return found


def rust_versions() -> dict[str, str]:
    """rustc's version and the peer crates' versions in Cargo.lock."""
    found = {"rustc": command_output(["rustc", "--version"])}
    locked = re.findall(r'^name = "([^"]+)"\nversion = "([^"]+)"', read_text(ROOT / "Cargo.lock"), re.MULTILINE)
    for crate in PEER_CRATES:
        crate_versions = [version for name, version in locked if name == crate]
        if crate_versions:
            found[f"{crate} (crate)"] = ", ".join(crate_versions)
    return found


def versions(python: str) -> dict[str, str]:
    """Every version the report lists."""
    return {**rust_versions(), **python_versions(python), **node_versions()}


# ---------------------------------------------------------------------------------------------
# Results and their statistics


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


def verdict(goal: Goal, ratio: Stat | None) -> str:
    """Whether a goal is met, by how much, and whether every round agrees."""
    if ratio is None:
        return "no data"
    share = ratio.median / goal.limit
    if goal.met(ratio.median):
        text = f"**met**, {(1 - share) * 100:.0f}% under the limit"
        if not goal.met(ratio.high):
            text += f" (not in every round: up to {num(ratio.high)}{TIMES})"
    else:
        by = f"{share:.1f} times the limit" if share >= 2 else f"{(share - 1) * 100:.0f}% over the limit"
        text = f"**missed**, {by}"
        if goal.met(ratio.low):
            text += f" (met in some rounds: down to {num(ratio.low)}{TIMES})"
    return text


# ---------------------------------------------------------------------------------------------
# The report


def num(value: float, digits: int = 3) -> str:
    """`value` with about `digits` significant digits, never in exponent form."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def span(s: Stat, scale: float = 1, suffix: str = "") -> str:
    """A statistic's min-max range, divided by `scale`."""
    return f"{num(s.low / scale)}{DASH}{num(s.high / scale)}{suffix}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def code(case: str) -> str:
    """A case id as inline code."""
    return f"`{case}`"


def read_notes(path: Path) -> str:
    """The hand-written notes block of an existing report (markers included), else a fresh one."""
    text = read_text(path)
    start = text.find(NOTES_BEGIN)
    end = text.find(NOTES_END, start)
    if start >= 0 and end >= 0:
        return text[start : end + len(NOTES_END)]
    return f"{NOTES_BEGIN}\n{DEFAULT_NOTES}\n{NOTES_END}"


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


def section_context(summary: Summary) -> str:
    """How to reproduce, when, where and with what."""
    results = summary.results
    machine = results.machine
    quick = " It was a `--quick` run: short chunks, rough figures." if results.quick else ""
    loads = "; ".join(results.loadavg)
    return f"""## Reproduce

```sh
make bench                                  # sets everything up, 5 rounds, writes this page and the chart
make bench BENCH_ARGS=--quick               # a short smoke run
make bench BENCH_ARGS="--rounds 9 --only rust,python"
python3 bench/run.py --from-results target/bench/results.json   # only re-render from saved results
```

The method, the case ids and the fixture are in [bench/README.md](../bench/README.md).

## This run

- **Date**: {results.date}, `{results.command}`, rounds: {len(results.rounds)}.{quick}
- **Machine**: {machine["cpu"]}, {machine["cores"]} cores, {machine["memory"]}, {machine["kernel"]}.
  The machine is shared with other jobs; load average (1, 5, 15 min) at the start of each round: {loads}.

Versions (the peers' as installed for the suites):

{table(["Component", "Version"], [[name, code(version)] for name, version in results.versions.items()])}
"""


def section_goals(summary: Summary) -> str:
    """The goals table."""
    rows = []
    for goal in GOALS:
        ratio = summary.ratios.get(goal.pair)
        figure = [f"{num(ratio.median)}{TIMES}", span(ratio, suffix=TIMES)] if ratio else ["", ""]
        name = goal.label + (" (an aim)" if goal.aim else "")
        rows.append(
            [name, f"{code(goal.pair.twofa)} ÷ {code(goal.pair.peer)}", *figure, goal.bound, verdict(goal, ratio)]
        )
    header = ["Goal", "Pair", "Median", MIN_MAX, "Limit", "Verdict"]
    return (
        "## Goals\n\nEach figure is a ratio of times per operation, twofa ÷ the other, taken within each round "
        f"(median and range over the rounds); below 1{TIMES} twofa is faster.\n\n" + table(header, rows) + "\n"
    )


def section_ratios(summary: Summary, workload: str) -> str:
    """The ratio table of one workload."""
    rows = []
    for pair in PAIRS:
        ratio = summary.ratios.get(pair)
        if pair.workload != workload or ratio is None:
            continue
        twofa, peer = summary.cases[pair.twofa], summary.cases[pair.peer]
        rows.append(
            [
                code(pair.twofa),
                code(pair.peer),
                f"**{num(ratio.median)}{TIMES}**",
                span(ratio, suffix=TIMES),
                num(twofa.median / 1000),
                num(peer.median / 1000),
                str(ratio.rounds),
            ]
        )
    title = WORKLOAD_TITLES[workload]
    if not rows:
        return f"## {title}: twofa ÷ peer\n\nNo pair of this workload is in these results.\n"
    header = ["twofa", "Peer", "Ratio", MIN_MAX, f"twofa {MICRO}", f"Peer {MICRO}", "Rounds"]
    return (
        f"## {title}: twofa ÷ peer\n\nRatio of times per operation, twofa ÷ peer, taken within each round; "
        f"the last columns are the median {MICRO} per operation of each side.\n\n" + table(header, rows) + "\n"
    )


def section_times(summary: Summary) -> str:
    """Absolute times of the whole operations, twofa's and the peers' (the halves and email have their own)."""
    cases = summary.times(lambda workload: not workload.endswith(("-begin", "-verify")) and workload != "email")
    rows = [
        [code(c), num(summary.cases[c].median / 1000), span(summary.cases[c], 1000), str(summary.cases[c].rounds)]
        for c in cases
    ]
    return (
        f"## Time per operation\n\nMicroseconds ({MICRO}) per operation: median and min{DASH}max over the rounds "
        "(each round's figure is the suite's median chunk).\n\n"
        + table(["Case", f"Median {MICRO}", f"{MIN_MAX} {MICRO}", "Rounds"], rows)
        + "\n"
    )


def subjects_of(summary: Summary, workloads: list[str]) -> list[str]:
    """The `subject[/variant]` parts of the cases of these workloads."""
    return sorted({short(case) for case in summary.cases if case.split("/")[0] in workloads})


def joined_rows(summary: Summary, workloads: list[str], subjects: list[str]) -> list[list[str]]:
    """One row per subject with, per workload, `median (min-max)` in us, or "" if absent."""
    rows = []
    for subject in subjects:
        row = [code(subject)]
        for workload in workloads:
            s = summary.cases.get(f"{workload}/{subject}")
            row.append(f"{num(s.median / 1000)} ({span(s, 1000)})" if s else "")
        rows.append(row)
    return rows


def section_split(summary: Summary) -> str:
    """Begin and verify halves of each workload that has them."""
    bases = sorted(
        {case.split("/")[0].removesuffix("-begin") for case in summary.cases if case.split("/")[0].endswith("-begin")}
    )
    parts = [
        f"## Begin and verify\n\n{MICRO} per operation, median (min{DASH}max) over the rounds: `login_begin` and "
        "`login_verify` timed apart, next to the whole unit of work."
    ]
    for base in bases:
        header = ["Subject", f"{base}-begin", f"{base}-verify", f"{base} (whole)"]
        halves = [f"{base}-begin", f"{base}-verify"]
        parts.append(table(header, joined_rows(summary, [*halves, base], subjects_of(summary, halves))))
    if not bases:
        parts.append("Not in these results.")
    return "\n\n".join(parts) + "\n"


def section_email(summary: Summary) -> str:
    """Email codes: send + verify, and verify alone."""
    workloads = ["email", "email-verify"]
    rows = joined_rows(summary, workloads, subjects_of(summary, workloads))
    body = table(["Subject", "send + verify", "verify alone"], rows) if rows else "Not in these results."
    return (
        f"## Email codes\n\n{MICRO} per sign-in, median (min{DASH}max): `login_send_email_code` to an in-process "
        f"mailer then `login_verify`, and `login_verify` alone.\n\n{body}\n"
    )


def value_cell(s: Stat, unit: str) -> tuple[str, str]:
    """A value's median and range, in MiB for KiB figures."""
    if unit == "KiB":
        return f"{num(s.median / 1024)} MiB", span(s, 1024, " MiB")
    return f"{num(s.median)} {unit}", span(s, suffix=f" {unit}")


def section_values(summary: Summary, title: str, sentence: str, workloads: list[str]) -> str:
    """A table of value cases (throughput, memory, sizes)."""
    rows = []
    for workload in workloads:
        for case in summary.values(workload):
            rows.append(
                [code(case), *value_cell(summary.cases[case], summary.units[case]), str(summary.cases[case].rounds)]
            )
    body = table(["Case", "Median", MIN_MAX, "Rounds"], rows) if rows else "Not in these results."
    return f"## {title}\n\n{sentence}\n\n{body}\n"


def section_memory(summary: Summary) -> str:
    """Peak RSS and the baseline before the first sign-in, side by side."""
    rows = []
    for subject in subjects_of(summary, ["rss", "rss-baseline"]):
        peak, base = summary.cases.get(f"rss/{subject}"), summary.cases.get(f"rss-baseline/{subject}")
        growth = num((peak.median - base.median) / 1024) if peak and base else ""
        rows.append([code(subject), *(num(s.median / 1024) if s else "" for s in (peak, base)), growth])
    body = table(["Subject", "Peak", "Baseline", "Growth"], rows) if rows else "Not in these results."
    return (
        "## Memory\n\nMiB of resident memory (medians over the rounds): the peak of a process doing 100,000 TOTP "
        "sign-ins (fewer in a `--quick` run; `rss/...`), and the same process before its first sign-in "
        "(`rss-baseline/...`).\n\n"
        f"{body}\n"
    )


def section_missing(summary: Summary) -> str:
    """The cases that pairs or goals need but these results lack."""
    wanted = [case for pair in PAIRS for case in (pair.twofa, pair.peer)]
    missing = sorted(set(wanted) - summary.cases.keys())
    if not missing:
        return ""
    return (
        "## Not in these results\n\nThe rows and goals that need these cases are left out: "
        + ", ".join(code(case) for case in missing)
        + ".\n"
    )


def render_markdown(summary: Summary, notes: str, chart: str) -> str:
    """The whole report."""
    known = {"sqlite-throughput", "rss", "rss-baseline", "size"}  # the workloads of the sections above
    other = sorted({case.split("/")[0] for case in summary.cases if summary.units[case] != "ns"} - known)
    sections = [
        "# Benchmarks\n\n<!-- Written by bench/run.py (make bench): only the notes block survives re-rendering. -->\n\n"
        "twofa's sign-in checks against the libraries a user of each language would otherwise pick, run in one "
        "sitting on one machine.\n\n"
        f"![Ratios of twofa's time to its peers', with the goals]({chart})\n",
        section_context(summary),
        section_goals(summary),
        f"## Notes\n\n{notes}\n",
        section_ratios(summary, "totp"),
        section_ratios(summary, "webauthn"),
        section_times(summary),
        section_split(summary),
        section_email(summary),
        section_values(
            summary,
            "SQLite throughput",
            f"Sign-ins per second (ops/s) on the embedded SQLite store, the workers sharing one file: median and "
            f"min{DASH}max.",
            ["sqlite-throughput"],
        ),
        section_memory(summary),
        section_values(summary, "Sizes", "Size on disk of the release builds, in bytes.", ["size"]),
    ]
    if other:
        sections.append(section_values(summary, "Other measures", "Each in the unit its suite gave.", other))
    sections.append(section_missing(summary))
    return "\n".join(section for section in sections if section).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# The chart

SVG_WIDTH = 820
PLOT_LEFT, PLOT_RIGHT = 260, 660
ROW_HEIGHT = 50
PLOT_TOP = 128
FONT = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
MET, MISSED, NO_DATA, INK, GREY, GRID = "#1a7f37", "#cf222e", "#8c959f", "#1f2328", "#57606a", "#d0d7de"


@dataclass(frozen=True)
class Scale:
    """The log-scale x axis: whole decades from `low` to `high` over the plot's width."""

    low: float
    high: float

    @classmethod
    def covering(cls, values: list[float]) -> Scale:
        """Whole decades covering `values`, at least 0.1 to 10."""
        low, high = min([0.1, *values]), max([10.0, *values])
        return cls(10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high)))

    def x(self, value: float) -> float:
        """The x coordinate of a ratio."""
        share = math.log10(value / self.low) / math.log10(self.high / self.low)
        return PLOT_LEFT + share * (PLOT_RIGHT - PLOT_LEFT)

    def ticks(self) -> list[tuple[float, bool]]:
        """1, 2 and 5 times each decade within the scale, each with whether it is a decade."""
        decades = round(math.log10(self.high / self.low))
        found = [(self.low * 10**d * step, step == 1) for d in range(decades + 1) for step in (1, 2, 5)]
        return [(value, major) for value, major in found if value <= self.high * 1.0001]


def svg_text(
    x: float, y: float, text: str, size: float, fill: str = INK, anchor: str = "start", weight: str = "normal"
) -> str:
    """An SVG text element."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" text-anchor="{anchor}" '
        f'font-weight="{weight}">{html.escape(text)}</text>'
    )


def svg_line(x1: float, y1: float, x2: float, y2: float, stroke: str, width: float) -> str:
    """An SVG line element."""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" stroke-width="{width}"/>'


def short(case: str) -> str:
    """A case id without its workload."""
    return case.split("/", 1)[1]


def render_svg(summary: Summary) -> str:
    """The chart: per goal, the median ratio as a bar from 1x on a log scale, min-max whiskers and the goal."""
    rows = [(goal, summary.ratios.get(goal.pair)) for goal in GOALS]
    scale = Scale.covering([v for goal, r in rows for v in [goal.limit, *([r.low, r.high] if r else [])]])
    bottom = PLOT_TOP + len(rows) * ROW_HEIGHT
    height = bottom + 62
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{height}" '
        f'viewBox="0 0 {SVG_WIDTH} {height}" font-family="{FONT}" role="img" '
        'aria-label="twofa time divided by its peers time per language, with the goals">',
        f'<rect width="{SVG_WIDTH}" height="{height}" fill="#ffffff"/>',
        *svg_title(summary.results),
        *svg_legend(98),
        *svg_axis(scale, bottom),
    ]
    for index, (goal, ratio) in enumerate(rows):
        parts += svg_row(goal, ratio, PLOT_TOP + (index + 0.5) * ROW_HEIGHT, scale)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def svg_title(results: Results) -> list[str]:
    """The title and the two lines that say what the bars are."""
    quick = " (a --quick run)" if results.quick else ""
    return [
        svg_text(16, 30, "twofa ÷ the library each language would otherwise use", 18, weight="600"),
        svg_text(16, 52, f"Time per sign-in check, log scale: below 1{TIMES} twofa is faster.", 12.5, GREY),
        svg_text(
            16,
            70,
            f"Bar: median of the per-round ratios over {len(results.rounds)} rounds{quick}; "
            f"whisker: min{DASH}max; {results.date}.",
            12.5,
            GREY,
        ),
    ]


def svg_legend(y: float) -> list[str]:
    """The legend line: bar colours, the goal tick and the whisker."""
    return [
        f'<rect x="16" y="{y - 10}" width="14" height="12" fill="{MET}"/>',
        svg_text(36, y, "goal met", 12.5),
        f'<rect x="110" y="{y - 10}" width="14" height="12" fill="{MISSED}"/>',
        svg_text(130, y, "goal missed", 12.5),
        svg_line(230, y - 13, 230, y + 3, INK, 3),
        svg_text(240, y, "goal (limit)", 12.5),
        svg_line(330, y - 4, 360, y - 4, INK, 1.5),
        svg_line(330, y - 9, 330, y + 1, INK, 1.5),
        svg_line(360, y - 9, 360, y + 1, INK, 1.5),
        svg_text(368, y, f"min{DASH}max over rounds; the black line at 1{TIMES}: as fast as the peer", 12.5),
    ]


def svg_axis(scale: Scale, bottom: float) -> list[str]:
    """Grid lines at 1, 2 and 5 per decade, decade labels, and the line at 1x."""
    parts = []
    for value, major in scale.ticks():
        parts.append(svg_line(scale.x(value), PLOT_TOP - 8, scale.x(value), bottom, GRID, 1 if major else 0.5))
        if major:
            parts.append(svg_text(scale.x(value), bottom + 18, f"{value:g}{TIMES}", 12.5, GREY, "middle"))
    one = scale.x(1)
    return [
        *parts,
        svg_line(one, PLOT_TOP - 8, one, bottom, INK, 1.5),
        svg_text(one - 8, bottom + 38, "← twofa faster", 12.5, GREY, "end"),
        svg_text(one + 8, bottom + 38, "twofa slower →", 12.5, GREY),
    ]


def svg_row(goal: Goal, ratio: Stat | None, middle: float, scale: Scale) -> list[str]:
    """One bar of the chart, with its label, whisker, goal tick and figure."""
    parts = [
        svg_text(16, middle - 3, goal.label + (" (an aim)" if goal.aim else ""), 14, weight="600"),
        svg_text(16, middle + 14, f"{short(goal.pair.twofa)} ÷ {short(goal.pair.peer)}", 11.5, GREY),
    ]
    if ratio is None:
        parts.append(svg_text(PLOT_RIGHT + 12, middle + 5, "not measured", 13, NO_DATA))
    else:
        met = goal.met(ratio.median)
        colour = MET if met else MISSED
        start, end = sorted((scale.x(1), scale.x(ratio.median)))
        low, high = scale.x(ratio.low), scale.x(ratio.high)
        parts += [
            f'<rect x="{start:.1f}" y="{middle - 9:.1f}" width="{max(end - start, 1.5):.1f}" height="18" '
            f'fill="{colour}" fill-opacity="0.85"/>',
            svg_line(low, middle, high, middle, INK, 1.5),
            svg_line(low, middle - 5, low, middle + 5, INK, 1.5),
            svg_line(high, middle - 5, high, middle + 5, INK, 1.5),
            svg_text(
                PLOT_RIGHT + 12,
                middle + 5,
                f"{num(ratio.median)}{TIMES} {'met' if met else 'missed'}",
                14,
                colour,
                weight="600",
            ),
        ]
    limit = scale.x(goal.limit)
    parts += [
        svg_line(limit, middle - 14, limit, middle + 14, INK, 3),
        svg_text(limit, middle - 17, goal.bound, 10.5, INK, "middle"),
    ]
    return parts


# ---------------------------------------------------------------------------------------------
# Entry point


def write_report(results: Results, out: Path) -> None:
    """Writes the Markdown report at `out` (keeping its notes) and the chart beside it (.svg)."""
    summary = Summary.of(results)
    chart = out.with_suffix(".svg")
    text = render_markdown(summary, read_notes(out), chart.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    chart.write_text(render_svg(summary))
    print(f"wrote {out} and {chart}", file=sys.stderr)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of all suites (default 5)")
    parser.add_argument("--quick", action="store_true", help="pass --quick to the suites (a smoke run)")
    parser.add_argument("--only", default="rust,python,node", help="the suites to run, comma-separated")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the report (the chart goes beside it)"
    )
    parser.add_argument(
        "--results", type=Path, default=ROOT / "target" / "bench" / "results.json", help="where the raw results go"
    )
    parser.add_argument("--from-results", type=Path, help="render the report from saved results without measuring")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - SUITE_FILES.keys())
    if unknown or not only:
        parser.error(f"--only takes some of {', '.join(SUITE_FILES)}, not {args.only!r}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.only = [name for name in SUITE_FILES if name in only]
    return args


def main(argv: list[str] | None = None) -> int:
    """Measures (or loads saved results) and writes the report; 1 with a message on failure."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        if args.from_results:
            results = load_results(args.from_results)
        else:
            raw = measure(args.only, args.rounds, args.quick, argv, args.results)
            print(f"raw results: {args.results}", file=sys.stderr)
            results = results_from_raw(raw)
        write_report(results, args.out)
    except BenchError as error:
        print(f"bench/run.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
