"""A Python worker of the multi-process race test (tests/race/race.py drives it).

One OS process with its own `twofa.Engine` over `PostgresStore` (examples/python-host/pgstore.py)
on the database at $TWOFA_PG_URL, shared with the coordinator and the other workers. It speaks
JSON lines on stdin/stdout, one reply per request:

- ``{"op": "init", "name": "python-1", "config": {...}}`` → ``{"worker": "python-1", "pid": N}``:
  builds the engine.
- ``{"op": "prepare", "submissions": [{"user", "kind", "code", "challenge"}, ...]}`` → starts a
  sign-in (``login_begin``) for every submission whose challenge is null, so that it has a
  challenge of its own, and readies one thread per submission; replies
  ``{"ready": true, "challenges": [...], "store_conflicts": N}``.
- ``{"op": "go", "at": unix_time}`` → at that moment releases every thread at once; each calls
  ``login_verify``; replies ``{"answers": [{"answer", "t0", "t1"}, ...], "store_conflicts": N}``
  where an answer is ``"ok"`` or the error's name (``"replayed"``, ...), t0/t1 the wall-clock
  span of the call, and store_conflicts how many compare-and-swap writes of this process's
  store lost since the last reply (the engine retried them).
- ``{"op": "exit"}`` → closes the store and exits.

The engine's clock is the system clock: the codes are real TOTP codes of now.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import twofa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python-host"))
from counting_store import CountingStore
from pgstore import PostgresStore  # the example's store, found through sys.path


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def sleep_until(at: float) -> None:
    """Sleeps until wall-clock time `at`, spinning the last millisecond for precision."""
    while (left := at - time.time()) > 0.001:
        time.sleep(left - 0.001)
    while time.time() < at:
        pass


class Submission:
    """One login_verify, run by its own thread once released."""

    def __init__(self, engine: twofa.Engine, user: str, kind: str, code: str, challenge: str) -> None:
        self.engine = engine
        self.user = user
        self.kind = kind
        self.code = code
        self.challenge = challenge
        self.answer = "not run"
        self.t0 = 0.0
        self.t1 = 0.0

    def run(self, release: threading.Event) -> None:
        release.wait()
        self.t0 = time.time()
        try:
            self.engine.login_verify(self.user, self.challenge, self.kind, self.code)
            self.answer = "ok"
        except twofa.TwofaError as e:
            self.answer = e.name
        except Exception as e:  # reported to the coordinator, which fails the test
            self.answer = f"exception: {e!r}"
        self.t1 = time.time()


def main() -> None:
    engine: twofa.Engine | None = None
    store: CountingStore[PostgresStore] | None = None
    release = threading.Event()
    threads: list[threading.Thread] = []
    submissions: list[Submission] = []
    for line in sys.stdin:
        request: dict[str, Any] = json.loads(line)
        op = request["op"]
        if op == "init":
            store = CountingStore(PostgresStore(os.environ["TWOFA_PG_URL"]))
            # Mail (the notice "a recovery code was used") is accepted and dropped.
            engine = twofa.Engine(request["config"], store=store, mailer=lambda message: None)
            reply({"worker": request["name"], "pid": os.getpid()})
        elif op == "prepare":
            assert engine is not None
            release = threading.Event()
            submissions = []
            for s in request["submissions"]:
                challenge = s["challenge"]
                if challenge is None:
                    challenge = engine.login_begin(s["user"]).challenge_id
                    assert challenge is not None, "the user has no second factor"
                submissions.append(Submission(engine, s["user"], s["kind"], s["code"], challenge))
            threads = [threading.Thread(target=s.run, args=(release,)) for s in submissions]
            for t in threads:
                t.start()
            conflicts = store.take_conflicts() if store is not None else 0
            reply({"ready": True, "challenges": [s.challenge for s in submissions], "store_conflicts": conflicts})
        elif op == "go":
            assert store is not None
            sleep_until(float(request["at"]))
            release.set()
            for t in threads:
                t.join()
            answers = [{"answer": s.answer, "t0": s.t0, "t1": s.t1} for s in submissions]
            reply({"answers": answers, "store_conflicts": store.take_conflicts()})
        elif op == "exit":
            break
        else:
            raise ValueError(f"unknown op {op!r}")
    if store is not None:
        store.inner.close()


if __name__ == "__main__":
    main()
