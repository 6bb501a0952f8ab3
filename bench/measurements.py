"""The suite protocol of bench/README.md: one JSON measurement per line of a suite's stdout."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A suite failed or broke the protocol, or a results file cannot be used."""


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
