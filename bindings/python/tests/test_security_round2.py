"""Issue 17 (security round 2) through the Python engines, where the shared scenario cannot
show it: concurrent bursts of email codes against a slow mailer (threads on `twofa.Engine`,
tasks on `twofa.aio.Engine`), a host that dies between writing a code and sending it, codes of
several sign-in challenges side by side, the new notice-address operations' arguments, credential
claims released by deletion and admin reset, and invisible characters."""

from __future__ import annotations

import asyncio
import email.message
import threading
import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

import twofa
import twofa.aio

from conftest import CONFIG, ORIGIN, AsyncDictStore, Clock, DictStore, Outbox, in_threads
from scenario import mailed_code
from softauthn import SoftAuthenticator

#: Callers in one burst, and how long the mailer takes to deliver each message.
BURST = 64
MAIL_SECS = 0.3
COOLDOWN = 60  # email_code.resend_cooldown_secs, the default
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


class SlowMailer:
    """A thread-safe mailer that takes `MAIL_SECS` per message and keeps every message it was
    handed."""

    def __init__(self) -> None:
        self.sent: list[twofa.Message] = []
        self.lock = threading.Lock()

    def __call__(self, message: twofa.Message) -> None:
        time.sleep(MAIL_SECS)
        with self.lock:
            self.sent.append(message)


class AsyncSlowMailer(SlowMailer):
    """The same as a coroutine: other tasks run while it delivers."""

    async def __call__(self, message: twofa.Message) -> None:  # type: ignore[override]
        await asyncio.sleep(MAIL_SECS)
        self.sent.append(message)


def outcome(call: Callable[[], object]) -> tuple[str, int | None]:
    """``("ok", None)``, or the error's name and retry_after."""
    try:
        call()
    except twofa.TwofaError as e:
        return e.name, e.retry_after
    return "ok", None


async def async_outcome(call: Callable[[], Any]) -> tuple[str, int | None]:
    try:
        await call()
    except twofa.TwofaError as e:
        return e.name, e.retry_after
    return "ok", None


def burst_threads(call: Callable[[], object]) -> list[tuple[str, int | None]]:
    """`call` from `BURST` threads released at once; their outcomes."""
    barrier = threading.Barrier(BURST)
    results: list[tuple[str, int | None]] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        got = outcome(call)
        with lock:
            results.append(got)

    in_threads(run, [()] * BURST)
    return results


def check_burst(results: list[tuple[str, int | None]], mailer: SlowMailer, elapsed: float) -> None:
    """Exactly one caller mailed a code; every other one was refused with `rate_limited` (and a
    retry_after) or `conflict`, without a message."""
    assert len(results) == BURST
    assert len(mailer.sent) == 1, f"{len(mailer.sent)} codes mailed by a burst of {BURST}"
    assert [r for r in results if r[0] == "ok"] == [("ok", None)]
    refused = [r for r in results if r[0] != "ok"]
    assert all(name in ("rate_limited", "conflict") for name, _ in refused), refused
    assert all(retry is not None and 0 < retry <= COOLDOWN for name, retry in refused if name == "rate_limited")
    assert any(name == "rate_limited" for name, _ in refused)
    # One burst: the callers were not served one mailer delivery after another.
    assert elapsed < BURST * MAIL_SECS / 2


def enrolled_by_email(engine: twofa.Engine, outbox: Outbox, clock: Clock, user: str) -> str:
    """A user whose only method is an email address; a live sign-in challenge for them (the
    clock moved past the enrolment code's cooldown)."""
    engine.email_enroll_begin(user, f"{user}@example.com")
    engine.email_enroll_confirm(user, mailed_code(outbox, f"{user}@example.com"))
    clock.t += COOLDOWN
    challenge = engine.login_begin(user).challenge_id
    assert challenge is not None
    return challenge


# -- item 1: a burst of sends mails one code ---------------------------------------------------


@pytest.mark.parametrize("store_kind", ["dict", "memory"])
def test_64_threads_sending_a_sign_in_code_for_one_challenge_mail_one(store_kind: str) -> None:
    clock, outbox = Clock(), Outbox()
    store: Any = DictStore() if store_kind == "dict" else twofa.MemoryStore()
    challenge = enrolled_by_email(twofa.Engine(CONFIG, store=store, mailer=outbox, clock=clock), outbox, clock, "alice")
    mailer = SlowMailer()
    engine = twofa.Engine(CONFIG, store=store, mailer=mailer, clock=clock)
    started = time.monotonic()
    results = burst_threads(lambda: engine.login_send_email_code("alice", challenge))
    check_burst(results, mailer, time.monotonic() - started)
    # The one code mailed signs in.
    assert engine.login_verify("alice", challenge, "email", mailed_code(mailer.sent, "alice@example.com")).method == (
        "email"
    )


