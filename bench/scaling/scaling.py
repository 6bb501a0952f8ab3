"""Sign-ins per second with 1, 2 and 4 app-server processes, on PostgreSQL and on SQLite.

    tests/pg/with-postgres.sh python bench/scaling/scaling.py [--seconds 3] [--rounds 3] [--output docs/scaling.md]

(``make scaling``, bench/scaling/scaling.mk, runs it like that with a durable PostgreSQL server.)

Each configuration (a store and a number of processes) starts that many worker processes
(bench/scaling/scaling_worker.py), each with its own engine and its own users, waits until all
have enrolled their users, then lets them sign in for ``--seconds`` at the same wall-clock
window, and counts the sign-ins (``login_begin`` + ``login_verify`` with a valid TOTP code)
completed within it. Configurations are interleaved, one of each per round, for ``--rounds``
rounds; the table gives the median and the range over rounds. The stores:

- ``sqlite``: the package's built-in `twofa.SqliteStore`, every process on one shared file in a
  fresh temporary directory (WAL, synchronous=FULL, one writer at a time);
- ``postgres``: examples/python-host's `PostgresStore` (one connection per process) on
  $TWOFA_PG_URL, with the server's own commit settings (reported);
- ``postgres-async``: the same with ``synchronous_commit=off`` for the session, so a commit does
  not wait for its WAL flush: the difference to ``postgres`` is the cost of durable commits.

A second workload (``--one-user``, on by default) has every process call ``login_begin`` on one
same user, on ``sqlite`` and on ``postgres``: each call is one compare-and-swap write of that
user's record, so it measures the per-user serialization, and counts the operations that ended
in ``conflict`` (the engine's ``conflict_retries``, default 32, ran out) and the compare-and-swap
writes that lost and were retried (through a Python wrapper around the store, also for SQLite).

With ``--output``, the results are rendered between the markers in that file (docs/scaling.md),
and the rest of the file is left as it is.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pyotp

import twofa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples" / "python-host"))
from pgstore import PostgresStore  # noqa: E402  (the example's store, found through sys.path)

BEGIN = "<!-- scaling-results:begin (written by bench/scaling/scaling.py: do not edit by hand) -->"
END = "<!-- scaling-results:end -->"
#: The stores, with the short names of the table.
STORES = {
    "sqlite": "SQLite",
    "postgres": "PostgreSQL",
    "postgres-async": "PostgreSQL, async commit",
}
#: The prefix of the configurations where every process writes one same user's record.
ONE_USER = "one-user:"
#: Users each worker enrols and signs in round-robin (a pass over them moves its clock 30 s on).
USERS_PER_WORKER = 64
#: Seconds of /proc/stat sampled before the run, to report what else was using the CPUs.
IDLE_SAMPLE = 2.0
#: Seconds between the "go" and the start of the counted window (warm-up).
WARMUP = 0.5


@dataclass
class Run:
    """One configuration, one round."""

    #: A key of STORES, or ONE_USER followed by one.
    config: str
    processes: int
    operations: int
    seconds: float
    latencies: list[float]
    #: Busy fraction of all CPUs of the machine during the window (/proc/stat).
    machine_busy: float
    #: CPU seconds the workers used in the window, per second of window (1.0 = one core).
    workers_cpu: float
    #: Operations that ended in `conflict`.
    conflict_answers: int
    #: Compare-and-swap writes that lost and were retried (one-user workload only).
    conflicts: int | None

    @property
    def rate(self) -> float:
        return self.operations / self.seconds


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def sleep_until(t: float) -> None:
    while (left := t - time.time()) > 0:
        time.sleep(min(left, 0.5))


def engine_config() -> dict[str, Any]:
    """Defaults but for a fresh master key."""
    return {
        "issuer": "twofa scaling",
        "keys": [{"id": "k1", "secret": base64.b64encode(secrets.token_bytes(32)).decode()}],
        "admin": True,  # the setup imports TOTP secrets with the admin handle
    }


def run_once(config: str, processes: int, seconds: float, pg_url: str | None) -> Run:
    """Starts the workers, lets them work for `seconds` together, and collects their counts."""
    engine_cfg = engine_config()
    prefix = f"scaling-{secrets.token_hex(4)}"
    store = config.removeprefix(ONE_USER)
    one_user = f"{prefix}-shared" if config.startswith(ONE_USER) else None
    with tempfile.TemporaryDirectory(prefix="twofa-scaling-") as tmp:
        setup_store: twofa.Store
        if store == "sqlite":
            target = str(Path(tmp) / "twofa.sqlite3")
            setup_store = twofa.SqliteStore(target)  # the file and its schema exist before the workers start
        else:
            assert pg_url is not None
            target = pg_url
            if store == "postgres-async":
                options = quote("-c synchronous_commit=off")
                target = f"{pg_url}{'&' if '?' in pg_url else '?'}options={options}"
            setup_store = PostgresStore(pg_url, connections=1)
        if one_user is not None:
            twofa.Engine(engine_cfg, store=setup_store).admin().totp_import(one_user, pyotp.random_base32())
        if isinstance(setup_store, PostgresStore):
            setup_store.close()
        workers = [
            subprocess.Popen(
                [sys.executable, str(HERE / "scaling_worker.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            for _ in range(processes)
        ]
        try:
            for n, worker in enumerate(workers):
                assert worker.stdin is not None
                setup = {
                    "store": "sqlite" if store == "sqlite" else "postgres",
                    "target": target,
                    "config": engine_cfg,
                    "prefix": f"{prefix}-{n}",
                    "users": USERS_PER_WORKER,
                    "one_user": one_user,
                }
                worker.stdin.write(json.dumps(setup) + "\n")
                worker.stdin.flush()
            for worker in workers:
                assert worker.stdout is not None
                if not json.loads(worker.stdout.readline() or "{}").get("ready"):
                    raise RuntimeError(f"a worker failed to set up (exit status {worker.wait()})")
            start = time.time() + WARMUP
            end = start + seconds
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(json.dumps({"start": start, "end": end}) + "\n")
                worker.stdin.flush()
            sleep_until(start)
            busy0, total0 = cpu_times()
            sleep_until(end)
            busy1, total1 = cpu_times()
            results = []
            for worker in workers:
                assert worker.stdout is not None
                line = worker.stdout.readline()
                if not line:
                    raise RuntimeError(f"a worker failed (exit status {worker.wait()})")
                results.append(json.loads(line))
        finally:
            for worker in workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
    conflicts = [r["conflicts"] for r in results]
    return Run(
        config=config,
        processes=processes,
        operations=sum(int(r["count"]) for r in results),
        seconds=seconds,
        latencies=[x for r in results for x in r["latencies"]],
        machine_busy=(busy1 - busy0) / max(1, total1 - total0),
        workers_cpu=sum(float(r["cpu"]) for r in results) / seconds,
        conflict_answers=sum(int(r["conflict_answers"]) for r in results),
        conflicts=None if None in conflicts else sum(int(c) for c in conflicts),
    )


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def pg_facts(pg_url: str) -> str:
    """The server's version and commit settings."""
    facts = {}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method"):
            row = conn.execute(f"SHOW {name}").fetchone()
            facts[name] = str(row[0]) if row else "?"
    version = facts.pop("server_version").split()[0]
    return f"{version} ({', '.join(f'{k}={v}' for k, v in facts.items())})"


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return f"{model}, {os.cpu_count()} CPUs, {mem_kib / 2**20:.0f} GiB RAM, Linux {platform.release()}"


