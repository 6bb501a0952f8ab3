"""Email codes delivered through a real SMTP server (aiosmtpd on a loopback port) with smtplib,
and read back from the received message."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import twofa

from conftest import CONFIG, T0, Clock, DictStore


class Inbox:
    """The aiosmtpd handler: keeps every received message."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def last_to(self, address: str) -> email.message.EmailMessage:
        return next(m for m in reversed(self.messages) if m["To"] == address)

    def code_for(self, address: str) -> str:
        """The code in the plain-text part of the last message to `address`."""
        body = self.last_to(address).get_body(preferencelist=("plain",))
        assert body is not None
        found = re.search(r"\b\d{6}\b", body.get_content())
        assert found is not None, "no code in the mail"
        return found.group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class SmtpMailer:
    """twofa's mailer over SMTP: each message as text + HTML alternatives."""

    def __init__(self, port: int) -> None:
        self.port = port

    def __call__(self, message: twofa.Message) -> None:
        mail = EmailMessage()
        mail["From"] = "security@example.com"
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.send_message(mail)


def test_enrolment_and_sign_in_codes_over_smtp(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    clock = Clock()
    engine = twofa.Engine(CONFIG, store=DictStore(), mailer=SmtpMailer(port), clock=clock)
    sent = engine.email_enroll_begin("bob", "bob@example.com")
    assert sent.sent_to == ["bob@example.com"] and sent.expires_at == T0 + 600
    received = inbox.last_to("bob@example.com")
    assert "Example Shop" in received["Subject"]
    html = received.get_body(preferencelist=("html",))
    assert html is not None and inbox.code_for("bob@example.com") in html.get_content()
    added = engine.email_enroll_confirm("bob", inbox.code_for("bob@example.com"))
    assert (added.method.kind, added.method.label) == ("email", "bob@example.com")

    clock.t += 120
    challenge = engine.login_begin("bob")
    assert challenge.methods == ["email"] and challenge.challenge_id is not None
    sent = engine.login_send_email_code("bob", challenge.challenge_id)
    assert sent.sent_to == ["b***@example.com"]
    with pytest.raises(twofa.RateLimited) as limited:
        engine.login_send_email_code("bob", challenge.challenge_id)
    assert limited.value.retry_after == 60
    code = inbox.code_for("bob@example.com")
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(twofa.InvalidCode):
        engine.login_verify("bob", challenge.challenge_id, "email", wrong)
    success = engine.login_verify("bob", challenge.challenge_id, "email", code)
    assert success.method == "email"
    with pytest.raises(twofa.TwofaError):
        engine.login_verify("bob", challenge.challenge_id, "email", code)


def test_an_unreachable_smtp_server_leaves_no_usable_code() -> None:
    attempted: list[twofa.Message] = []

    def mailer(message: twofa.Message) -> None:
        attempted.append(message)
        SmtpMailer(free_port())(message)  # nothing listens there

    engine = twofa.Engine(CONFIG, store=DictStore(), mailer=mailer, clock=Clock())
    with pytest.raises(twofa.Mail) as failed:
        engine.email_enroll_begin("bob", "bob@example.com")
    assert isinstance(failed.value.__cause__, ConnectionRefusedError)
    assert failed.value.callback == "send_mail"
    code = re.search(r"\d{6}", attempted[0].text)
    assert code is not None
    with pytest.raises(twofa.NotFound):
        engine.email_enroll_confirm("bob", code.group())
    assert engine.security_status("bob").pending.email is None
