"""Audit events, remembered devices, the grace period, and the admin capability (reset, export,
import), through `twofa.Engine` and `twofa.aio.Engine`."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from typing import Any

import pyotp
import pytest

import twofa
import twofa.aio

from conftest import CONFIG, ORIGIN, T0, Clock, DictStore, Outbox
from scenario import mailed_code
from softauthn import SoftAuthenticator

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
EXPORT_KEY = base64.b64encode(bytes(range(32))).decode()
DAY = 86_400
REMEMBER: dict[str, Any] = {**CONFIG, "remember_device": {"enabled": True, "ttl_secs": DAY}}


class Recorder(list[twofa.SecurityEvent]):
    """An event handler that keeps every event."""

    def __call__(self, event: twofa.SecurityEvent) -> None:
        self.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self]


def totp(clock: Clock) -> str:
    return pyotp.TOTP(SECRET).at(clock.t)


def sign_in(engine: twofa.Engine, clock: Clock, user: str, remember: bool = False) -> twofa.LoginSuccess:
    """A sign-in with the user's authenticator app (the clock moves on a step first, so the
    code is never a replay)."""
    clock.t += 30
    challenge = engine.login_begin(user).challenge_id
    assert challenge is not None
    return engine.login_verify(user, challenge, "totp", totp(clock), remember_device=remember)


def test_events_are_delivered_after_each_change_and_carry_no_secret() -> None:
    clock, events = Clock(), Recorder()
    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock, mailer=Outbox(), on_event=events)
    setup = engine.totp_enroll_begin("alice", "alice@example.com")
    assert events == []
    added = engine.totp_enroll_confirm("alice", pyotp.TOTP(setup.secret).at(clock.t))
    assert added.step_up is not None
    [event] = events
    assert (event.kind, event.user, event.at, event.method, event.method_id) == (
        "method_added",
        "alice",
        T0,
        "totp",
        "totp-1",
    )
    codes = engine.recovery_codes_generate("alice", added.step_up)
    challenge = engine.login_begin("alice").challenge_id
    assert challenge is not None
    with pytest.raises(twofa.InvalidCode):
        engine.login_verify("alice", challenge, "totp", "".join(str((int(d) + 1) % 10) for d in totp(clock)))
    success = engine.login_verify("alice", challenge, "recovery", codes.codes[0])
    assert events.kinds() == [
        "method_added",
        "recovery_codes_generated",
        "login_failed",
        "login_succeeded",
        "recovery_code_used",
    ]
    assert events[2].reason == "invalid_code" and events[2].method == "totp"
    text = json.dumps([dataclasses.asdict(e) for e in events])
    for secret in [setup.secret, setup.uri, added.step_up.token, success.step_up.token, *codes.codes]:
        assert secret not in text


def test_a_failing_event_handler_never_fails_the_operation(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: twofa.SecurityEvent) -> None:
        raise RuntimeError("the security log is down")

    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=Clock(), on_event=broken)
    assert engine.set_contact_email("alice", "alice@example.com").sent == 0
    assert engine.security_status("alice").contact_email == "alice@example.com"
    assert "the event handler failed" in caplog.text

    def interrupted(event: twofa.SecurityEvent) -> None:
        raise KeyboardInterrupt

    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=Clock(), on_event=interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.set_contact_email("alice", "alice@example.com")
    assert engine.security_status("alice").contact_email == "alice@example.com"


def test_the_asyncio_engine_awaits_async_and_plain_handlers() -> None:
    got: list[str] = []

    async def handler(event: twofa.SecurityEvent) -> None:
        await asyncio.sleep(0)
        got.append(f"{event.kind} {event.user}")
        raise RuntimeError("ignored")

    async def main() -> None:
        clock = Clock()
        engine = twofa.aio.Engine(CONFIG, store=DictStore(), clock=clock, on_event=handler)
        await engine.set_contact_email("alice", "alice@example.com")
        await engine.mark_order_created("alice")
        plain = Recorder()
        other = twofa.aio.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock, on_event=plain)
        await other.set_contact_email("bob", "bob@example.com")
        assert plain.kinds() == ["contact_email_changed"]

    asyncio.run(main())
    assert got == ["contact_email_changed alice", "two_factor_required alice"]


def test_remembered_devices_skip_the_second_factor_until_they_expire_or_are_revoked() -> None:
    clock, events, outbox = Clock(), Recorder(), Outbox()
    engine = twofa.Engine(REMEMBER, store=twofa.MemoryStore(), clock=clock, mailer=outbox, on_event=events)
    for user in ("alice", "bob"):
        engine.admin().totp_import(user, SECRET)
    assert sign_in(engine, clock, "alice").device_token is None
    success = sign_in(engine, clock, "alice", remember=True)
    device = success.device_token
    assert device is not None and device.expires_at == clock.t + DAY and device.token not in repr(success)
    assert events.kinds()[-1] == "device_remembered" and device.token not in repr(events)
    bob = sign_in(engine, clock, "bob", remember=True).device_token
    assert bob is not None

    skipped = engine.login_begin("alice", device.token)
    assert (skipped.second_factor_required, skipped.challenge_id, skipped.remembered_device) == (
        False,
        None,
        device.device_id,
    )
    assert (events[-1].kind, events[-1].reason) == ("login_succeeded", "remembered_device")
    [listed] = engine.security_status("alice").remembered_devices
    assert (listed.id, listed.method, listed.last_used) == (device.device_id, "totp", clock.t)

    # Another user's token, a forged one: the usual challenge.
    for token in (bob.token, device.token + "x", "garbage"):
        challenge = engine.login_begin("alice", token)
        assert challenge.second_factor_required and challenge.remembered_device is None

    # Expired after the ttl (by the engine's clock).
    clock.t = device.expires_at
    assert engine.login_begin("alice", device.token).second_factor_required

    # Revoked one by one, all at once, and by removing a method.
    device = sign_in(engine, clock, "alice", remember=True).device_token
    assert device is not None and not engine.login_begin("alice", device.token).second_factor_required
    engine.revoke_remembered_device("alice", device.device_id)
    assert engine.login_begin("alice", device.token).second_factor_required
    assert (events[-1].kind, events[-1].method_id) == ("remembered_devices_revoked", device.device_id)
    with pytest.raises(twofa.NotFound):
        engine.revoke_remembered_device("alice", device.device_id)

    device = sign_in(engine, clock, "alice", remember=True).device_token
    assert device is not None
    engine.revoke_remembered_devices("alice")
    assert engine.login_begin("alice", device.token).second_factor_required
    assert engine.security_status("alice").remembered_devices == []

    success = sign_in(engine, clock, "alice", remember=True)
    assert success.device_token is not None
    engine.set_contact_email("alice", "alice@example.com", success.step_up)
    engine.email_enroll_begin("alice", "alice@example.com", success.step_up)
    engine.email_enroll_confirm("alice", mailed_code(outbox, "alice@example.com"), success.step_up)
    engine.remove_method("alice", "totp-1", success.step_up)
    assert (events[-1].kind, events[-1].reason) == ("remembered_devices_revoked", "method_removed")
    assert engine.login_begin("alice", success.device_token.token).second_factor_required


def test_remembered_devices_through_the_asyncio_engine() -> None:
    async def main() -> None:
        clock = Clock()
        engine = twofa.aio.Engine(REMEMBER, store=twofa.MemoryStore(), clock=clock)
        await engine.admin().totp_import("alice", SECRET)
        clock.t += 30
        challenge = (await engine.login_begin("alice")).challenge_id
        assert challenge is not None
        success = await engine.login_verify("alice", challenge, "totp", totp(clock), remember_device=True)
        assert success.device_token is not None
        token = success.device_token.token
        assert not (await engine.login_begin("alice", token)).second_factor_required
        await engine.revoke_remembered_device("alice", success.device_token.device_id)
        assert (await engine.login_begin("alice", token)).second_factor_required
        await engine.revoke_remembered_devices("alice")

    asyncio.run(main())


def test_admin_handles_need_the_capability_in_their_config() -> None:
    config = {k: v for k, v in CONFIG.items() if k != "admin"}  # the default: no capability
    engine = twofa.Engine(config, store=twofa.MemoryStore(), clock=Clock())
    with pytest.raises(twofa.Forbidden) as refused:
        engine.admin()
    assert (refused.value.code, refused.value.name) == (18, "forbidden")
    with pytest.raises(twofa.Forbidden):
        twofa.Engine({**CONFIG, "admin": False}, store=twofa.MemoryStore()).admin()

    async def main() -> None:
        engine = twofa.aio.Engine(config, store=twofa.MemoryStore(), clock=Clock())
        admin = engine.admin()
        for call in (
            lambda: admin.delete_user("alice"),
            lambda: admin.totp_import("alice", SECRET),
            lambda: admin.reset_user("alice", "root", "lost phone"),
            lambda: admin.export_user("alice", EXPORT_KEY),
            lambda: admin.import_user("alice", "{}", EXPORT_KEY),
        ):
            with pytest.raises(twofa.Forbidden):
                await call()

    asyncio.run(main())


def test_reset_user_tells_every_address_and_requires_enrollment_again() -> None:
    clock, events, outbox = Clock(), Recorder(), Outbox()
    engine = twofa.Engine(CONFIG, store=DictStore(), clock=clock, mailer=outbox, on_event=events)
    added = engine.admin().totp_import("alice", SECRET)
    step_up = sign_in(engine, clock, "alice").step_up
    engine.set_contact_email("alice", "alice@example.com", step_up)
    engine.email_enroll_begin("alice", "alice.backup@example.com", step_up)
    engine.email_enroll_confirm("alice", mailed_code(outbox, "alice.backup@example.com"), step_up)
    engine.mark_order_created("alice")
    assert added.method.id == "totp-1"
    del outbox[:], events[:]

    done = engine.admin().reset_user("alice", "support:jane", "lost phone, ticket 42")
    assert done.methods_removed == 2 and done.notices.sent == 2 and done.notices.failed == []
    assert sorted(m.to for m in outbox) == ["alice.backup@example.com", "alice@example.com"]
    assert all("lost phone, ticket 42" in m.text for m in outbox)
    assert events[0].kind == "admin_reset" and events[0].actor == "support:jane"
    assert events[0].reason == "lost phone, ticket 42"
    assert sorted(e.method_id or "" for e in events if e.kind == "method_removed") == ["email-2", "totp-1"]

    status = engine.security_status("alice")
    assert status.methods == [] and status.recovery_codes_left == 0 and status.two_factor_required
    assert status.last_reset == twofa.ResetInfo("support:jane", "lost phone, ticket 42", clock.t)
    challenge = engine.login_begin("alice")
    assert challenge.enrollment_required and challenge.challenge_id is None
    with pytest.raises(twofa.NotFound):
        engine.admin().reset_user("nobody", "support:jane", "no such user")
    with pytest.raises(twofa.InvalidInput):
        engine.admin().reset_user("alice", "", "no actor")


def test_export_then_import_keeps_totp_and_webauthn_sign_in() -> None:
    clock, outbox, events = Clock(), Outbox(), Recorder()
    source = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock, mailer=outbox)
    key = SoftAuthenticator(ORIGIN)
    source.admin().totp_import("alice", SECRET)
    step_up = sign_in(source, clock, "alice").step_up
    registration = source.webauthn_register_begin("alice", "Soft key", step_up)
    source.webauthn_register_finish("alice", key.register(registration.options_json), step_up)
    exported = source.admin().export_user("alice", EXPORT_KEY)
    assert exported.document not in repr(exported) and SECRET not in exported.document
    assert json.loads(exported.document)["format"] == "twofa-user-export"

    # Another deployment: its own master key and store.
    other_key = base64.b64encode(b"another deployment's master key!").decode()
    target_config = {**CONFIG, "admin": True, "keys": [{"id": "k9", "secret": other_key}]}
    target = twofa.Engine(target_config, store=twofa.MemoryStore(), clock=clock, mailer=outbox, on_event=events)
    with pytest.raises(twofa.InvalidInput):
        target.admin().import_user("bob", exported.document, EXPORT_KEY)
    imported = target.admin().import_user("alice", exported, EXPORT_KEY)
    assert [m.id for m in imported.methods] == ["totp-1", "webauthn-2"] and imported.skipped == []
    assert events.kinds() == ["user_imported"]

    # The code used on the source before the move is refused; a later one works.
    challenge = target.login_begin("alice").challenge_id
    assert challenge is not None
    with pytest.raises(twofa.Replayed):
        target.login_verify("alice", challenge, "totp", totp(clock))
    assert sign_in(target, clock, "alice").method_id == "totp-1"
    begun = target.login_begin("alice")
    assert begun.challenge_id is not None and begun.webauthn_options is not None
    success = target.login_verify("alice", begun.challenge_id, "webauthn", key.sign_in(begun.webauthn_options))
    assert success.method_id == "webauthn-2"
    with pytest.raises(twofa.InvalidInput):
        target.admin().import_user("alice", exported.document, EXPORT_KEY)


def test_a_tampered_or_wrongly_keyed_document_changes_nothing() -> None:
    clock = Clock()
    source = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock)
    source.admin().totp_import("alice", SECRET)
    document = json.loads(source.admin().export_user("alice", EXPORT_KEY).document)
    sealed = document["sealed"]
    flipped = {**document, "sealed": ("A" if sealed[0] != "A" else "B") + sealed[1:]}
    later = {**document, "exported_at": document["exported_at"] + 1}
    target = twofa.Engine(CONFIG, store=DictStore(), clock=clock)
    target.set_contact_email("alice", "alice@example.com")
    before = target.security_status("alice")
    wrong_key = base64.b64encode(bytes(32)).decode()
    for text, key in [
        (json.dumps(flipped), EXPORT_KEY),
        (json.dumps(later), EXPORT_KEY),
        (json.dumps(document), wrong_key),
        ("not json", EXPORT_KEY),
    ]:
        with pytest.raises(twofa.InvalidInput) as refused:
            target.admin().import_user("alice", text, key)
        assert sealed not in refused.value.message
        assert target.security_status("alice") == before


def test_the_grace_period_defers_enrollment_required() -> None:
    clock, events = Clock(), Recorder()
    config = {**CONFIG, "policy": {"grace_period_secs": 7 * DAY}}
    engine = twofa.Engine(config, store=twofa.MemoryStore(), clock=clock, on_event=events)
    assert engine.login_begin("alice").enrollment_deadline is None
    engine.mark_order_created("alice")
    assert events.kinds() == ["two_factor_required"]
    deadline = T0 + 7 * DAY
    for t in (T0, deadline - 1):
        clock.t = t
        challenge = engine.login_begin("alice")
        assert (challenge.enrollment_required, challenge.enrollment_deadline) == (False, deadline)
        status = engine.security_status("alice")
        assert status.enrollment_deadline == deadline and status.two_factor_required
    clock.t = deadline
    challenge = engine.login_begin("alice")
    assert (challenge.enrollment_required, challenge.enrollment_deadline) == (True, deadline)

    # Without a grace period: required at once.
    strict = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock)
    strict.mark_order_created("bob")
    assert strict.login_begin("bob").enrollment_required
