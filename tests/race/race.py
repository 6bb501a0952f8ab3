"""The multi-process race test: four OS processes with their own engines on one PostgreSQL database.

Run it under tests/pg/with-postgres.sh (``make race-tests``, tests/race/race.mk), which sets
$TWOFA_PG_URL. The coordinator (this file) starts two Python workers (tests/race/worker.py,
`twofa.Engine` over examples/python-host/pgstore.py) and two Node workers (tests/race/worker.mjs,
the Node `Engine` over examples/node-host/pgstore.mjs). Each worker has its own engine and store
and shares nothing with the others but the database, as separate app servers would. The
coordinator sets users up through an engine of its own on the same database, computes TOTP codes
with pyotp, reads emailed codes from its own mailer, and drives the workers over stdin/stdout JSON
lines with a barrier: every worker first prepares (its own sign-in challenges, one thread or
Promise per submission), says ready, and only when all four are ready does the coordinator tell
them to go, at one wall-clock instant, so that the submissions really overlap.

1. **One acceptance per code.** For each of ``--rounds`` rounds (default 100), a fresh user (a
   TOTP step may be accepted once per user, and a step lasts 30 s) gets the same valid code
   submitted by all four processes at once, three times: a TOTP code, an emailed code and a
   recovery code. Exactly one submission of each may succeed; every other answer must be the
   refusal the core gives for that case (see `ALLOWED` below), and the stored record must agree.
2. **Exact lockout counting.** 400 wrong codes (``--wrong`` per process, default 100, all
   concurrent inside each process too) against one user: exactly ``threshold`` answers are
   ``invalid_code``, all others ``locked_out``, and the stored failure count ends at exactly the
   threshold.

No answer may be ``conflict``: the retries (``conflict_retries``) must absorb the contention.
Any violation stops the test with the round, the phase and every process's answers.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp

import twofa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples" / "python-host"))
from pgstore import PostgresStore  # noqa: E402  (the example's store, found through sys.path)

#: The lockout threshold of every engine in the test (the default, set explicitly).
THRESHOLD = 10
#: The TOTP period and skew (the defaults, set explicitly).
PERIOD = 30
SKEW = 1
#: A round's TOTP code is computed only when at least this many seconds are left in its time step.
STEP_GUARD = 5.0
#: How long the coordinator waits for any one reply of a worker.
REPLY_TIMEOUT = 60.0
#: How far ahead of now the coordinator schedules a "go" (time to write it to every worker).
GO_DELAY = 0.02
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

# What the three losers of each race must answer; anything else fails the test. Why each:
#
# - totp: each process verifies on a sign-in challenge of its own (a TOTP code is not bound to a
#   challenge: any live challenge of the user takes it). The winner's write records the code's
#   time step as the last accepted one; a loser's write conflicts, it reloads, and the code now
#   matches only a step at or below the last accepted one: `replayed` (never counted).
# - email, shared challenge (even rounds): the code was sent for one challenge (the coordinator's
#   login_begin + login_send_email_code), and all four submit it on that challenge, as four app
#   servers receiving the same form would. The winner's write marks the code used and removes the
#   challenge; a loser reloads and no longer finds the challenge: `not_found`.
# - email, mixed challenges (odd rounds): a sign-in code is bound to the challenge it was sent for
#   and completes only that one. One process submits it on that challenge, the three others each
#   on a challenge of its own, as someone who learnt the code and knows the password would. Only
#   the first can win; another challenge answers `not_found` while the code is unused and
#   `replayed` once the winner marked it used (whichever the loser's read meets). Together the
#   two cases race both guards of an emailed code (the challenge's removal and the code's used
#   flag) and its binding to one challenge.
# - recovery: each process on its own challenge. The winner's write removes the code's hash from
#   the record; to a loser the code is then no different from a wrong one: `invalid_code`, counted
#   in the attempt budget (so after each recovery race the stored failure count is exactly 3).
ALLOWED: dict[str, frozenset[str]] = {
    "totp": frozenset({"replayed"}),
    "email-shared": frozenset({"not_found"}),
    "email-mixed": frozenset({"not_found", "replayed"}),
    "recovery": frozenset({"invalid_code"}),
}


class RaceFailure(Exception):
    """A violated expectation; the message says where and shows the answers."""


def config() -> dict[str, Any]:
    """The config every engine of the test shares (a fresh master key per run)."""
    code_template = {"subject": "twofa race code", "text": "code={code}", "html": "<p>code={code}</p>"}
    return {
        "issuer": "twofa race test",
        "keys": [{"id": "race", "secret": base64.b64encode(secrets.token_bytes(32)).decode()}],
        "admin": True,  # the setup imports TOTP secrets with the admin handle
        "totp": {"algorithm": "SHA1", "digits": 6, "period": PERIOD, "skew": SKEW},
        "lockout": {"threshold": THRESHOLD, "base_delay_secs": 60, "max_delay_secs": 86400},
        "conflict_retries": 32,
        "templates": {"enroll_code": code_template, "login_code": code_template},
    }


class Mailbox:
    """The coordinator's mailer: keeps the last one-time code sent to each address."""

    def __init__(self) -> None:
        self._codes: dict[str, str] = {}
        self._lock = threading.Lock()

    def send(self, message: twofa.Message) -> None:
        found = re.fullmatch(r"code=(\d+)", message.text)
        if found:
            with self._lock:
                self._codes[message.to] = found.group(1)

    def take(self, address: str) -> str:
        with self._lock:
            return self._codes.pop(address)


