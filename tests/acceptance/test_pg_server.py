"""The throwaway PostgreSQL server the ledger's tests run against: each test gets its own empty
database, rows claimed with FOR UPDATE SKIP LOCKED are split between workers, and the server is
gone when its block ends, even when the block failed."""

from __future__ import annotations

import os
import socket
import time

import pg_server
import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install '.[test]'")

ROWS = 10


@pytest.fixture(scope="module")
def databases_seen() -> list[str]:
    """The databases the parametrised test below was given, in order."""
    return []


def user_tables(connection: psycopg.Connection) -> list[str]:
    """The tables a test created in its database (none in a fresh one)."""
    query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return [name for (name,) in connection.execute(query)]


@pytest.mark.parametrize("turn", ["first", "second"])
def test_each_test_gets_a_fresh_empty_database(turn, postgres_url, postgres_server, databases_seen):
    with psycopg.connect(postgres_url) as connection:
        database = connection.execute("SELECT current_database()").fetchone()[0]
        assert user_tables(connection) == []
        connection.execute("CREATE TABLE left_behind (turn text)")
        connection.execute("INSERT INTO left_behind VALUES (%s)", [turn])
    assert postgres_url == postgres_server.url(database)
    assert database not in databases_seen
    if databases_seen:
        # The first test's database was dropped after it, with the table it left behind.
        with psycopg.connect(postgres_server.url()) as admin:
            names = [name for (name,) in admin.execute("SELECT datname FROM pg_database")]
        assert databases_seen[-1] not in names
    databases_seen.append(database)


def claim(connection: psycopg.Connection, batch: int) -> list[int]:
    """Lock up to `batch` unclaimed rows in the open transaction, as a ledger worker will."""
    rows = connection.execute(
        "SELECT id FROM deliveries ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED", [batch]
    )
    return [row_id for (row_id,) in rows]


def test_skip_locked_splits_rows_between_workers_and_frees_a_dead_workers_rows(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE deliveries (id integer PRIMARY KEY)")
        setup.execute("INSERT INTO deliveries SELECT generate_series(1, %s)", [ROWS])
    first = psycopg.connect(postgres_url)
    second = psycopg.connect(postgres_url)
    # A worker that blocked on the other's locks instead of skipping them fails here, not hangs.
    for worker in (first, second):
        worker.execute("SET lock_timeout = '2s'")

    assert claim(first, 6) == [1, 2, 3, 4, 5, 6]
    assert claim(second, 6) == [7, 8, 9, 10]
    assert claim(second, 6) == [7, 8, 9, 10]  # its own locks, nothing more: the rest is taken

    first.close()  # the first worker dies without committing: its rows are free again
    # The server ends the dead session's transaction when it notices the socket closed, a
    # moment after close() returns: look again for up to 5 s rather than race it.
    deadline = time.monotonic() + 5
    while True:
        second.rollback()
        claimed = claim(second, ROWS)
        if claimed == list(range(1, ROWS + 1)) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert claimed == list(range(1, ROWS + 1))
    second.close()


def test_the_server_listens_on_loopback_and_its_socket_and_not_as_root(postgres_server):
    with psycopg.connect(postgres_server.url()) as over_tcp:
        assert over_tcp.execute("SELECT host(inet_server_addr())").fetchone() == ("127.0.0.1",)
        assert over_tcp.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    with psycopg.connect(postgres_server.socket_url()) as over_socket:
        assert over_socket.execute("SELECT inet_server_addr()").fetchone() == (None,)
    data_owner = postgres_server.data.stat().st_uid
    assert data_owner == (os.geteuid() if os.geteuid() != 0 else postgres_server.account.uid)
    assert data_owner != 0


def test_a_private_server_is_stopped_and_removed_even_when_its_block_fails():
    if pg_server.find_bindir() is None:
        pg_server.skip_or_fail(f"PostgreSQL server binaries not found: {pg_server.INSTALL_HINT}")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), pg_server.throwaway_server() as server:
        port, folder = server.port, server.folder
        with psycopg.connect(server.url()) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        raise Boom
    assert not folder.exists()
    # Nothing listens on its port any more (a server left running would still accept there).
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((pg_server.LOOPBACK, port), timeout=2).close()
