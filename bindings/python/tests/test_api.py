"""The package's surface: errors built from the header's codes, argument checks, stores and the
conformance suite, results that keep secrets out of their repr."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyotp
import pytest

import twofa
import twofa.aio

from conftest import CONFIG, Clock, DictStore

HEADER = Path(__file__).resolve().parents[3] / "include" / "twofa.h"


def header_status_codes() -> dict[str, int]:
    """The status codes `#define`d in include/twofa.h (TWOFA_OK excluded)."""
    codes = dict(re.findall(r"#define TWOFA_([A-Z_]+) (\d+)\n", HEADER.read_text()))
    skip = ("OK", "MAX_", "CALLBACK_", "ACTION_")
    return {name: int(v) for name, v in codes.items() if not name.startswith(skip)}


def test_every_status_code_of_the_header_has_its_exception_class() -> None:
    codes = header_status_codes()
    assert len(codes) >= 17
    for macro, code in codes.items():
        cls = twofa.error_class(code)
        name = macro.lower()
        assert code == cls.CODE and twofa.status_name(code) == name
        assert cls.__name__ == "".join(part.capitalize() for part in name.split("_")), cls
        assert getattr(twofa, cls.__name__) is cls and issubclass(cls, twofa.TwofaError)
    assert twofa.error_class(9999) is twofa.TwofaError and twofa.status_name(9999) == "unknown"


def test_error_attributes() -> None:
    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=Clock())
    with pytest.raises(twofa.NotFound) as e:
        engine.login_verify("alice", "no-such-challenge", "totp", "123456")
    assert (e.value.code, e.value.name, e.value.retry_after, e.value.callback) == (10, "not_found", None, None)
    assert "challenge" in e.value.message and str(e.value) == e.value.message


def test_config_errors_name_the_field() -> None:
    with pytest.raises(twofa.InvalidInput, match=r"config\.totp\.digits"):
        twofa.Engine({**CONFIG, "totp": {"digits": 7}}, store=twofa.MemoryStore())
    with pytest.raises(twofa.InvalidInput, match="unknown field"):
        twofa.Engine({**CONFIG, "nope": 1}, store=twofa.MemoryStore())
    with pytest.raises(twofa.InvalidInput, match="sqlite_path"):
        twofa.Engine(CONFIG)
    with pytest.raises(twofa.InvalidInput, match="sqlite_path"):
        twofa.aio.Engine(CONFIG)
    with pytest.raises(twofa.InvalidInput):
        twofa.aio.Engine("not json", store=twofa.MemoryStore())


def test_arguments_are_checked_before_crossing_into_c() -> None:
    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=Clock())
    with pytest.raises(twofa.InvalidInput, match="NUL"):
        engine.security_status("alice\0bob")
    with pytest.raises(TypeError):
        engine.security_status(42)  # type: ignore[arg-type]
    with pytest.raises(twofa.InvalidInput):
        engine.security_status("")
    with pytest.raises(twofa.InvalidInput):
        engine.login_verify("alice", "x", "password", "hunter2")


def test_engines_share_a_memory_store() -> None:
    store = twofa.MemoryStore()
    a = twofa.Engine(CONFIG, store=store, clock=Clock())
    b = twofa.Engine(CONFIG, store=store, clock=Clock())
    a.set_contact_email("alice", "alice@example.com")
    assert b.security_status("alice").contact_email == "alice@example.com"
    found = store.get("user/alice")
    assert found is not None and b"alice@example.com" in found[0] and found[1] > 0


def test_the_native_stores_follow_the_contract(tmp_path: Path) -> None:
    for store in (twofa.MemoryStore(), twofa.SqliteStore(tmp_path / "s.db")):
        assert store.get("k") is None
        v1 = store.put("k", b"one", None)
        with pytest.raises(twofa.StoreConflict):
            store.put("k", b"two", None)
        with pytest.raises(twofa.StoreConflict):
            store.put("k", b"two", v1 + 1)
        v2 = store.put("k", b"two", v1)
        assert store.get("k") == (b"two", v2) and v2 != v1
        with pytest.raises(twofa.StoreConflict):
            store.delete("k", v1)
        store.delete("k", v2)
        assert store.put("k", b"", None) not in (v1, v2)
    with pytest.raises(twofa.Storage):
        twofa.SqliteStore(tmp_path / "missing" / "dir" / "s.db")


def test_check_store_passes_good_stores_and_names_the_broken_check(tmp_path: Path) -> None:
    for store in (DictStore(), twofa.MemoryStore(), twofa.SqliteStore(tmp_path / "c.db")):
        passed = twofa.check_store(store)
        assert "concurrent_increments" in passed and "reinsert_fresh_version" in passed

    class NeverConflicts(DictStore):
        def put(self, key: str, value: bytes, expected_version: int | None) -> int:
            with self.lock:
                self.version += 1
                self.data[key] = (value, self.version)
                return self.version

    with pytest.raises(twofa.Storage, match="insert_existing_conflicts"):
        twofa.check_store(NeverConflicts())

    class Broken(DictStore):
        def get(self, key: str) -> Any:
            raise ConnectionError("database is gone")

    with pytest.raises(twofa.Storage) as failed:
        twofa.check_store(Broken())
    assert isinstance(failed.value.__cause__, ConnectionError)


def test_secrets_stay_out_of_reprs() -> None:
    clock = Clock()
    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock)
    setup = engine.totp_enroll_begin("alice", "alice@example.com")
    added = engine.totp_enroll_confirm("alice", pyotp.TOTP(setup.secret).at(clock.t))
    assert added.step_up is not None
    codes = engine.recovery_codes_generate("alice", added.step_up)
    for value, secret in [(setup, setup.secret), (added, added.step_up.token), (codes, codes.codes[0])]:
        assert secret not in repr(value)
    assert added.step_up.token not in str(added.step_up)


def test_step_up_tokens_are_accepted_as_objects_or_text() -> None:
    clock = Clock()
    engine = twofa.Engine(CONFIG, store=twofa.MemoryStore(), clock=clock)
    engine.admin().totp_import("alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    with pytest.raises(twofa.StepUpRequired):
        engine.recovery_codes_generate("alice")
    challenge = engine.login_begin("alice").challenge_id
    assert challenge is not None
    token = engine.login_verify("alice", challenge, "totp", "406058").step_up
    assert len(engine.recovery_codes_generate("alice", token).codes) == 10
    assert len(engine.recovery_codes_generate("alice", token.token).codes) == 10
    with pytest.raises(twofa.StepUpRequired):
        engine.recovery_codes_generate("alice", "forged-token")