@dataclass
class User:
    id: str
    address: str
    totp_secret: str
    recovery_codes: list[str]


@dataclass
class Answer:
    worker: str
    answer: str
    t0: float
    t1: float


class Worker:
    """One worker process and the lines it writes (read by a thread, so waits can time out)."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        # stderr is inherited: a worker's traceback appears in the test's output.
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RaceFailure(f"{self.name} exited with status {self.proc.wait()} (its stderr is above)") from None

    def receive(self) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=REPLY_TIMEOUT)
        except queue.Empty:
            raise RaceFailure(f"{self.name} did not answer within {REPLY_TIMEOUT} s") from None
        if line is None:
            raise RaceFailure(f"{self.name} exited with status {self.proc.wait()} (its stderr is above)")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"op": "exit"})
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # end of input: Node's readline keeps the process alive until then
                self.proc.wait(timeout=10)
            except (RaceFailure, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


@dataclass
class Phase:
    """What happened when the workers were released together."""

    answers: list[Answer]
    #: Compare-and-swap writes that lost and were retried by the engines during the submissions.
    store_conflicts: int

    def overlapped(self) -> bool:
        """Whether every submission was in flight at one same instant."""
        return max(a.t0 for a in self.answers) < min(a.t1 for a in self.answers)

    def show(self) -> str:
        return ", ".join(f"{a.worker}: {a.answer}" for a in self.answers)


class Race:
    def __init__(self, workers: list[Worker], engine: twofa.Engine, store: PostgresStore, mail: Mailbox) -> None:
        self.workers = workers
        self.engine = engine
        self.store = store
        self.mail = mail
        self.overlapping = 0
        self.phases = 0
        self.store_conflicts = 0
        self.losers: Counter[str] = Counter()

    def phase(self, submissions: list[list[dict[str, Any]]]) -> Phase:
        """Gives each worker its submissions, waits until all are ready, releases them at once."""
        for worker, subs in zip(self.workers, submissions, strict=True):
            worker.send({"op": "prepare", "submissions": subs})
        for worker in self.workers:
            if not worker.receive().get("ready"):
                raise RaceFailure(f"{worker.name} did not get ready")
        at = time.time() + GO_DELAY
        for worker in self.workers:
            worker.send({"op": "go", "at": at})
        answers: list[Answer] = []
        conflicts = 0
        for worker in self.workers:
            reply = worker.receive()
            conflicts += int(reply["store_conflicts"])
            answers += [Answer(worker.name, a["answer"], a["t0"], a["t1"]) for a in reply["answers"]]
        phase = Phase(answers, conflicts)
        self.phases += 1
        self.overlapping += phase.overlapped()
        self.store_conflicts += conflicts
        return phase

    def record(self, user: str) -> dict[str, Any]:
        """The user's stored record, as the database holds it now."""
        found = self.store.get(f"user/{user}")
        if found is None:
            raise RaceFailure(f"no record for {user}")
        record: dict[str, Any] = json.loads(found[0])
        return record

    def setup_user(self, user: str) -> User:
        """A user with an email method, a set of recovery codes and an authenticator app."""
        address = f"{user}@race.example"
        self.engine.email_enroll_begin(user, address)
        added = self.engine.email_enroll_confirm(user, self.mail.take(address))
        codes = self.engine.recovery_codes_generate(user, added.step_up).codes
        secret = pyotp.random_base32()
        # An imported secret has no accepted step yet, so the round's code is fresh.
        self.engine.admin().totp_import(user, secret)
        return User(user, address, secret, codes)

    def one_acceptance(self, where: str, case: str, phase: Phase) -> None:
        oks = sum(a.answer == "ok" for a in phase.answers)
        unexpected = [a for a in phase.answers if a.answer != "ok" and a.answer not in ALLOWED[case]]
        if oks != 1 or unexpected:
            raise RaceFailure(
                f"{where}: expected exactly one ok and otherwise only {sorted(ALLOWED[case])}, "
                f"got {oks} ok: {phase.show()} (store conflicts retried: {phase.store_conflicts})"
            )
        self.losers.update(f"{case} {a.answer}" for a in phase.answers if a.answer != "ok")

    def round(self, n: int, user: User) -> None:
        everyone = len(self.workers)

        # TOTP. A code of step S is accepted while the engines' clocks (the system clock) are in
        # steps S-1 to S+1 (skew 1), so it stays valid at least 30 s after it is computed. On
        # top of that, the code is taken only when STEP_GUARD seconds or more are left in its
        # step: it then stays valid for at least 35 s, while a phase lasts well under a second.
        left = PERIOD - time.time() % PERIOD
        if left < STEP_GUARD:
            time.sleep(left + 0.05)
        now = int(time.time())
        step = now // PERIOD
        code = pyotp.TOTP(user.totp_secret).at(now)
        submission = {"user": user.id, "kind": "totp", "code": code, "challenge": None}
        phase = self.phase([[submission]] * everyone)
        self.one_acceptance(f"round {n}, TOTP code (step {step})", "totp", phase)
        totp = next(m["data"] for m in self.record(user.id)["methods"] if m["data"]["kind"] == "totp")
        if totp.get("last_step") != step:
            raise RaceFailure(f"round {n}: the stored last TOTP step is {totp.get('last_step')}, not {step}")

        # Email: the coordinator starts the sign-in and has the code sent (any engine may answer
        # any step of a sign-in); the workers submit it. See ALLOWED for the two cases.
        challenge = self.engine.login_begin(user.id).challenge_id
        assert challenge is not None
        self.engine.login_send_email_code(user.id, challenge)
        code = self.mail.take(user.address)
        case = "email-shared" if n % 2 == 0 else "email-mixed"
        shared = {"user": user.id, "kind": "email", "code": code, "challenge": challenge}
        own = {**shared, "challenge": None}
        if case == "email-shared":
            phase = self.phase([[shared]] * everyone)
        else:
            phase = self.phase([[shared]] + [[own]] * (everyone - 1))
        self.one_acceptance(f"round {n}, emailed code ({case})", case, phase)
        if case == "email-mixed" and next(a for a in phase.answers if a.answer == "ok").worker != self.workers[0].name:
            raise RaceFailure(f"round {n}: the emailed code completed a challenge it was not sent for: {phase.show()}")

        # Recovery: each process on a challenge of its own.
        submission = {"user": user.id, "kind": "recovery", "code": user.recovery_codes[0], "challenge": None}
        phase = self.phase([[submission]] * everyone)
        self.one_acceptance(f"round {n}, recovery code", "recovery", phase)
        record = self.record(user.id)
        if len(record.get("recovery", [])) != len(user.recovery_codes) - 1 or record["failures"] != everyone - 1:
            raise RaceFailure(
                f"round {n}: after the recovery race the record holds {len(record.get('recovery', []))} "
                f"recovery codes (expected {len(user.recovery_codes) - 1}) and {record['failures']} failures "
                f"(expected {everyone - 1}: one per losing submission)"
            )

    def lockout(self, user: User, per_worker: int) -> Counter[str]:
        """Wrong TOTP and recovery codes, alternately, all at once from every worker."""
        now = int(time.time())
        totp = pyotp.TOTP(user.totp_secret)
        near = {totp.at(now + k * PERIOD) for k in range(-2 * SKEW, 2 * SKEW + 1)}
        wrong_totp = next(c for c in (f"{i:06d}" for i in range(1_000_000)) if c not in near)
        mine = {c.replace("-", "") for c in user.recovery_codes}
        while (raw := "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))) in mine:
            pass
        wrong_recovery = f"{raw[:5]}-{raw[5:]}"
        challenge = self.engine.login_begin(user.id).challenge_id
        subs = [
            {
                "user": user.id,
                "kind": "totp" if i % 2 == 0 else "recovery",
                "code": wrong_totp if i % 2 == 0 else wrong_recovery,
                "challenge": challenge,
            }
            for i in range(per_worker)
        ]
        phase = self.phase([subs] * len(self.workers))
        answers = Counter(a.answer for a in phase.answers)
        total = per_worker * len(self.workers)
        expected = Counter({"invalid_code": THRESHOLD, "locked_out": total - THRESHOLD})
        if answers != expected:
            per_worker_answers = {
                w.name: dict(Counter(a.answer for a in phase.answers if a.worker == w.name)) for w in self.workers
            }
            raise RaceFailure(
                f"lockout: {total} concurrent wrong codes answered {dict(answers)}, expected {dict(expected)}; "
                f"per process: {per_worker_answers}"
            )
        record = self.record(user.id)
        status = self.engine.security_status(user.id)
        if record["failures"] != THRESHOLD or status.locked_until is None:
            raise RaceFailure(
                f"lockout: the stored failure count is {record['failures']} (expected {THRESHOLD}), "
                f"locked until {status.locked_until}"
            )
        print(
            f"race: lockout: {total} concurrent wrong codes from {len(self.workers)} processes: "
            f"{answers['invalid_code']} invalid_code, {answers['locked_out']} locked_out; stored failures "
            f"{record['failures']}; locked until {status.locked_until} (in {status.locked_until - now} s); "
            f"store conflicts retried: {phase.store_conflicts}",
            flush=True,
        )
        return answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="races per kind of code (default 100)")
    parser.add_argument("--wrong", type=int, default=100, help="wrong codes per process (default 100)")
    args = parser.parse_args()
    url = os.environ.get("TWOFA_PG_URL")
    if not url:
        print("race: TWOFA_PG_URL is not set: run me under tests/pg/with-postgres.sh", file=sys.stderr)
        return 2
    node = shutil.which("node")
    if node is None:
        print("race: node not found", file=sys.stderr)
        return 2

    started = time.monotonic()
    store = PostgresStore(url)
    store.create_schema()
    cfg = config()
    mail = Mailbox()
    engine = twofa.Engine(cfg, store=store, mailer=mail.send)
    python_worker = [sys.executable, str(HERE / "worker.py")]
    node_worker = [node, str(HERE / "worker.mjs")]
    workers = [
        Worker("python-1", python_worker),
        Worker("python-2", python_worker),
        Worker("node-1", node_worker),
        Worker("node-2", node_worker),
    ]
    race = Race(workers, engine, store, mail)
    run = secrets.token_hex(4)
    try:
        for worker in workers:
            worker.send({"op": "init", "name": worker.name, "config": cfg})
        users = [race.setup_user(f"race-{run}-{n}") for n in range(args.rounds)]
        lockout_user = race.setup_user(f"race-{run}-lockout")
        pids = {worker.name: worker.receive()["pid"] for worker in workers}
        print(f"race: workers {pids}; {args.rounds + 1} users set up in {time.monotonic() - started:.1f} s", flush=True)

        rounds_started = time.monotonic()
        for n, user in enumerate(users):
            race.round(n, user)
        print(
            f"race: {args.rounds} rounds x 3 codes x {len(workers)} processes in "
            f"{time.monotonic() - rounds_started:.1f} s: each code accepted exactly once; the losers "
            f"answered {dict(sorted(race.losers.items()))}; all submissions of a race in flight at one "
            f"instant in {race.overlapping}/{race.phases} races; store conflicts retried: {race.store_conflicts}",
            flush=True,
        )
        if race.store_conflicts == 0:
            raise RaceFailure("no compare-and-swap write ever lost: the submissions did not race")
        race.lockout(lockout_user, args.wrong)
    except (RaceFailure, twofa.TwofaError) as e:
        print(f"race: FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        for worker in workers:
            worker.close()
        store.close()
    print(f"race: passed in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
