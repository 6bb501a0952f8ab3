"""The Python benchmark suite of twofa (protocol, case ids and fixture: bench/README.md).

It measures twofa's Python package (`twofa.Engine` on the memory and the SQLite store) against
pyotp and py_webauthn, and the peak RSS of a process doing 100,000 TOTP sign-ins. Results go to
stdout as JSON lines, logs to stderr:

    python bench/python/bench.py [--quick] [--fixture bench/fixture.json]

`--rss SUBJECT` is the internal mode the suite re-runs itself in to measure one RSS subject. So
that such a process loads only its subject, twofa, py_webauthn and cryptography are imported
where they are used, not here.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyotp

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    import twofa

HERE = Path(__file__).resolve().parent
DEFAULT_FIXTURE = HERE.parent / "fixture.json"
#: Chunks per case, interleaved across the cases; the median chunk is reported.
CHUNKS = 7
#: Wall-clock seconds per chunk (with --quick); each case is first warmed up for about two chunks.
CHUNK_SECONDS = 0.150
QUICK_CHUNK_SECONDS = 0.030
#: TOTP sign-ins (or peer verifies) done by an `--rss` process.
RSS_SIGN_INS = 100_000
RSS_SUBJECTS = ("python-twofa", "python-pyotp")
#: The engine's key (base64 of 32 bytes): any fixed value will do for a benchmark.
ENGINE_KEY = base64.b64encode(bytes(range(32))).decode()
TOTP_STEP = 30
#: Seconds the clock moves before each emailed code: the resend cooldown (60 s by default).
EMAIL_STEP = 61

Json = dict[str, Any]
now_ns = time.perf_counter_ns


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"bench/python: {message}", file=sys.stderr, flush=True)


def emit(record: Json) -> None:
    """One result line on stdout."""
    print(json.dumps(record), flush=True)


def b64url_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def client_data(kind: str, challenge: str, origin: str) -> bytes:
    """clientDataJSON exactly as bench/README.md fixes it."""
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}, separators=(",", ":")
    ).encode()


def wrong_code(totp: pyotp.TOTP, t: int) -> str:
    """A 6-digit code that no step within ±1 of `t` accepts."""
    valid = {totp.at(t + offset * TOTP_STEP) for offset in (-1, 0, 1)}
    guess = (int(totp.at(t)) + 500_000) % 1_000_000
    while f"{guess:06d}" in valid:
        guess = (guess + 1) % 1_000_000
    return f"{guess:06d}"


def peak_rss_kib() -> int:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass(frozen=True)
class Fixture:
    """The parts of bench/fixture.json this suite uses."""

    raw: Json
    rp_id: str
    origin: str
    user: str
    totp_secret: str
    t0: int

    @classmethod
    def load(cls, path: Path) -> Fixture:
        """Reads the fixture file."""
        raw = json.loads(path.read_text())
        return cls(raw, raw["rp_id"], raw["origin"], raw["user"], raw["totp_secret"], int(raw["t0"]))

    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        """The fixture's P-256 private key (from its PKCS#8 DER)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = serialization.load_der_private_key(b64url_decode(self.raw["private_key_pkcs8"]), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("private_key_pkcs8 is not an EC key")
        return key


class Clock:
    """The engine's settable clock (Unix seconds)."""

    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


class Outbox:
    """The in-process mailer: keeps the last message only."""

    def __init__(self) -> None:
        self.last: twofa.Message | None = None

    def __call__(self, message: twofa.Message) -> None:
        self.last = message

    def code(self) -> str:
        """The one-time code in the last message."""
        found = re.search(r"\b\d{6}\b", self.last.text if self.last else "")
        if found is None:
            raise RuntimeError("no code in the last message")
        return found.group()


def engine_config(fixture: Fixture, sqlite_path: Path | None = None) -> Json:
    """twofa's config for the fixture's relying party (and a SQLite file, if given)."""
    config: Json = {
        "issuer": "twofa bench",
        "keys": [{"id": "k1", "secret": ENGINE_KEY}],
        "admin": True,  # the setup imports TOTP secrets with the admin handle
        "webauthn": {"rp_id": fixture.rp_id, "rp_name": "twofa bench", "origins": [fixture.origin]},
    }
    if sqlite_path is not None:
        config["sqlite_path"] = str(sqlite_path)
    return config


