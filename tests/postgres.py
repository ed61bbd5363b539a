"""A real PostgreSQL server for the tests: Debian's binaries, a temp cluster, a loopback port.

`scripts/install-postgres.sh` (run by `make test`) installs Debian's `postgresql` package when
it is missing. PostgreSQL refuses to run as root, so when the tests run as root the cluster
belongs to the unprivileged `nobody` and its programs run under that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_USER = "nobody"
SUPERUSER = "suggester"


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian's newest version, else the PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                    key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def running_postgres(port: int) -> Iterator[PostgresServer]:
    """initdb a cluster in a temp folder, start it on 127.0.0.1:`port`, stop and delete it."""
    binaries = find_binaries()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL is not installed: run `make test` (it runs "
                                "scripts/install-postgres.sh) or `apt-get install postgresql`")
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="suggester-pg-"))
    data, log = folder / "data", folder / "server.log"
    if as_root:
        account = pwd.getpwnam(UNPRIVILEGED_USER)
        os.chown(folder, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    else:
        run_as = {}

    def run(*command: str) -> None:
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
                                timeout=120, check=False, **run_as)  # type: ignore[arg-type]
        if result.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}"
                               f"{server_log}")

    # Durability is not what these tests check: fsync off makes CREATE DATABASE ~10x faster.
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
            "-w", "-t", "60", "start")
        try:
            yield PostgresServer("127.0.0.1", port, SUPERUSER)
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
