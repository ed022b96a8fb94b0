"""A throwaway PostgreSQL cluster for tests: Debian's server binaries (initdb + pg_ctl) on a free
loopback port, and a fresh database per test. CI installs them (`apt-get install postgresql`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path

import pytest


def pg_bin() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def pg_cluster() -> Iterator[str]:
    """Start a cluster; yields its SQLAlchemy server URL (no database part); always stopped."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("needs the PostgreSQL server binaries: `apt-get install -y postgresql`")
    root = Path(tempfile.mkdtemp(prefix="seofp-pg-"))  # the postgres user must reach it
    as_pg: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = root / "data"
    subprocess.run(as_pg + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                            "-w", "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
                            "-c max_connections=100 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def new_database(server: str) -> str:
    """A new empty database on ``server``; returns its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.replace("postgresql+psycopg", "postgresql") + "/postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"
