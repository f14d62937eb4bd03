"""Shared fixtures: a real sandbox gateway on loopback, the only HTTP server the tests use, and
a throwaway PostgreSQL server (tests/acceptance/pg_server.py) for the ledger's tests."""

from __future__ import annotations

import pg_server
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


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the whole session (pg_server.PostgresServer), on
    127.0.0.1 and a unix socket, superuser `postgres`, trust auth; stopped at session end."""
    bindir = pg_server.find_bindir()
    if bindir is None:
        pg_server.skip_or_fail(
            f"PostgreSQL server binaries (initdb, pg_ctl) not found: {pg_server.INSTALL_HINT}"
        )
    try:
        import psycopg  # noqa: F401  (the server is useless to the tests without it)
    except ImportError:
        pg_server.skip_or_fail("psycopg is not installed: pip install '.[test]'")
    with pg_server.throwaway_server(bindir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh empty database of its own for each test, as a postgresql://postgres@127.0.0.1:PORT/
    test_<n> URL; dropped after the test, ending any session still connected to it."""
    database = postgres_server.create_database()
    yield postgres_server.url(database)
    postgres_server.drop_database(database)
