"""The marketplace registry (channels.marketplaces): what is derived from it, and that a row
added to it is all the contract suite needs to hold the new marketplace to every scenario."""

import dataclasses
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from django.db.migrations.loader import MigrationLoader

from channels import marketplaces
from channels.adapters import adapter_class, build_adapter, credentials_schema
from channels.adapters.base import AdapterError
from channels.emulators import emulator_class
from channels.marketplaces import KINDS, MARKETPLACES
from channels.models import Channel

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = "tests/channels/test_contract.py"
# A marketplace listed before any of its code is written.
FAKE = dataclasses.replace(
    MARKETPLACES[0],
    kind="fakemarket",
    label="Fake Market",
    adapter="channels.adapters.fakemarket.adapter.FakeMarketAdapter",
    credentials="channels.adapters.fakemarket.credentials.FakeMarketCredentials",
    emulator="channels.emulators.fakemarket.FakeMarketEmulator",
    demo_port=9199,
)
# A pytest plugin that adds FAKE to the registry before anything reads it.
FAKE_ROW_PLUGIN = f"""
from channels import marketplaces

FAKE = marketplaces.Marketplace(**{dataclasses.asdict(FAKE)!r})
marketplaces.MARKETPLACES = (*marketplaces.MARKETPLACES, FAKE)
marketplaces.BY_KIND[FAKE.kind] = FAKE
marketplaces.KINDS = tuple(marketplaces.BY_KIND)
"""


def test_channel_kinds_are_the_registry_rows_in_order():
    assert Channel.Kind.choices == [(m.kind, m.label) for m in MARKETPLACES]
    assert [Channel.Kind[m.kind.upper()] for m in MARKETPLACES] == list(KINDS)
    assert Channel.Kind.TIKTOK_SHOP == "tiktok_shop"
    assert Channel.Kind.TIKTOK_SHOP.label == "TikTok Shop"


def test_the_migrations_know_every_kind_of_the_registry():
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    field = state.apps.get_model("channels", "Channel")._meta.get_field("kind")

    assert list(field.choices) == Channel.Kind.choices


def test_each_kind_has_its_own_demo_port_and_a_production_host():
    assert len({m.demo_port for m in MARKETPLACES}) == len(MARKETPLACES)
    for marketplace in MARKETPLACES:
        assert Channel(kind=marketplace.kind).base_url() == marketplace.base_url
        assert Channel(kind=marketplace.kind, api_base_url="http://x").base_url() == "http://x"


def test_unknown_kinds_are_refused_by_every_lookup():
    for lookup in (adapter_class, credentials_schema):
        with pytest.raises(AdapterError, match="unknown channel kind 'ebay'") as refused:
            lookup("ebay")
        assert refused.value.code == "no_adapter"
        assert not refused.value.retryable
    with pytest.raises(AdapterError, match="unknown channel kind"):
        build_adapter("ebay", base_url="", credentials={})
    with pytest.raises(LookupError, match="no emulator for ebay"):
        emulator_class("ebay")


def test_a_listed_kind_whose_code_is_not_written_yet_says_so(monkeypatch):
    monkeypatch.setitem(marketplaces.BY_KIND, FAKE.kind, FAKE)

    for lookup in (adapter_class, credentials_schema):
        with pytest.raises(AdapterError, match="no adapter for fakemarket yet") as refused:
            lookup(FAKE.kind)
        assert refused.value.code == "no_adapter"
    with pytest.raises(LookupError, match="no emulator for fakemarket yet"):
        emulator_class(FAKE.kind)


def test_the_contract_runs_every_scenario_for_every_kind_of_the_registry():
    scenarios = contract_scenarios()

    assert len(scenarios) >= 19
    assert {kind for kinds in scenarios.values() for kind in kinds} == set(KINDS)
    assert {name: kinds for name, kinds in scenarios.items() if kinds != list(KINDS)} == {}


def test_a_row_added_to_the_registry_is_held_to_every_scenario(tmp_path):
    # given: the registry with one more row, whose adapter and emulator do not exist yet
    (tmp_path / "fake_row.py").write_text(FAKE_ROW_PLUGIN)
    # when: the contract suite is collected, then run for that kind alone
    scenarios = contract_scenarios("-p", "fake_row", pythonpath=tmp_path)
    run = pytest_subprocess(
        CONTRACT, "-k", FAKE.kind, "-p", "fake_row", "-q", "-rN", pythonpath=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'fake.sqlite3'}",
    )  # fmt: skip
    # then: it is in every scenario, next to the real ones, and fails each one: none passes
    # and none is skipped
    assert all(kinds == [*KINDS, FAKE.kind] for kinds in scenarios.values())
    summary = run.stdout.strip().splitlines()[-1]
    outcomes = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}
    assert run.returncode == 1, run.stdout[-2000:]
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == len(scenarios), summary
    assert set(outcomes) <= {"failed", "errors", "deselected", "warning", "warnings"}, summary


def contract_scenarios(*options: str, pythonpath: Path | None = None) -> dict[str, list[str]]:
    """{scenario: [kinds it runs for, in order]} as pytest collects the contract suite."""
    run = pytest_subprocess(CONTRACT, "--collect-only", "-q", *options, pythonpath=pythonpath)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    scenarios: dict[str, list[str]] = defaultdict(list)
    for line in run.stdout.splitlines():
        if line.startswith(CONTRACT + "::"):
            name, _, kind = line.removeprefix(CONTRACT + "::").rstrip("]").partition("[")
            scenarios[name].append(kind)
    return dict(scenarios)


def pytest_subprocess(
    *args: str, pythonpath: Path | None = None, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (ROOT, pythonpath) if p)
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
