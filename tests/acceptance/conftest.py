"""Shared fixtures: a real sandbox gateway on loopback, the only HTTP server the tests use."""

from __future__ import annotations

import pytest

from campaign_runner.sandbox import Faults, Sandbox, SandboxConfig

TEST_KEY = "test-key"


@pytest.fixture(autouse=True)
def own_user_state(tmp_path, monkeypatch):
    """Each test has its own user state folder: runs register their journals there, and a
    test must neither read nor leave traces in the real home folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "user-state"))


@pytest.fixture
def sandbox():
    """A started sandbox on a free port that wants the key `test-key`; stopped after the test."""
    with Sandbox(SandboxConfig(port=0, apikey=TEST_KEY)) as running:
        yield running


@pytest.fixture
def sandbox_factory():
    """Start sandboxes with given faults, key, record file or echo; all stopped after the test."""
    started: list[Sandbox] = []

    def start(faults: Faults | None = None, apikey: str | None = TEST_KEY, echo=None, **config):
        config = SandboxConfig(port=0, apikey=apikey, faults=faults or Faults(), **config)
        running = Sandbox(config, echo=echo).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
