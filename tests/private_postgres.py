"""A PostgreSQL cluster of a test's own: initdb + pg_ctl on a free port, so a test may restart it.

Never the machine's shared server (127.0.0.1:5432): other work uses that one. PostgreSQL refuses to
run as root, so under root the cluster runs as the `postgres` system user, in a folder it owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.project_copy import free_port


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (looked on PATH and in /usr/lib/postgresql/*/bin)")
    return str(found)


class PrivatePostgres:
    def __init__(self):
        self.port = free_port()
        # not under pytest's tmp_path: its parents are root-only and the server's user must reach the folder
        self.root = Path(tempfile.mkdtemp(prefix="maskmotion-pg-"))
        self.data = self.root / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.url = f"postgresql://{self.user or pwd.getpwuid(os.geteuid()).pw_name}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(args, user=self.user, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run(_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user or "postgres")
        self._pg_ctl("start")
        return self

    def restart(self) -> None:
        """A fast restart: open connections are cut, as when the database host reboots."""
        self._pg_ctl("restart", "-m", "fast")

    def _pg_ctl(self, action: str, *more: str) -> None:
        # -l: the server's output goes to a file, not to our pipe (which would then never close)
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run(
            _binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), *more, "-w", action
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{name}"
