"""Unit tests of bench/run.py and its modules: the report math and notes block (not a benchmark):
python -m pytest bench/test_run.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import run
from figures import DASH, TIMES, num
from measurements import BenchError, parse_output
from peers import GOALS, PAIRS, Pair
from report import DEFAULT_NOTES, NOTES_BEGIN, NOTES_END, read_notes, render_markdown, verdict
from results import Stat, Summary, results_from_raw
from suites import SUITE_FILES, measure, round_order, run_suite

PY, PYOTP = "totp/python/memory", "totp/pyotp"
NODE, OTPLIB = "totp/node-koffi/memory", "totp/otplib"
WEB, PY_WEBAUTHN = "webauthn/python/memory", "webauthn/py_webauthn"


def synthetic() -> dict[str, Any]:
    """Three rounds in which the ratio of medians (20 / 40 = 0.5) differs from the median of the
    per-round ratios (0.25, 0.6, 1.0: 0.6); totp/python/sqlite is never measured; the Node pair
    sits exactly on its limit, the WebAuthn pair exactly on its strict limit."""
    python = [(10, 40), (30, 50), (20, 20)]
    rounds = []
    for index, (twofa, peer) in enumerate(python):
        node = [{"case": NODE, "ns": 2.0, "ops": 10}, {"case": OTPLIB, "ns": 10.0, "ops": 10}]
        if index == 2:  # a case missing from one round: its pair uses the two other rounds
            node = node[:1]
        rounds.append(
            {
                "order": round_order(["rust", "python", "node"], index),
                "loadavg": "0.10 0.20 0.30",
                "suites": {
                    "python": [
                        {"case": PY, "ns": twofa, "ops": 100},
                        {"case": PYOTP, "ns": peer, "ops": 100},
                        {"case": WEB, "ns": 50, "ops": 100},
                        {"case": PY_WEBAUTHN, "ns": 50, "ops": 100},
                        {"case": "rss/python", "value": 2048 * (index + 1), "unit": "KiB"},
                    ],
                    "node": node,
                },
            }
        )
    return {
        "format": 1,
        "date": "2026-01-02 03:04 UTC",
        "command": "bench/run.py --rounds 3",
        "quick": False,
        "machine": {"cpu": "Test CPU", "cores": "2", "memory": "1.0 GiB", "kernel": "Linux 6.1 x86_64"},
        "versions": {"rustc": "rustc 1.95.0", "pyotp (PyPI)": "2.12.1"},
        "rounds": rounds,
    }


@pytest.fixture
def summary() -> Summary:
    return Summary.of(results_from_raw(synthetic()))


def test_case_statistics_are_median_min_max_over_rounds(summary: Summary) -> None:
    assert summary.cases[PY] == Stat(median=20, low=10, high=30, rounds=3)
    assert summary.cases[PYOTP] == Stat(median=40, low=20, high=50, rounds=3)
    assert summary.cases["rss/python"] == Stat(median=4096, low=2048, high=6144, rounds=3)
    assert summary.units["rss/python"] == "KiB" and summary.units[PY] == "ns"


def test_ratios_are_taken_within_each_round(summary: Summary) -> None:
    # Not the ratio of the medians (20 / 40 = 0.5).
    assert summary.ratios[Pair(PY, PYOTP)] == Stat(median=0.6, low=0.25, high=1.0, rounds=3)


def test_a_round_missing_a_case_is_left_out_of_its_pair(summary: Summary) -> None:
    assert summary.cases[OTPLIB].rounds == 2
    assert summary.ratios[Pair(NODE, OTPLIB)] == Stat(median=0.2, low=0.2, high=0.2, rounds=2)


def test_a_missing_case_drops_its_rows_and_is_named(summary: Summary) -> None:
    assert Pair("totp/python/sqlite", PYOTP) not in summary.ratios
    report = render_markdown(summary, "NOTES", "benchmarks.svg")
    assert "`totp/python/sqlite` | `totp/pyotp`" not in report
    assert "`totp/python/sqlite`" in report.split("## Not in these results")[1]
    x, d = TIMES, DASH
    assert f"| `totp/python/memory` | `totp/pyotp` | **0.600{x}** | 0.250{d}1.00{x} | 0.0200 | 0.0400 | 3 |" in report


def test_every_goal_is_one_of_the_pairs() -> None:
    assert all(goal.pair in PAIRS for goal in GOALS)


def test_goal_limits_are_inclusive_or_strict() -> None:
    at_most, below = GOALS[2], GOALS[1]
    assert (at_most.limit, at_most.strict, below.limit, below.strict) == (0.2, False, 1, True)
    assert at_most.met(0.2) and not at_most.met(0.2001)
    assert not below.met(1.0) and below.met(0.999)


def test_verdicts_say_by_how_much(summary: Summary) -> None:
    python_totp, python_webauthn, node_totp = GOALS[0], GOALS[1], GOALS[2]
    x = TIMES
    assert verdict(python_totp, summary.ratios[python_totp.pair]) == (
        f"**missed**, 20% over the limit (met in some rounds: down to 0.250{x})"
    )
    assert verdict(python_webauthn, summary.ratios[python_webauthn.pair]).startswith("**missed**, 0% over")
    assert verdict(node_totp, summary.ratios[node_totp.pair]) == "**met**, 0% under the limit"
    assert verdict(python_totp, Stat(1.5, 1.2, 1.8, 3)) == "**missed**, 3.0 times the limit"
    assert verdict(python_totp, Stat(0.25, 0.2, 0.7, 3)) == (
        f"**met**, 50% under the limit (not in every round: up to 0.700{x})"
    )
    assert verdict(python_totp, None) == "no data"


def test_numbers_keep_three_significant_digits() -> None:
    assert [num(v) for v in (0.000123456, 0.6, 9.994, 123.4, 123456.7)] == [
        "0.000123",
        "0.600",
        "9.99",
        "123",
        "123,457",
    ]


def test_rounds_rotate_the_suites() -> None:
    suites = ["rust", "python", "node"]
    assert [round_order(suites, i) for i in range(4)] == [
        ["rust", "python", "node"],
        ["python", "node", "rust"],
        ["node", "rust", "python"],
        ["rust", "python", "node"],
    ]


def test_suite_output_must_follow_the_protocol() -> None:
    good = '{"case": "totp/pyotp", "ns": 8123.4, "ops": 20000}\n\n{"case": "size/x", "value": 1, "unit": "bytes"}\n'
    assert [line["case"] for line in parse_output("python", good)] == ["totp/pyotp", "size/x"]
    for bad in ("warming up", '{"case": "totp/pyotp", "ns": 1}', '{"case": "x", "value": 1, "unit": "s"}', "[1]"):
        with pytest.raises(BenchError, match="stdout line 1"):
            parse_output("python", bad)
    with pytest.raises(BenchError, match="printed twice"):
        parse_output("python", good + good)


def test_a_failing_or_silent_suite_stops_the_run() -> None:
    with pytest.raises(BenchError, match="exit status 3"):
        run_suite("fake", [sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(BenchError, match="printed no measurements"):
        run_suite("fake", [sys.executable, "-c", "pass"])
    lines = run_suite("fake", [sys.executable, "-c", 'print(\'{"case": "a/b", "ns": 2, "ops": 1}\')'])
    assert lines == [{"case": "a/b", "ns": 2, "ops": 1}]


def test_a_missing_suite_is_named_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUITE_FILES, "node", "bench/node/no-such-suite.mjs")
    with pytest.raises(BenchError, match=r"no suite node \(bench/node/no-such-suite.mjs missing\)"):
        measure(["python", "node"], 1, True, [], tmp_path / "results.json")
    assert not (tmp_path / "results.json").exists()


def test_rerendering_keeps_the_notes_and_is_deterministic(tmp_path: Path) -> None:
    results, out = tmp_path / "results.json", tmp_path / "docs" / "benchmarks.md"
    results.write_text(json.dumps(synthetic()))
    assert run.main(["--from-results", str(results), "--out", str(out)]) == 0
    first, chart = out.read_text(), (tmp_path / "docs" / "benchmarks.svg").read_text()
    assert DEFAULT_NOTES in first and "![" in first and "(benchmarks.svg)" in first
    assert chart.startswith("<svg") and chart.count('fill-opacity="0.85"') == 3  # the goals with data

    notes = f"{NOTES_BEGIN}\nPython TOTP misses: the cffi call costs 3 us.\n{NOTES_END}"
    edited = first.replace(read_notes(out), notes)
    out.write_text(edited)
    assert run.main(["--from-results", str(results), "--out", str(out)]) == 0
    assert out.read_text() == edited
    assert (tmp_path / "docs" / "benchmarks.svg").read_text() == chart


def test_a_broken_results_file_is_refused(tmp_path: Path) -> None:
    broken = synthetic()
    broken["rounds"][0]["suites"]["node"].append({"case": PY, "ns": 1, "ops": 1})  # also in the python suite
    path = tmp_path / "results.json"
    path.write_text(json.dumps(broken))
    assert run.main(["--from-results", str(path), "--out", str(tmp_path / "b.md")]) == 1