def filesystem(path: str) -> str:
    """The type of the filesystem holding `path` (the longest matching mount point)."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            _, mount, fstype, *_ = line.split()
            if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
                best, kind = mount, fstype
    return kind


def table(runs: list[Run], configs: list[str], unit: str, one_user: bool) -> list[str]:
    latency = "latency p50 / p99 / p99.9 / max (ms)"
    head = f"| store | processes | {unit} | vs 1 process | {latency} | CPU busy | workers' CPU |"
    rule = "|---|---:|---:|---:|---:|---:|---:|"
    if one_user:
        head += " `conflict` answers | writes retried per operation |"
        rule += "---:|---:|"
    lines = [head, rule]
    for config in configs:
        base = None
        for n in sorted({r.processes for r in runs}):
            rs = [r for r in runs if r.config == config and r.processes == n]
            if not rs:
                continue
            rates = [r.rate for r in rs]
            median = statistics.median(rates)
            base = base or median
            lat = [x for r in rs for x in r.latencies]
            row = (
                f"| {STORES[config.removeprefix(ONE_USER)]} | {n} "
                f"| {median:,.0f} ({min(rates):,.0f} to {max(rates):,.0f}) | {median / base:.2f} "
                f"| {' / '.join(f'{quantile(lat, q) * 1000:.2f}' for q in (0.5, 0.99, 0.999, 1.0))} "
                f"| {statistics.median(r.machine_busy for r in rs):.0%} "
                f"| {statistics.median(r.workers_cpu for r in rs):.2f} |"
            )
            if one_user:
                answers = sum(r.conflict_answers for r in rs)
                ops = sum(r.operations for r in rs) + answers
                retried = [r.conflicts for r in rs]
                row += f" {answers} of {ops:,} ({answers / max(1, ops):.2%}) |"
                row += " n/a |" if None in retried else f" {sum(c or 0 for c in retried) / max(1, ops):.2f} |"
            lines.append(row)
    return lines


def render(runs: list[Run], meta: dict[str, str]) -> str:
    configs = list(dict.fromkeys(r.config for r in runs))
    lines = [
        BEGIN,
        "",
        f"Measured {meta['date']} with `make scaling` (bench/scaling/scaling.py): {meta['rounds']} rounds of "
        f"{meta['seconds']} s per configuration, the configurations interleaved within each round. Each cell: the "
        "median over the rounds, with the range (min to max) in brackets.",
        "",
        f"- Machine: {meta['machine']}; database files on {meta['fs']}.",
        f"- libtwofa {meta['libtwofa']}, Python {meta['python']}, psycopg {meta['psycopg']}; PostgreSQL "
        f"{meta['pg']}, on the same machine, over loopback TCP.",
        f"- Load: {meta['idle_busy']} of all CPUs busy in the {IDLE_SAMPLE:g} s before the run; load average "
        f"(1 min) {meta['load_before']} before the run, {meta['load_after']} after it.",
        "- CPU busy: all CPUs of the machine during the window (100% = every core). Workers' CPU: the worker "
        "processes' CPU seconds per second (1.00 = one core); the rest of the busy time is the database server "
        "(PostgreSQL) and the kernel.",
        "",
        f"**Sign-ins** (`login_begin` + `login_verify` with a valid TOTP code: two record reads and two "
        f"compare-and-swap writes; each process signs in {USERS_PER_WORKER} users of its own, one request at a time):",
        "",
    ]
    lines += table(runs, [c for c in configs if not c.startswith(ONE_USER)], "sign-ins/s", one_user=False)
    if any(c.startswith(ONE_USER) for c in configs):
        lines += [
            "",
            "**One user** (every process calls `login_begin` on the same user as fast as it can: one "
            "compare-and-swap write of the same record each; `conflict` answers: the operations whose "
            "`conflict_retries` (32) ran out, out of all operations; writes retried: compare-and-swap writes that "
            "lost, per operation, counted by a Python wrapper around the store, which here also stands between "
            "libtwofa and the SQLite store):",
            "",
        ]
        lines += table(runs, [c for c in configs if c.startswith(ONE_USER)], "operations/s", one_user=True)
    lines += ["", END]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="counted seconds per configuration (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all configurations (default 3)")
    parser.add_argument("--processes", default="1,2,4", help="process counts (default 1,2,4)")
    parser.add_argument("--stores", default=",".join(STORES), help=f"stores (default {','.join(STORES)})")
    parser.add_argument(
        "--one-user",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure every process writing one same user (default on)",
    )
    parser.add_argument("--output", type=Path, help="render the results into this file, between the markers")
    args = parser.parse_args()
    configs = [s for s in args.stores.split(",") if s]
    counts = [int(n) for n in args.processes.split(",") if n]
    if unknown := set(configs) - set(STORES):
        parser.error(f"unknown stores: {sorted(unknown)}")
    pg_url = os.environ.get("TWOFA_PG_URL")
    if args.one_user:
        configs += [ONE_USER + c for c in ("sqlite", "postgres") if c in configs]
    if any(c.removeprefix(ONE_USER) != "sqlite" for c in configs):
        if not pg_url:
            parser.error("TWOFA_PG_URL is not set: run me under tests/pg/with-postgres.sh")
        with PostgresStore(pg_url) as store:
            store.create_schema()
    if args.output is not None:
        text = args.output.read_text()
        if BEGIN not in text or END not in text:
            parser.error(f"{args.output} has no results markers")

    load_before = os.getloadavg()[0]
    busy0, total0 = cpu_times()
    time.sleep(IDLE_SAMPLE)
    busy1, total1 = cpu_times()
    idle_busy = (busy1 - busy0) / max(1, total1 - total0)
    if idle_busy > 0.05:
        print(f"scaling: warning: {idle_busy:.0%} of the CPUs busy before the run", file=sys.stderr)
    runs: list[Run] = []
    for r in range(args.rounds):
        for config in configs:
            for n in counts:
                run = run_once(config, n, args.seconds, pg_url)
                runs.append(run)
                print(
                    f"scaling: round {r + 1}/{args.rounds} {config:18} {n} processes: {run.rate:8,.0f}/s "
                    f"(CPU busy {run.machine_busy:.0%}, workers {run.workers_cpu:.2f} cores"
                    + (
                        f", {run.conflict_answers} conflict answers, {run.conflicts} writes retried)"
                        if config.startswith(ONE_USER)
                        else ")"
                    ),
                    flush=True,
                )
    meta = {
        "date": datetime.date.today().isoformat(),
        "rounds": str(args.rounds),
        "seconds": f"{args.seconds:g}",
        "machine": machine(),
        "fs": f"{filesystem(tempfile.gettempdir())} ({tempfile.gettempdir()})",
        "libtwofa": twofa.LIBRARY_VERSION,
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "pg": pg_facts(pg_url) if pg_url else "not measured",
        "idle_busy": f"{idle_busy:.0%}",
        "load_before": f"{load_before:.2f}",
        "load_after": f"{os.getloadavg()[0]:.2f}",
    }
    block = render(runs, meta)
    print(block)
    if args.output is not None:
        head, rest = args.output.read_text().split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        args.output.write_text(head + block + tail)
        print(f"scaling: results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
