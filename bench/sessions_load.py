"""Load-test the infusion-session endpoints: vitals at the chairs and the nurses' board.

What it does, in one run, on SQLite and (with ``--postgres-url``) on PostgreSQL:

* builds a fresh demo clinic (migrate + seed; SQLite under a temporary directory, and a
  new PostgreSQL database created for the run and dropped at the end) and serves the
  real app (``ketacare.app.create_app``) with uvicorn, one worker, on a free port of
  127.0.0.1, with a session policy that sets alert thresholds and check intervals;
* through the API, as the real staff would: a second physician, then for every chair a
  screened patient, a treatment plan signed and co-signed, session 1 opened and checked in;
* (a) **clinic load**: ``--chairs`` chair clients (50) each POST vitals to their own
  session every ``--vitals-every`` seconds (5), staggered, for ``--duration`` seconds (60),
  while ``--board-clients`` (2) GET the nurses' board every ``--board-every`` seconds (2).
  Each chair sends the ``expected_seq`` it last saw (``last_seq`` of its previous answer),
  as a tablet would. Reported: p50/p95/p99/max latency, errors and throughput of each.
  Target: p99 under 100 ms with no errors;
* (b) **maximum throughput**: ``--threads`` client threads (8) POST vitals as fast as the
  server answers, ``--requests`` measured requests (1200) per target after a warm-up, in
  ``--rounds`` interleaved rounds, against: sessions with short logs (freshly opened), and
  sessions whose logs already hold ``--long-events`` (200) events (each write replays its
  session's log, so the log length is part of the cost). Beside them runs the **peer**: a
  bare FastAPI + SQLAlchemy app whose one route inserts one row (ORM, one transaction) into
  a table of its own database of the same kind, with the same engine settings
  (``ketacare.infra.db.make_engine``) and the same uvicorn settings. Ours is reported as a
  ratio of the peer's throughput. Target: at least 0.5;
* a sequential probe of one session from 2 to ``--long-events`` events: median latency and
  answer size of a vitals POST by log length.

Every server runs in its own process, so the client threads do not share its interpreter
lock; the server process's CPU time per request is reported beside the latencies, with
the peer's over ours (the database server's own CPU is not included). Clients drop a
connection idle for 60 s (the servers keep idle ones 75 s, as `ketacare serve` does).
Only 127.0.0.1 is ever contacted; every phase is bounded by request counts, durations and
a 15 s timeout per request.

Exit status 1 when a scenario failed (an error answer, a timeout, a set-up step refused);
with ``--strict`` also when a target is missed.

Usage::

    .venv/bin/python bench/sessions_load.py
    .venv/bin/python bench/sessions_load.py --duration 30 --requests 600 --json
    .venv/bin/python bench/sessions_load.py \\
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import JSON, DateTime, Integer
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from support import HOST, Server, loopback_postgres, postgres_database, running  # noqa: E402

from ketacare.clinic.demo import DEMO_PASSWORD

BOARD_PATH = "/api/v1/sessions/board"
PEER_PATH = "/rows"
REQUEST_TIMEOUT = httpx.Timeout(15.0)
SETUP_THREADS = 4
P99_TARGET_MS = 100.0
RATIO_TARGET = 0.5
MAX_SESSIONS_PER_PLAN = 10  # the crps-outpatient protocol plans ten sessions
# `ketacare serve` keeps idle connections for KEEP_ALIVE_S (75 s), beyond the chairs'
# 5 s period, and both servers here use the same; clients keep theirs a little less
KEEPALIVE_S = 60.0

# The clinic's own numbers, as a site would set them (no published source gives them):
# an alert above 160 mmHg systolic, vitals every 15 min, 60 min observation.
SESSION_POLICY = """\
[monitoring]
vitals_interval_min = 15
observation_min = 60

[thresholds]
sbp_mmhg = { high = 160 }
"""


# --------------------------------------------------------------------------- servers


def serve(kind: str, port: int, source: str, var_dir: str) -> None:
    """Run one server in this process until it is told to stop (SIGTERM/SIGINT)."""
    import uvicorn

    from ketacare.infra.db import make_engine

    if kind == "ketacare":
        from ketacare.app import create_app
        from ketacare.infra.settings import load_settings

        policy = Path(var_dir) / "session-policy.toml"
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(SESSION_POLICY)
        settings = load_settings(
            database_url=source,
            var_dir=Path(var_dir),
            secret_key="x" * 40,
            cookie_secure=False,
            session_policy_file=policy,
            totp_required_roles="",  # the benchmark logs in with passwords only
        )
        app = create_app(settings)
        engine = app.state.engine
    else:
        engine = make_engine(source)
        app = peer_app(engine)

    from ketacare.commands.clinic import KEEP_ALIVE_S

    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        workers=1,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        engine.dispose()


class PeerBase(DeclarativeBase):
    pass


class PeerRow(PeerBase):
    """The peer's table: one row per request."""

    __tablename__ = "peer_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, object]] = mapped_column(JSON)


class RowPost(BaseModel):
    """The peer's request body: the same shape as a session event post."""

    expected_seq: int = Field(ge=0, le=10**6)
    event: dict[str, Any]


