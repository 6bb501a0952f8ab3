"""How the report writes figures: the typographic signs and numbers with three significant
digits."""

from __future__ import annotations

import math

TIMES = "\u00d7"  # the multiplication sign of "0.5x"
DASH = "\u2013"  # the en dash of "min-max" ranges
MIN_MAX = f"Min{DASH}max"
MICRO = "µs"
LE = "≤"


def num(value: float, digits: int = 3) -> str:
    """`value` with about `digits` significant digits, never in exponent form."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"
