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
from scenario import Runner, ScenarioFailed, load

SCENARIO = load("security_tab")


def run_sync(store: Any, config: dict[str, Any]) -> list[str]:
    clock, outbox = Clock(0), Outbox()
    engine = twofa.Engine(config, store=store, mailer=outbox, clock=clock)
    return asyncio.run(Runner(engine, clock, outbox, SCENARIO["origin"]).run(SCENARIO))


def run_async(store: Any, config: dict[str, Any]) -> list[str]:
    clock, outbox = Clock(0), Outbox()

    async def mailer(message: twofa.Message) -> None:
        await asyncio.sleep(0)
        outbox.append(message)

    async def main() -> list[str]:
        engine = twofa.aio.Engine(config, store=store, mailer=mailer, clock=clock)
        return await Runner(engine, clock, outbox, SCENARIO["origin"]).run(SCENARIO)

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
    for scenario in (wrong_expect, wrong_check, wrong_mails):
        clock, outbox = Clock(0), Outbox()
        engine = twofa.Engine(scenario["config"], store=DictStore(), mailer=outbox, clock=clock)
        with pytest.raises(ScenarioFailed):
            asyncio.run(Runner(engine, clock, outbox, scenario["origin"]).run(scenario))
