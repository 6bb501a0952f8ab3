"""Authenticator apps: codes from pyotp (an independent implementation), RFC 6238 vectors,
replay, skew and lockout."""

from __future__ import annotations

import base64
import hashlib

import pyotp
import pytest

import twofa

from conftest import T0, Clock


def enroll(engine: twofa.Engine, clock: Clock, user: str = "alice") -> tuple[str, twofa.StepUpToken]:
    setup = engine.totp_enroll_begin(user, f"{user}@example.com")
    added = engine.totp_enroll_confirm(user, pyotp.TOTP(setup.secret).at(clock.t))
    assert added.method.kind == "totp" and added.step_up is not None
    return setup.secret, added.step_up


def sign_in(engine: twofa.Engine, user: str, code: str) -> twofa.LoginSuccess:
    challenge = engine.login_begin(user)
    assert challenge.second_factor_required and challenge.challenge_id is not None
    return engine.login_verify(user, challenge.challenge_id, "totp", code)


def test_the_otpauth_uri_reads_back_in_pyotp(engine: twofa.Engine) -> None:
    setup = engine.totp_enroll_begin("alice", "alice@example.com")
    parsed = pyotp.parse_uri(setup.uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.issuer, parsed.name) == (setup.secret, "Example Shop", "alice@example.com")
    assert (parsed.digits, parsed.interval) == (6, 30)
    assert setup.qr_svg.startswith("<svg") or "<svg" in setup.qr_svg[:200]
    assert setup.secret not in repr(setup) and "otpauth" not in repr(setup)


def test_pyotp_codes_sign_in_step_after_step(engine: twofa.Engine, clock: Clock) -> None:
    secret, _ = enroll(engine, clock)
    totp = pyotp.TOTP(secret)
    for step in range(1, 6):
        clock.t = T0 + 30 * step + 7
        success = sign_in(engine, "alice", totp.at(clock.t))
        assert (success.method, success.method_id) == ("totp", "totp-1")
        assert success.step_up.expires_at == clock.t + 600


@pytest.mark.parametrize("skew", [-1, 1])
def test_one_step_of_skew_is_accepted_two_are_not(engine: twofa.Engine, clock: Clock, skew: int) -> None:
    secret, _ = enroll(engine, clock)
    clock.t = T0 + 300
    totp = pyotp.TOTP(secret)
    with pytest.raises(twofa.InvalidCode):
        sign_in(engine, "alice", totp.at(clock.t + 60 * skew))
    assert sign_in(engine, "alice", totp.at(clock.t + 30 * skew)).method == "totp"


# RFC 6238 appendix B: the seeds and the 8-digit codes at each time.
RFC_SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC_CODES = {
    59: {"SHA1": "94287082", "SHA256": "46119246", "SHA512": "90693936"},
    1111111109: {"SHA1": "07081804", "SHA256": "68084774", "SHA512": "25091201"},
    1111111111: {"SHA1": "14050471", "SHA256": "67062674", "SHA512": "99943326"},
    1234567890: {"SHA1": "89005924", "SHA256": "91819424", "SHA512": "93441116"},
    2000000000: {"SHA1": "69279037", "SHA256": "90698825", "SHA512": "38618901"},
    20000000000: {"SHA1": "65353130", "SHA256": "77737706", "SHA512": "47863826"},
}


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
def test_rfc6238_vectors(engine: twofa.Engine, clock: Clock, algorithm: str) -> None:
    secret = base64.b32encode(RFC_SEEDS[algorithm]).decode()
    clock.t = 1
    engine.admin().totp_import("rfc", secret, algorithm=algorithm, digits=8, period=30)  # type: ignore[arg-type]
    digest = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}[algorithm]
    for t, codes in RFC_CODES.items():
        assert pyotp.TOTP(secret, digits=8, digest=digest).at(t) == codes[algorithm]
        clock.t = t
        assert sign_in(engine, "rfc", codes[algorithm]).method == "totp"


def test_a_code_is_accepted_once(engine: twofa.Engine, clock: Clock) -> None:
    secret, _ = enroll(engine, clock)
    clock.t = T0 + 60
    code = pyotp.TOTP(secret).at(clock.t)
    sign_in(engine, "alice", code)
    with pytest.raises(twofa.Replayed) as replay:
        sign_in(engine, "alice", code)
    assert (replay.value.code, replay.value.name) == (twofa.Replayed.CODE, "replayed")
    # An older step is refused after a newer one was accepted.
    with pytest.raises(twofa.Replayed):
        sign_in(engine, "alice", pyotp.TOTP(secret).at(clock.t - 30))


def test_the_enrolment_code_cannot_be_replayed_at_sign_in(engine: twofa.Engine, clock: Clock) -> None:
    secret, _ = enroll(engine, clock)
    with pytest.raises(twofa.Replayed):
        sign_in(engine, "alice", pyotp.TOTP(secret).at(clock.t))


def test_wrong_codes_lock_the_user_out(engine: twofa.Engine, clock: Clock) -> None:
    secret, _ = enroll(engine, clock)
    clock.t = T0 + 90
    right = pyotp.TOTP(secret).at(clock.t)
    valid = {pyotp.TOTP(secret).at(clock.t + 30 * k) for k in (-1, 0, 1)}
    wrong = next(c for c in (f"{n:06d}" for n in range(1000)) if c not in valid)
    for _ in range(10):
        with pytest.raises(twofa.InvalidCode):
            sign_in(engine, "alice", wrong)
    with pytest.raises(twofa.LockedOut) as locked:
        sign_in(engine, "alice", right)
    assert locked.value.retry_after is not None and locked.value.retry_after > 0
    assert engine.security_status("alice").locked_until == clock.t + locked.value.retry_after
    clock.t += locked.value.retry_after
    assert sign_in(engine, "alice", pyotp.TOTP(secret).at(clock.t)).method == "totp"


def test_malformed_codes_are_invalid_input_and_not_counted(engine: twofa.Engine, clock: Clock) -> None:
    secret, _ = enroll(engine, clock)
    clock.t = T0 + 90
    for bad in ["12345", "1234567", "12a456", ""]:
        with pytest.raises(twofa.InvalidInput):
            sign_in(engine, "alice", bad)
    assert engine.security_status("alice").locked_until is None
    assert sign_in(engine, "alice", pyotp.TOTP(secret).at(clock.t)).method == "totp"
