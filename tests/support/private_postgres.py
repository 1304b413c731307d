"""A private PostgreSQL cluster that a test may stop and start (the shared one must never be).

``initdb`` + ``pg_ctl`` from Debian's ``postgresql`` package, in a temp folder, on a free
loopback port, its socket in that folder too (so it never touches ``/var/run/postgresql``).
PostgreSQL refuses to run as root, so as root every command runs as the ``postgres`` user
(``runuser``); otherwise as the current user. Trust authentication on loopback only.

    with private_cluster() as pg:        # or the ``private_postgres`` fixture
        url = pg.url                      # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        pg.stop()                         # fast shutdown: sessions are cut, as in an outage
        pg.start()                        # same port, same data

Missing binaries FAIL the test with what to install; they never skip it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")


def _bin_dir() -> Path:
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        pytest.fail(
            f"no PostgreSQL server binaries under {PG_ROOT} (initdb, pg_ctl): "
            "apt-get install postgresql",
            pytrace=False,
        )
    return versions[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateCluster:
    """One cluster in ``folder``: ``start``, ``stop`` (and ``kill``), ``url``."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.port = port
        self.bin = _bin_dir()
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(
                    "running as root, PostgreSQL needs the 'postgres' user to run a private "
                    "cluster: apt-get install postgresql (creates it)",
                    pytrace=False,
                )
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str, timeout: float = 60) -> None:
        proc = subprocess.run(
            [*self._as, *cmd], capture_output=True, text=True, timeout=timeout, cwd=self.folder
        )
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {proc.stderr.strip()}\n{log}")

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        # fsync off: a test cluster, stopped by pg_ctl and never by a power cut.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: sessions are cut and rolled back; ``immediate``: as if it crashed."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        proc = subprocess.run(
            [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            timeout=30,
        )
        return proc.returncode == 0


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    # Not under pytest's tmp_path: that is 0700 root, which the postgres user cannot enter.
    folder = Path(tempfile.mkdtemp(prefix="idsvc-pg-"))
    cluster = PrivateCluster(folder, _free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster.running:
                cluster.stop("immediate")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """A cluster of this test's own, free to be stopped and restarted."""
    with private_cluster() as cluster:
        yield cluster
