"""Benchmark the audit trail page's queries on a large trail (SQLite; PostgreSQL optional).

Fills a migrated database with ``--events`` audit events (100,000 by default: 40 users,
30 actions with ``denied`` among them, 5,000 patients, one event a minute), then times,
warm (median of ``--runs``), what one page of ``/admin/audit`` runs: the page of 100
events for several filter sets, at the newest end and deep in the trail (keyset paging:
no OFFSET), and the action list of the filter. It prints each query's plan (SQLite's
``EXPLAIN QUERY PLAN``) so that an index left unused shows.

The hashes written here are not a valid chain (the page does not verify it unless asked).

Usage::

    .venv/bin/python bench/audit_trail.py
    .venv/bin/python bench/audit_trail.py --events 1000000 --postgres-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import trail
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.infra.migrate import upgrade

ZONE = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 1, 1, tzinfo=UTC)


def fill(url: str, events: int) -> None:
    engine = create_engine(url)
    upgrade(engine)
    actions = ["read", "list", "create", "amend", "export", "login", "denied"] + [
        f"act{i}" for i in range(23)
    ]
    with engine.begin() as conn:
        batch: list[dict[str, Any]] = []
        for i in range(events):
            action = actions[(i * 7) % len(actions)] if i % 50 else "denied"
            batch.append(
                {
                    "at": START + timedelta(minutes=i),
                    "user_id": i % 40 + 1,
                    "username": f"user{i % 40}",
                    "role": "nurse",
                    "action": action,
                    "resource_type": "patient",
                    "resource_id": str(i % 5000 + 1),
                    "patient_id": i % 5000 + 1,
                    "remote_addr": "127.0.0.1",
                    "detail": {"n": i},
                    "prev_hash": f"{i:064x}",
                    "hash": f"{i + 1:064x}",
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(AuditEvent), batch)
                batch = []
        if batch:
            conn.execute(insert(AuditEvent), batch)
    engine.dispose()


def timed(fn: Callable[[], object], runs: int) -> float:
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def run(url: str, events: int, runs: int) -> None:
    engine = create_engine(url)
    deep = events // 10  # an id 90 % of the way down the trail
    cases: dict[str, trail.TrailFilters] = {
        "no filter": trail.TrailFilters(),
        "user": trail.TrailFilters(username="user7"),
        "patient": trail.TrailFilters(patient_id=1234),
        "action denied": trail.TrailFilters(action="denied"),
        "one local day": trail.TrailFilters(date_from=date(2026, 2, 10), date_to=date(2026, 2, 10)),
        "user + days": trail.TrailFilters(
            username="user3", date_from=date(2026, 2, 1), date_to=date(2026, 2, 20)
        ),
    }
    print(f"{engine.dialect.name}: {events:,} events; page of 100, median of {runs} warm runs")
    with Session(engine) as session:
        for name, filters in cases.items():
            for where, before in (("newest", None), ("deep", deep)):
                ms = timed(
                    lambda f=filters, b=before: trail.trail(
                        session=session, filters=f, zone=ZONE, before=b
                    ),
                    runs,
                )
                print(f"  {name:<14} {where:<6} {ms:8.2f} ms")
        ms = timed(lambda: trail.actions_seen(session=session), runs)
        print(f"  {'action list':<21} {ms:8.2f} ms")
        if engine.dialect.name == "sqlite":
            for name, filters in cases.items():
                query = (
                    select(AuditEvent)
                    .where(*filters.where(ZONE))
                    .order_by(AuditEvent.id.desc())
                    .limit(101)
                )
                sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
                plan = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()
                print(f"  plan {name}: " + "; ".join(str(row[-1]) for row in plan))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'audit.sqlite3'}"
        fill(url, args.events)
        run(url, args.events, args.runs)
    if args.postgres_url:
        from support import postgres_database

        with postgres_database(args.postgres_url, prepare=lambda u: fill(u, args.events)) as u:
            run(u, args.events, args.runs)


if __name__ == "__main__":
    main()
