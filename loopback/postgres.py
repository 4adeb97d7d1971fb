"""A real PostgreSQL server for the test session.

The binaries come from ``/usr/lib/postgresql/<version>/bin`` (or ``$PATH``). PostgreSQL refuses to run as
root, so when the tests run as root the server commands run as the ``postgres`` OS user. Authentication is
``trust`` for loopback and the unix socket; the ``postgres`` role also has a password
(:attr:`PostgresServer.password`), so a password-bearing URL works the same way.

``stop()`` and ``start()`` keep the port and the data directory, so a test can take the server down mid-run
and bring it back at the same address. ``cleanup()`` stops it and deletes everything.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

_NAME_OK = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server could not start."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: newest under /usr/lib/postgresql, else $PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.parent.name) or 0),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH. "
        "Install them (e.g. `apt-get install -y postgresql`); `.ci/run` does this on a fresh machine."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, listening on ``127.0.0.1:<port>``."""

    user = "postgres"
    password = "leanllm-test-pw"
    database = "leanllm_test"

    def __init__(self, port: int | None = None) -> None:
        self.bindir = find_bindir()
        self.port = port or _free_port()
        self._as_root = os.geteuid() == 0
        self._os_user: pwd.struct_passwd | None = None
        if self._as_root:
            try:
                self._os_user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable(
                    "running as root but there is no `postgres` OS user to run the server"
                ) from exc
        # /tmp explicitly: $TMPDIR may sit under a home directory the postgres user cannot traverse.
        self.root = Path(tempfile.mkdtemp(prefix="leanllm-pg-", dir="/tmp" if self._as_root else None))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.logfile = self.root / "server.log"
        self._initialized = False
        self._running = False
        atexit.register(self.cleanup)

    # ------------------------------------------------------------------ commands

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the postgres OS user when we are root."""
        kwargs: dict[str, Any] = {}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if self._os_user is not None:
            kwargs.update(user=self._os_user.pw_uid, group=self._os_user.pw_gid, extra_groups=[])
            env["HOME"] = self._os_user.pw_dir
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )
        if check and proc.returncode != 0:
            raise PostgresUnavailable(
                f"{args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{self._log_tail()}"
            )
        return proc

    def _log_tail(self) -> str:
        try:
            return "server log:\n" + self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _initdb(self) -> None:
        self.sockdir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._os_user is not None:
            self.root.chmod(0o755)
            for path in (self.root, self.sockdir, pwfile):
                os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            "--auth=trust",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        pwfile.unlink()
        self._initialized = True

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PostgresServer:
        """Initialise (first time) and start the server; create the default database. Idempotent."""
        if self._running:
            return self
        if not self._initialized:
            self._initdb()
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-k {self.sockdir}",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self._running = True
        if not self._database_exists(self.database):
            self.execute(f'CREATE DATABASE "{self.database}"')
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart | fast | immediate). Port and data survive for :meth:`start`."""
        if self._running:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop", check=False)
            self._running = False

    def cleanup(self) -> None:
        """Stop the server and delete its directory (idempotent; also registered with ``atexit``)."""
        try:
            if self._running:
                self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            atexit.unregister(self.cleanup)

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # ------------------------------------------------------------------ URLs and SQL

    def url(self, database: str | None = None, *, with_password: bool = False) -> str:
        """``postgresql://postgres[:password]@127.0.0.1:PORT/<database>`` (default ``leanllm_test``)."""
        auth = f"{self.user}:{self.password}" if with_password else self.user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database or self.database}"

    def execute(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through ``psql`` over TCP and return its unaligned, tuples-only output."""
        psql = self.bindir / "psql"
        command = [
            str(psql) if psql.exists() else "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            database,
            "-c",
            sql,
        ]
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}) running {sql!r}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def _database_exists(self, name: str) -> bool:
        return self.execute(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (unique name by default) and return its URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        if not _NAME_OK.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its clients first."""
        if not _NAME_OK.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def wait_until_accepting(self, timeout: float = 30.0) -> None:
        """Block until a TCP connection to the server's port succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