def peer_app(engine: Any) -> Any:
    """A bare FastAPI + SQLAlchemy app: one route that inserts one row, nothing else."""
    from fastapi import FastAPI

    PeerBase.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post(PEER_PATH, status_code=201)
    def insert_row(data: RowPost) -> dict[str, int]:  # a plain def, like ketacare's routes
        with factory() as session:
            row = PeerRow(at=datetime.now(UTC), seq=data.expected_seq, data=data.event)
            session.add(row)
            session.commit()
            return {"id": row.id}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# ------------------------------------------------------------------------- databases


def migrate_and_seed(url: str) -> None:
    from ketacare.clinic import demo
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
    from ketacare.infra.migrate import upgrade
    from ketacare.infra.settings import load_settings

    engine = make_engine(url)
    try:
        upgrade(engine)
        with unit_of_work(make_sessionmaker(engine)) as session:
            demo.seed(session=session, now=datetime.now(UTC), settings=load_settings())
    finally:
        engine.dispose()


def postgres_facts(server_url: str) -> dict[str, str]:
    """The server's version and the settings that decide a commit's cost."""
    from sqlalchemy import create_engine, text

    engine = create_engine(loopback_postgres(server_url).render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            return {
                name: str(conn.execute(text(f"SHOW {name}")).scalar_one())
                for name in ("server_version", "fsync", "synchronous_commit", "max_connections")
            }
    finally:
        engine.dispose()


# ------------------------------------------------------------------------- clients


class SetupFailed(Exception):
    """A set-up request the API refused."""


def client_for(base_url: str, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        headers=headers or {},
        timeout=REQUEST_TIMEOUT,
        trust_env=False,  # no proxy: the request goes straight to 127.0.0.1
        limits=httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_S
        ),
    )


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = client.request(method, path, **kwargs)
    if not 200 <= response.status_code < 300:
        raise SetupFailed(
            f"{method} {path}: HTTP {response.status_code} {' '.join(response.text[:300].split())}"
        )
    return response.json()


def token(base_url: str, username: str, password: str) -> dict[str, str]:
    with client_for(base_url) as client:
        body = call(
            client, "POST", "/api/v1/auth/token", data={"username": username, "password": password}
        )
    return {"Authorization": f"Bearer {body['access_token']}"}


@dataclass
class Team:
    nurse: dict[str, str]
    physician: dict[str, str]
    physician2: dict[str, str]


def make_team(base_url: str) -> Team:
    admin = token(base_url, "admin", DEMO_PASSWORD)
    password = secrets.token_urlsafe(18)
    with client_for(base_url, admin) as client:
        call(
            client,
            "POST",
            "/api/v1/users",
            json={
                "username": "physician2",
                "full_name": "Dr Second Signer",
                "role": "physician",
                "password": password,
            },
        )
    return Team(
        nurse=token(base_url, "nurse", DEMO_PASSWORD),
        physician=token(base_url, "physician", DEMO_PASSWORD),
        physician2=token(base_url, "physician2", password),
    )


@dataclass
class Chair:
    """One open session and the last sequence number its client has seen."""

    session_id: int
    plan_id: int
    seq: int


def open_and_check_in(client: httpx.Client, team: Team, plan_id: int, number: int) -> Chair:
    opened = call(
        client,
        "POST",
        f"/api/v1/plans/{plan_id}/sessions",
        headers=team.nurse,
        json={"session_number": number},
    )
    checked = call(
        client,
        "POST",
        f"/api/v1/sessions/{opened['id']}/events",
        headers=team.nurse,
        json={"expected_seq": opened["last_seq"], "event": {"kind": "check_in"}},
    )
    if checked["state"] != "checked_in":
        raise SetupFailed(f"session {opened['id']} is {checked['state']} after check-in")
    return Chair(session_id=int(opened["id"]), plan_id=plan_id, seq=int(checked["last_seq"]))


def new_chair(base_url: str, team: Team, i: int) -> Chair:
    """A screened 70 kg patient, a signed and co-signed plan, session 1 checked in."""
    with client_for(base_url) as client:
        pid = call(
            client,
            "POST",
            "/api/v1/patients",
            headers=team.nurse,
            json={
                "given_name": "Chair",
                "family_name": f"Patient {i + 1:03d}",
                "birth_date": "1980-05-05",
                "sex": "female",
                "weight_kg": 70,
            },
        )["id"]
        # no drug use: "no" to every DAST-10 item except item 3 ("able to stop...")
        no_drugs = [False, False, True] + [False] * 7
        for instrument, answers in (("ort", [False] * 10), ("dast10", no_drugs)):
            call(
                client,
                "POST",
                f"/api/v1/patients/{pid}/assessments",
                headers=team.nurse,
                json={"instrument": instrument, "answers": answers},
            )
        screening = call(
            client,
            "POST",
            f"/api/v1/patients/{pid}/screenings",
            headers=team.nurse,
            json={
                "treatment": {"molecule": "ketamine", "route": "iv_infusion"},
                "vitals": {"systolic_mmhg": 118, "diastolic_mmhg": 76},
            },
        )
        valid_until = f"{datetime.now(UTC).year + 1}-12-31"
        call(
            client,
            "POST",
            f"/api/v1/screenings/{screening['id']}/sign",
            headers=team.physician,
            json={"note": "reviewed history", "valid_until": valid_until},
        )
        plan = call(
            client,
            "POST",
            f"/api/v1/patients/{pid}/plans",
            headers=team.physician,
            json={"protocol": "crps-outpatient", "bag_mg": 100, "bag_ml": 100},
        )
        call(
            client,
            "POST",
            f"/api/v1/plans/{plan['id']}/sign",
            headers=team.physician,
            json={"weight_confirmed": True, "reason": "site limits not configured"},
        )
        call(client, "POST", f"/api/v1/plans/{plan['id']}/cosign", headers=team.physician2)
        return open_and_check_in(client, team, int(plan["id"]), 1)


