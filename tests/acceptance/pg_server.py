"""A throwaway PostgreSQL server for the tests, from Debian's `postgresql` package.

`throwaway_server()` runs initdb into a new temporary folder, starts the server on a free
127.0.0.1 port and on a unix socket in that folder, and stops it (immediate shutdown) and removes
the folder when the block ends, whatever happened inside it. Authentication is `trust`, which
is safe only because the server listens on loopback and on a socket in a folder nobody else can
enter.

initdb and postgres refuse to run as root, and CI runs as root: as root the server runs as an
unprivileged user (Debian's `postgres`, else `nobody`); otherwise as the current user. The folder
is made with `tempfile.mkdtemp`, not under pytest's tmp_path, because pytest's base folder for
root is 0700 and the unprivileged user could not reach it.

For speed the server runs with fsync, synchronous commit and full-page writes off: a crash of
the *server* (not of a client) may lose committed data, which a throwaway server never needs.
A test that kills the server itself and checks durability passes `settings=DURABLE_SETTINGS`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

INSTALL_HINT = "apt-get install postgresql"
# Set by .ci/run: where it is set, a missing server fails the tests that need it instead of
# skipping them, so that CI cannot pass green without having tested against PostgreSQL.
REQUIRE_ENV = "CAMPAIGN_TEST_REQUIRE_POSTGRES"

SUPERUSER = "postgres"
LOOPBACK = "127.0.0.1"
UNPRIVILEGED_USERS = ("postgres", "nobody")
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT_S = 30
WAIT_SILENTLY = ("-w", "-t", str(START_TIMEOUT_S), "-s")  # pg_ctl returns once it is done
# A free port can be taken by another process between choosing it and the server binding it.
START_ATTEMPTS = 3
# Enough for several workers at high concurrency plus the tests' own connections.
MAX_CONNECTIONS = 200

# Trust: see the module's docstring. UTF-8 and the C locale whatever the machine's locale;
# --no-sync because nothing in a throwaway cluster has to survive a power cut.
INITDB_OPTIONS = (
    "--auth",
    "trust",
    "--encoding",
    "UTF8",
    "--locale",
    "C",
    "--no-sync",
    "--no-instructions",
)

FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
}
DURABLE_SETTINGS: Mapping[str, str] = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
}


class PostgresUnavailable(RuntimeError):
    """The server could not be set up or started; the message says why and holds its log."""


def skip_or_fail(reason: str) -> None:
    """Skip the test for want of PostgreSQL, or fail it where REQUIRE_ENV says it must not skip."""
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Account:
    """The unprivileged user the server runs as when the tests run as root."""

    name: str
    uid: int
    gid: int


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when the server is not installed."""
    for folder in _candidate_bindirs():
        if all((folder / program).is_file() for program in SERVER_PROGRAMS):
            return folder
    return None


