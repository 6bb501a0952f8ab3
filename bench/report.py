"""The report, docs/benchmarks.md: its sections, and the hand-written notes block it keeps."""

from __future__ import annotations

from pathlib import Path

from figures import DASH, MICRO, MIN_MAX, TIMES, num
from machine import read_text
from peers import GOALS, PAIRS, WORKLOAD_TITLES, Goal, short
from results import Stat, Summary

NOTES_BEGIN = "<!-- notes -->"
NOTES_END = "<!-- /notes -->"
DEFAULT_NOTES = (
    "_Hand-written: explain here every missed goal and every surprise (what costs the time, what was\n"
    "tried). `bench/run.py` keeps this block when it writes the page again._"
)


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
