"""WebAuthn with a software authenticator written for these tests (softauthn: ES256, "none"
attestation, from the spec alone, independent of webauthn-rs)."""

from __future__ import annotations

import json

import pytest

import twofa

from conftest import ORIGIN, Clock, Outbox
from softauthn import SoftAuthenticator, b64url_encode, tamper_signature


def register(engine: twofa.Engine, key: SoftAuthenticator, user: str = "carol") -> twofa.MethodAdded:
    registration = engine.webauthn_register_begin(user, "Soft key")
    options = registration.options["publicKey"]
    assert options["rp"]["id"] == "localhost" and options["attestation"] == "none"
    return engine.webauthn_register_finish(user, key.register(registration.options_json))


def challenge(engine: twofa.Engine, user: str = "carol") -> tuple[str, str]:
    ch = engine.login_begin(user)
    assert ch.methods == ["webauthn"] and ch.challenge_id is not None and ch.webauthn_options is not None
    return ch.challenge_id, ch.webauthn_options


def test_register_and_sign_in(engine: twofa.Engine, clock: Clock, outbox: Outbox) -> None:
    key = SoftAuthenticator(ORIGIN)
    engine.set_contact_email("carol", "carol@example.com")
    added = register(engine, key)
    assert (added.method.kind, added.method.label, added.method.id) == ("webauthn", "Soft key", "webauthn-1")
    assert added.step_up is not None and added.notices.sent == 1
    assert outbox[-1].to == "carol@example.com" and "Soft key" in outbox[-1].text
    for _ in range(3):
        clock.t += 30
        challenge_id, options = challenge(engine)
        # The browser's toJSON() as a dict, or as JSON text: both are accepted.
        success = engine.login_verify("carol", challenge_id, "webauthn", key.sign_in(options))
        assert (success.method, success.method_id) == ("webauthn", "webauthn-1")
    status = engine.security_status("carol")
    assert status.methods[0].last_used == clock.t and not status.methods[0].flagged
    assert "add_non_webauthn_method" in status.recommendations


def test_a_tampered_signature_is_rejected(engine: twofa.Engine) -> None:
    key = SoftAuthenticator(ORIGIN)
    register(engine, key)
    challenge_id, options = challenge(engine)
    with pytest.raises(twofa.WebauthnRejected, match="signature"):
        engine.login_verify("carol", challenge_id, "webauthn", tamper_signature(key.sign_in(options)))
    challenge_id, options = challenge(engine)
    assert engine.login_verify("carol", challenge_id, "webauthn", json.dumps(key.sign_in(options))).method == "webauthn"


def test_a_wrong_origin_is_rejected(engine: twofa.Engine) -> None:
    key = SoftAuthenticator(ORIGIN)
    with pytest.raises(twofa.WebauthnRejected, match="origin"):
        registration = engine.webauthn_register_begin("carol", "Soft key")
        engine.webauthn_register_finish(
            "carol", key.register(registration.options_json, origin="http://evil.localhost")
        )
    assert engine.security_status("carol").methods == []
    register(engine, key)
    for origin in ["http://localhost:9999", "https://localhost:8080", "http://evil.example"]:
        challenge_id, options = challenge(engine)
        with pytest.raises(twofa.WebauthnRejected, match="origin"):
            engine.login_verify("carol", challenge_id, "webauthn", key.sign_in(options, origin=origin))


def test_an_assertion_is_single_use(engine: twofa.Engine) -> None:
    key = SoftAuthenticator(ORIGIN)
    register(engine, key)
    challenge_id, options = challenge(engine)
    assertion = key.sign_in(options)
    engine.login_verify("carol", challenge_id, "webauthn", assertion)
    with pytest.raises(twofa.NotFound):
        engine.login_verify("carol", challenge_id, "webauthn", assertion)
    other_id, _ = challenge(engine)
    with pytest.raises(twofa.WebauthnRejected, match="challenge"):
        engine.login_verify("carol", other_id, "webauthn", assertion)


def test_a_cloned_device_is_caught_by_its_counter(engine: twofa.Engine) -> None:
    key = SoftAuthenticator(ORIGIN)
    register(engine, key)
    clone = key.clone()
    for _ in range(2):
        challenge_id, options = challenge(engine)
        engine.login_verify("carol", challenge_id, "webauthn", key.sign_in(options))
    challenge_id, options = challenge(engine)
    with pytest.raises(twofa.WebauthnRejected, match="counter"):
        engine.login_verify("carol", challenge_id, "webauthn", clone.sign_in(options))
    status = engine.security_status("carol")
    assert status.methods[0].flagged and "device_flagged" in status.warnings


def test_authenticators_that_always_report_zero_keep_working(engine: twofa.Engine) -> None:
    key = SoftAuthenticator(ORIGIN)
    key.counter_step = 0
    register(engine, key)
    for _ in range(3):
        challenge_id, options = challenge(engine)
        assert engine.login_verify("carol", challenge_id, "webauthn", key.sign_in(options)).method == "webauthn"


def test_a_credential_belongs_to_one_account(engine: twofa.Engine) -> None:
    key = SoftAuthenticator(ORIGIN)
    registration = engine.webauthn_register_begin("carol", "Soft key")
    response = key.register(registration.options_json)
    engine.webauthn_register_finish("carol", response)
    # Mallory replays carol's registration response into her own pending registration.
    engine.webauthn_register_begin("mallory", "Stolen key")
    with pytest.raises(twofa.WebauthnRejected):
        engine.webauthn_register_finish("mallory", response)
    assert engine.security_status("mallory").methods == []


def test_garbage_responses_are_invalid_input_or_rejected(engine: twofa.Engine) -> None:
    key = SoftAuthenticator(ORIGIN)
    register(engine, key)
    for garbage in ["", "{", "[]", '{"id": 1}', json.dumps({"type": "public-key"})]:
        challenge_id, _ = challenge(engine)
        with pytest.raises((twofa.InvalidInput, twofa.WebauthnRejected)):
            engine.login_verify("carol", challenge_id, "webauthn", garbage)


def test_the_user_handle_must_be_the_owners_when_present(engine: twofa.Engine) -> None:
    key = SoftAuthenticator(ORIGIN)
    register(engine, key)
    challenge_id, options = challenge(engine)
    assertion = key.sign_in(options)
    assert assertion["response"]["userHandle"]  # the authenticator sends the owner's handle
    forged = {**assertion, "response": {**assertion["response"], "userHandle": b64url_encode(b"someone else")}}
    with pytest.raises(twofa.WebauthnRejected, match="user handle"):
        engine.login_verify("carol", challenge_id, "webauthn", forged)
    challenge_id, options = challenge(engine)
    assertion = key.sign_in(options)
    without = {**assertion, "response": {k: v for k, v in assertion["response"].items() if k != "userHandle"}}
    assert engine.login_verify("carol", challenge_id, "webauthn", without).method == "webauthn"