def parallel(jobs: list[Callable[[], Any]], threads: int, tick: Callable[[], None]) -> list[Any]:
    """Run set-up jobs on a few threads, in order of results; the first failure raises."""

    def run(job: Callable[[], Any]) -> Any:
        out = job()
        tick()
        return out

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, jobs))


def vitals(rng: random.Random) -> dict[str, Any]:
    """A plausible set of vitals; about one in thirty crosses the 160 mmHg alert line."""
    sbp = rng.randint(161, 175) if rng.random() < 1 / 30 else rng.randint(105, 150)
    return {
        "kind": "vitals",
        "sbp_mmhg": sbp,
        "dbp_mmhg": rng.randint(60, min(95, sbp - 20)),
        "hr_per_min": rng.randint(55, 95),
        "spo2_pct": rng.randint(95, 100),
        "rr_per_min": rng.randint(10, 18),
    }


@dataclass
class Outcome:
    """One request: latency, whether it answered as expected, and its answer's size."""

    ms: float
    ok: bool
    error: str = ""
    size: int = 0


def post_vitals(client: httpx.Client, chair: Chair, rng: random.Random) -> Outcome:
    body = {"expected_seq": chair.seq, "event": vitals(rng)}
    start = time.perf_counter()
    try:
        response = client.post(f"/api/v1/sessions/{chair.session_id}/events", json=body)
    except httpx.HTTPError as exc:
        ms = (time.perf_counter() - start) * 1000.0
        return Outcome(ms, False, f"{type(exc).__name__} after {ms / 1000:.1f} s")
    ms = (time.perf_counter() - start) * 1000.0
    if response.status_code != 201:
        return Outcome(
            ms,
            False,
            f"HTTP {response.status_code} {' '.join(response.text[:160].split())}",
            len(response.content),
        )
    chair.seq = int(response.json()["last_seq"])
    return Outcome(ms, True, size=len(response.content))


def get_board(client: httpx.Client, expected: set[int]) -> Outcome:
    start = time.perf_counter()
    try:
        response = client.get(BOARD_PATH)
    except httpx.HTTPError as exc:
        ms = (time.perf_counter() - start) * 1000.0
        return Outcome(ms, False, f"{type(exc).__name__} after {ms / 1000:.1f} s")
    ms = (time.perf_counter() - start) * 1000.0
    if response.status_code != 200:
        return Outcome(
            ms, False, f"HTTP {response.status_code} {' '.join(response.text[:160].split())}"
        )
    missing = expected - {int(row["session_id"]) for row in response.json()}
    if missing:
        return Outcome(
            ms, False, f"board lacks {len(missing)} open sessions", len(response.content)
        )
    return Outcome(ms, True, size=len(response.content))


def post_peer(client: httpx.Client, rng: random.Random, seq: int) -> Outcome:
    body = {"expected_seq": seq, "event": vitals(rng)}
    start = time.perf_counter()
    try:
        response = client.post(PEER_PATH, json=body)
    except httpx.HTTPError as exc:
        ms = (time.perf_counter() - start) * 1000.0
        return Outcome(ms, False, f"{type(exc).__name__} after {ms / 1000:.1f} s")
    ms = (time.perf_counter() - start) * 1000.0
    if response.status_code != 201:
        return Outcome(ms, False, f"HTTP {response.status_code} {response.text[:160]}")
    return Outcome(ms, True, size=len(response.content))


# ------------------------------------------------------------------------- statistics


def percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"requests": 0}
    if len(latencies) == 1:
        cuts = [latencies[0]] * 99
    else:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "max_ms": round(max(latencies), 2),
    }


@dataclass
class Series:
    """The outcomes of one kind of request, collected from many threads."""

    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    late_s: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome, late_s: float = 0.0) -> None:
        with self.lock:
            self.late_s.append(late_s)
            if outcome.ok:
                self.latencies.append(outcome.ms)
                self.sizes.append(outcome.size)
            else:
                self.errors += 1
                if len(self.first_errors) < 3:
                    self.first_errors.append(outcome.error)

    @property
    def sent(self) -> int:
        return len(self.latencies) + self.errors


# ------------------------------------------------------------------ (a) clinic load