@pytest.mark.parametrize("store_kind", ["dict", "memory"])
def test_64_threads_enrolling_an_address_for_a_user_without_methods_mail_one(store_kind: str) -> None:
    clock, mailer = Clock(), SlowMailer()
    store: Any = DictStore() if store_kind == "dict" else twofa.MemoryStore()
    engine = twofa.Engine(CONFIG, store=store, mailer=mailer, clock=clock)
    started = time.monotonic()
    results = burst_threads(lambda: engine.email_enroll_begin("bob", "victim@example.com"))
    check_burst(results, mailer, time.monotonic() - started)
    assert engine.email_enroll_confirm("bob", mailed_code(mailer.sent, "victim@example.com")).method.kind == "email"


@pytest.mark.parametrize("store_kind", ["async-dict", "memory"])
def test_64_asyncio_tasks_sending_a_sign_in_code_for_one_challenge_mail_one(store_kind: str) -> None:
    async def main() -> None:
        clock, outbox, mailer = Clock(), Outbox(), AsyncSlowMailer()
        store: Any = AsyncDictStore() if store_kind == "async-dict" else twofa.MemoryStore()
        setup = twofa.aio.Engine(CONFIG, store=store, mailer=outbox, clock=clock)
        await setup.email_enroll_begin("alice", "alice@example.com")
        await setup.email_enroll_confirm("alice", mailed_code(outbox, "alice@example.com"))
        clock.t += COOLDOWN
        challenge = (await setup.login_begin("alice")).challenge_id
        assert challenge is not None
        engine = twofa.aio.Engine(CONFIG, store=store, mailer=mailer, clock=clock)
        started = time.monotonic()
        results = await asyncio.gather(
            *(async_outcome(lambda: engine.login_send_email_code("alice", challenge)) for _ in range(BURST))
        )
        check_burst(list(results), mailer, time.monotonic() - started)
        code = mailed_code(mailer.sent, "alice@example.com")
        assert (await engine.login_verify("alice", challenge, "email", code)).method == "email"

    asyncio.run(main())


@pytest.mark.parametrize("store_kind", ["async-dict", "memory"])
def test_64_asyncio_tasks_enrolling_an_address_for_a_user_without_methods_mail_one(store_kind: str) -> None:
    async def main() -> None:
        clock, mailer = Clock(), AsyncSlowMailer()
        store: Any = AsyncDictStore() if store_kind == "async-dict" else twofa.MemoryStore()
        engine = twofa.aio.Engine(CONFIG, store=store, mailer=mailer, clock=clock)
        started = time.monotonic()
        results = await asyncio.gather(
            *(async_outcome(lambda: engine.email_enroll_begin("bob", "victim@example.com")) for _ in range(BURST))
        )
        check_burst(list(results), mailer, time.monotonic() - started)
        added = await engine.email_enroll_confirm("bob", mailed_code(mailer.sent, "victim@example.com"))
        assert added.method.kind == "email"

    asyncio.run(main())


def test_a_failed_delivery_lifts_the_cooldown() -> None:
    clock, outbox = Clock(), Outbox()
    attempted: list[twofa.Message] = []

    def down(message: twofa.Message) -> None:
        attempted.append(message)
        raise ConnectionError("SMTP is down")

    store = DictStore()
    with pytest.raises(twofa.Mail):
        twofa.Engine(CONFIG, store=store, mailer=down, clock=clock).email_enroll_begin("bob", "bob@example.com")
    engine = twofa.Engine(CONFIG, store=store, mailer=outbox, clock=clock)
    with pytest.raises(twofa.NotFound):
        engine.email_enroll_confirm("bob", mailed_code(attempted, "bob@example.com"))
    engine.email_enroll_begin("bob", "bob@example.com")  # at once: the failed code holds no cooldown
    assert engine.email_enroll_confirm("bob", mailed_code(outbox, "bob@example.com")).method.kind == "email"


