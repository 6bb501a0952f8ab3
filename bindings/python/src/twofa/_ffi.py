"""Calling libtwofa: argument encoding and the one helper every call goes through."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._native import ffi, lib
from .errors import InvalidInput, TwofaError, take_error


def c_str(value: str | None, name: str) -> Any:
    """A str argument as NUL-terminated UTF-8 (None: NULL). A str with NUL is refused, since C
    would silently cut it there."""
    if value is None:
        return ffi.NULL
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidInput(f"invalid input: {name} contains NUL", code=lib.TWOFA_INVALID_INPUT)
    return value.encode()


def text_arg(value: str | None, name: str) -> str | None:
    """A str argument checked as `c_str` checks it (a str, without NUL), for a request JSON."""
    if value is not None and (not isinstance(value, str) or "\0" in value):
        c_str(value, name)  # raises
    return value


def json_arg(value: str | Mapping[str, Any], name: str) -> Any:
    """A JSON argument given as text or as a mapping (serialised here)."""
    return c_str(value if isinstance(value, str) else json.dumps(value), name)


def call(fn: Any, *args: Any) -> None:
    """Calls a libtwofa function whose last argument is `twofa_error **`; raises on failure."""
    err = ffi.new("twofa_error **")
    status = fn(*args, err)
    if status != lib.TWOFA_OK:
        raise take_error(status, err[0])


def call_json(fn: Any, *args: Any) -> Any:
    """As `call`, for functions that return a JSON string through `char **`; returns it parsed."""
    out = ffi.new("char **")
    call(fn, *args, out)
    try:
        # Decoding first spares json.loads its encoding detection (a third of its time here).
        text: bytes = ffi.string(out[0])
        return json.loads(text.decode())
    finally:
        lib.twofa_string_free(out[0])


def raise_with_cause(error: TwofaError, cause: BaseException | None) -> None:
    """Raises `error` with the host's exception as its cause (re-raising a KeyboardInterrupt or
    SystemExit from a callback as itself)."""
    if cause is not None and not isinstance(cause, Exception):
        raise cause
    raise error from cause


def library_version() -> str:
    """The version of the bundled libtwofa."""
    version: bytes = ffi.string(lib.twofa_version())
    return version.decode()
