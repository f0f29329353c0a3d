"""Shared fixtures: real databases (SQLite and PostgreSQL), the app, logged-in clients.

PostgreSQL: when the server binaries are installed (Debian's ``postgresql``), the
test run starts its own throw-away cluster on a loopback port; without them the
PostgreSQL variants are skipped with a loud notice. With ``KETACARE_REQUIRE_ALL=1``
(set by CI) a missing PostgreSQL or Chromium fails the run instead.
"""

from __future__ import annotations

import copy
import glob
import inspect
import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import audit_key_env  # noqa: F401  (one audit key for the run, before any settings)
import pg_reset
from route_state import share_route_state

share_route_state()  # each route's FastAPI state built once per process, not per test app

REQUIRE_ALL = os.environ.get("KETACARE_REQUIRE_ALL") == "1"
NOTICES: list[str] = []

# Cheap argon2id for every Settings the tests build (here and in the CLI's subprocesses):
# the same code path as production, at argon2's minimum cost (about 0.1 ms a hash instead
# of 0.5 s), since no real password is stored. test_accounts checks the production defaults.
TEST_PASSWORD_HASHING = {
    "KETACARE_PASSWORD_HASH_TIME_COST": "1",
    "KETACARE_PASSWORD_HASH_MEMORY_KIB": "8",
    "KETACARE_PASSWORD_HASH_PARALLELISM": "1",
}
os.environ.update(TEST_PASSWORD_HASHING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (``initdb`` must not run as root)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="kc-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.dir / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-w",
            "-l",
            str(self.dir / "log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
            "-c autovacuum=off",  # restored test databases keep rows in insertion order
            "start",
        )

    def _run(self, *args: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _admin(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


FIXED_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: one template database per test worker (several workers may share one server)
TEMPLATE = f"kc_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def _migrate_and_seed(url: str) -> None:
    from ketacare.clinic import demo
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
    from ketacare.infra.migrate import upgrade
    from ketacare.infra.settings import load_settings

    engine = make_engine(url)
    upgrade(engine)
    with unit_of_work(make_sessionmaker(engine)) as session:
        demo.seed(session=session, now=FIXED_NOW, settings=load_settings())
    engine.dispose()


class ExternalPostgres:
    """A server someone else started (CI): ``KETACARE_TEST_POSTGRES_URL``."""

    def __init__(self, url: str) -> None:
        self.base = url.rsplit("/", 1)[0]

    def url(self, database: str = "postgres") -> str:
        return f"{self.base}/{database}"

    def stop(self) -> None:
        _admin(self.url(), f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | ExternalPostgres | None]:
    external = os.environ.get("KETACARE_TEST_POSTGRES_URL")
    if external:
        server: PostgresServer | ExternalPostgres = ExternalPostgres(external)
        _admin(
            server.url(),
            f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)",
            f"CREATE DATABASE {TEMPLATE}",
        )
        _migrate_and_seed(server.url(TEMPLATE))
        yield server
        server.stop()
        return
    try:
        server = PostgresServer()
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        if REQUIRE_ALL:
            pytest.fail(
                f"PostgreSQL is required (KETACARE_REQUIRE_ALL=1) but could not start: {exc}"
            )
        NOTICES.append(
            f"PostgreSQL tests SKIPPED: {exc}. Install Debian's postgresql package to run them."
        )
        yield None
        return
    _admin(server.url(), f"CREATE DATABASE {TEMPLATE}")
    _migrate_and_seed(server.url(TEMPLATE))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    _migrate_and_seed(f"sqlite:///{path}")
    return path


class FreshDatabases:
    """A database for each test that asks, holding exactly what a new copy of the worker's
    PostgreSQL template (or of its prebuilt clinic) holds.

    The first ones are new copies (the next made ahead in a background thread); a
    database a test has finished with is restored to what its copy held and given to a
    later test (``pg_reset``: about 25 ms instead of 0.15 to 0.9 s of server CPU for
    a copy), unless the test changed its schema, privileges or triggers: then it is
    dropped behind, in the background thread.
    """

    def __init__(self, server: PostgresServer | ExternalPostgres) -> None:
        self.server = server
        self._names = (f"kc_test_{os.getpid()}_{n}" for n in itertools.count(1))
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kc-test-db")
        self._drops: list[Future[None]] = []
        self._clinic: tuple[str, dict[str, Any]] | None = None
        self._next = self._thread.submit(self._create, next(self._names))
        #: per template: what a new copy holds, and the restored databases ready to use
        self._snapshots: dict[str, pg_reset.Snapshot] = {}
        self._free: dict[str, list[str]] = {}
        self._template_of: dict[str, str] = {}
        self.reused = 0

    def _create(self, name: str) -> str:
        _admin(self.server.url(), f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return name

    def _drop(self, name: str) -> None:
        _admin(self.server.url(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _connect(self, name: str) -> Any:
        import psycopg

        return psycopg.connect(self.server.url(name).replace("+psycopg", ""), autocommit=True)

    def _handed_out(self, name: str, template: str) -> str:
        """``name``, a new copy of ``template`` or one restored to it, as a test's URL."""
        if template not in self._snapshots:  # the first copy: as pristine as any
            with self._connect(name) as conn:
                self._snapshots[template] = pg_reset.take(conn)
        self._template_of[name] = template
        return self.server.url(name)

    def _reuse(self, template: str) -> str | None:
        free = self._free.get(template)
        if not free:
            return None
        self.reused += 1
        return self._handed_out(free.pop(), template)

    def take(self) -> str:
        """The URL of a database holding what a new copy of the template holds."""
        reused = self._reuse(TEMPLATE)
        if reused is not None:
            return reused
        name = self._next.result()
        self._next = self._thread.submit(self._create, next(self._names))
        return self._handed_out(name, TEMPLATE)

    def take_clinic(self) -> tuple[str, dict[str, Any]]:
        """The URL of a database holding what a new copy of the worker's prebuilt clinic
        holds (built on first use from a copy of the template), and what building it
        returned."""
        if self._clinic is None:
            name = f"{TEMPLATE}_clinic"
            _admin(
                self.server.url(),
                f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}",
            )
            built = _build_clinic(
                self.server.url(name), Path(tempfile.mkdtemp(prefix="kc-clinic-")) / "var"
            )
            self._clinic = (name, built)
        template, built = self._clinic
        reused = self._reuse(template)
        if reused is not None:
            return reused, built
        name = next(self._names)
        _admin(self.server.url(), f"CREATE DATABASE {name} TEMPLATE {template}")
        return self._handed_out(name, template), built

    def release(self, url: str) -> None:
        """Restore the test's database for a later test, or drop it behind."""
        name = url.rsplit("/", 1)[1]
        template = self._template_of.pop(name)
        try:
            with self._connect(name) as conn:
                restored = pg_reset.restore(conn, self._snapshots[template])
        except Exception:  # noqa: BLE001  (whatever the test left: a new copy is safe)
            restored = False
        if restored:
            self._free.setdefault(template, []).append(name)
        else:
            self._drops.append(self._thread.submit(self._drop, name))

    def close(self) -> None:
        """Drop the copy made ahead and the restored ones; raise the first failure of a
        background drop."""
        try:
            self._drops.append(self._thread.submit(self._drop, self._next.result()))
            for names in self._free.values():
                self._drops += [self._thread.submit(self._drop, name) for name in names]
        finally:
            self._thread.shutdown(wait=True)
        for drop in self._drops:
            drop.result()
        if self._clinic is not None:
            _admin(self.server.url(), f"DROP DATABASE IF EXISTS {self._clinic[0]} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_databases(
    postgres: PostgresServer | ExternalPostgres | None,
) -> Iterator[FreshDatabases | None]:
    if postgres is None:
        yield None
        return
    databases = FreshDatabases(postgres)
    yield databases
    databases.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh database holding the demo clinic, on each backend.

    A test of the clinic fixture gets a copy of the database that fixture built once for
    this worker (see ``_uses_shared_clinic``), with what it returned."""
    snapshot = _uses_shared_clinic(request)
    if request.param == "sqlite":
        target = tmp_path / "ketacare.sqlite3"
        if snapshot:
            path, built = _clinic_snapshot_sqlite(sqlite_template)
            shutil.copy(path, target)
            request.node.clinic_snapshot = copy.deepcopy(built)  # type: ignore[attr-defined]
        else:
            shutil.copy(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    databases = request.getfixturevalue("postgres_databases")
    if databases is None:
        pytest.skip("PostgreSQL not available (see the notice at the end of the run)")
    if snapshot:
        url, built = databases.take_clinic()
        request.node.clinic_snapshot = copy.deepcopy(built)  # type: ignore[attr-defined]
    else:
        url = databases.take()
    yield url
    databases.release(url)


#: fixtures a test must take from this file (or tests/clinic/conftest.py for ``clinic``)
#: for a prebuilt clinic to be the one it would have built
_SHARED = ("settings", "app", "clock", "client", "login_api", "db_url")


def _uses_shared_clinic(request: pytest.FixtureRequest) -> bool:
    """Whether the test asks for the clinic fixture of tests/clinic/conftest.py with the
    shared settings, app and clock, so that a copy of one built clinic is the same as
    building it again."""
    if "clinic" not in request.fixturenames:
        return False
    manager = request._fixturemanager  # noqa: SLF001  (pytest offers no public lookup)
    clinic = manager.getfixturedefs("clinic", request.node)
    if not clinic or clinic[-1].func.__module__.rsplit(".", 1)[-1] != "conftest":
        return False
    if Path(inspect.getfile(clinic[-1].func)).parent.name != "clinic":
        return False
    for name in _SHARED:
        defs = manager.getfixturedefs(name, request.node)
        if not defs or Path(inspect.getfile(defs[-1].func)) != Path(__file__):
            return False
    return True


def _build_clinic(db_url: str, var_dir: Path) -> dict[str, Any]:
    """Build the clinic fixture's records on ``db_url`` through the app, as a test would."""
    from ketacare.app import create_app
    from plan_helpers import build_clinic

    application = create_app(shared_settings(db_url, var_dir), clock=Clock(TEST_START))
    client = TestClient(application)
    try:
        return build_clinic(client, lambda username: api_token(client, username))
    finally:
        application.state.engine.dispose()


_SQLITE_CLINIC: dict[str, tuple[Path, dict[str, Any]]] = {}


def _clinic_snapshot_sqlite(template: Path) -> tuple[Path, dict[str, Any]]:
    """The worker's prebuilt clinic database (built on first use)."""
    if "built" not in _SQLITE_CLINIC:
        import sqlite3

        folder = Path(tempfile.mkdtemp(prefix="kc-clinic-"))
        work = folder / "work.sqlite3"
        shutil.copy(template, work)
        built = _build_clinic(f"sqlite:///{work}", folder / "var")
        final = folder / "clinic.sqlite3"
        with sqlite3.connect(work) as source, sqlite3.connect(final) as target:
            source.backup(target)  # whatever is still in the write-ahead log included
        _SQLITE_CLINIC["built"] = (final, built)
    return _SQLITE_CLINIC["built"]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Any:
    return shared_settings(db_url, tmp_path / "var")


def shared_settings(db_url: str, var_dir: Path) -> Any:
    """The settings every test app runs on unless a module overrides the fixture."""
    from ketacare.infra.settings import load_settings
    from protocol_policy import TEST_PROTOCOL_POLICY_FILE

    return load_settings(
        database_url=db_url,
        var_dir=var_dir,
        secret_key="t" * 40,
        timezone="Europe/Amsterdam",
        protocol_policy_file=TEST_PROTOCOL_POLICY_FILE,  # test values: the hard ceilings
        totp_required_roles="",  # logins without a code; test_totp turns the default on
        # test clocks jump days between page requests; test_account_sessions turns the
        # default idle timeout on
        idle_timeout_minutes=0,
    )


class Clock:
    """A settable clock for tests."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


#: where every test's clock starts
TEST_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


#: the instant the whole demo clinic is seeded at (its months of care end here)
DEMO_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def seeded_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole demo clinic (thirty patients, months of care) seeded at ``DEMO_NOW``:
    a SQLite file to copy before writing.

    Seeding takes about 15 s, so the run does it once: the first worker to ask seeds it
    into the run's shared temporary folder under a file lock, and the others wait for
    it there and reuse it.
    """
    import fcntl

    from ketacare.clinic import demo
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
    from ketacare.infra.migrate import upgrade
    from ketacare.infra.settings import load_settings

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    path = shared / "seeded-demo.sqlite3"
    with open(shared / "seeded-demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            work = shared / "seeded-demo.tmp.sqlite3"
            for left in shared.glob("seeded-demo.tmp.sqlite3*"):  # a worker that died seeding
                left.unlink()
            url = f"sqlite:///{work}"
            engine = make_engine(url)
            upgrade(engine)
            with unit_of_work(make_sessionmaker(engine)) as session:
                settings = load_settings(database_url=url)
                demo.seed(session=session, now=DEMO_NOW, settings=settings, history=True)
            engine.dispose()
            _copy_sqlite(work, path)
    return path


def _copy_sqlite(source: Path, target: Path) -> None:
    """``source`` copied whole (its write-ahead log included) to ``target``, which appears
    only once complete."""
    import sqlite3
    from contextlib import closing

    part = target.with_suffix(".part")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(part)) as dst:
        src.backup(dst)
    part.rename(target)


@pytest.fixture
def clock() -> Clock:
    return Clock(TEST_START)


@pytest.fixture
def app(settings: Any, clock: Clock) -> Iterator[Any]:
    from ketacare.app import create_app

    application = create_app(settings, clock=clock)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: Any) -> TestClient:
    return TestClient(app)


def api_token(client: TestClient, username: str) -> dict[str, str]:
    """Bearer header for a demo account."""
    from ketacare.clinic.demo import DEMO_PASSWORD

    r = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def page_login(client: TestClient, username: str, password: str | None = None) -> str:
    """Log a TestClient in through the login form; returns the session's CSRF token."""
    from ketacare.clinic.demo import DEMO_PASSWORD

    r = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert token
    r = client.post(
        "/login",
        data={
            "username": username,
            "password": password or DEMO_PASSWORD,
            "csrf_token": token.group(1),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    r = client.get(r.headers["location"])
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', r.text)
    assert found, r.text[:500]
    return found.group(1)


@pytest.fixture
def login_api(client: TestClient) -> Any:
    return lambda username: api_token(client, username)


@pytest.fixture
def login_page(client: TestClient) -> Any:
    return lambda username, password=None: page_login(client, username, password)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for notice in NOTICES:
        terminalreporter.write_sep("!", "NOTICE")
        terminalreporter.write_line(notice, red=True, bold=True)
