"""One worker process of the scaling benchmark (bench/scaling/scaling.py starts 1, 2 or 4).

It plays one app server: its own `twofa.Engine` over its own store handle (the built-in
`SqliteStore` on the shared file, or examples/python-host's `PostgresStore` with one connection),
doing one request after the other, single-threaded. JSON lines on stdin/stdout:

1. ``{"store": "sqlite" | "postgres", "target": path or URL, "config": {...}, "prefix": "...",
   "users": N, "one_user": null | user}``: without ``one_user``, enrols N users of its own
   (``totp_import`` of a known secret); then replies ``{"ready": true}``.
2. ``{"start": t, "end": t}`` (Unix times): works from now on, counting the operations that
   succeed within [start, end); replies ``{"count": n, "latencies": [seconds...], "cpu": s,
   "conflict_answers": n, "conflicts": n | null}`` and exits. ``cpu``: this process's CPU seconds
   within the window; ``conflict_answers``: operations that ended in `twofa.Conflict` (the
   engine's retries ran out); ``conflicts``: compare-and-swap writes that lost and were retried
   (counted in the one-user workload only, by a Python wrapper around the store).

The workloads:

- sign-ins (default): ``login_begin`` then ``login_verify`` with a valid TOTP code, over its own
  users round-robin. A TOTP time step is accepted once per user, so the engine's clock is a
  controlled one: every pass over the users moves it one period (30 s) on, and each code is
  computed with pyotp for that time. No other process touches these users, so nothing conflicts:
  this measures what a sign-in costs.
- ``one_user``: every process calls ``login_begin`` (one record write) on the same user, which
  the coordinator enrolled: the per-user serialization, with the compare-and-swap retries.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pyotp

import twofa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python-host"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "race"))
from counting_store import CountingStore  # the race test's, found through sys.path
from pgstore import PostgresStore  # the example's store, found through sys.path

PERIOD = 30


class PassClock:
    """The engine's clock: a Unix time the worker moves on by one TOTP period per pass."""

    def __init__(self) -> None:
        self.now = int(time.time()) // PERIOD * PERIOD

    def __call__(self) -> int:
        return self.now


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    setup: dict[str, Any] = json.loads(sys.stdin.readline())
    one_user: str | None = setup["one_user"]
    store: twofa.Store
    pg: PostgresStore | None = None
    counting: CountingStore[twofa.Store] | None = None
    if setup["store"] == "sqlite":
        store = twofa.SqliteStore(setup["target"])
    else:
        store = pg = PostgresStore(setup["target"], connections=1)
    if one_user is not None:
        # Counting costs a Python callback per store call (for SQLite, instead of libtwofa calling
        # its built-in store directly); the sign-in workload uses the stores as a host would.
        store = counting = CountingStore(store)
    clock = PassClock()
    engine = twofa.Engine(setup["config"], store=store, mailer=lambda message: None, clock=clock)
    users: list[tuple[str, pyotp.TOTP]] = []
    if one_user is None:
        admin = engine.admin()
        for n in range(int(setup["users"])):
            user, secret = f"{setup['prefix']}-{n}", pyotp.random_base32()
            admin.totp_import(user, secret)
            users.append((user, pyotp.TOTP(secret)))
    reply({"ready": True})

    window: dict[str, float] = json.loads(sys.stdin.readline())
    start, end = window["start"], window["end"]
    count = 0
    conflict_answers = 0
    latencies: list[float] = []
    cpu_start: float | None = None
    conflicts_start = 0
    n = 0
    # Operations before `start` warm the caches and connections up; they are not counted.
    while True:
        ok = True
        if one_user is not None:
            t0 = time.perf_counter()
            try:
                engine.login_begin(one_user)
            except twofa.Conflict:
                ok = False
        else:
            user, totp = users[n % len(users)]
            if n % len(users) == 0:
                clock.now += PERIOD  # a new pass: a new time step for every user
            code = totp.at(clock.now)
            t0 = time.perf_counter()
            challenge = engine.login_begin(user).challenge_id
            assert challenge is not None
            engine.login_verify(user, challenge, "totp", code)
        t1 = time.perf_counter()
        n += 1
        wall = time.time()
        if wall >= end:
            break
        if wall >= start:
            if cpu_start is None:
                cpu_start = time.process_time()
                conflicts_start = counting.conflicts if counting is not None else 0
            if ok:
                count += 1
                latencies.append(t1 - t0)
            else:
                conflict_answers += 1
    reply(
        {
            "count": count,
            "latencies": [round(x, 6) for x in latencies],
            "cpu": time.process_time() - (cpu_start if cpu_start is not None else time.process_time()),
            "conflict_answers": conflict_answers,
            "conflicts": counting.conflicts - conflicts_start if counting is not None else None,
        }
    )
    if pg is not None:
        pg.close()


if __name__ == "__main__":
    main()
