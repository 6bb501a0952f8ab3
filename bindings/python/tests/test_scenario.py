"""The shared scenario (tests/scenarios/security_tab.json) through every Python engine and
store: identical transcripts everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import twofa
import twofa.aio

from conftest import AsyncDictStore, Clock, DictStore, Outbox
from scenario import Events, Runner, ScenarioFailed, load

SCENARIO = load("security_tab")


def sync_runner(store: Any, config: dict[str, Any]) -> Runner:
    """A runner over sync engines on `store`: one with the config, one without the admin
    capability."""
    clock, outbox, events = Clock(0), Outbox(), Events()
    engine, without_admin = (
        twofa.Engine(cfg, store=store, mailer=outbox, clock=clock, on_event=events)
        for cfg in (config, {**config, "admin": False})
    )
    return Runner(engine, clock, outbox, SCENARIO["origin"], events, without_admin)


def run_sync(store: Any, config: dict[str, Any]) -> list[str]:
    return asyncio.run(sync_runner(store, config).run(SCENARIO))


def run_async(store: Any, config: dict[str, Any]) -> list[str]:
    clock, outbox, events = Clock(0), Outbox(), Events()

    async def mailer(message: twofa.Message) -> None:
        await asyncio.sleep(0)
        outbox.append(message)

    async def on_event(event: twofa.SecurityEvent) -> None:
        await asyncio.sleep(0)
        events(event)

    async def main() -> list[str]:
        engine, without_admin = (
            twofa.aio.Engine(cfg, store=store, mailer=mailer, clock=clock, on_event=on_event)
            for cfg in (config, {**config, "admin": False})
        )
        return await Runner(engine, clock, outbox, SCENARIO["origin"], events, without_admin).run(SCENARIO)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def reference() -> list[str]:
    """The transcript of the sync engine on a Python dict store."""
    return run_sync(DictStore(), SCENARIO["config"])


def test_the_scenario_passes_on_a_python_dict_store(reference: list[str]) -> None:
    assert len(reference) >= 40
    assert any(": replayed" in line for line in reference)


def test_the_sqlite_default_gives_the_same_transcript(reference: list[str], tmp_path: Path) -> None:
    config = {**SCENARIO["config"], "sqlite_path": str(tmp_path / "scenario.db")}
    assert run_sync(None, config) == reference


def test_the_memory_store_gives_the_same_transcript(reference: list[str]) -> None:
    assert run_sync(twofa.MemoryStore(), SCENARIO["config"]) == reference


@pytest.mark.parametrize("kind", ["async-dict", "memory", "sqlite"])
def test_the_asyncio_engine_gives_the_same_transcript(reference: list[str], kind: str, tmp_path: Path) -> None:
    stores: dict[str, Callable[[], Any]] = {
        "async-dict": AsyncDictStore,
        "memory": twofa.MemoryStore,
        "sqlite": lambda: twofa.SqliteStore(tmp_path / "aio.db"),
    }
    assert run_async(stores[kind](), SCENARIO["config"]) == reference


def test_the_runner_fails_when_the_scenario_is_wrong() -> None:
    """A wrong expectation must fail the run (the runner cannot pass vacuously)."""
    wrong_expect = {
        **SCENARIO,
        "steps": [{"time": 1_700_000_000}, {"op": "login_begin", "user": "x", "expect": "expired"}],
    }
    wrong_check = {
        **SCENARIO,
        "steps": [{"op": "security_status", "user": "x", "check": {"recovery_codes_left": 3}}],
    }
    wrong_mails = {**SCENARIO, "steps": [{"op": "security_status", "user": "x", "mails": 1}]}
    wrong_events = {
        **SCENARIO,
        "steps": [{"op": "set_contact_email", "user": "x", "args": {"address": "x@example.com"}, "events": []}],
    }
    wrong_event_field = {
        **SCENARIO,
        "steps": [
            {
                "op": "set_contact_email",
                "user": "x",
                "args": {"address": "x@example.com"},
                "events": [{"kind": "method_added"}],
            }
        ],
    }
    wrong_admin = {
        **SCENARIO,
        "config": {**SCENARIO["config"], "admin": True},
        "steps": [{"op": "admin.delete_user", "user": "x", "without_admin": True, "expect": "not_found"}],
    }
    for scenario in (wrong_expect, wrong_check, wrong_mails, wrong_events, wrong_event_field, wrong_admin):
        with pytest.raises(ScenarioFailed):
            asyncio.run(sync_runner(DictStore(), scenario["config"]).run(scenario))


def test_the_runner_finds_a_secret_in_an_event() -> None:
    """The end-of-run check fails when an event's JSON contains a value the run handled as a
    secret (here the user id, taken for one)."""
    runner = sync_runner(DictStore(), SCENARIO["config"])
    runner.secrets.add("user-0123456789")
    steps = [{"op": "set_contact_email", "user": "user-0123456789", "args": {"address": "x@example.com"}}]
    with pytest.raises(ScenarioFailed, match="secret"):
        asyncio.run(runner.run({**SCENARIO, "steps": steps}))