def clinic_load(
    base_url: str,
    team: Team,
    chairs: list[Chair],
    args: argparse.Namespace,
    progress: Progress,
    label: str,
) -> dict[str, Any]:
    """Every chair posts vitals on its own clock while the board clients refresh."""
    vitals_series, board_series = Series(), Series()
    stop = threading.Event()
    t0 = time.monotonic() + 1.0
    end = t0 + args.duration
    expected = {c.session_id for c in chairs}

    def on_schedule(period: float, offset: float, series: Series, act: Callable[[], Outcome]):
        k = 0
        while not stop.is_set():
            due = t0 + offset + k * period
            if due >= end:
                return
            wait = due - time.monotonic()
            if wait > 0 and stop.wait(wait):
                return
            late = max(0.0, time.monotonic() - due)
            series.add(act(), late)
            k += 1

    def chair_client(i: int, chair: Chair) -> None:
        rng = random.Random(1000 + i)
        with client_for(base_url, team.nurse) as client:
            offset = i * args.vitals_every / len(chairs)
            on_schedule(
                args.vitals_every, offset, vitals_series, lambda: post_vitals(client, chair, rng)
            )

    def board_client(j: int) -> None:
        with client_for(base_url, team.nurse) as client:
            offset = 0.5 + j * args.board_every / args.board_clients
            on_schedule(args.board_every, offset, board_series, lambda: get_board(client, expected))

    threads = [
        threading.Thread(target=chair_client, args=(i, c), daemon=True)
        for i, c in enumerate(chairs)
    ] + [
        threading.Thread(target=board_client, args=(j,), daemon=True)
        for j in range(args.board_clients)
    ]
    task = progress.add_task(f"{label}: (a) clinic load", total=args.duration)
    for t in threads:
        t.start()
    deadline = end + REQUEST_TIMEOUT.read + 10.0  # type: ignore[operator]
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        elapsed = min(args.duration, max(0.0, time.monotonic() - t0))
        progress.update(
            task,
            completed=round(elapsed),
            description=f"{label}: (a) clinic load, {vitals_series.sent} vitals, "
            f"{board_series.sent} boards, {vitals_series.errors + board_series.errors} errors",
        )
        time.sleep(0.25)
    stop.set()
    hung = sum(t.is_alive() for t in threads)
    for t in threads:
        t.join(timeout=1.0)
    progress.update(task, completed=args.duration)

    def describe(series: Series, expected_count: int) -> dict[str, Any]:
        out: dict[str, Any] = percentiles(series.latencies)
        out["sent"] = series.sent
        out["scheduled"] = expected_count
        out["errors"] = series.errors
        out["first_errors"] = series.first_errors
        out["req_per_s"] = round(series.sent / args.duration, 2)
        out["late_sends"] = sum(1 for x in series.late_s if x > 0.5)
        out["max_late_s"] = round(max(series.late_s, default=0.0), 2)
        out["mean_answer_bytes"] = round(statistics.fmean(series.sizes)) if series.sizes else 0
        return out

    per_chair = len(range(0, int(args.duration * 1000), int(args.vitals_every * 1000)))
    per_board = len(range(500, int(args.duration * 1000), int(args.board_every * 1000)))
    result: dict[str, Any] = {
        "vitals": describe(vitals_series, per_chair * len(chairs)),
        "board": describe(board_series, per_board * args.board_clients),
        "log_events_at_end": [
            min(c.seq for c in chairs),
            max(c.seq for c in chairs),
        ],
    }
    problems = []
    if hung:
        problems.append(f"{hung} client threads did not finish in time")
    for name in ("vitals", "board"):
        r = result[name]
        if r["errors"]:
            problems.append(f"{name}: {r['errors']} errors, first: {r['first_errors'][0]}")
        if r["requests"] == 0:
            problems.append(f"{name}: no request answered")
    if problems:
        result["error"] = "; ".join(problems)
    result["target_met"] = not problems and all(
        result[n].get("p99_ms", float("inf")) < P99_TARGET_MS for n in ("vitals", "board")
    )
    return result


# ---------------------------------------------------------- (b) maximum throughput


class RequestFailed(Exception):
    """A measured request that did not answer as expected in time."""


@dataclass
class Target:
    """A (b) target: each client thread has its own keep-alive client and request maker."""

    name: str
    server: Server
    headers: dict[str, str]
    make: Callable[[int], Callable[[httpx.Client], Outcome]]  # thread index -> request
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    wall: float = 0.0
    cpu: float | None = 0.0
    failed: str | None = None
    log_events: list[int] | None = None


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def burst(
    target: Target,
    clients: list[httpx.Client],
    makers: list[Callable[[httpx.Client], Outcome]],
    count: int,
    measure: bool,
    tick: Callable[[], None],
) -> None:
    stop = threading.Event()
    lock = threading.Lock()

    def worker(client: httpx.Client, make: Callable[[httpx.Client], Outcome], n: int) -> None:
        mine: list[Outcome] = []
        try:
            for _ in range(n):
                if stop.is_set():
                    return
                outcome = make(client)
                if not outcome.ok:
                    stop.set()  # the other threads of this burst stop at their next request
                    raise RequestFailed(outcome.error)
                mine.append(outcome)
                tick()
        finally:
            if measure:
                with lock:
                    target.latencies.extend(o.ms for o in mine)
                    target.sizes.extend(o.size for o in mine)

    cpu_before = target.server.cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        jobs = [
            pool.submit(worker, c, m, n)
            for c, m, n in zip(clients, makers, split(count, len(clients)), strict=True)
        ]
        errors = [job.exception() for job in jobs]
    wall = time.perf_counter() - start
    cpu_after = target.server.cpu_seconds()
    if measure:
        target.wall += wall
        if cpu_before is None or cpu_after is None or target.cpu is None:
            target.cpu = None
        else:
            target.cpu += cpu_after - cpu_before
    failed = [str(e) for e in errors if e is not None]
    if failed:
        prefix = "" if measure else "warm-up: "
        target.failed = f"{prefix}{len(failed)} of {len(clients)} threads failed: {failed[0]}"