def test_a_host_that_died_before_sending_blocks_a_new_code_only_for_the_cooldown() -> None:
    """The asyncio task is cancelled while its mailer delivers: the pending code was written and
    never armed, as when a server dies between the write and the send. It holds the cooldown
    (a burst cannot get around it by never finishing), and no longer than that."""

    async def main() -> None:
        clock, outbox, store = Clock(), Outbox(), AsyncDictStore()
        entered = asyncio.Event()

        async def hangs(message: twofa.Message) -> None:
            entered.set()
            await asyncio.sleep(3600)

        dying = twofa.aio.Engine(CONFIG, store=store, mailer=hangs, clock=clock)
        task = asyncio.ensure_future(dying.email_enroll_begin("bob", "bob@example.com"))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        engine = twofa.aio.Engine(CONFIG, store=store, mailer=outbox, clock=clock)
        with pytest.raises(twofa.RateLimited) as limited:
            await engine.email_enroll_begin("bob", "bob@example.com")
        assert limited.value.retry_after is not None and 0 < limited.value.retry_after <= COOLDOWN
        assert outbox == []
        clock.t += COOLDOWN
        await engine.email_enroll_begin("bob", "bob@example.com")
        added = await engine.email_enroll_confirm("bob", mailed_code(outbox, "bob@example.com"))
        assert added.method.kind == "email"

    asyncio.run(main())


# -- item 2: sign-in codes are bound to their challenge ------------------------------------------


@pytest.mark.parametrize("store_kind", ["dict", "memory"])
def test_codes_of_two_challenges_live_side_by_side_each_for_its_own(store_kind: str) -> None:
    clock, outbox = Clock(), Outbox()
    store: Any = DictStore() if store_kind == "dict" else twofa.MemoryStore()
    engine = twofa.Engine(CONFIG, store=store, mailer=outbox, clock=clock)
    first = enrolled_by_email(engine, outbox, clock, "alice")
    engine.login_send_email_code("alice", first)
    code_first = mailed_code(outbox, "alice@example.com")
    clock.t += COOLDOWN
    second = engine.login_begin("alice").challenge_id
    assert second is not None
    engine.login_send_email_code("alice", second)  # the first code stays valid
    code_second = mailed_code(outbox, "alice@example.com")
    assert code_first != code_second
    third = engine.login_begin("alice").challenge_id  # no code sent for it
    assert third is not None
    with pytest.raises(twofa.NotFound):
        engine.login_verify("alice", third, "email", code_first)
    with pytest.raises(twofa.InvalidCode):
        engine.login_verify("alice", second, "email", code_first)  # a wrong try at the second's code
    assert engine.login_verify("alice", first, "email", code_first).method == "email"
    with pytest.raises(twofa.Replayed):
        engine.login_verify("alice", third, "email", code_first)  # used, on another challenge
    assert engine.login_verify("alice", second, "email", code_second).method == "email"


# -- item 4: the notice address ------------------------------------------------------------------


def test_the_notice_address_operations_take_a_step_up_on_both_engines() -> None:
    clock, outbox = Clock(), Outbox()
    store = DictStore()
    engine = twofa.Engine(CONFIG, store=store, mailer=outbox, clock=clock)
    engine.set_contact_email("alice", "first@example.com")  # no method yet: no step-up needed
    engine.admin().totp_import("alice", SECRET)
    with pytest.raises(twofa.StepUpRequired):
        engine.set_contact_email("alice", "second@example.com")
    with pytest.raises(twofa.StepUpRequired):
        engine.contact_email_begin("alice", "second@example.com")
    clock.t += 30
    challenge = engine.login_begin("alice").challenge_id
    assert challenge is not None
    step_up = engine.login_verify("alice", challenge, "totp", pyotp.TOTP(SECRET).at(clock.t)).step_up
    del outbox[:]

    sent = engine.contact_email_begin("alice", "second@example.com", step_up)
    assert sent.sent_to == ["second@example.com"] and [m.to for m in outbox] == ["second@example.com"]
    code = mailed_code(outbox, "second@example.com")
    with pytest.raises(twofa.NotFound):
        engine.email_enroll_confirm("alice", code, step_up)  # a notice-address code enrols nothing
    assert engine.security_status("alice").contact_email == "first@example.com"
    notices = engine.contact_email_confirm("alice", code, step_up.token)
    assert notices.sent == 2 and sorted(m.to for m in outbox[1:]) == ["first@example.com", "second@example.com"]
    assert engine.security_status("alice").contact_email == "second@example.com"

    async def main() -> None:
        aio = twofa.aio.Engine(CONFIG, store=store, mailer=outbox, clock=clock)
        with pytest.raises(twofa.StepUpRequired):
            await aio.contact_email_begin("alice", "third@example.com")
        clock.t += COOLDOWN
        await aio.contact_email_begin("alice", "third@example.com", step_up)
        await aio.contact_email_confirm("alice", mailed_code(outbox, "third@example.com"), step_up)
        assert (await aio.security_status("alice")).contact_email == "third@example.com"
        assert (await aio.set_contact_email("alice", "fourth@example.com", step_up)).sent == 2

    asyncio.run(main())
    assert engine.security_status("alice").contact_email == "fourth@example.com"


