"""Benchmark the patient chart page (GET /patients/1) against a bare FastAPI peer.

What it does, in one run:

* builds a fresh demo clinic in SQLite under a temporary directory (migrate + seed),
  and, with ``--postgres-url``, also in a new database on that PostgreSQL server
  (created for the run and dropped at the end);
* serves the real app (``ketacare.app.create_app``) with uvicorn, one worker, on a free
  port of 127.0.0.1, each backend in its own server process;
* logs in as ``nurse`` through the real login form (CSRF token and cookie included);
* serves the peer: a bare FastAPI app whose one route returns a static HTML page of the
  very same bytes as the chart page (no database, no authentication), run the same way;
* requests each target ``--requests`` times after ``--warmup`` warm-up requests, first
  sequentially over one keep-alive client, then from ``--concurrency`` threads (one
  keep-alive client each), and reports median, p95, p99 latency and requests per second.

Targets are measured in interleaved rounds (``--rounds``), so that a noisy machine
disturbs them alike; the ratios against the peer are the figures to compare between
runs. Each server runs in its own process so the client's threads do not share its
interpreter lock. Only 127.0.0.1 is ever contacted.

A measured request that does not answer 200 within 15 s stops that target in that mode:
the report marks it failed (with the first error) and the exit status is 1.

Usage::

    .venv/bin/python bench/chart_page.py
    .venv/bin/python bench/chart_page.py --requests 500 --concurrency 4 --json
    .venv/bin/python bench/chart_page.py \\
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from support import HOST, Server, loopback_postgres, postgres_database, running  # noqa: E402

from ketacare.clinic.demo import DEMO_PASSWORD

CHART_PATH = "/patients/1"
PEER_PATH = "/page"
USERNAME, PASSWORD = "nurse", DEMO_PASSWORD
REQUEST_TIMEOUT = httpx.Timeout(15.0)


# --------------------------------------------------------------------------- servers


def serve(kind: str, port: int, source: str, var_dir: str) -> None:
    """Run one server in this process until it is told to stop (SIGTERM/SIGINT)."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    engine = None
    if kind == "ketacare":
        from ketacare.app import create_app
        from ketacare.infra.settings import load_settings

        settings = load_settings(
            database_url=source, var_dir=Path(var_dir), secret_key="x" * 40, cookie_secure=False
        )
        app = create_app(settings)
        engine = app.state.engine
    else:
        html = Path(source).read_bytes()
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

        @app.get(PEER_PATH, response_class=HTMLResponse)
        def static_page() -> HTMLResponse:  # a plain def, like ketacare's page routes
            return HTMLResponse(html)

        @app.get("/healthz")
        def healthz() -> dict[str, str]:
            return {"status": "ok"}

    config = uvicorn.Config(
        app, host=HOST, port=port, workers=1, log_level="warning", access_log=False
    )
    try:
        uvicorn.Server(config).run()
    finally:
        if engine is not None:
            engine.dispose()


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


# ------------------------------------------------------------------------- clients


@dataclass
class Target:
    name: str
    backend: str
    base_url: str
    path: str
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            cookies=httpx.Cookies(self.cookies),
            timeout=REQUEST_TIMEOUT,
            trust_env=False,  # no proxy: the request goes straight to 127.0.0.1
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )


