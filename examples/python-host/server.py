"""A Python web backend using twofa: enrolment and sign-in with an authenticator app, email
codes, WebAuthn and recovery codes, as a JSON API on the standard library's http.server.

The host keeps what twofa leaves to it: accounts (in memory, scrypt password hashes), sessions
(a random token in an HttpOnly, SameSite=Strict cookie) and mail (SMTP). twofa keeps the second
factors in its embedded SQLite store, or with ``--postgres URL`` in PostgreSQL (pgstore.py).
Run ``python server.py --help``; GET / lists the endpoints.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import smtplib
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

import twofa

log = logging.getLogger("python-host")

ISSUER = "Example Shop"
DEFAULT_MAIL_FROM = f"{ISSUER} <no-reply@localhost>"
SESSION_COOKIE = "session"
MAX_BODY_BYTES = 64 * 1024
USERNAME = re.compile(r"[A-Za-z0-9._-]{3,64}")
MIN_PASSWORD_CHARS = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
#: The HTTP status of each twofa error (any other error: 500).
ERROR_STATUS: dict[str, HTTPStatus] = {
    "invalid_input": HTTPStatus.BAD_REQUEST,
    "invalid_code": HTTPStatus.UNAUTHORIZED,
    "expired": HTTPStatus.UNAUTHORIZED,
    "replayed": HTTPStatus.UNAUTHORIZED,
    "webauthn_rejected": HTTPStatus.UNAUTHORIZED,
    "step_up_required": HTTPStatus.FORBIDDEN,
    "policy_violation": HTTPStatus.FORBIDDEN,
    "not_enrolled": HTTPStatus.CONFLICT,
    "conflict": HTTPStatus.CONFLICT,
    "not_found": HTTPStatus.NOT_FOUND,
    "rate_limited": HTTPStatus.TOO_MANY_REQUESTS,
    "locked_out": HTTPStatus.TOO_MANY_REQUESTS,
    "storage": HTTPStatus.SERVICE_UNAVAILABLE,
    "mail": HTTPStatus.SERVICE_UNAVAILABLE,
}

ENDPOINTS = """\
twofa Python host: a JSON API (POST bodies are JSON objects, sent as application/json).

  POST /api/signup            {username, password}   create an account and sign in
  POST /api/login             {username, password}   check the password; returns the 2FA challenge
  POST /api/login/email-code                         email a sign-in code
  POST /api/login/verify      {kind, value}          kind: totp | email | webauthn | recovery
  POST /api/logout

Signed in (the Security tab):
  GET  /api/security                                 methods, policy, recommendations
  POST /api/totp/begin        {account_name?}        secret, otpauth URI, QR code (SVG)
  POST /api/totp/confirm      {code}
  POST /api/email/begin       {address}              emails a confirmation code
  POST /api/email/confirm     {code}
  POST /api/webauthn/begin    {name}                 options for navigator.credentials.create
  POST /api/webauthn/finish   {credential}           PublicKeyCredential.toJSON()
  POST /api/methods/rename    {method_id, label}
  POST /api/methods/remove    {method_id}
  POST /api/recovery-codes                           a new set, shown once
  POST /api/orders                                   the account placed an order: 2FA is now required
  POST /api/contact-email     {address}              emails a code to a new notice address
  POST /api/contact-email/confirm {code}             security notices go there from now on