def max_throughput(
    targets: list[Target], args: argparse.Namespace, progress: Progress, label: str
) -> None:
    warmup = max(args.warmup, args.threads)
    task = progress.add_task(
        f"{label}: (b) {args.threads} threads", total=len(targets) * (args.requests + warmup)
    )

    def tick() -> None:
        progress.advance(task)

    with ExitStack() as stack:
        clients = {
            t.name: [
                stack.enter_context(client_for(t.server.url, t.headers))
                for _ in range(args.threads)
            ]
            for t in targets
        }
        makers = {t.name: [t.make(j) for j in range(args.threads)] for t in targets}
        for t in targets:
            burst(t, clients[t.name], makers[t.name], warmup, False, tick)
        for r, chunk in enumerate(split(args.requests, args.rounds)):
            k = r % len(targets)
            for t in targets[k:] + targets[:k]:
                if t.failed is None:
                    burst(t, clients[t.name], makers[t.name], chunk, True, tick)


def session_target(
    name: str, server: Server, team: Team, pool: list[Chair], threads: int
) -> Target:
    """Thread j writes to sessions j, j+threads, ... of ``pool`` in turn (never a conflict)."""

    def make(j: int) -> Callable[[httpx.Client], Outcome]:
        mine = pool[j::threads]
        rng = random.Random(5000 + j)
        turn = iter(range(10**9))

        def request(client: httpx.Client) -> Outcome:
            return post_vitals(client, mine[next(turn) % len(mine)], rng)

        return request

    return Target(name, server, team.nurse, make)


def peer_target(server: Server) -> Target:
    def make(j: int) -> Callable[[httpx.Client], Outcome]:
        rng = random.Random(9000 + j)
        return lambda client: post_peer(client, rng, j)

    return Target("peer", server, {}, make)


def throughput_rows(targets: list[Target]) -> list[dict[str, Any]]:
    peer = next(t for t in targets if t.name == "peer")
    peer_rate = None if peer.failed or not peer.wall else len(peer.latencies) / peer.wall
    rows = []
    for t in targets:
        row: dict[str, Any] = {"target": t.name}
        if t.log_events is not None:
            row["log_events"] = t.log_events
        if t.failed:
            row["error"] = t.failed
            row["completed"] = len(t.latencies)
            rows.append(row)
            continue
        row.update(percentiles(t.latencies))
        row["req_per_s"] = round(len(t.latencies) / t.wall, 1)
        if peer_rate:
            row["req_per_s_vs_peer"] = round(row["req_per_s"] / peer_rate, 3)
        if t.cpu is not None:
            row["server_cpu_ms_per_req"] = round(1000.0 * t.cpu / len(t.latencies), 2)
            if peer.cpu and peer.latencies and not peer.failed and t.cpu:
                peer_ms = 1000.0 * peer.cpu / len(peer.latencies)
                # the peer's server CPU per request over ours: the ratio a server that is
                # the only bottleneck would show (the client shares the machine)
                row["cpu_vs_peer"] = round(peer_ms / row["server_cpu_ms_per_req"], 3)
        row["mean_answer_bytes"] = round(statistics.fmean(t.sizes))
        rows.append(row)
    return rows


# ------------------------------------------------------------- log-length probe


def log_length_probe(
    base_url: str, team: Team, chair: Chair, events: int, tick: Callable[[], None]
) -> tuple[list[dict[str, Any]], str | None]:
    """Fill one session to ``events`` sequentially; latency and answer size by log length."""
    rng = random.Random(77)
    seen: list[tuple[int, Outcome]] = []
    with client_for(base_url, team.nurse) as client:
        while chair.seq < events:
            before = chair.seq
            outcome = post_vitals(client, chair, rng)
            if not outcome.ok:
                return bucket(seen, events), f"at {before} events: {outcome.error}"
            seen.append((chair.seq, outcome))
            tick()
    return bucket(seen, events), None