def _candidate_bindirs() -> Iterator[Path]:
    # pg_config may come from libpq-dev alone, without the server: each candidate is checked.
    pg_config = shutil.which("pg_config")
    if pg_config:
        answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if answer.returncode == 0 and answer.stdout.strip():
            yield Path(answer.stdout.strip())
    # Debian keeps the server off PATH, one folder per major version: newest first.
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    yield from sorted(versions, key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(initdb).resolve().parent


def _version_key(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def server_account() -> Account | None:
    """Who runs the server: None for the current user, or an unprivileged user when root."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Account(name, entry.pw_uid, entry.pw_gid)
    raise PostgresUnavailable(
        "PostgreSQL refuses to run as root and no unprivileged user exists to run it "
        f"(looked for {', '.join(UNPRIVILEGED_USERS)}): {INSTALL_HINT} creates `postgres`"
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server in `folder`: data, socket and log, run by `account` (None: me)."""

    def __init__(
        self,
        folder: Path,
        bindir: Path,
        account: Account | None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.bindir = bindir
        self.account = account
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.port = 0
        self._numbers = itertools.count(1)

    @property
    def data(self) -> Path:
        """The data directory initdb fills."""
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        """The folder holding the server's unix socket."""
        return self.folder / "socket"

    @property
    def log_file(self) -> Path:
        """The server's own log, quoted in the error when it fails to start."""
        return self.folder / "server.log"

    def url(self, database: str = "postgres") -> str:
        """A TCP URL for `database` as the superuser, e.g. postgresql://postgres@127.0.0.1:5/db."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        """The same over the unix socket: postgresql://postgres@/db?host=%2F...&port=N."""
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={self.port}"

    def start(self) -> PostgresServer:
        """initdb, then start on a free port; raises PostgresUnavailable with the log."""
        self._initdb()
        failure = PostgresUnavailable("not started")
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            self._write_settings()
            try:
                self._run("pg_ctl", "start", "-D", self.data, "-l", self.log_file, *WAIT_SILENTLY)
            except PostgresUnavailable as error:
                failure = error
                continue
            return self
        self.port = 0
        raise failure

    def stop(self) -> None:
        """Immediate shutdown: nothing in a throwaway server is worth a checkpoint."""
        if not self.port:
            return
        self.port = 0
        try:
            self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate", *WAIT_SILENTLY)
        except PostgresUnavailable:
            # Already gone (a test stopped or killed it): nothing left to stop.
            if (self.data / "postmaster.pid").exists():
                raise

    def create_database(self) -> str:
        """A new empty database, test_<n>; returns its name."""
        name = f"test_{next(self._numbers)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name`, ending any session a test left connected to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, statement: str) -> None:
        """Run one statement as the superuser in `postgres`, outside a transaction."""
        import psycopg  # the test extra's; imported here so conftest loads without it

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(statement)

    def _initdb(self) -> None:
        self._make_own_folder(self.socket_dir)
        self._run("initdb", "-D", self.data, "--username", SUPERUSER, *INITDB_OPTIONS)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude 'campaign_tests.conf'\n")

    def _write_settings(self) -> None:
        settings = {
            **self.settings,
            "port": str(self.port),
            "listen_addresses": LOOPBACK,
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": str(MAX_CONNECTIONS),
        }
        lines = (
            f"{name} = '{value.replace(chr(39), chr(39) * 2)}'" for name, value in settings.items()
        )
        (self.data / "campaign_tests.conf").write_text("\n".join(lines) + "\n")

    def _make_own_folder(self, folder: Path) -> None:
        folder.mkdir(mode=0o700, exist_ok=True)
        if self.account:
            os.chown(folder, self.account.uid, self.account.gid)

    def _run(self, program: str, *args: str | Path) -> None:
        as_account = {}
        if self.account:
            as_account = {"user": self.account.uid, "group": self.account.gid, "extra_groups": []}
        answer = subprocess.run(
            [str(self.bindir / program), *map(str, args)],
            cwd=self.folder,  # the server's user may not enter the tests' working folder
            env=_server_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 10,
            **as_account,
        )
        if answer.returncode != 0:
            raise PostgresUnavailable(
                f"{program} {args[0]} failed with exit code {answer.returncode}:\n"
                f"{answer.stdout}{answer.stderr}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        if not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()[-20:]
        return f"--- {self.log_file}\n" + "\n".join(lines)


def _server_environment() -> dict[str, str]:
    # PGDATA, PGPORT, PGHOST... of the person running the tests must not redirect initdb/pg_ctl.
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


@contextlib.contextmanager
def throwaway_server(
    bindir: Path | None = None, settings: Mapping[str, str] | None = None
) -> Iterator[PostgresServer]:
    """A started server in a new temporary folder; stopped and removed when the block ends."""
    bindir = bindir or find_bindir()
    if bindir is None:
        raise PostgresUnavailable(f"PostgreSQL's initdb/pg_ctl not found: {INSTALL_HINT}")
    account = server_account()
    folder = Path(tempfile.mkdtemp(prefix="campaign-tests-pg-"))
    try:
        if account:
            os.chown(folder, account.uid, account.gid)
        server = PostgresServer(folder, bindir, account, settings)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