"""

JsonObject = dict[str, Any]


class ApiError(Exception):
    """A failure of the host itself, answered as {"error": name, "message": message}."""

    def __init__(self, status: HTTPStatus, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


# Accounts


def scrypt(password: str, salt: bytes) -> bytes:
    """The scrypt hash of a password."""
    return hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)


@dataclass(frozen=True)
class PasswordHash:
    """A salted scrypt password hash."""

    salt: bytes
    digest: bytes = field(repr=False)

    @staticmethod
    def of(password: str) -> PasswordHash:
        """Hashes a password with a fresh random salt."""
        salt = secrets.token_bytes(16)
        return PasswordHash(salt, scrypt(password, salt))

    def matches(self, password: str) -> bool:
        """Whether the password is this one (compared in constant time)."""
        return hmac.compare_digest(scrypt(password, self.salt), self.digest)


@dataclass(frozen=True)
class User:
    """An account. `id` is its twofa user id: random, so a name used again starts afresh."""

    id: str
    username: str
    password: PasswordHash


class Users:
    """The accounts, in memory, by username."""

    def __init__(self) -> None:
        self._by_name: dict[str, User] = {}
        self._lock = threading.Lock()
        # Checked when the name is unknown, so that takes as long as a wrong password.
        self._decoy = PasswordHash.of(secrets.token_urlsafe(16))

    def add(self, username: str, password: str) -> User | None:
        """Creates an account; None if the name is taken."""
        user = User(secrets.token_urlsafe(16), username, PasswordHash.of(password))
        with self._lock:
            if username in self._by_name:
                return None
            self._by_name[username] = user
        return user

    def authenticate(self, username: str, password: str) -> User | None:
        """The account, if the password is right."""
        with self._lock:
            user = self._by_name.get(username)
        if user is None:
            self._decoy.matches(password)
            return None
        return user if user.password.matches(password) else None


# Sessions


@dataclass(frozen=True)
class Session:
    """A browser session: signed in, or between the password and the second factor."""

    user: User
    #: False while a second factor is pending (`challenge_id` is then set).
    signed_in: bool
    challenge_id: str | None = None
    #: The latest step-up token, kept here and never sent to the browser.
    step_up: twofa.StepUpToken | None = None


class Sessions:
    """The sessions, in memory, by their random cookie token."""

    def __init__(self) -> None:
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, session: Session, replacing: str | None) -> str:
        """Stores a session under a new token (ending the one it replaces); returns the token."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            if replacing is not None:
                self._by_token.pop(replacing, None)
            self._by_token[token] = session
        return token

    def get(self, token: str | None) -> Session | None:
        """The session of a token."""
        if token is None:
            return None
        with self._lock:
            return self._by_token.get(token)

    def update(self, token: str, session: Session) -> None:
        """Replaces the session under an existing token."""
        with self._lock:
            if token in self._by_token:
                self._by_token[token] = session

    def end(self, token: str | None) -> None:
        """Forgets a session."""
        if token is not None:
            with self._lock:
                self._by_token.pop(token, None)


# Mail


class SmtpMailer:
    """Delivers twofa's messages over SMTP, as multipart/alternative (plain text and HTML).

    A failure raises, which twofa reports as `mail` for a code and lists in ``notices.failed``
    for a notice. This demo speaks plain SMTP without authentication (a local relay).
    """

    def __init__(self, host: str, port: int, sender: str, timeout_secs: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout_secs = timeout_secs

    def __call__(self, message: twofa.Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=True)
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_secs) as smtp:
                smtp.send_message(mail)
        except OSError as e:  # smtplib's errors included
            # twofa reports a failed notice only as "the send_mail callback returned 2": say why.
            log.warning("SMTP delivery via %s:%d failed: %r", self.host, self.port, e)
            raise


# The API