def bucket(seen: list[tuple[int, Outcome]], events: int) -> list[dict[str, Any]]:
    width = max(25, events // 8)
    out = []
    for low in range(0, events, width):
        part = [o for n, o in seen if low < n <= low + width]
        if part:
            ms = [o.ms for o in part]
            out.append(
                {
                    "events": f"{max(low + 1, min(n for n, _ in seen))}-{min(low + width, events)}",
                    "requests": len(part),
                    "p50_ms": round(statistics.median(ms), 2),
                    "max_ms": round(max(ms), 2),
                    "answer_kb": round(statistics.fmean(o.size for o in part) / 1024, 1),
                }
            )
    return out


def fill(
    base_url: str, team: Team, chairs: list[Chair], events: int, tick: Callable[[], None]
) -> None:
    """Fill sessions to ``events`` events, one thread per session (set-up, not measured)."""

    def one(chair: Chair) -> None:
        rng = random.Random(chair.session_id)
        with client_for(base_url, team.nurse) as client:
            while chair.seq < events:
                outcome = post_vitals(client, chair, rng)
                if not outcome.ok:
                    raise SetupFailed(f"filling session {chair.session_id}: {outcome.error}")
                tick()

    with ThreadPoolExecutor(max_workers=max(1, len(chairs))) as pool:
        for job in [pool.submit(one, c) for c in chairs]:
            job.result()


# ------------------------------------------------------------------------- one backend


def run_backend(
    backend: str,
    server: Server,
    peer: Server,
    args: argparse.Namespace,
    progress: Progress,
) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend}
    base = server.url
    n = args.chairs
    started = time.monotonic()
    task = progress.add_task(f"{backend}: {n} chairs (patient, screening, plan, session)", total=n)
    team = make_team(base)
    chairs = parallel(
        [lambda i=i: new_chair(base, team, i) for i in range(n)],
        SETUP_THREADS,
        lambda: progress.advance(task),
    )
    out["setup_s"] = round(time.monotonic() - started, 1)

    out["clinic_load"] = clinic_load(base, team, chairs, args, progress, backend)

    # (b): fresh sessions (the next session of each plan) and long ones, opened after (a)
    # so the board of (a) held exactly the chairs
    # session 2 of every plan: short logs; sessions 3.. of the first plans: long logs
    numbers = [2] * n + [3 + j // n for j in range(args.threads + 1)]  # + 1: the probe
    task = progress.add_task(f"{backend}: opening sessions for (b)", total=len(numbers))

    def opener(i: int, number: int) -> Callable[[], Chair]:
        def job() -> Chair:
            with client_for(base) as client:
                return open_and_check_in(client, team, chairs[i % n].plan_id, number)

        return job

    opened = parallel(
        [opener(i, number) for i, number in enumerate(numbers)],
        SETUP_THREADS,
        lambda: progress.advance(task),
    )
    fresh, probe, long_pool = opened[:n], opened[n], opened[n + 1 :]

    task = progress.add_task(
        f"{backend}: log-length probe (sequential)", total=args.long_events - probe.seq
    )
    out["log_length"], probe_error = log_length_probe(
        base, team, probe, args.long_events, lambda: progress.advance(task)
    )
    if probe_error:
        out["log_length_error"] = probe_error
    rng = random.Random(3)
    with client_for(peer.url) as client:
        peer_seq = [post_peer(client, rng, 0) for _ in range(max(50, args.warmup))]
    peer_ok = [o.ms for o in peer_seq if o.ok]
    out["peer_sequential_p50_ms"] = round(statistics.median(peer_ok), 2) if peer_ok else None

    task = progress.add_task(
        f"{backend}: filling {len(long_pool)} sessions to {args.long_events} events",
        total=sum(args.long_events - c.seq for c in long_pool),
    )
    fill(base, team, long_pool, args.long_events, lambda: progress.advance(task))

    long_name = f"vitals, {args.long_events}-event logs"
    targets = [
        session_target("vitals, short logs", server, team, fresh, args.threads),
        session_target(long_name, server, team, long_pool, args.threads),  # one per thread
        peer_target(peer),
    ]
    before = [min(c.seq for c in fresh), min(c.seq for c in long_pool)]
    max_throughput(targets, args, progress, backend)
    targets[0].log_events = [before[0], max(c.seq for c in fresh)]
    targets[1].log_events = [before[1], max(c.seq for c in long_pool)]
    rows = throughput_rows(targets)
    ours = rows[0]
    out["max_throughput"] = {
        "threads": args.threads,
        "requests": args.requests,
        "rows": rows,
        "ratio": ours.get("req_per_s_vs_peer"),
        "target_met": "error" not in ours and ours.get("req_per_s_vs_peer", 0.0) >= RATIO_TARGET,
    }
    failures = [f"{r['target']}: {r['error']}" for r in rows if "error" in r]
    if failures:
        out["max_throughput"]["error"] = "; ".join(failures)
    out["total_s"] = round(time.monotonic() - started, 1)
    return out


# ------------------------------------------------------------------------- report


def fmt(row: dict[str, Any], key: str, spec: str = ".1f") -> str:
    return format(row[key], spec) if key in row and row[key] is not None else ""


def print_report(console: Console, report: dict[str, Any]) -> None:
    a = Table(
        title=(
            f"(a) clinic load: {report['chairs']} chairs posting vitals every "
            f"{report['vitals_every_s']:g} s, {report['board_clients']} board clients every "
            f"{report['board_every_s']:g} s, {report['duration_s']:g} s"
        )
    )
    for name in ("backend", "request"):
        a.add_column(name)
    for name in ("sent", "p50 ms", "p95 ms", "p99 ms", "max ms", "req/s", "errors"):
        a.add_column(name, justify="right")
    a.add_column("p99<100 ms, no errors")
    b = Table(
        title=(
            f"(b) maximum throughput: {report['threads']} client threads, "
            f"{report['requests']} measured requests per target in {report['rounds']} rounds"
        )
    )
    for name in ("backend", "target"):
        b.add_column(name)
    for name in (
        "log events",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "req/s",
        "× peer",
        "server CPU ms/req",
        "answer kB",
    ):
        b.add_column(name, justify="right")
    c = Table(title="vitals POST by log length, one client, sequential")
    for name in ("backend", "log events"):
        c.add_column(name)
    for name in ("requests", "p50 ms", "max ms", "answer kB"):
        c.add_column(name, justify="right")

    failures = []
    for res in report["backends"]:
        backend = res["backend"]
        if "error" in res:
            failures.append(f"{backend}: {res['error']}")
        load = res.get("clinic_load")
        if load:
            for kind in ("vitals", "board"):
                r = load[kind]
                ok = r["errors"] == 0 and r.get("p99_ms", 1e9) < P99_TARGET_MS
                a.add_row(
                    backend,
                    "POST vitals" if kind == "vitals" else "GET board",
                    str(r["sent"]),
                    fmt(r, "p50_ms"),
                    fmt(r, "p95_ms"),
                    fmt(r, "p99_ms"),
                    fmt(r, "max_ms"),
                    fmt(r, "req_per_s"),
                    str(r["errors"]),
                    "[green]yes" if ok else "[red]no",
                )
            if "error" in load:
                failures.append(f"{backend} (a): {load['error']}")
        mt = res.get("max_throughput")
        if mt:
            for r in mt["rows"]:
                events = r.get("log_events")
                b.add_row(
                    backend,
                    r["target"],
                    f"{events[0]}-{events[1]}" if events else "",
                    *(
                        ["[red]failed", "", "", "", "", "", ""]
                        if "error" in r
                        else [
                            fmt(r, "p50_ms"),
                            fmt(r, "p95_ms"),
                            fmt(r, "p99_ms"),
                            fmt(r, "req_per_s", ".0f"),
                            fmt(r, "req_per_s_vs_peer", ".2f") if r["target"] != "peer" else "1",
                            fmt(r, "server_cpu_ms_per_req", ".2f"),
                            f"{r['mean_answer_bytes'] / 1024:.1f}",
                        ]
                    ),
                )
            if "error" in mt:
                failures.append(f"{backend} (b): {mt['error']}")
        for r in res.get("log_length", []):
            c.add_row(
                backend,
                r["events"],
                str(r["requests"]),
                f"{r['p50_ms']:.1f}",
                f"{r['max_ms']:.1f}",
                f"{r['answer_kb']:.1f}",
            )
        if res.get("peer_sequential_p50_ms") is not None:
            c.add_row(backend, "peer insert", "", f"{res['peer_sequential_p50_ms']:.1f}", "", "")
        if "log_length_error" in res:
            failures.append(f"{backend} probe: {res['log_length_error']}")
    console.print(a)
    console.print(b)
    console.print(c)
    for res in report["backends"]:
        mt = res.get("max_throughput")
        if mt and mt.get("ratio") is not None:
            verdict = "met" if mt["target_met"] else "missed"
            console.print(
                f"{res['backend']}: short-log vitals at {mt['ratio']:.2f} × the bare insert "
                f"(target ≥ {RATIO_TARGET}: {verdict}); by server CPU per request "
                f"{mt['rows'][0].get('cpu_vs_peer', 'n/a')}",
                highlight=False,
            )
    pg = report.get("postgresql")
    console.print(
        f"Python {report['python']}, uvicorn {report['versions']['uvicorn']} (one worker per "
        f"server), SQLAlchemy {report['versions']['sqlalchemy']}, {report['cpus']} CPUs"
        + (
            f"; PostgreSQL {pg['server_version']} (fsync={pg['fsync']}, "
            f"synchronous_commit={pg['synchronous_commit']})"
            if pg
            else ""
        ),
        highlight=False,
    )
    for failure in failures:
        console.print(f"[red]FAILED[/red] {failure}", highlight=False)


# ------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load-test the vitals endpoint and the nurses' board of infusion sessions."
    )
    parser.add_argument("--chairs", type=int, default=50, help="chairs in (a) (50)")
    parser.add_argument(
        "--vitals-every", type=float, default=5.0, help="seconds between a chair's vitals (5)"
    )
    parser.add_argument("--board-clients", type=int, default=2, help="board clients (2)")
    parser.add_argument(
        "--board-every", type=float, default=2.0, help="seconds between board refreshes (2)"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="length of (a) in s (60)")
    parser.add_argument("--threads", type=int, default=8, help="client threads in (b) (8)")
    parser.add_argument(
        "--requests", type=int, default=1200, help="measured requests per target in (b) (1200)"
    )
    parser.add_argument("--warmup", type=int, default=40, help="warm-up requests in (b) (40)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds in (b) (3)")
    parser.add_argument(
        "--long-events", type=int, default=200, help="events in the long sessions (200)"
    )
    parser.add_argument(
        "--postgres-url",
        metavar="URL",
        help="also measure PostgreSQL: a server URL on 127.0.0.1, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres (two databases are created "
        "for the run and dropped afterwards)",
    )
    parser.add_argument(
        "--no-sqlite", action="store_true", help="measure PostgreSQL only (needs --postgres-url)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 also when a target is missed")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    # the server processes this script starts for itself
    parser.add_argument("--serve", choices=("ketacare", "peer"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.serve:
        checks = (
            (1 <= args.chairs <= 200, "--chairs must be 1..200"),
            (0.5 <= args.vitals_every <= 60, "--vitals-every must be 0.5..60"),
            (0 <= args.board_clients <= 10, "--board-clients must be 0..10"),
            (0.5 <= args.board_every <= 60, "--board-every must be 0.5..60"),
            (5 <= args.duration <= 600, "--duration must be 5..600"),
            (1 <= args.threads <= 32, "--threads must be 1..32"),
            (2 <= args.requests <= 20_000, "--requests must be 2..20000"),
            (0 <= args.warmup <= 2_000, "--warmup must be 0..2000"),
            (1 <= args.rounds <= args.requests // 2, "--rounds must be 1..--requests/2"),
            (10 <= args.long_events <= 2_000, "--long-events must be 10..2000"),
            (not args.no_sqlite or args.postgres_url, "--no-sqlite needs --postgres-url"),
        )
        for ok, message in checks:
            if not ok:
                parser.error(message)
        # sessions 2.. of the chairs' plans serve (b): fresh ones, then the long ones
        if 3 + args.threads // args.chairs > MAX_SESSIONS_PER_PLAN:
            parser.error("too many --threads for so few --chairs (each plan has 10 sessions)")
        if args.postgres_url:
            loopback_postgres(args.postgres_url)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.source, args.var_dir)
        return 0

    import fastapi
    import sqlalchemy
    import uvicorn

    started = datetime.now(UTC).isoformat(timespec="seconds")
    console = Console(stderr=True)
    out = Console() if sys.stdout.isatty() else Console(width=160)
    report: dict[str, Any] = {
        "benchmark": "sessions_load",
        "chairs": args.chairs,
        "vitals_every_s": args.vitals_every,
        "board_clients": args.board_clients,
        "board_every_s": args.board_every,
        "duration_s": args.duration,
        "threads": args.threads,
        "requests": args.requests,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "long_events": args.long_events,
        "targets": {"clinic_load_p99_ms": P99_TARGET_MS, "throughput_vs_peer": RATIO_TARGET},
        "peer": "bare FastAPI, one sync route inserting one row (SQLAlchemy ORM, one "
        "transaction) into its own database of the same kind; no auth, no audit",
        "session_policy": SESSION_POLICY,
        "python": platform.python_version(),
        "versions": {
            "fastapi": fastapi.__version__,
            "uvicorn": uvicorn.__version__,
            "sqlalchemy": sqlalchemy.__version__,
            "httpx": httpx.__version__,
        },
        "cpus": os.cpu_count(),
        "started": started,
        "backends": [],
    }
    if args.postgres_url:
        report["postgresql"] = postgres_facts(args.postgres_url)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kc-bench-")))
        plans: list[tuple[str, Callable[[], tuple[str, str]]]] = []
        if not args.no_sqlite:

            def sqlite_dbs() -> tuple[str, str]:
                url = f"sqlite:///{tmp / 'ketacare.sqlite3'}"
                migrate_and_seed(url)
                return url, f"sqlite:///{tmp / 'peer.sqlite3'}"

            plans.append(("sqlite", sqlite_dbs))
        if args.postgres_url:

            def postgres_dbs() -> tuple[str, str]:
                url = stack.enter_context(
                    postgres_database(args.postgres_url, prepare=migrate_and_seed)
                )
                peer = stack.enter_context(postgres_database(args.postgres_url))
                return url, peer

            plans.append(("postgresql", postgres_dbs))

        with Progress(*columns, console=console, refresh_per_second=4) as progress:
            for backend, build in plans:
                with ExitStack() as servers:
                    try:
                        with console.status(f"building the demo clinic in {backend}"):
                            url, peer_url = build()
                        server = Server(
                            "ketacare", url, tmp / f"var-{backend}", tmp / f"{backend}.log"
                        )
                        peer = Server(
                            "peer",
                            peer_url,
                            tmp / f"var-peer-{backend}",
                            tmp / f"peer-{backend}.log",
                        )
                        with console.status(f"starting the servers on {backend}"):
                            servers.enter_context(running(server))
                            servers.enter_context(running(peer))
                        report["backends"].append(
                            run_backend(backend, server, peer, args, progress)
                        )
                    except (SetupFailed, RuntimeError, httpx.HTTPError) as exc:
                        report["backends"].append({"backend": backend, "error": str(exc)})

    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(out, report)
    failed = False
    missed = False
    for res in report["backends"]:
        load, mt = res.get("clinic_load", {}), res.get("max_throughput", {})
        if "error" in res or "error" in load or "error" in mt or "log_length_error" in res:
            failed = True
        if not load.get("target_met") or not mt.get("target_met"):
            missed = True
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
