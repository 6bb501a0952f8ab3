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
import sys
from pathlib import Path

from chart import render_svg
from measurements import ROOT, BenchError
from report import read_notes, render_markdown
from results import Results, Summary, load_results, results_from_raw
from suites import SUITE_FILES, measure


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