@dataclass
class Host:
    """An engine with its clock and outbox, on the memory store or a SQLite file."""

    engine: twofa.Engine
    clock: Clock
    outbox: Outbox

    @classmethod
    def open(cls, fixture: Fixture, variant: str, workdir: Path) -> Host:
        """An engine on `variant` ("memory", or "sqlite": a fresh file in `workdir`)."""
        import twofa

        clock, outbox = Clock(fixture.t0), Outbox()
        if variant == "memory":
            engine = twofa.Engine(engine_config(fixture), store=twofa.MemoryStore(), mailer=outbox, clock=clock)
        else:
            path = Path(tempfile.mkdtemp(dir=workdir)) / "twofa.db"
            engine = twofa.Engine(engine_config(fixture, path), mailer=outbox, clock=clock)
        return cls(engine, clock, outbox)


class Bench(Protocol):
    """A workload measured in chunks: `run(n)` does `n` operations (n even) and returns the
    timed nanoseconds of each of its case ids."""

    @property
    def ids(self) -> tuple[str, ...]:
        """The case ids it reports."""

    def run(self, n: int) -> dict[str, int]: ...


class TwofaTotp:
    """twofa TOTP sign-ins: login_begin + login_verify, a fresh step before each wrong/right pair."""

    def __init__(self, host: Host, fixture: Fixture, subject: str) -> None:
        self.ids = (f"totp/{subject}", f"totp-begin/{subject}", f"totp-verify/{subject}")
        self.host, self.user = host, fixture.user
        self.totp = pyotp.TOTP(fixture.totp_secret)
        host.engine.admin().totp_import(self.user, fixture.totp_secret)

    def sign_in(self, code: str, valid: bool) -> tuple[int, int]:
        """One sign-in check; its begin and verify times in ns."""
        import twofa

        engine, user = self.host.engine, self.user
        start = now_ns()
        challenge = engine.login_begin(user)
        begun = now_ns()
        try:
            engine.login_verify(user, challenge.challenge_id or "", "totp", code)
            accepted = True
        except twofa.InvalidCode:
            accepted = False
        done = now_ns()
        if accepted != valid:
            raise RuntimeError(f"twofa {'refused' if valid else 'accepted'} a {'right' if valid else 'wrong'} code")
        return begun - start, done - begun

    def run(self, n: int) -> dict[str, int]:
        begin = verify = 0
        for _ in range(n // 2):
            self.host.clock.t += TOTP_STEP
            t = self.host.clock.t
            for code, valid in ((wrong_code(self.totp, t), False), (self.totp.at(t), True)):
                b, v = self.sign_in(code, valid)
                begin, verify = begin + b, verify + v
        return dict(zip(self.ids, (begin + verify, begin, verify), strict=True))


class TwofaEmail:
    """twofa email sign-ins: login_send_email_code + login_verify (wrong/right alternating);
    login_begin is untimed."""

    def __init__(self, host: Host, fixture: Fixture, subject: str) -> None:
        self.ids = (f"email/{subject}", f"email-verify/{subject}")
        self.host, self.user = host, f"{fixture.user}-email"
        engine = host.engine
        engine.email_enroll_begin(self.user, "bench@example.com")
        engine.email_enroll_confirm(self.user, host.outbox.code())

    def run(self, n: int) -> dict[str, int]:
        import twofa

        engine, user, host = self.host.engine, self.user, self.host
        send = verify = 0
        for i in range(n):
            host.clock.t += EMAIL_STEP
            challenge = engine.login_begin(user).challenge_id or ""
            start = now_ns()
            engine.login_send_email_code(user, challenge)
            sent = now_ns()
            right = host.outbox.code()
            code = right if i % 2 else f"{(int(right) + 1) % 1_000_000:06d}"
            verifying = now_ns()
            try:
                engine.login_verify(user, challenge, "email", code)
                accepted = True
            except twofa.InvalidCode:
                accepted = False
            done = now_ns()
            if accepted != bool(i % 2):
                raise RuntimeError("twofa misjudged an emailed code")
            send, verify = send + sent - start, verify + done - verifying
        return dict(zip(self.ids, (send + verify, verify), strict=True))


class Signer:
    """The fixture's authenticator: signs assertions with its P-256 key."""

    def __init__(self, fixture: Fixture) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key, self.algorithm = fixture.signing_key(), ec.ECDSA(hashes.SHA256())
        self.auth_data = b64url_decode(fixture.raw["authenticator_data"])
        self.credential_id, self.origin = fixture.raw["credential_id"], fixture.origin

    def assertion(self, challenge: str, user_handle: str) -> str:
        """The browser's `toJSON()` of an assertion over `challenge` (base64url), as JSON text."""
        data = client_data("webauthn.get", challenge, self.origin)
        signature = self.key.sign(self.auth_data + hashlib.sha256(data).digest(), self.algorithm)
        return json.dumps(
            {
                "id": self.credential_id,
                "rawId": self.credential_id,
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url_encode(data),
                    "authenticatorData": b64url_encode(self.auth_data),
                    "signature": b64url_encode(signature),
                    "userHandle": user_handle,
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )


class TwofaWebauthn:
    """twofa WebAuthn sign-ins: login_begin + login_verify with a fresh assertion over the issued
    challenge, signed by the fixture's key between the two (untimed)."""

    def __init__(self, host: Host, fixture: Fixture, subject: str) -> None:
        self.ids = (f"webauthn/{subject}",)
        self.host, self.user, self.fixture = host, f"{fixture.user}-webauthn", fixture
        self.signer = Signer(fixture)
        engine, raw = host.engine, fixture.raw
        options = json.loads(engine.webauthn_register_begin(self.user, "bench key").options_json)
        public_key = options.get("publicKey", options)
        self.user_handle = public_key["user"]["id"]
        credential_id = raw["credential_id"]
        credential = {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url_encode(
                    client_data("webauthn.create", public_key["challenge"], fixture.origin)
                ),
                "attestationObject": raw["attestation_object"],
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
        engine.webauthn_register_finish(self.user, credential)

    def assertion(self, options_json: str | None) -> str:
        """The browser's `toJSON()` of an assertion over the options' challenge, as JSON text."""
        options = json.loads(options_json or "{}")
        return self.signer.assertion(options.get("publicKey", options)["challenge"], self.user_handle)

    def run(self, n: int) -> dict[str, int]:
        engine, user = self.host.engine, self.user
        total = 0
        for _ in range(n):
            start = now_ns()
            challenge = engine.login_begin(user)
            begun = now_ns()
            value = self.assertion(challenge.webauthn_options)
            verifying = now_ns()
            engine.login_verify(user, challenge.challenge_id or "", "webauthn", value)
            total += begun - start + now_ns() - verifying
        return {self.ids[0]: total}


class PyotpVerify:
    """pyotp: `TOTP(secret).verify(code, for_time=t, valid_window=1)`, wrong/right alternating
    at a fixed time."""

    ids = ("totp/pyotp",)

    def __init__(self, fixture: Fixture) -> None:
        self.secret, self.t = fixture.totp_secret, fixture.t0
        totp = pyotp.TOTP(self.secret)
        self.codes = ((wrong_code(totp, self.t), False), (totp.at(self.t), True))

    def run(self, n: int) -> dict[str, int]:
        secret, t = self.secret, self.t
        total = 0
        for _ in range(n // 2):
            for code, valid in self.codes:
                start = now_ns()
                ok = pyotp.TOTP(secret).verify(code, for_time=t, valid_window=1)
                total += now_ns() - start
                if ok != valid:
                    raise RuntimeError("pyotp misjudged a code")
        return {self.ids[0]: total}


class PyWebauthnVerify:
    """py_webauthn: `verify_authentication_response` on the fixture's assertion (counter 0). Each
    verification follows the same untimed work as twofa's: an assertion signed with the fixture's
    key, so that both run with the same cache state."""

    ids = ("webauthn/py_webauthn",)

    def __init__(self, fixture: Fixture) -> None:
        raw = fixture.raw
        self.credential = json.dumps(raw["assertion"]["response"])
        self.challenge = b64url_decode(raw["assertion"]["challenge"])
        self.public_key = b64url_decode(raw["public_key_cose"])
        self.rp_id, self.origin = fixture.rp_id, fixture.origin
        self.signer, self.fixture_challenge = Signer(fixture), raw["assertion"]["challenge"]

    def run(self, n: int) -> dict[str, int]:
        import webauthn

        total = 0
        for _ in range(n):
            self.signer.assertion(self.fixture_challenge, "")
            start = now_ns()
            webauthn.verify_authentication_response(
                credential=self.credential,
                expected_challenge=self.challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                credential_public_key=self.public_key,
                credential_current_sign_count=0,
                require_user_verification=True,
            )
            total += now_ns() - start
        return {self.ids[0]: total}


def calibrate(bench: Bench, seconds: float) -> int:
    """Warms `bench` up for about one chunk (after a first run that pays one-time costs such as
    imports); returns an even op count lasting about `seconds`."""
    bench.run(2)
    n, warmed = 2, 0.0
    while True:
        start = time.perf_counter()
        bench.run(n)
        spent = time.perf_counter() - start
        warmed += spent
        if spent >= seconds / 4 and warmed >= seconds:
            break
        if spent < seconds / 4:
            n *= 2
    return max(2, 2 * round(seconds * n / spent / 2))


def measure(benches: list[Bench], seconds: float) -> None:
    """Measures every bench in CHUNKS interleaved chunks and emits each case's median chunk."""
    for bench in benches:  # a warm-up pass over all of them first, then the sizing pass
        calibrate(bench, seconds)
    sizes = [calibrate(bench, seconds) for bench in benches]
    for bench, n in zip(benches, sizes, strict=True):
        log(f"{', '.join(bench.ids)}: {n} ops per chunk")
    chunks: dict[str, list[float]] = {case: [] for bench in benches for case in bench.ids}
    for _ in range(CHUNKS):
        for bench, n in zip(benches, sizes, strict=True):
            for case, ns in bench.run(n).items():
                chunks[case].append(ns / n)
    for bench, n in zip(benches, sizes, strict=True):
        for case in bench.ids:
            emit({"case": case, "ns": round(statistics.median(chunks[case]), 1), "ops": n * CHUNKS})


def rss_run(subject: str, fixture: Fixture, sign_ins: int) -> None:
    """The `--rss` mode: peak RSS before and after `sign_ins` TOTP sign-ins (or peer verifies)."""
    run: Callable[[int], object]
    with tempfile.TemporaryDirectory(prefix="twofa-bench-") as workdir:
        if subject == "python-twofa":
            run = TwofaTotp(Host.open(fixture, "memory", Path(workdir)), fixture, subject).run
        elif subject == "python-pyotp":
            run = PyotpVerify(fixture).run
        else:
            raise SystemExit(f"unknown RSS subject {subject!r}: one of {', '.join(RSS_SUBJECTS)}")
        run(2)
        baseline = peak_rss_kib()
        run(sign_ins)
        print(json.dumps({"baseline": baseline, "peak": peak_rss_kib()}), flush=True)


def measure_rss(fixture_path: Path, quick: bool) -> None:
    """Runs each RSS subject in a fresh process (this script in `--rss` mode).

    Linux keeps a process's peak RSS across execve (getrusage(2)), and Python spawns with
    vfork + exec: a child started from here would report this process's peak. So /bin/sh starts
    it (a fork of the small shell, not an exec of it: hence the `exit` after it).
    """
    for subject in RSS_SUBJECTS:
        suite = [sys.executable, str(Path(__file__).resolve()), "--rss", subject, "--fixture", str(fixture_path)]
        command = ["/bin/sh", "-c", '"$@"; exit $?', "sh", *suite, *(["--quick"] * quick)]
        result = json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE).stdout)
        log(f"rss {subject}: {result}")
        emit({"case": f"rss/{subject}", "value": result["peak"], "unit": "KiB"})
        emit({"case": f"rss-baseline/{subject}", "value": result["baseline"], "unit": "KiB"})


def main() -> None:
    """Parses the arguments and runs the suite (or one `--rss` subject)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short chunks, for a smoke run")
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE, help="bench/fixture.json")
    parser.add_argument("--rss", metavar="SUBJECT", choices=RSS_SUBJECTS, help="internal: measure one RSS subject")
    args = parser.parse_args()
    fixture = Fixture.load(args.fixture)
    sign_ins = RSS_SIGN_INS // 10 if args.quick else RSS_SIGN_INS
    if args.rss:
        rss_run(args.rss, fixture, sign_ins)
        return

    import twofa

    log(f"libtwofa {twofa.LIBRARY_VERSION}, pyotp {version('pyotp')}, webauthn {version('webauthn')}")
    with tempfile.TemporaryDirectory(prefix="twofa-bench-") as tmp:
        memory, sqlite = Host.open(fixture, "memory", Path(tmp)), Host.open(fixture, "sqlite", Path(tmp))
        benches: list[Bench] = [
            TwofaTotp(memory, fixture, "python/memory"),
            TwofaTotp(sqlite, fixture, "python/sqlite"),
            PyotpVerify(fixture),
            TwofaWebauthn(memory, fixture, "python/memory"),
            TwofaWebauthn(sqlite, fixture, "python/sqlite"),
            PyWebauthnVerify(fixture),
            TwofaEmail(memory, fixture, "python/memory"),
        ]
        measure(benches, QUICK_CHUNK_SECONDS if args.quick else CHUNK_SECONDS)
    if args.quick:
        log(f"--quick: the RSS processes do {sign_ins} sign-ins instead of {RSS_SIGN_INS}")
    measure_rss(args.fixture, args.quick)


if __name__ == "__main__":
    main()