def login(base_url: str) -> httpx.Cookies:
    """Log in through the real login form; returns the session's cookies."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        form = client.get("/login")
        form.raise_for_status()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        if not token or "kc_login_csrf" not in client.cookies:
            raise RuntimeError("the login form has no CSRF token or cookie")
        done = client.post(
            "/login",
            data={"username": USERNAME, "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        if done.status_code != 303 or "kc_session" not in client.cookies:
            raise RuntimeError(f"login failed: HTTP {done.status_code} {done.text[:200]}")
        return httpx.Cookies(client.cookies)


class RequestFailed(Exception):
    """A measured request that did not answer 200 in time."""


def timed_get(client: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        waited = time.perf_counter() - start
        raise RequestFailed(f"GET {path}: {type(exc).__name__} after {waited:.1f} s") from exc
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RequestFailed(
            f"GET {path}: HTTP {response.status_code} after {elapsed:.1f} s "
            f"{' '.join(response.text[:120].split())}"
        )
    return elapsed * 1000.0


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def rotated(targets: list[Target], r: int) -> list[Target]:
    k = r % len(targets)
    return targets[k:] + targets[:k]


def run_sequential(
    targets: list[Target], requests: int, warmup: int, rounds: int, tick: Callable[[], None]
) -> None:
    mode = "sequential"
    with ExitStack() as stack:
        clients = {t.name: stack.enter_context(t.client()) for t in targets}
        for t in targets:
            t.latencies[mode], t.wall[mode] = [], 0.0
            try:
                for _ in range(warmup):
                    timed_get(clients[t.name], t.path)
                    tick()
            except RequestFailed as exc:
                t.failed[mode] = f"warm-up: {exc}"
        for r, chunk in enumerate(split(requests, rounds)):
            for t in rotated(targets, r):
                if mode in t.failed:
                    continue
                client, out = clients[t.name], t.latencies[mode]
                start = time.perf_counter()
                try:
                    for _ in range(chunk):
                        out.append(timed_get(client, t.path))
                        tick()
                except RequestFailed as exc:
                    t.failed[mode] = f"after {len(out)} requests: {exc}"
                t.wall[mode] += time.perf_counter() - start


def run_concurrent(
    targets: list[Target],
    requests: int,
    warmup: int,
    rounds: int,
    threads: int,
    tick: Callable[[], None],
) -> None:
    mode = "concurrent"
    lock = threading.Lock()

    def worker(
        client: httpx.Client, path: str, count: int, out: list[float], stop: threading.Event
    ) -> None:
        mine = []
        try:
            for _ in range(count):
                if stop.is_set():
                    return
                mine.append(timed_get(client, path))
                tick()
        except RequestFailed:
            stop.set()  # the other threads of this burst stop at their next request
            raise
        finally:
            with lock:
                out.extend(mine)

    def burst(t: Target, clients: list[httpx.Client], count: int, out: list[float]) -> None:
        stop = threading.Event()
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            jobs = [
                pool.submit(worker, c, t.path, n, out, stop)
                for c, n in zip(clients, split(count, threads), strict=True)
            ]
            errors = [job.exception() for job in jobs]
        t.wall[mode] += time.perf_counter() - start
        failed = [str(e) for e in errors if e is not None]
        if failed:
            t.failed[mode] = f"{len(failed)} of {threads} threads failed: {failed[0]}"

    with ExitStack() as stack:
        clients = {
            t.name: [stack.enter_context(t.client()) for _ in range(threads)] for t in targets
        }
        for t in targets:
            t.wall[mode] = 0.0
            burst(t, clients[t.name], max(warmup, threads), [])
            if mode in t.failed:
                t.failed[mode] = f"warm-up: {t.failed[mode]}"
            t.latencies[mode], t.wall[mode] = [], 0.0
        for r, chunk in enumerate(split(requests, rounds)):
            for t in rotated(targets, r):
                if mode not in t.failed:
                    burst(t, clients[t.name], chunk, t.latencies[mode])


# ------------------------------------------------------------------------- report


def summarise(latencies: list[float], wall: float) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "median_ms": round(statistics.median(latencies), 3),
        "p95_ms": round(cuts[94], 3),
        "p99_ms": round(cuts[98], 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "min_ms": round(min(latencies), 3),
        "max_ms": round(max(latencies), 3),
        "req_per_s": round(len(latencies) / wall, 1),
    }


def build_results(targets: list[Target], peer: Target) -> list[dict[str, Any]]:
    results = []
    for mode in ("sequential", "concurrent"):
        base = None if mode in peer.failed else summarise(peer.latencies[mode], peer.wall[mode])
        for t in targets:
            row: dict[str, Any] = {"target": t.name, "backend": t.backend, "mode": mode}
            if mode in t.failed:
                row["error"] = t.failed[mode]
                row["completed"] = len(t.latencies[mode])
                results.append(row)
                continue
            row.update(summarise(t.latencies[mode], t.wall[mode]))
            if base is not None:
                row["median_vs_peer"] = round(row["median_ms"] / base["median_ms"], 2)
                row["p95_vs_peer"] = round(row["p95_ms"] / base["p95_ms"], 2)
                row["p99_vs_peer"] = round(row["p99_ms"] / base["p99_ms"], 2)
                row["req_per_s_vs_peer"] = round(row["req_per_s"] / base["req_per_s"], 3)
            results.append(row)
    return results


def print_table(console: Console, report: dict[str, Any]) -> None:
    table = Table(
        title=(
            f"GET {CHART_PATH} as {USERNAME}: {report['requests']} requests per target and mode, "
            f"{report['concurrency']} threads when concurrent"
        )
    )
    columns = ("median ms", "p95 ms", "p99 ms", "req/s", "median ×peer", "p95 ×peer")
    table.add_column("target")
    table.add_column("mode")
    for name in columns:
        table.add_column(name, justify="right")

    def ratio(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.2f}" if key in row else "n/a"

    failures = []
    for row in report["results"]:
        if "error" in row:
            failures.append(f"{row['target']} {row['mode']}: {row['error']}")
            table.add_row(row["target"], row["mode"], "[red]failed", *[""] * (len(columns) - 1))
            continue
        table.add_row(
            row["target"],
            row["mode"],
            f"{row['median_ms']:.2f}",
            f"{row['p95_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            f"{row['req_per_s']:.0f}",
            ratio(row, "median_vs_peer"),
            ratio(row, "p95_vs_peer"),
        )
    console.print(table)
    console.print(
        f"chart page {report['page_bytes']} bytes; peer: bare FastAPI, one route, same bytes; "
        f"Python {report['python']}, uvicorn {report['versions']['uvicorn']} "
        f"(one worker each), {report['cpus']} CPUs"
    )
    for failure in failures:
        console.print(f"[red]FAILED[/red] {failure}", highlight=False)


# ------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark GET /patients/1 (the chart page) against a bare FastAPI peer."
    )
    parser.add_argument("--requests", type=int, default=300, help="measured requests (300)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests (20)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (4)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument(
        "--postgres-url",
        metavar="URL",
        help="also measure PostgreSQL: a server URL on 127.0.0.1, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres (a database is created "
        "for the run and dropped afterwards)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    # the server processes this script starts for itself
    parser.add_argument("--serve", choices=("ketacare", "peer"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.serve:
        if not 1 <= args.requests <= 100_000 or not 0 <= args.warmup <= 10_000:
            parser.error("--requests must be 1..100000 and --warmup 0..10000")
        if not 1 <= args.concurrency <= 64:
            parser.error("--concurrency must be 1..64")
        if not 1 <= args.rounds <= args.requests:
            parser.error("--rounds must be 1..--requests")
        if args.requests < 2:
            parser.error("--requests must be at least 2 to compute percentiles")
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
    out = Console() if sys.stdout.isatty() else Console(width=132)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kc-bench-")))
        backends = [("sqlite", f"sqlite:///{tmp / 'ketacare.sqlite3'}")]
        with console.status("building the demo clinic in SQLite"):
            migrate_and_seed(backends[0][1])
        if args.postgres_url:
            with console.status("building the demo clinic in PostgreSQL"):
                pg_url = stack.enter_context(
                    postgres_database(args.postgres_url, prepare=migrate_and_seed)
                )
            backends.append(("postgresql", pg_url))

        targets: list[Target] = []
        for backend, url in backends:
            server = Server("ketacare", url, tmp / f"var-{backend}", tmp / f"{backend}.log")
            with console.status(f"starting ketacare on {backend}"):
                stack.enter_context(running(server))
            targets.append(
                Target(f"ketacare/{backend}", backend, server.url, CHART_PATH, login(server.url))
            )

        with targets[0].client() as client:
            html = client.get(CHART_PATH)
        if html.status_code != 200 or "<html" not in html.text.lower():
            raise RuntimeError(f"the chart page did not render: HTTP {html.status_code}")
        page = tmp / "chart.html"
        page.write_bytes(html.content)
        peer_server = Server("peer", str(page), tmp / "var-peer", tmp / "peer.log")
        with console.status("starting the peer"):
            stack.enter_context(running(peer_server))
        peer = Target("peer", "none", peer_server.url, PEER_PATH)
        everyone = [*targets, peer]

        sequential_total = len(everyone) * (args.requests + args.warmup)
        concurrent_total = len(everyone) * (args.requests + max(args.warmup, args.concurrency))
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, refresh_per_second=4) as progress:
            task = progress.add_task("sequential", total=sequential_total)
            run_sequential(
                everyone,
                args.requests,
                args.warmup,
                args.rounds,
                lambda: progress.advance(task),
            )
            task = progress.add_task(f"{args.concurrency} threads", total=concurrent_total)
            run_concurrent(
                everyone,
                args.requests,
                args.warmup,
                args.rounds,
                args.concurrency,
                lambda: progress.advance(task),
            )

    report = {
        "benchmark": "chart_page",
        "path": CHART_PATH,
        "user": USERNAME,
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "page_bytes": len(html.content),
        "peer": "bare FastAPI, one sync route returning the chart page's bytes, no DB, no auth",
        "python": platform.python_version(),
        "versions": {
            "fastapi": fastapi.__version__,
            "uvicorn": uvicorn.__version__,
            "sqlalchemy": sqlalchemy.__version__,
            "httpx": httpx.__version__,
        },
        "cpus": os.cpu_count(),
        "started": started,
        "results": build_results(everyone, peer),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(out, report)
    return 1 if any("error" in row for row in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