class Body:
    """A JSON request body, with typed access to its fields."""

    def __init__(self, fields: JsonObject) -> None:
        self.fields = fields

    def text(self, name: str) -> str:
        """A required string field."""
        value = self.fields.get(name)
        if not isinstance(value, str):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_input", f"{name}: a string is required")
        return value

    def optional_text(self, name: str) -> str | None:
        """An optional string field."""
        return None if self.fields.get(name) is None else self.text(name)

    def object(self, name: str) -> JsonObject:
        """A required object field."""
        value = self.fields.get(name)
        if not isinstance(value, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_input", f"{name}: an object is required")
        return value


@dataclass(frozen=True)
class Reply:
    """A JSON response, which may set a new session cookie or clear it."""

    body: JsonObject
    status: HTTPStatus = HTTPStatus.OK
    new_session: str | None = None
    clear_session: bool = False


@dataclass(frozen=True)
class Call:
    """A request to a public endpoint: its body and its session cookie, if any."""

    body: Body
    token: str | None


@dataclass(frozen=True)
class SignedIn:
    """A request of a signed-in session."""

    body: Body
    token: str
    session: Session

    @property
    def user_id(self) -> str:
        """The twofa user id."""
        return self.session.user.id


def error_body(name: str, message: str, retry_after: int | None = None) -> JsonObject:
    """The JSON of an error response."""
    return {"error": name, "message": message, "retry_after": retry_after}


def twofa_error_reply(error: twofa.TwofaError) -> Reply:
    """The response to a twofa error."""
    status = ERROR_STATUS.get(error.name, HTTPStatus.INTERNAL_SERVER_ERROR)
    if status >= 500:
        # The message never holds a secret, but the cause (a store or mailer exception) may
        # name internals: log it, answer generically.
        log.error("twofa %s: %s (cause: %r)", error.name, error.message, error.__cause__)
    message = error.message if status < 500 else "the server could not complete the request"
    return Reply(error_body(error.name, message, error.retry_after), status)


def method_added(added: twofa.MethodAdded) -> JsonObject:
    """A new method, without the step-up token (it stays in the session)."""
    return {"method": dataclasses.asdict(added.method), "notices": dataclasses.asdict(added.notices)}


class App:
    """The endpoints over a twofa engine, the accounts and the sessions (HTTP is `Handler`'s)."""

    def __init__(self, engine: twofa.Engine) -> None:
        self.engine = engine
        self.users = Users()
        self.sessions = Sessions()
        self.public: dict[tuple[str, str], Callable[[Call], Reply]] = {
            ("POST", "/api/signup"): self.signup,
            ("POST", "/api/login"): self.login,
            ("POST", "/api/login/email-code"): self.login_email_code,
            ("POST", "/api/login/verify"): self.login_verify,
            ("POST", "/api/logout"): self.logout,
        }
        self.signed_in: dict[tuple[str, str], Callable[[SignedIn], Reply]] = {
            ("GET", "/api/security"): self.security,
            ("POST", "/api/totp/begin"): self.totp_begin,
            ("POST", "/api/totp/confirm"): self.totp_confirm,
            ("POST", "/api/email/begin"): self.email_begin,
            ("POST", "/api/email/confirm"): self.email_confirm,
            ("POST", "/api/webauthn/begin"): self.webauthn_begin,
            ("POST", "/api/webauthn/finish"): self.webauthn_finish,
            ("POST", "/api/methods/rename"): self.rename_method,
            ("POST", "/api/methods/remove"): self.remove_method,
            ("POST", "/api/recovery-codes"): self.recovery_codes,
            ("POST", "/api/orders"): self.order_created,
            ("POST", "/api/contact-email"): self.contact_email_begin,
            ("POST", "/api/contact-email/confirm"): self.contact_email_confirm,
        }

    def handle(self, method: str, path: str, body: Body, token: str | None) -> Reply:
        """Runs the endpoint; every failure becomes a JSON error reply."""
        try:
            return self._route(method, path, body, token)
        except ApiError as e:
            return Reply(error_body(e.name, e.message), e.status)
        except twofa.TwofaError as e:
            return twofa_error_reply(e)
        except Exception:
            log.exception("%s %s failed", method, path)
            return Reply(
                error_body("internal", "the server could not complete the request"), HTTPStatus.INTERNAL_SERVER_ERROR
            )

    def _route(self, method: str, path: str, body: Body, token: str | None) -> Reply:
        public = self.public.get((method, path))
        if public is not None:
            return public(Call(body, token))
        private = self.signed_in.get((method, path))
        if private is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "not_found", f"no endpoint {method} {path}")
        session = self.sessions.get(token)
        if token is None or session is None or not session.signed_in:
            raise ApiError(HTTPStatus.UNAUTHORIZED, "not_signed_in", "sign in first")
        return private(SignedIn(body, token, session))

    def _new_session_reply(self, body: JsonObject, session: Session, replacing: str | None) -> Reply:
        """Starts `session` under a fresh token (a token never gains rights) and sets its cookie."""
        return Reply(body, new_session=self.sessions.start(session, replacing))

    def _keep_step_up(self, call: SignedIn, added: twofa.MethodAdded) -> None:
        """Keeps the step-up token a first method comes with."""
        if added.step_up is not None:
            self.sessions.update(call.token, dataclasses.replace(call.session, step_up=added.step_up))

    # Sign-up and sign-in

    def signup(self, call: Call) -> Reply:
        """Creates an account and signs it in (it has no second factor yet)."""
        username, password = call.body.text("username"), call.body.text("password")
        if not USERNAME.fullmatch(username):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_input", "username: 3 to 64 of A-Z a-z 0-9 . _ -")
        if len(password) < MIN_PASSWORD_CHARS:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "invalid_input", f"password: at least {MIN_PASSWORD_CHARS} characters"
            )
        user = self.users.add(username, password)
        if user is None:
            raise ApiError(HTTPStatus.CONFLICT, "username_taken", "that username is taken")
        reply = self._new_session_reply({"signed_in": True, "username": username}, Session(user, True), call.token)
        return dataclasses.replace(reply, status=HTTPStatus.CREATED)

    def login(self, call: Call) -> Reply:
        """Checks the password, then starts twofa's sign-in: either the session is signed in
        at once (no second factor needed) or a challenge is pending."""
        user = self.users.authenticate(call.body.text("username"), call.body.text("password"))
        if user is None:
            raise ApiError(HTTPStatus.UNAUTHORIZED, "invalid_credentials", "wrong username or password")
        challenge = self.engine.login_begin(user.id)
        signed_in = challenge.challenge_id is None
        body = {
            "signed_in": signed_in,
            "second_factor_required": challenge.second_factor_required,
            # Policy requires 2FA the user has not set up: the UI sends them to the Security tab.
            "enrollment_required": challenge.enrollment_required,
            "methods": challenge.methods,
            "webauthn_options": challenge.webauthn_options_dict,
            "challenge_id": challenge.challenge_id,
            "expires_at": challenge.expires_at,
        }
        return self._new_session_reply(body, Session(user, signed_in, challenge.challenge_id), call.token)

    def _pending(self, call: Call) -> tuple[str, Session, str]:
        """The token, session and challenge id of a sign-in waiting for its second factor."""
        session = self.sessions.get(call.token)
        if call.token is None or session is None or session.challenge_id is None:
            raise ApiError(HTTPStatus.UNAUTHORIZED, "no_pending_login", "sign in with your password first")
        return call.token, session, session.challenge_id

    def login_email_code(self, call: Call) -> Reply:
        """Emails a sign-in code to the user's confirmed addresses."""
        _, session, challenge_id = self._pending(call)
        sent = self.engine.login_send_email_code(session.user.id, challenge_id)
        return Reply(dataclasses.asdict(sent))

    def login_verify(self, call: Call) -> Reply:
        """Verifies the second factor; the session is then signed in, with a step-up token."""
        token, session, challenge_id = self._pending(call)
        kind = call.body.text("kind")
        value = call.body.object("value") if kind == "webauthn" else call.body.text("value")
        success = self.engine.login_verify(session.user.id, challenge_id, kind, value)
        body = {
            "signed_in": True,
            "method": success.method,
            "method_id": success.method_id,
            "recovery_codes_left": success.recovery_codes_left,
            "notices": dataclasses.asdict(success.notices),
        }
        return self._new_session_reply(body, Session(session.user, True, step_up=success.step_up), token)

    def logout(self, call: Call) -> Reply:
        """Ends the session."""
        self.sessions.end(call.token)
        return Reply({"signed_in": False}, clear_session=True)

    # The Security tab

    def security(self, call: SignedIn) -> Reply:
        """The user's methods, policy state and advice."""
        status = self.engine.security_status(call.user_id)
        return Reply({"username": call.session.user.username, **dataclasses.asdict(status)})

    def totp_begin(self, call: SignedIn) -> Reply:
        """Starts enrolling an authenticator app (named after the username unless given)."""
        account_name = call.body.optional_text("account_name") or call.session.user.username
        setup = self.engine.totp_enroll_begin(call.user_id, account_name, call.session.step_up)
        return Reply({"secret": setup.secret, "uri": setup.uri, "qr_svg": setup.qr_svg, "expires_at": setup.expires_at})

    def totp_confirm(self, call: SignedIn) -> Reply:
        """Confirms the authenticator app with a code from it."""
        added = self.engine.totp_enroll_confirm(call.user_id, call.body.text("code"), call.session.step_up)
        self._keep_step_up(call, added)
        return Reply(method_added(added))

    def email_begin(self, call: SignedIn) -> Reply:
        """Emails a confirmation code to a new address."""
        sent = self.engine.email_enroll_begin(call.user_id, call.body.text("address"), call.session.step_up)
        return Reply(dataclasses.asdict(sent))

    def email_confirm(self, call: SignedIn) -> Reply:
        """Confirms the address with the emailed code."""
        added = self.engine.email_enroll_confirm(call.user_id, call.body.text("code"), call.session.step_up)
        self._keep_step_up(call, added)
        return Reply(method_added(added))

    def webauthn_begin(self, call: SignedIn) -> Reply:
        """Starts registering a WebAuthn device: options for navigator.credentials.create."""
        registration = self.engine.webauthn_register_begin(call.user_id, call.body.text("name"), call.session.step_up)
        return Reply({"options": registration.options, "expires_at": registration.expires_at})

    def webauthn_finish(self, call: SignedIn) -> Reply:
        """Finishes the registration with the browser's PublicKeyCredential.toJSON()."""
        credential = call.body.object("credential")
        added = self.engine.webauthn_register_finish(call.user_id, credential, call.session.step_up)
        self._keep_step_up(call, added)
        return Reply(method_added(added))

    def rename_method(self, call: SignedIn) -> Reply:
        """Renames a method."""
        body = call.body
        method = self.engine.rename_method(
            call.user_id, body.text("method_id"), body.text("label"), call.session.step_up
        )
        return Reply(dataclasses.asdict(method))

    def remove_method(self, call: SignedIn) -> Reply:
        """Removes a method. twofa then revokes every step-up token of the user, so the session
        drops its own: further changes need a new sign-in."""
        notices = self.engine.remove_method(call.user_id, call.body.text("method_id"), call.session.step_up)
        self.sessions.update(call.token, dataclasses.replace(call.session, step_up=None))
        return Reply({"notices": dataclasses.asdict(notices)})

    def recovery_codes(self, call: SignedIn) -> Reply:
        """Replaces the recovery codes with a fresh set, shown once."""
        codes = self.engine.recovery_codes_generate(call.user_id, call.session.step_up)
        return Reply({"codes": codes.codes, "notices": dataclasses.asdict(codes.notices)})

    def order_created(self, call: SignedIn) -> Reply:
        """Records an order (2FA becomes required); returns the new security status."""
        self.engine.mark_order_created(call.user_id)
        return self.security(call)

    def contact_email_begin(self, call: SignedIn) -> Reply:
        """Emails a code to a new address for security notices (proved before it is used)."""
        sent = self.engine.contact_email_begin(call.user_id, call.body.text("address"), call.session.step_up)
        return Reply(dataclasses.asdict(sent))

    def contact_email_confirm(self, call: SignedIn) -> Reply:
        """Makes the proved address the one security notices go to; the old and the new one are
        told."""
        notices = self.engine.contact_email_confirm(call.user_id, call.body.text("code"), call.session.step_up)
        return Reply({"notices": dataclasses.asdict(notices)})


