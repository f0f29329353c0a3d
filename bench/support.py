"""What the benchmarks share: loopback ports and throw-away PostgreSQL databases.

Imported by the scripts beside it (``python bench/NAME.py`` puts this folder first on
the import path). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def loopback_postgres(url: str) -> Any:
    """``url`` as a psycopg URL, refused unless it is PostgreSQL on 127.0.0.1."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise SystemExit(f"--postgres-url must be a postgresql URL, not {parsed.drivername}")
    if parsed.host != HOST:
        raise SystemExit(f"--postgres-url must point at {HOST} (got host {parsed.host!r})")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@contextmanager
def postgres_database(
    server_url: str, *, prepare: Callable[[str], None] | None = None
) -> Iterator[str]:
    """A new database on the server (``prepare(url)`` run on it first); dropped afterwards."""
    from sqlalchemy import create_engine, text

    base = loopback_postgres(server_url)
    name = f"kc_bench_{secrets.token_hex(4)}"
    admin = create_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = base.set(database=name).render_as_string(hide_password=False)
            if prepare is not None:
                prepare(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass
class Server:
    """A server process of this script on a loopback port."""

    kind: str
    source: str
    var_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    script: Path = field(default_factory=lambda: Path(sys.argv[0]).resolve())
    """The benchmark script, started again with ``--serve`` (the running one by default)."""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        cmd = [
            sys.executable,
            str(self.script),
            "--serve",
            self.kind,
            "--port",
            str(self.port),
            "--source",
            self.source,
            "--var-dir",
            str(self.var_dir),
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=self.url, timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} server exited:\n{self.log_tail()}")
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} server did not start in {START_TIMEOUT:.0f} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux), else None."""
        if self.proc is None:
            return None
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


def fit_timed(
    *, model: Any, patient: Any, regimen: Any, times: Any, values: Any
) -> tuple[Any, float]:
    """One patient's MAP fit to levels at ``times`` (no posterior draws), and its seconds."""
    from ketacare.core.pharmacology import Sample, fit_individual

    samples = [
        Sample(time_h=t, value_ng_per_ml=float(v)) for t, v in zip(times, values, strict=True)
    ]
    t0 = time.perf_counter()
    fit = fit_individual(model=model, patient=patient, regimen=regimen, samples=samples, n_draws=0)
    return fit, time.perf_counter() - t0
