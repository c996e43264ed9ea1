"""A throwaway PostgreSQL server: the pgserver wheel's binaries, a cluster
made by initdb in a temporary directory, reachable only on a Unix socket in
that directory (no TCP port, so nothing to collide with)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"
# The socket file is named after the port; the directory is ours alone.
PORT = 5432


def pgserver_bin() -> Path:
    """Where the pgserver wheel keeps initdb, pg_ctl, postgres and psql.
    Found without importing pgserver, whose import sets up its own server
    machinery that these tests do not use."""
    spec = importlib.util.find_spec("pgserver")
    assert spec is not None and spec.submodule_search_locations, "pgserver is in the dev extras"
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the caller's libpq settings (PGHOST,
    PGPASSWORD, ...), which would point psql elsewhere."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env.update(extra)
    return env


class Postgres:
    """initdb and pg_ctl in a temporary directory; stop() removes it all."""

    def __init__(self) -> None:
        self.bin = pgserver_bin()
        self.root = Path(tempfile.mkdtemp(prefix="lifeboat-pg-"))
        self.data = self.root / "data"
        # PostgreSQL refuses to run as root, and CI runs as root: the server
        # then runs as nobody, who owns this directory and nothing else.
        self._server_user = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        if self._server_user is not None:
            os.chown(self.root, self._server_user.pw_uid, self._server_user.pw_gid)

    def _as_server_user(self, *command: str) -> None:
        owner = self._server_user
        subprocess.run(
            [str(self.bin / command[0]), *command[1:]],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(),
            cwd=self.root,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
        )

    def start(self) -> Postgres:
        self._as_server_user(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale"
        )
        options = f"-c listen_addresses='' -k {self.root} -p {PORT}"
        # -w: pg_ctl itself waits until the server accepts connections.
        self._as_server_user("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._as_server_user("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@/{database}?host={self.root}&port={PORT}"

    def psql(self, database: str, sql: str) -> str:
        """Run SQL as the superuser, stopping at the first error."""
        result = subprocess.run(
            [str(self.bin / "psql"), self.url(database), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"],
            input=sql,
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def create_database(self, name: str, *scripts: str) -> str:
        """A new database with these SQL scripts run in it; its URL."""
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        for script in scripts:
            self.psql(name, script)
        return self.url(name)
