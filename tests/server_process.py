"""``ketacare serve`` as a real server process on a loopback port, for tests that kill it.

:mod:`live_server` runs the app in a thread of the test process, which cannot be killed
the way a crash kills a server; this starts ``ketacare serve`` with the test's
settings in the environment, waits for ``/readyz``, and can end it with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from conftest import free_port
from protocol_policy import TEST_PROTOCOL_POLICY_FILE

SRC = Path(__file__).resolve().parents[1] / "src"


def server_env(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server or CLI process on ``database_url`` (the test settings)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        "KETACARE_DATABASE_URL": database_url,
        "KETACARE_VAR_DIR": str(var_dir),
        "KETACARE_SECRET_KEY": "t" * 40,
        "KETACARE_TIMEZONE": "Europe/Amsterdam",
        "KETACARE_PROTOCOL_POLICY_FILE": str(TEST_PROTOCOL_POLICY_FILE),
        "KETACARE_TOTP_REQUIRED_ROLES": "",
        "KETACARE_IDLE_TIMEOUT_MINUTES": "0",
        **extra,
    }


class ServerProcess:
    """One ``ketacare serve`` process; its output goes to ``log``."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self, timeout: float = 60) -> ServerProcess:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ketacare.cli", "serve", "--host", "127.0.0.1"]
            + ["--port", str(self.port)],
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become ready: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a crash or the OOM killer ends it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``ketacare ARGS`` in ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "ketacare.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