def test_the_notice_address_arguments_are_checked_like_every_other() -> None:
    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), mailer=Outbox(), clock=Clock())
    with pytest.raises(twofa.InvalidInput, match="address contains NUL"):
        engine.set_contact_email("alice", "a\0@example.com")
    with pytest.raises(twofa.InvalidInput, match="code contains NUL"):
        engine.contact_email_confirm("alice", "12\x0034")
    with pytest.raises(TypeError):
        engine.contact_email_begin("alice", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        engine.set_contact_email("alice", "a@example.com", 42)  # type: ignore[arg-type]
    with pytest.raises(twofa.NotFound):
        engine.contact_email_confirm("alice", "123456")  # nothing begun
    assert engine.security_status("alice").contact_email is None


# -- item 6: credential claims are released ------------------------------------------------------


def register(engine: twofa.Engine, user: str, key: SoftAuthenticator, same: bool, step_up: Any = None) -> str:
    begun = engine.webauthn_register_begin(user, "Key", step_up)
    added = engine.webauthn_register_finish(user, key.register(begun.options_json, same_credential=same), step_up)
    return added.method.id


def test_deletion_and_admin_reset_release_the_credential_claim() -> None:
    store, clock, outbox = DictStore(), Clock(), Outbox()
    engine = twofa.Engine(CONFIG, store=store, mailer=outbox, clock=clock)
    key = SoftAuthenticator(ORIGIN)
    register(engine, "u1", key, same=False)
    [claim] = [k for k in store.snapshot() if k.startswith("webauthn-credential/")]
    with pytest.raises(twofa.WebauthnRejected):
        register(engine, "u2", key, same=True)  # u1 still holds it
    engine.admin().delete_user("u1")
    assert claim not in store.snapshot()
    register(engine, "u2", key, same=True)
    assert store.snapshot()[claim] == b"u2"
    engine.admin().reset_user("u2", "support", "lost the key")
    assert claim not in store.snapshot()
    register(engine, "u3", key, same=True)
    assert store.snapshot()[claim] == b"u3"
    begun = engine.login_begin("u3")
    assert begun.challenge_id is not None and begun.webauthn_options is not None
    assert engine.login_verify("u3", begun.challenge_id, "webauthn", key.sign_in(begun.webauthn_options)).method == (
        "webauthn"
    )


# -- item 8: invisible and bidirectional characters ------------------------------------------------


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\ufeff", "\u2028", "\u2029"])
def test_invisible_characters_never_reach_a_header(char: str) -> None:
    """An address or label with a format character or a line/paragraph separator is refused; the
    messages that do go out build as `email.message.EmailMessage` headers."""
    clock, outbox = Clock(), Outbox()
    engine = twofa.Engine(CONFIG, store=DictStore(), mailer=outbox, clock=clock)
    for call in (
        lambda: engine.email_enroll_begin("mona", f"mo{char}na@example.com"),
        lambda: engine.set_contact_email("mona", f"mona{char}@example.com"),
        lambda: engine.contact_email_begin("mona", f"mona@example.com{char}"),
        lambda: engine.webauthn_register_begin("mona", f"Key{char}Subject: x"),
        lambda: engine.totp_enroll_begin("mona", f"mona{char}@example.com"),
    ):
        with pytest.raises(twofa.InvalidInput):
            call()
    assert outbox == []
    engine.set_contact_email("mona", "mona@example.com")
    added = engine.admin().totp_import("mona", SECRET)
    clock.t += 30
    challenge = engine.login_begin("mona").challenge_id
    assert challenge is not None
    step_up = engine.login_verify("mona", challenge, "totp", pyotp.TOTP(SECRET).at(clock.t)).step_up
    with pytest.raises(twofa.InvalidInput):
        engine.rename_method("mona", added.method.id, f"Ph{char}one", step_up)
    engine.rename_method("mona", added.method.id, "Phone", step_up)
    engine.remove_method("mona", added.method.id, step_up)
    assert outbox
    for message in outbox:
        built = email.message.EmailMessage()
        built["To"], built["Subject"] = message.to, message.subject
        built.set_content(message.text)
        assert char not in built.as_string()
