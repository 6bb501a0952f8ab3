"""End-to-end tests of the Python host: the server on a free port, a real SMTP server (aiosmtpd)
receiving its mail, and the JSON API driven over HTTP with a cookie jar, as a browser would.

Run from the repository root: python -m pytest examples/python-host -q
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import http.cookiejar
import json
import re
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "bindings" / "python" / "tests"))

import server as host  # noqa: E402
from softauthn import SoftAuthenticator  # noqa: E402

PASSWORD = "correct horse battery"


class Mailbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def received(self, to: str, subject_part: str) -> list[EmailMessage]:
        """The messages to `to` whose subject contains `subject_part`, oldest first."""
        with self.lock:
            return [m for m in self.messages if m["To"] == to and subject_part in m["Subject"]]

    def last_code(self, to: str, subject_part: str) -> str:
        """The code in the latest such message, which must show it in its text and HTML parts."""
        message = self.received(to, subject_part)[-1]
        code = re.search(r"\b(\d{6})\b", text_of(message))
        assert code is not None and f"<b>{code[1]}</b>" in text_of(message, "html")
        return code[1]


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    """The text/plain (or text/html) part of a message, which must have one."""
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    content: str = part.get_content()
    return content


class Clock:
    """A clock the test moves forward, so each TOTP code is for a new time step."""

    def __init__(self) -> None:
        self.t = int(time.time())

    def __call__(self) -> int:
        return self.t

    def next_totp(self, secret: str) -> str:
        """Moves to the next 30 s step and returns the authenticator app's code then."""
        self.t += 30
        return str(pyotp.TOTP(secret).at(self.t))


class Browser:
    """A client of the API keeping its cookies, as a browser tab would."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Sends a request; returns the status and the decoded JSON body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.load(e)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POSTs and returns the JSON of a successful response."""
        status, reply = self.request("POST", path, {} if body is None else body)
        assert status in (200, 201), (path, status, reply)
        return reply

    def security(self) -> Any:
        """The Security tab."""
        status, reply = self.request("GET", "/api/security")
        assert status == 200, reply
        return reply

    def login(self, username: str) -> Any:
        """Signs in with the password; returns the challenge."""
        return self.post("/api/login", {"username": username, "password": PASSWORD})


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on a free loopback port, and its port."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture(scope="module")
def clock() -> Clock:
    """The server's clock."""
    return Clock()


