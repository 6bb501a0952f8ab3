"""Faults in the host's callbacks: a store that raises at its Nth call, mailers and clocks that
raise, stores that answer nonsense. Every failure reaches the caller as a TwofaError with the
original exception as its cause, and leaves the stored state as it was."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

import twofa

from conftest import CONFIG, T0, Clock, DictStore, FaultyStore, Outbox, StoreDown


def emailed_code(message: twofa.Message) -> str:
    found = re.search(r"\d{6}", message.text)
    assert found is not None
    return found.group()


Op = Callable[[twofa.Engine, dict[str, Any]], object]


def prepare(engine: twofa.Engine, outbox: Outbox, clock: Clock) -> dict[str, Any]:
    """A user with an authenticator app, a confirmed email and recovery codes, and a challenge."""
    setup = engine.totp_enroll_begin("alice", "alice@example.com")
    token = engine.totp_enroll_confirm("alice", pyotp.TOTP(setup.secret).at(clock.t)).step_up
    engine.email_enroll_begin("alice", "alice@example.com", token)
    engine.email_enroll_confirm("alice", emailed_code(outbox[-1]), token)
    codes = engine.recovery_codes_generate("alice", token).codes
    clock.t += 30
    challenge = engine.login_begin("alice").challenge_id
    return {"secret": setup.secret, "token": token, "codes": codes, "challenge": challenge}


OPS: dict[str, Op] = {
    "security_status": lambda e, s: e.security_status("alice"),
    "set_contact_email": lambda e, s: e.set_contact_email("alice", "new@example.com", s["token"]),
    "contact_email_begin": lambda e, s: e.contact_email_begin("alice", "new@example.com", s["token"]),
    "mark_order_created": lambda e, s: e.mark_order_created("alice"),
    "totp_enroll_begin": lambda e, s: e.totp_enroll_begin("alice", "a", s["token"]),
    "email_enroll_begin": lambda e, s: e.email_enroll_begin("alice", "second@example.com", s["token"]),
    "webauthn_register_begin": lambda e, s: e.webauthn_register_begin("alice", "Key", s["token"]),
    "rename_method": lambda e, s: e.rename_method("alice", "totp-1", "Phone", s["token"]),
    "remove_method": lambda e, s: e.remove_method("alice", "email-2", s["token"]),
    "recovery_codes_generate": lambda e, s: e.recovery_codes_generate("alice", s["token"]),
    "login_begin": lambda e, s: e.login_begin("alice"),
    "login_send_email_code": lambda e, s: e.login_send_email_code("alice", s["challenge"]),
    "login_verify totp": lambda e, s: e.login_verify(
        "alice", s["challenge"], "totp", pyotp.TOTP(s["secret"]).at(T0 + 30)
    ),
    "login_verify wrong totp": lambda e, s: e.login_verify("alice", s["challenge"], "totp", "000000"),
    "login_verify recovery": lambda e, s: e.login_verify("alice", s["challenge"], "recovery", s["codes"][0]),
    "delete_user": lambda e, s: e.admin().delete_user("alice"),
}


#: The operations that mail a code to an address the user gives (charged to its budget).
ADDRESS_CODE_OPS = ("email_enroll_begin", "contact_email_begin")


@pytest.mark.parametrize("name", sorted(OPS))
def test_a_store_failing_at_any_call_leaves_the_state_unchanged(name: str) -> None:
    op = OPS[name]
    clock, outbox, base = Clock(), Outbox(), DictStore()
    state = prepare(twofa.Engine(CONFIG, store=base, mailer=outbox, clock=clock), outbox, clock)
    for n in range(1, 50):
        store = DictStore()
        store.data, store.version = copy.deepcopy(base.data), base.version
        before = store.snapshot()
        faulty, mailed = FaultyStore(store, fail_at=n), Outbox()
        engine = twofa.Engine(CONFIG, store=faulty, mailer=mailed, clock=Clock(clock.t))
        try:
            op(engine, state)
        except twofa.Storage as e:
            assert isinstance(e.__cause__, StoreDown), f"call {n}: cause {e.__cause__!r}"
            assert e.callback is not None and e.callback.startswith("store.")
            after = store.snapshot()
            # A code handed to the mailer counts against its address's budget (across users),
            # even when arming it failed afterwards: that charge is the one change that stays.
            charged = {k for k in after if k.startswith("email-address/") and after[k] != before.get(k)}
            assert not charged or (name in ADDRESS_CODE_OPS and len(mailed) == 1), f"{name}: call {n}: {charged}"
            kept = {k: v for k, v in after.items() if k not in charged}
            assert kept == before, f"{name}: a failure at call {n} changed the stored state"
            # The next operation on the same engine works.
            engine.security_status("alice")
            continue
        except twofa.InvalidCode:
            assert name == "login_verify wrong totp"
        assert faulty.calls < n, f"{name}: call {n} failed but the operation succeeded"
        return
    raise AssertionError(f"{name} never finished")


def test_a_failing_mailer_leaves_no_usable_code() -> None:
    attempted: list[twofa.Message] = []

    def mailer(message: twofa.Message) -> None:
        attempted.append(message)
        raise ConnectionError("SMTP is down")

    store, clock = DictStore(), Clock()
    engine = twofa.Engine(CONFIG, store=store, mailer=mailer, clock=clock)
    with pytest.raises(twofa.Mail) as failed:
        engine.email_enroll_begin("bob", "bob@example.com")
    assert isinstance(failed.value.__cause__, ConnectionError) and failed.value.callback == "send_mail"
    # No record of bob; only the address's budget (across users) counts the code handed over.
    assert [k.split("/")[0] for k in store.snapshot()] == ["email-address"]
    with pytest.raises(twofa.NotFound):
        engine.email_enroll_confirm("bob", emailed_code(attempted[-1]))


def test_a_failing_notice_does_not_undo_the_change() -> None:
    def mailer(message: twofa.Message) -> None:
        raise ConnectionError("SMTP is down")

    clock = Clock()
    engine = twofa.Engine(CONFIG, store=DictStore(), mailer=mailer, clock=clock)
    engine.set_contact_email("carol", "carol@example.com")
    setup = engine.totp_enroll_begin("carol", "carol")
    added = engine.totp_enroll_confirm("carol", pyotp.TOTP(setup.secret).at(clock.t))
    assert added.notices.sent == 0 and added.notices.failed[0].startswith("carol@example.com: ")
    assert [m.kind for m in engine.security_status("carol").methods] == ["totp"]


def test_a_failing_clock_is_an_internal_error_with_its_cause() -> None:
    def clock() -> int:
        raise OSError("no time")

    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock)
    with pytest.raises(twofa.Internal) as failed:
        engine.login_begin("alice")
    assert isinstance(failed.value.__cause__, OSError) and failed.value.callback == "now"


@pytest.mark.parametrize("version", [0, -1, "7", None])
def test_a_store_returning_a_bad_version_is_a_storage_error(version: Any) -> None:
    class Liar(DictStore):
        def put(self, key: str, value: bytes, expected_version: int | None) -> Any:
            super().put(key, value, expected_version)
            return version

    engine = twofa.Engine(CONFIG, store=Liar(), clock=Clock())
    with pytest.raises(twofa.Storage) as failed:
        engine.set_contact_email("alice", "alice@example.com")
    assert isinstance(failed.value.__cause__, ValueError)


def test_corrupt_bytes_are_a_storage_error_and_never_rewritten() -> None:
    store = DictStore()
    engine = twofa.Engine(CONFIG, store=store, clock=Clock())
    engine.set_contact_email("alice", "alice@example.com")
    key = "user/alice"
    store.data[key] = (b"\xff not json", store.data[key][1])
    with pytest.raises(twofa.Storage):
        engine.login_begin("alice")
    assert store.snapshot()[key] == b"\xff not json"


def test_keyboard_interrupt_in_a_callback_is_raised_as_itself() -> None:
    class Interrupted(DictStore):
        def get(self, key: str) -> tuple[bytes, int] | None:
            raise KeyboardInterrupt

    engine = twofa.Engine(CONFIG, store=Interrupted(), clock=Clock())
    with pytest.raises(KeyboardInterrupt):
        engine.security_status("alice")


def test_a_panic_inside_the_library_is_an_error_not_a_crash() -> None:
    from twofa._native import lib

    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=Clock())
    lib.twofa_testing_force_panics(True)
    try:
        with pytest.raises(twofa.Panic):
            engine.security_status("alice")
    finally:
        lib.twofa_testing_force_panics(False)
    assert engine.security_status("alice").methods == []


class Unprintable(Exception):
    """An exception whose text cannot be built (a bug in the host's own error class)."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


class GetRaises(DictStore):
    """A store whose `get` raises `error`."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def get(self, key: str) -> tuple[bytes, int] | None:
        raise self.error


@pytest.mark.parametrize("error", [twofa.StoreConflict("not a write"), Unprintable()], ids=["conflict", "unprintable"])
def test_a_get_that_raises_anything_is_a_storage_error_on_both_engines(error: BaseException) -> None:
    import asyncio

    import twofa.aio

    with pytest.raises(twofa.Storage) as sync_failure:
        twofa.Engine(CONFIG, store=GetRaises(error), clock=Clock()).security_status("alice")
    assert sync_failure.value.__cause__ is error

    async def status() -> object:
        return await twofa.aio.Engine(CONFIG, store=GetRaises(error), clock=Clock()).security_status("alice")

    with pytest.raises(twofa.Storage) as async_failure:
        asyncio.run(status())
    assert async_failure.value.__cause__ is error
    assert sync_failure.value.callback == async_failure.value.callback == "store.get"


def test_async_errors_name_the_failed_callback_like_the_sync_engine() -> None:
    import asyncio

    import twofa.aio

    def down(message: twofa.Message) -> None:
        raise ConnectionError("smtp down")

    async def enrol() -> object:
        engine = twofa.aio.Engine(CONFIG, store=DictStore(), mailer=down, clock=Clock())
        return await engine.email_enroll_begin("alice", "alice@example.com")

    with pytest.raises(twofa.Mail) as failure:
        asyncio.run(enrol())
    assert failure.value.callback == "send_mail"
    assert isinstance(failure.value.__cause__, ConnectionError)