# HTTP


class Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into `App` calls and replies into JSON responses."""

    server: HostServer
    server_version = "twofa-python-host"

    def do_GET(self) -> None:
        """GET /: the endpoint list; GET /api/...: the API."""
        if self.path == "/":
            self._send(HTTPStatus.OK, ENDPOINTS.encode(), "text/plain; charset=utf-8", {})
        else:
            self._reply(self.server.app.handle("GET", self.path, Body({}), self._session_token()))

    def do_POST(self) -> None:
        """POST /api/...: the API, with a JSON object body."""
        try:
            body = self._json_body()
        except ApiError as e:
            self._reply(Reply(error_body(e.name, e.message), e.status))
            return
        self._reply(self.server.app.handle("POST", self.path, body, self._session_token()))

    def _json_body(self) -> Body:
        """The request's JSON object. Requiring application/json also keeps cross-site HTML
        forms out (they cannot send it), on top of the SameSite=Strict cookie."""
        content_type = self.headers.get_content_type()
        if content_type != "application/json":
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "invalid_input", "send a JSON body as application/json")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_input", "bad Content-Length") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "invalid_input", "the body is too large")
        raw = self.rfile.read(length)
        try:
            fields = json.loads(raw) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_input", "the body is not JSON") from None
        if not isinstance(fields, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_input", "the body must be a JSON object")
        return Body(fields)

    def _session_token(self) -> str | None:
        """The session cookie's value, if any."""
        try:
            morsel = SimpleCookie(self.headers.get("Cookie", "")).get(SESSION_COOKIE)
        except CookieError:
            return None
        return None if morsel is None else morsel.value

    def _reply(self, reply: Reply) -> None:
        headers: dict[str, str] = {}
        attributes = "Path=/; HttpOnly; SameSite=Strict"
        if reply.new_session is not None:
            headers["Set-Cookie"] = f"{SESSION_COOKIE}={reply.new_session}; {attributes}"
        elif reply.clear_session:
            headers["Set-Cookie"] = f"{SESSION_COOKIE}=; {attributes}; Max-Age=0"
        retry_after = reply.body.get("retry_after")
        if reply.status == HTTPStatus.TOO_MANY_REQUESTS and isinstance(retry_after, int):
            headers["Retry-After"] = str(retry_after)
        self._send(reply.status, json.dumps(reply.body).encode(), "application/json", headers)

    def _send(self, status: HTTPStatus, data: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        # Responses carry codes, secrets and QR codes: never cache them.
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Logs requests through `logging` (request lines hold no secrets: those travel in bodies)."""
        log.info("%s %s", self.address_string(), format % args)


class HostServer(ThreadingHTTPServer):
    """The HTTP server and its `App`, built once the port is known (WebAuthn needs the origin)."""

    def __init__(self, address: tuple[str, int], make_app: Callable[[int], App]) -> None:
        super().__init__(address, Handler)
        try:
            self.app = make_app(self.server_port)
        except BaseException:
            self.server_close()
            raise


def twofa_config(master_key: bytes, origin: str, db_path: str) -> JsonObject:
    """The twofa config: the README's defaults plus the key, WebAuthn on localhost and the store."""
    return {
        "issuer": ISSUER,
        "keys": [{"id": "k1", "secret": base64.b64encode(master_key).decode()}],
        "webauthn": {"rp_id": "localhost", "rp_name": ISSUER, "origins": [origin]},
        "sqlite_path": db_path,
    }


def create_server(
    *,
    db_path: str,
    master_key: bytes,
    smtp_host: str = "127.0.0.1",
    smtp_port: int = 8025,
    port: int = 8081,
    origin: str | None = None,
    mail_from: str = DEFAULT_MAIL_FROM,
    clock: twofa.Clock | None = None,
    store: twofa.Store | None = None,
) -> HostServer:
    """Binds 127.0.0.1:`port` (0: any free port) and opens the twofa engine on `store`, by
    default the SQLite store at `db_path`. The WebAuthn origin defaults to
    http://localhost:<port>; `clock` (Unix seconds) defaults to the system clock. Run it with
    ``serve_forever()``."""

    def make_app(bound_port: int) -> App:
        config = twofa_config(master_key, origin or f"http://localhost:{bound_port}", db_path)
        mailer = SmtpMailer(smtp_host, smtp_port, mail_from)
        engine = twofa.Engine(config, store=store, mailer=mailer, clock=clock)
        return App(engine)

    return HostServer(("127.0.0.1", port), make_app)


def master_key_from(environ: Mapping[str, str]) -> bytes:
    """TWOFA_MASTER_KEY (standard base64 of at least 32 bytes), or a random key for this run."""
    text = environ.get("TWOFA_MASTER_KEY")
    if not text:
        print(
            "WARNING: TWOFA_MASTER_KEY is not set; using a random master key for this run only. "
            "What twofa stores under it cannot be read by a later run. "
            "For a lasting key: export TWOFA_MASTER_KEY=$(openssl rand -base64 32)",
            file=sys.stderr,
        )
        return secrets.token_bytes(32)
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SystemExit("TWOFA_MASTER_KEY: not standard base64") from None
    if len(key) < 32:
        raise SystemExit("TWOFA_MASTER_KEY: must decode to at least 32 bytes")
    return key


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8081, help="HTTP port on 127.0.0.1 (default 8081)")
    parser.add_argument(
        "--smtp-host",
        default=os.environ.get("SMTP_HOST", "127.0.0.1"),
        help="SMTP server (default 127.0.0.1, or env SMTP_HOST)",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        default=int(os.environ.get("SMTP_PORT", "8025")),
        help="SMTP port (default 8025, or env SMTP_PORT)",
    )
    parser.add_argument("--mail-from", default=DEFAULT_MAIL_FROM, help="the From of every message")
    parser.add_argument(
        "--db",
        help="twofa's SQLite file (default: in a fresh temporary directory deleted at exit; accounts are in memory)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="keep twofa's data in this PostgreSQL database instead (pgstore.py; needs psycopg)",
    )
    parser.add_argument("--origin", help="the WebAuthn origin of the web UI (default http://localhost:<port>)")
    return parser.parse_args(argv)


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turns SIGTERM into SystemExit, so the scratch directory is removed as on Ctrl-C."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    """Runs the server until interrupted (Ctrl-C or SIGTERM)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    master_key = master_key_from(os.environ)
    store: twofa.Store | None = None
    if args.postgres:
        from pgstore import PostgresStore  # only this option needs psycopg

        postgres = PostgresStore(args.postgres)
        postgres.create_schema()
        store = postgres
    with tempfile.TemporaryDirectory(prefix="twofa-python-host-") as scratch:
        db_path = args.db or os.path.join(scratch, "twofa.db")
        server = create_server(
            db_path=db_path,
            master_key=master_key,
            smtp_host=args.smtp_host,
            smtp_port=args.smtp_port,
            port=args.port,
            origin=args.origin,
            mail_from=args.mail_from,
            store=store,
        )
        log.info(
            "twofa %s: http://localhost:%d (mail via SMTP %s:%d, 2FA data in %s)",
            twofa.LIBRARY_VERSION,
            server.server_port,
            args.smtp_host,
            args.smtp_port,
            "PostgreSQL" if args.postgres else db_path,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


if __name__ == "__main__":
    main()
