"""Running the suites: their command lines, one run of each, and the rounds."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from machine import load_average, machine_info, versions
from measurements import ROOT, BenchError, parse_output

FIXTURE = ROOT / "bench" / "fixture.json"
BENCH_PYTHON = ROOT / "target" / "bench-venv" / "bin" / "python"
# The suites (bench/README.md) and the file each needs; `suite_command` gives their command lines.
SUITE_FILES = {"rust": "bench/rust/Cargo.toml", "python": "bench/python/bench.py", "node": "bench/node/bench.mjs"}


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