@contextlib.contextmanager
def running_host(db: Path, smtp_port: int, clock: Clock | None = None) -> Iterator[int]:
    """The host on a free port with a fresh SQLite file, serving in a thread; its port."""
    httpd = host.create_server(
        db_path=str(db), master_key=secrets.token_bytes(32), smtp_port=smtp_port, port=0, clock=clock
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def server(mailbox: tuple[Mailbox, int], clock: Clock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The host, mailing the SMTP server, on the test clock; its port."""
    with running_host(tmp_path_factory.mktemp("python-host") / "twofa.db", mailbox[1], clock) as port:
        yield port


def test_walkthrough(server: int, mailbox: tuple[Mailbox, int], clock: Clock) -> None:
    """Every method enrolled and used to sign in, then a wrong code."""
    box, _ = mailbox
    browser = Browser(f"http://127.0.0.1:{server}")
    address = "alice@example.com"

    # Sign up: signed in at once, nothing set up yet.
    assert browser.post("/api/signup", {"username": "alice", "password": PASSWORD})["signed_in"]
    status = browser.security()
    assert status["methods"] == [] and not status["two_factor_required"]

    # Authenticator app: the first method needs no step-up and gives one.
    setup = browser.post("/api/totp/begin")
    assert setup["uri"].startswith("otpauth://totp/") and "<svg" in setup["qr_svg"]
    added = browser.post("/api/totp/confirm", {"code": clock.next_totp(setup["secret"])})
    assert added["method"]["kind"] == "totp" and "step_up" not in added
    browser.post("/api/logout")
    assert browser.request("GET", "/api/security")[0] == 401

    # Sign in with the app.
    challenge = browser.login("alice")
    assert not challenge["signed_in"] and challenge["methods"] == ["totp"]
    assert browser.request("GET", "/api/security")[0] == 401, "not signed in before the second factor"
    verified = browser.post("/api/login/verify", {"kind": "totp", "value": clock.next_totp(setup["secret"])})
    assert verified["signed_in"] and verified["method"] == "totp"

    # Email: the code comes over SMTP (the step-up token of that sign-in is used server-side).
    assert browser.post("/api/email/begin", {"address": address})["sent_to"] == [address]
    added = browser.post("/api/email/confirm", {"code": box.last_code(address, "confirm your email")})
    assert added["method"]["label"] == address

    # Sign in with an emailed code.
    browser.post("/api/logout")
    assert browser.login("alice")["methods"] == ["totp", "email"]
    assert browser.post("/api/login/email-code")["sent_to"] == ["a***@example.com"]
    code = box.last_code(address, "sign-in code")
    assert browser.post("/api/login/verify", {"kind": "email", "value": code})["signed_in"]

    # WebAuthn: register a software passkey; the email address is told.
    authenticator = SoftAuthenticator(f"http://localhost:{server}")
    options = browser.post("/api/webauthn/begin", {"name": "Laptop"})["options"]
    added = browser.post("/api/webauthn/finish", {"credential": authenticator.register(options)})
    assert added["method"]["kind"] == "webauthn" and added["notices"] == {"sent": 1, "failed": []}
    assert "Laptop" in text_of(box.received(address, "a sign-in method was added")[-1])
    renamed = browser.post("/api/methods/rename", {"method_id": added["method"]["id"], "label": "Work laptop"})
    assert renamed["label"] == "Work laptop"

    # Sign in with it.
    browser.post("/api/logout")
    challenge = browser.login("alice")
    assert "webauthn" in challenge["methods"]
    assertion = authenticator.sign_in(challenge["webauthn_options"])
    assert browser.post("/api/login/verify", {"kind": "webauthn", "value": assertion})["method"] == "webauthn"

    # Recovery codes: shown once, each signs in once.
    codes = browser.post("/api/recovery-codes")["codes"]
    assert len(codes) == 10 and browser.security()["recovery_codes_left"] == 10
    browser.post("/api/logout")
    assert "recovery" in browser.login("alice")["methods"]
    used = browser.post("/api/login/verify", {"kind": "recovery", "value": codes[0]})
    assert used["method"] == "recovery" and used["recovery_codes_left"] == 9
    assert box.received(address, "a recovery code was used")

    # Notices to another address, proved with a code sent to it; the old and the new one are told.
    assert browser.post("/api/contact-email", {"address": "alice@example.org"})["sent_to"] == ["alice@example.org"]
    assert browser.security()["contact_email"] is None, "not before the address is proved"
    code = box.last_code("alice@example.org", "confirm your email")
    # The first address is not mailed.
    assert browser.post("/api/contact-email/confirm", {"code": code})["notices"]["sent"] == 0
    assert browser.security()["contact_email"] == "alice@example.org"
    clock.t += 60  # the resend cooldown of the code just used
    browser.post("/api/contact-email", {"address": "alice@example.net"})
    code = box.last_code("alice@example.net", "confirm your email")
    assert browser.post("/api/contact-email/confirm", {"code": code})["notices"]["sent"] == 2
    assert box.received("alice@example.org", "the address for security notices changed")
    assert box.received("alice@example.net", "the address for security notices changed")

    # A wrong code: a JSON error with its HTTP status; the session is not signed in.
    browser.post("/api/logout")
    browser.login("alice")
    valid = {pyotp.TOTP(setup["secret"]).at(clock.t + d) for d in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
    status_code, error = browser.request("POST", "/api/login/verify", {"kind": "totp", "value": wrong})
    assert (status_code, error["error"]) == (401, "invalid_code") and error["message"]
    assert browser.request("GET", "/api/security")[0] == 401


def test_policy(server: int, mailbox: tuple[Mailbox, int], clock: Clock) -> None:
    """Orders make 2FA required; the last method cannot be removed; a removal revokes step-up."""
    box, _ = mailbox
    browser = Browser(f"http://127.0.0.1:{server}")
    address = "bob@example.com"
    browser.post("/api/signup", {"username": "bob", "password": PASSWORD})
    status = browser.post("/api/orders")
    assert status["two_factor_required"] and not status["compliant"]
    assert status["recommendations"] == ["enable_two_factor"]

    # Signing in now says enrolment is required (the session is signed in to do it).
    browser.post("/api/logout")
    challenge = browser.login("bob")
    assert challenge["signed_in"] and challenge["enrollment_required"] and challenge["methods"] == []

    setup = browser.post("/api/totp/begin")
    totp = browser.post("/api/totp/confirm", {"code": clock.next_totp(setup["secret"])})["method"]
    assert browser.security()["compliant"]
    status_code, error = browser.request("POST", "/api/methods/remove", {"method_id": totp["id"]})
    assert (status_code, error["error"]) == (403, "policy_violation")

    # With a second method the first may go; that revokes every step-up token.
    browser.post("/api/email/begin", {"address": address})
    status_code, error = browser.request("POST", "/api/email/confirm", {"code": "12345"})
    assert (status_code, error["error"]) == (400, "invalid_input")
    emailed = browser.post("/api/email/confirm", {"code": box.last_code(address, "confirm your email")})["method"]
    browser.post("/api/methods/remove", {"method_id": totp["id"]})
    assert [m["kind"] for m in browser.security()["methods"]] == ["email"]
    status_code, error = browser.request("POST", "/api/methods/remove", {"method_id": emailed["id"]})
    assert (status_code, error["error"]) == (403, "step_up_required")

    # A fresh sign-in gives a new token, but the last method stays.
    browser.post("/api/logout")
    browser.login("bob")
    browser.post("/api/login/email-code")
    browser.post("/api/login/verify", {"kind": "email", "value": box.last_code(address, "sign-in code")})
    status_code, error = browser.request("POST", "/api/methods/remove", {"method_id": emailed["id"]})
    assert (status_code, error["error"]) == (403, "policy_violation")
    assert box.received(address, "a sign-in method was removed")


def test_http_errors(server: int) -> None:
    """The plain-text index, unknown endpoints, non-JSON bodies, bad credentials."""
    base = f"http://127.0.0.1:{server}"
    with urllib.request.urlopen(base + "/", timeout=30) as response:
        assert response.headers.get_content_type() == "text/plain"
        assert "/api/login/verify" in response.read().decode()
    browser = Browser(base)
    assert browser.request("GET", "/api/nothing")[0] == 404
    status_code, error = browser.request("POST", "/api/login", {"username": "nobody", "password": PASSWORD})
    assert (status_code, error["error"]) == (401, "invalid_credentials")
    form = urllib.request.Request(base + "/api/login", data=b"username=a&password=b", method="POST")
    form.add_header("Content-Type", "application/x-www-form-urlencoded")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(form, timeout=30)
    with refused.value as response:
        assert response.code == 415


def test_mail_down(tmp_path: Path) -> None:
    """Without an SMTP server, sending a code fails with `mail` and 503."""
    with running_host(tmp_path / "twofa.db", free_port()) as port:
        browser = Browser(f"http://127.0.0.1:{port}")
        browser.post("/api/signup", {"username": "carol", "password": PASSWORD})
        status_code, error = browser.request("POST", "/api/email/begin", {"address": "carol@example.com"})
        assert (status_code, error["error"]) == (503, "mail")
        assert browser.security()["pending"]["email"] is None, "no code was made usable"
