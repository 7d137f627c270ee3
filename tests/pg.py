"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on a free port in a temp dir, stopped by PID."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_pg_bindir() -> Path:
    """The directory holding initdb/pg_ctl/postgres (Debian keeps them out of PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.insert(0, os.path.realpath(which))
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return Path(candidate).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb) not found: `make test` installs them with apt-get (postgresql)."
    )


@dataclass
class PostgresCluster:
    root: Path
    port: int
    pid: int
    bindir: Path
    options: str = ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        prefix, _, _ = _as_postgres_user()
        command = [*prefix, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=90)

    def stop_fast(self) -> None:
        """``pg_ctl stop -m fast``: the server ends every connection and goes away; the files stay."""
        self.pg_ctl("stop", "-m", "fast", "-w")

    def start_again(self) -> None:
        self.pg_ctl("-o", self.options, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
        self.pid = int((self.root / "data" / "postmaster.pid").read_text().splitlines()[0])

    def processes(self) -> list[int]:
        """The postmaster and every process it started (its backends and helpers)."""
        children = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _parent_of(entry) == self.pid
        ]
        return [self.pid, *children]

    def signal_all(self, signum: int) -> None:
        """SIGSTOP freezes the whole server (connections stay open, nothing answers); SIGCONT thaws it."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), then remove the cluster's files."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                os.kill(self.pid, 0)
                time.sleep(0.05)
            os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres_user() -> tuple[list[str], int | None, int | None]:
    """initdb refuses to run as root: run the server as the `postgres` system user when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError(
            "running as root needs the `postgres` system user (apt-get install postgresql)"
        ) from exc
    return ["runuser", "-u", "postgres", "--"], entry.pw_uid, entry.pw_gid


def start_cluster(*, shared_buffers: str = "128MB") -> PostgresCluster:
    """A throwaway cluster on a free port (``shared_buffers`` larger for the benchmark's million-row runs)."""
    bindir = find_pg_bindir()
    prefix, uid, gid = _as_postgres_user()
    root = Path(tempfile.mkdtemp(prefix="consentry-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if uid is not None and gid is not None:
        for path in (root, sockets):
            os.chown(path, uid, gid)
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c max_connections=200 -c shared_buffers={shared_buffers}"
    )
    result = subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    return PostgresCluster(root=root, port=port, pid=pid, bindir=bindir, options=options)


def _parent_of(proc_entry: Path) -> int | None:
    try:
        fields = (proc_entry / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1])
