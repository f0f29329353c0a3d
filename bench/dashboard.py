"""Benchmark the clinic dashboard on a generated registry, on SQLite and on PostgreSQL.

What it does, in one run:

* generates a synthetic registry, vectorised with numpy from ``--seed``:
  ``--patients`` patients (100,000) with ``--measurements`` scores (5,000,000), a mix
  of diagnoses (CRPS I and II, fibromyalgia, neuropathic pain, major depression, none
  recorded), protocols, 1-10 given sessions each (some patients opened a session and
  were never dosed), a pain NRS for everyone and a PHQ-9 for depression and some pain
  patients; responders, non-responders, response that is later lost, patients who stop
  coming (dropouts), missing baselines and baselines the definitions exclude;
* bulk-inserts it into the application's real schema (migrated with Alembic): COPY on
  PostgreSQL, ``executemany`` on SQLite; a session log holds its dosing entry only;
* builds the dashboard's per-patient outcome summary with the whole-clinic refresh
  (``ketacare analytics refresh``'s code) and times it, and times one patient's refresh
  (what recording a score adds);
* times the dashboard's queries (the SQL aggregate of the rates, the Kaplan-Meier
  query, and the whole service call with its Python roll-up, curves and audit row) for
  four filter sets, **warm** (median of ``--runs``) and **cold** (median of
  ``--cold-runs``: PostgreSQL restarted and the files of both databases evicted from
  the operating system's page cache with ``posix_fadvise(DONTNEED)`` before each run);
* times two named peers in the same run: **naive**, the same rates and curves computed
  the way one would without the summary (one query pulling every score into numpy,
  then :func:`ketacare.core.outcomes.clinic_outcomes` per definition, grouped by
  condition and protocol), and **count**, a bare ``SELECT count(*)`` over the
  measurements table; ours is reported as ratios against both.

PostgreSQL: with ``--postgres-url`` (a server on 127.0.0.1; a database is created for
the run and dropped afterwards; "cold" then only means a new connection, since that
server is not restarted), otherwise a throw-away cluster (``initdb`` as the
``postgres`` user via ``runuser``, on a free port of 127.0.0.1, removed at the end).

Target: every dashboard query under 1 s on PostgreSQL at 100,000 patients and
5,000,000 measurements. Exit status 1 when a step failed; with ``--strict`` also when
the target is missed.

Usage::

    .venv/bin/python bench/dashboard.py
    .venv/bin/python bench/dashboard.py --patients 10000 --measurements 500000 --runs 5
    .venv/bin/python bench/dashboard.py --no-sqlite --json
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from support import HOST, free_port, loopback_postgres, postgres_database  # noqa: E402

TARGET_S = 1.0
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
#: Benchmark parameters standing in for a clinic's site policy (no published values).
LOSS_CONFIRMATIONS = 2
LOST_AFTER_DAYS = 90
DAY = 86_400

# diagnosis (ICD-10-CM), its share of patients, and whether it is a mood disorder
DIAGNOSES: tuple[tuple[str | None, str, float, bool], ...] = (
    ("G90.511", "Complex regional pain syndrome I of right upper limb", 0.12, False),
    ("G90.512", "Complex regional pain syndrome I of left upper limb", 0.10, False),
    ("G90.521", "Complex regional pain syndrome I of right lower limb", 0.08, False),
    ("G90.50", "Complex regional pain syndrome I, unspecified", 0.05, False),
    ("G56.41", "Causalgia of right upper limb (CRPS II)", 0.04, False),
    ("G57.71", "Causalgia of right lower limb (CRPS II)", 0.03, False),
    ("M79.7", "Fibromyalgia", 0.18, False),
    ("B02.23", "Postherpetic polyneuropathy", 0.05, False),
    ("E11.42", "Type 2 diabetes mellitus with diabetic polyneuropathy", 0.06, False),
    ("G89.4", "Chronic pain syndrome", 0.06, False),
    ("F33.1", "Major depressive disorder, recurrent, moderate", 0.12, True),
    ("F32.2", "Major depressive disorder, single episode, severe", 0.08, True),
    (None, "", 0.03, False),
)
PAIN_PROTOCOLS = (("crps-outpatient", 0.6), ("crps-continuous", 0.3), ("oral-followon", 0.1))
MOOD_PROTOCOLS = (("depression-iv", 0.7), ("esketamine-trd", 0.3))
SELF_ADMINISTERED = ("esketamine-trd",)


# --------------------------------------------------------------------------- generation


@dataclass
class Registry:
    """The generated registry as columns, one dict of columns per table."""

    patients: dict[str, Any]
    conditions: dict[str, Any]
    plans: dict[str, Any]
    sessions: dict[str, Any]
    events: dict[str, Any]
    assessments: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)


def _seconds(at: datetime) -> int:
    return int(at.timestamp())


def _iso(seconds: NDArray[np.int64]) -> NDArray[np.str_]:
    """ISO timestamps (UTC, whole seconds) of int64 seconds, vectorised."""
    return np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")


def generate(n_patients: int, n_measurements: int, seed: int) -> Registry:
    """A realistic synthetic registry (see the module notes), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    now = _seconds(NOW)
    n = n_patients
    pid = np.arange(1, n + 1, dtype=np.int64)

    shares = np.array([d[2] for d in DIAGNOSES])
    diag = rng.choice(len(DIAGNOSES), size=n, p=shares / shares.sum())
    mood = np.array([d[3] for d in DIAGNOSES])[diag]
    pain_p = np.array([p for _, p in PAIN_PROTOCOLS])
    mood_p = np.array([p for _, p in MOOD_PROTOCOLS])
    pain_choice = rng.choice(len(PAIN_PROTOCOLS), size=n, p=pain_p)
    mood_choice = rng.choice(len(MOOD_PROTOCOLS), size=n, p=mood_p)
    protocol = np.where(
        mood,
        np.array([p for p, _ in MOOD_PROTOCOLS], dtype=object)[mood_choice],
        np.array([p for p, _ in PAIN_PROTOCOLS], dtype=object)[pain_choice],
    )

    # cohort entry: the first given session, over the last three years, in clinic hours
    entry = now - rng.integers(14 * DAY, 3 * 365 * DAY, size=n)
    entry = entry - entry % DAY + rng.integers(8 * 3600, 17 * 3600, size=n)
    never_dosed = rng.random(n) < 0.04
    n_sessions = 1 + rng.binomial(9, 0.6, size=n)
    gaps = rng.integers(2 * DAY, 7 * DAY, size=(n, 10))
    gaps[:, 0] = 0
    session_times = entry[:, None] + np.cumsum(gaps, axis=1)
    take = np.arange(10)[None, :] < n_sessions[:, None]
    take &= session_times <= now
    s_patient = np.broadcast_to(pid[:, None], (n, 10))[take]
    s_time = session_times[take]
    s_number = np.broadcast_to(np.arange(1, 11)[None, :], (n, 10))[take]
    s_dosed = ~never_dosed[s_patient - 1]
    # a never-dosed patient has only the first session, opened and left at check-in
    keep = s_dosed | (s_number == 1)
    s_patient, s_time, s_number, s_dosed = (
        s_patient[keep],
        s_time[keep],
        s_number[keep],
        s_dosed[keep],
    )
    s_id = np.arange(1, s_patient.size + 1, dtype=np.int64)

    # measurement series: a pain NRS for everyone, a PHQ-9 for mood and 30% of the others
    has_phq = mood | (rng.random(n) < 0.3)
    series_patient = np.concatenate((pid, pid[has_phq]))
    series_measure = np.concatenate((np.zeros(n, np.int8), np.ones(int(has_phq.sum()), np.int8)))
    g = series_patient.size
    weights = rng.gamma(2.0, 1.0, size=g)
    counts = np.floor(weights / weights.sum() * n_measurements).astype(np.int64)
    counts = np.maximum(counts, 1)
    diff = n_measurements - int(counts.sum())
    while diff != 0:  # settle on exactly n_measurements rows
        idx = rng.integers(0, g, size=abs(diff))
        if diff > 0:
            np.add.at(counts, idx, 1)
        else:
            can = counts[idx] > 1
            np.add.at(counts, idx[can], -1)
        diff = n_measurements - int(counts.sum())

    # each series: baseline (most have one), response, loss of response, dropout
    sp = series_patient - 1
    s_entry = entry[sp]
    has_baseline = rng.random(g) < 0.92
    followed = now - s_entry
    dropout = rng.random(g) < 0.35
    horizon = np.where(
        dropout, np.minimum(followed, rng.exponential(150 * DAY, size=g) + DAY), followed
    ).astype(np.int64)
    scale_max = np.where(series_measure == 0, 10, 27)
    base = np.where(
        series_measure == 0,
        np.where(rng.random(g) < 0.01, 0, rng.integers(4, 11, size=g)),
        rng.integers(5, 28, size=g),
    ).astype(np.float64)
    responds = rng.random(g) < np.where(mood[sp], 0.55, 0.45)
    depth = np.where(responds, rng.uniform(0.3, 0.8, size=g), rng.uniform(0.0, 0.25, size=g))
    onset = s_entry + rng.exponential(7 * DAY, size=g).astype(np.int64)
    loses = rng.random(g) < 0.7
    loss = np.where(
        loses,
        onset + rng.exponential(60 * DAY, size=g).astype(np.int64),
        np.iinfo(np.int64).max,
    )

    row_series = np.repeat(np.arange(g), counts)
    first_row = np.concatenate(([0], np.cumsum(counts)[:-1]))
    is_baseline = np.zeros(row_series.size, dtype=bool)
    is_baseline[first_row[has_baseline]] = True
    u = rng.random(row_series.size)
    t = np.where(
        is_baseline,
        s_entry[row_series] - (3600 + (u * 14 * DAY).astype(np.int64)),
        s_entry[row_series] + 3600 + (u * horizon[row_series]).astype(np.int64),
    )
    t = np.minimum(t, now - 60)
    in_response = (t >= onset[row_series]) & (t < loss[row_series])
    noise = rng.normal(0.0, np.where(series_measure[row_series] == 0, 0.8, 2.0))
    value = base[row_series] * (1 - depth[row_series] * in_response) + noise
    value = np.clip(np.rint(value), 0, scale_max[row_series])
    value[is_baseline] = base[row_series[is_baseline]]

    codes = np.array([d[0] or "" for d in DIAGNOSES], dtype=object)[diag]
    displays = np.array([d[1] for d in DIAGNOSES], dtype=object)[diag]
    with_condition = codes != ""
    return Registry(
        patients={"id": pid},
        conditions={
            "patient_id": pid[with_condition],
            "icd10_code": codes[with_condition],
            "display": displays[with_condition],
        },
        plans={"id": pid, "patient_id": pid, "protocol_id": protocol},
        sessions={
            "id": s_id,
            "plan_id": s_patient,
            "patient_id": s_patient,
            "session_number": s_number,
            "dosed": s_dosed,
            "at": s_time,
        },
        events={
            "session_id": s_id[s_dosed],
            "at": s_time[s_dosed],
            "self": np.isin(protocol[s_patient[s_dosed] - 1], SELF_ADMINISTERED),
        },
        assessments={
            "patient_id": series_patient[row_series],
            "instrument_id": np.where(series_measure[row_series] == 0, "nrs_pain", "phq9"),
            "total": value,
            "completed_at": t,
        },
        facts={
            "patients": n,
            "measurements": int(row_series.size),
            "sessions": int(s_id.size),
            "given_sessions": int(s_dosed.sum()),
            "never_dosed_patients": int(never_dosed.sum()),
            "phq9_series": int(has_phq.sum()),
            "dropouts_share": round(float(dropout.mean()), 3),
            "responder_share_latent": round(float(responds.mean()), 3),
        },
    )


# ------------------------------------------------------------------------------ loading


def _event_json(at: str, self_administered: bool) -> str:
    """A dosing entry as the session log stores it (the event model's own dict)."""
    from ketacare.core.sessions import event_to_dict
    from ketacare.core.sessions.events import SelfAdministration, StartInfusion

    when = datetime.fromisoformat(at).replace(tzinfo=UTC)
    event: Any = (
        SelfAdministration(at=when, by="nurse", seq=2, devices=2)
        if self_administered
        else StartInfusion(at=when, by="nurse", seq=2, rate_mg_per_h=20.0)
    )
    return json.dumps(event_to_dict(event))


def table_rows(reg: Registry, user_id: int, dialect: str) -> Iterator[tuple[str, list[str], Any]]:
    """(table, columns, row iterator) in foreign-key order, timestamps in the dialect's form."""

    def stamp(seconds: NDArray[np.int64]) -> list[str]:
        text = _iso(seconds)
        if dialect == "sqlite":  # SQLAlchemy's SQLite storage form, so comparisons hold
            return [s.replace("T", " ") + ".000000" for s in text.tolist()]
        return [s + "+00" for s in text.tolist()]

    made = stamp(np.array([_seconds(NOW) - 4 * 365 * DAY]))[0]
    p = reg.patients["id"].tolist()
    yield (
        "patients",
        ["id", "mrn", "given_name", "family_name", "birth_date", "sex", "created_at", "version"],
        ((i, f"B{i:07d}", "Synthetic", f"Patient{i}", "1970-01-01", "female", made, 1) for i in p),
    )
    c = reg.conditions
    yield (
        "conditions",
        ["patient_id", "icd10_code", "display", "status", "recorded_at"],
        (
            (pid, code, disp, "active", made)
            for pid, code, disp in zip(
                c["patient_id"].tolist(), c["icd10_code"], c["display"], strict=True
            )
        ),
    )
    pl = reg.plans
    false = 0 if dialect == "sqlite" else False
    yield (
        "plans",
        [
            "id",
            "patient_id",
            "version",
            "protocol_id",
            "status",
            "weight_kg",
            "weight_measured_at",
            "schedule",
            "total_dose_mg",
            "requires_review",
            "goals",
            "preparation_required",
            "safeguards",
            "created_by",
            "created_at",
        ],
        (
            (
                i,
                pid,
                1,
                proto,
                "active",
                70.0,
                made,
                "{}",
                140.0,
                false,
                "[]",
                false,
                "[]",
                user_id,
                made,
            )
            for i, pid, proto in zip(
                pl["id"].tolist(), pl["patient_id"].tolist(), pl["protocol_id"], strict=True
            )
        ),
    )
    s = reg.sessions
    s_at = stamp(s["at"])
    yield (
        "dosing_sessions",
        [
            "id",
            "plan_id",
            "patient_id",
            "session_number",
            "state",
            "last_seq",
            "created_at",
            "updated_at",
        ],
        (
            (i, plan, pid, num, "discharged" if dosed else "checked_in", 2 if dosed else 1, at, at)
            for i, plan, pid, num, dosed, at in zip(
                s["id"].tolist(),
                s["plan_id"].tolist(),
                s["patient_id"].tolist(),
                s["session_number"].tolist(),
                s["dosed"].tolist(),
                s_at,
                strict=True,
            )
        ),
    )
    e = reg.events
    e_iso = _iso(e["at"]).tolist()
    e_at = stamp(e["at"])
    templates = {flag: _event_json("2000-01-01T00:00:00", flag) for flag in (False, True)}
    yield (
        "session_events",
        ["session_id", "seq", "kind", "at", "data"],
        (
            (
                sid,
                2,
                "SelfAdministration" if self_ else "StartInfusion",
                at,
                templates[self_].replace("2000-01-01T00:00:00", iso),
            )
            for sid, self_, at, iso in zip(
                e["session_id"].tolist(), e["self"].tolist(), e_at, e_iso, strict=True
            )
        ),
    )
    a = reg.assessments
    yield (
        "assessments",
        [
            "patient_id",
            "instrument_id",
            "instrument_version",
            "answers",
            "total",
            "flags",
            "subscores",
            "missing",
            "context",
            "source",
            "completed_at",
            "status",
        ],
        (
            (pid, inst, "1", "{}", total, "[]", "{}", "[]", "follow_up", "patient", at, "final")
            for pid, inst, total, at in zip(
                a["patient_id"].tolist(),
                a["instrument_id"].tolist(),
                a["total"].tolist(),
                stamp(a["completed_at"]),
                strict=True,
            )
        ),
    )


def table_sizes(reg: Registry) -> dict[str, int]:
    return {
        "patients": reg.patients["id"].size,
        "conditions": reg.conditions["patient_id"].size,
        "plans": reg.plans["id"].size,
        "dosing_sessions": reg.sessions["id"].size,
        "session_events": reg.events["session_id"].size,
        "assessments": reg.assessments["patient_id"].size,
    }


def bench_user(url: str) -> int:
    """Migrate, and create the one account that signs the generated plans."""
    from ketacare.clinic.accounts import service as accounts
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
    from ketacare.infra.migrate import upgrade
    from ketacare.infra.settings import load_settings

    engine = make_engine(url)
    try:
        upgrade(engine)
        with unit_of_work(make_sessionmaker(engine)) as session:
            user = accounts.create_user(
                session=session,
                username="benchphysician",
                full_name="Bench Physician",
                role="physician",
                password=secrets.token_urlsafe(18),
                now=NOW,
                settings=load_settings(),
            )
            return int(user.id)
    finally:
        engine.dispose()


def load(url: str, reg: Registry, progress: Progress) -> float:
    """Bulk-insert the registry; returns seconds (COPY on PostgreSQL, executemany on SQLite)."""
    from sqlalchemy import text

    from ketacare.infra.db import make_engine

    user_id = bench_user(url)
    sizes = table_sizes(reg)
    engine = make_engine(url)
    dialect = engine.dialect.name
    started = perf_counter()
    try:
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            for table, columns, rows in table_rows(reg, user_id, dialect):
                task = progress.add_task(f"{dialect}: {table}", total=sizes[table])
                if dialect == "postgresql":
                    with conn.cursor() as cur:  # type: ignore[union-attr]
                        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                        with cur.copy(sql) as copy:
                            for i, row in enumerate(rows, start=1):
                                copy.write_row(row)
                                if i % 50_000 == 0:
                                    progress.update(task, completed=i)
                    conn.commit()  # type: ignore[union-attr]
                else:
                    cur = conn.cursor()  # type: ignore[union-attr]
                    cur.execute("PRAGMA synchronous=OFF")
                    cur.execute("BEGIN")
                    marks = ", ".join("?" * len(columns))
                    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                    batch: list[Any] = []
                    done = 0
                    for row in rows:
                        batch.append(row)
                        if len(batch) == 50_000:
                            cur.executemany(sql, batch)
                            done += len(batch)
                            batch = []
                            progress.update(task, completed=done)
                    cur.executemany(sql, batch)
                    cur.execute("COMMIT")
                progress.update(task, completed=sizes[table])
        finally:
            raw.close()
        with engine.connect() as c:
            if dialect == "postgresql":
                for table in ("patients", "plans", "dosing_sessions"):
                    c.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
                c.commit()
        analyse(engine)
    finally:
        engine.dispose()
    return perf_counter() - started


def analyse(engine: Any) -> None:
    """Update the planner's statistics (as autovacuum or a DBA would after a bulk load)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    else:
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("ANALYZE")
        finally:
            raw.close()


# ------------------------------------------------------------------------ measurements


def median_ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1000, 1)


@dataclass
class Backend:
    """One database under test, and how to empty its caches for a cold run."""

    name: str
    url: str
    make_cold: Callable[[], None]
    cold_kind: str


def bench_settings(url: str, tmp: Path) -> Any:
    from ketacare.infra.settings import load_settings

    return load_settings(
        database_url=url,
        var_dir=tmp,
        secret_key="b" * 40,
        outcome_loss_confirmations=LOSS_CONFIRMATIONS,
    )


SCENARIOS: tuple[tuple[str, dict[str, str]], ...] = (
    ("everyone", {"lost_after_days": str(LOST_AFTER_DAYS)}),
    (
        "one year of entries",
        {
            "started_from": "2025-01-01",
            "started_to": "2025-12-31",
            "lost_after_days": str(LOST_AFTER_DAYS),
        },
    ),
    (
        "CRPS I on one protocol",
        {
            "condition": "crps-1",
            "protocol": "crps-outpatient",
            "lost_after_days": str(LOST_AFTER_DAYS),
        },
    ),
    ("curves by condition", {"split": "condition", "lost_after_days": str(LOST_AFTER_DAYS)}),
)


def dashboard_once(url: str, tmp: Path, params: dict[str, str], what: str) -> float:
    """One measurement in a new engine (after a cold start): one query, or the whole call."""
    from ketacare.clinic.analytics import service
    from ketacare.clinic.analytics.filters import parse_filters
    from ketacare.clinic.audit.service import Actor
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work

    settings = bench_settings(url, tmp)
    filters = parse_filters(**params)
    cutoff = NOW - timedelta(days=LOST_AFTER_DAYS)
    engine = make_engine(url)
    try:
        factory = make_sessionmaker(engine)
        if what == "dashboard_call":
            with unit_of_work(factory) as session:
                t0 = perf_counter()
                service.dashboard(
                    session=session,
                    actor=Actor(None, "bench", "researcher"),
                    settings=settings,
                    filters=filters,
                    now=NOW,
                )
                return perf_counter() - t0
        with factory() as session:
            t0 = perf_counter()
            if what == "rates_sql":
                service._counts_by_group(session, filters, settings.zone, cutoff)
            else:
                service._curves(session, filters, settings.zone, 0.95)
            return perf_counter() - t0
    finally:
        engine.dispose()


def dashboard_warm(url: str, tmp: Path, params: dict[str, str], runs: int) -> dict[str, float]:
    """Warm: one engine, a first call to warm it, then ``runs`` timed calls (median)."""
    from ketacare.clinic.analytics import service
    from ketacare.clinic.analytics.filters import parse_filters
    from ketacare.clinic.audit.service import Actor
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work

    settings = bench_settings(url, tmp)
    filters = parse_filters(**params)
    engine = make_engine(url)
    cutoff = NOW - timedelta(days=LOST_AFTER_DAYS)
    times: dict[str, list[float]] = {"rates_sql": [], "curves_sql": [], "dashboard_call": []}
    try:
        factory = make_sessionmaker(engine)
        for i in range(runs + 1):
            with factory() as session:
                t0 = perf_counter()
                service._counts_by_group(session, filters, settings.zone, cutoff)
                t1 = perf_counter()
                service._curves(session, filters, settings.zone, 0.95)
                t2 = perf_counter()
            with unit_of_work(factory) as session:
                t3 = perf_counter()
                service.dashboard(
                    session=session,
                    actor=Actor(None, "bench", "researcher"),
                    settings=settings,
                    filters=filters,
                    now=NOW,
                )
                t4 = perf_counter()
            if i:  # the first call warms the caches
                times["rates_sql"].append(t1 - t0)
                times["curves_sql"].append(t2 - t1)
                times["dashboard_call"].append(t4 - t3)
    finally:
        engine.dispose()
    return {k: median_ms(v) for k, v in times.items()}


def refresh_whole(url: str) -> dict[str, Any]:
    from ketacare.clinic.analytics import service
    from ketacare.clinic.audit.service import Actor
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work

    engine = make_engine(url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            report = service.refresh_clinic(
                session=session,
                actor=Actor(None, "bench", "system"),
                now=NOW,
                loss_confirmations=LOSS_CONFIRMATIONS,
            )
        analyse(engine)
    finally:
        engine.dispose()
    return {"seconds": round(report.seconds, 1), "patients": report.patients, "rows": report.rows}


def refresh_one(url: str, runs: int, seed: int) -> float:
    """Median time to refresh one patient's rows (what recording a score adds)."""
    from sqlalchemy import func, select

    from ketacare.clinic.analytics import service
    from ketacare.clinic.analytics.orm import OutcomeSummary
    from ketacare.infra.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    rng = np.random.default_rng(seed)
    try:
        factory = make_sessionmaker(engine)
        with factory() as session:
            top = session.scalar(select(func.max(OutcomeSummary.patient_id))) or 1
        times = []
        for pid in rng.integers(1, top + 1, size=runs + 1).tolist():
            with factory() as session:
                t0 = perf_counter()
                service.refresh_patient(session=session, patient_id=pid, now=NOW)
                times.append(perf_counter() - t0)
                session.rollback()
        return median_ms(times[1:])
    finally:
        engine.dispose()


def naive_peer(url: str) -> float:
    """The peer: every score into numpy, then clinic_outcomes per definition (one run)."""
    from sqlalchemy import select

    from ketacare.clinic.analytics import refresh
    from ketacare.clinic.assessments.orm import Assessment
    from ketacare.clinic.plans.orm import Plan
    from ketacare.core.outcomes import MeasureColumns, Registry, clinic_outcomes
    from ketacare.infra.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            t0 = perf_counter()
            given = refresh.given_sessions(session)
            diagnosis = refresh.diagnoses(session)
            protocol_of = dict(session.execute(select(Plan.id, Plan.protocol_id)).all())
            patients = np.unique([g.patient_id for g in given])
            pos = {int(p): i for i, p in enumerate(patients)}
            first_plan: dict[int, int] = {}
            for g in given:
                first_plan.setdefault(g.patient_id, g.plan_id)
            epoch = refresh._epoch(Assessment.completed_at, engine.dialect.name)
            result = session.execute(
                select(Assessment.patient_id, Assessment.instrument_id, epoch, Assessment.total)
                .where(
                    Assessment.status == "final",
                    Assessment.total.is_not(None),
                    Assessment.instrument_id.in_(refresh.measures()),
                )
                .execution_options(yield_per=500_000)
            )
            parts: list[list[NDArray[Any]]] = [[], [], [], []]
            for chunk in result.partitions():
                for i, column in enumerate(zip(*chunk, strict=True)):
                    parts[i].append(np.asarray(column))
            p, inst, t, v = (np.concatenate(c) for c in parts)
            known = np.isin(p, patients)
            index = np.searchsorted(patients, p[known])
            measures = {
                m: MeasureColumns.build(
                    patient=index[inst[known] == m],
                    time=t[known][inst[known] == m].astype(np.int64).astype("datetime64[s]"),
                    value=v[known][inst[known] == m].astype(np.float64),
                )
                for m in refresh.measures()
            }
            registry = Registry.build(
                n_patients=int(patients.size),
                session_patient=[pos[g.patient_id] for g in given],
                session_time=np.array(
                    [g.started_at.replace(tzinfo=None) for g in given], "datetime64[s]"
                ),
                measures=measures,
            )
            groups = {
                "condition": [diagnosis.get(int(x), ("none", ""))[0] for x in patients],
                "protocol": [protocol_of[first_plan[int(x)]] for x in patients],
            }
            for definition in refresh.definitions():
                clinic_outcomes(
                    registry=registry,
                    definition_id=definition.id,
                    as_of=np.datetime64(NOW.replace(tzinfo=None), "s"),
                    lost_after=np.timedelta64(LOST_AFTER_DAYS, "D"),
                    loss_confirmations=LOSS_CONFIRMATIONS,
                    group_by=groups,
                )
            return perf_counter() - t0
    finally:
        engine.dispose()


def count_peer(url: str, runs: int) -> float:
    from sqlalchemy import text

    from ketacare.infra.db import make_engine

    engine = make_engine(url)
    try:
        times = []
        for _ in range(runs + 1):
            with engine.connect() as c:
                t0 = perf_counter()
                c.execute(text("SELECT count(*) FROM assessments")).scalar_one()
                times.append(perf_counter() - t0)
        return median_ms(times[1:])
    finally:
        engine.dispose()


def evict(paths: list[Path]) -> None:
    """Drop these files' pages from the OS page cache (flushed first; no root needed)."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


# ------------------------------------------------------------------------- PostgreSQL


class ThrowawayPostgres:
    """A PostgreSQL cluster of this run on 127.0.0.1 (``initdb`` must not run as root)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="kc-bench-pg-"))
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
        self.start()

    def _run(self, *args: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-w",
            "-l",
            str(self.dir / "log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-w", "stop")

    def cold(self) -> None:
        """Restart (empties shared buffers) and evict the data files from the page cache."""
        self.stop()
        evict(
            [
                Path(p)
                for p in glob.glob(str(self.dir / "data" / "base" / "**" / "*"), recursive=True)
                if Path(p).is_file()
            ]
        )
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def remove(self) -> None:
        try:
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def server_facts(url: str) -> dict[str, str]:
    from sqlalchemy import text

    from ketacare.infra.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                return {
                    name: str(conn.execute(text(f"SHOW {name}")).scalar_one())
                    for name in ("server_version", "shared_buffers", "work_mem", "fsync")
                }
            return {"sqlite_version": sqlite3.sqlite_version}
    finally:
        engine.dispose()


# -------------------------------------------------------------------------------- run


def run_backend(
    backend: Backend, reg: Registry, args: argparse.Namespace, progress: Progress, tmp: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend.name, "cold": backend.cold_kind}
    out["load_s"] = round(load(backend.url, reg, progress), 1)
    out["facts"] = server_facts(backend.url)
    task = progress.add_task(f"{backend.name}: whole-clinic refresh", total=None)
    out["refresh"] = refresh_whole(backend.url)
    progress.update(task, total=1, completed=1)
    out["refresh_one_patient_ms"] = refresh_one(backend.url, args.runs, args.seed)
    scenarios = []
    task = progress.add_task(f"{backend.name}: dashboard", total=len(SCENARIOS))
    for name, params in SCENARIOS:
        cold: dict[str, list[float]] = {}
        for _ in range(args.cold_runs):
            for what in ("rates_sql", "curves_sql", "dashboard_call"):
                backend.make_cold()
                cold.setdefault(what, []).append(dashboard_once(backend.url, tmp, params, what))
        scenarios.append(
            {
                "scenario": name,
                "filters": params,
                "warm_ms": dashboard_warm(backend.url, tmp, params, args.runs),
                "cold_ms": {k: median_ms(v) for k, v in cold.items()},
            }
        )
        progress.advance(task)
    out["scenarios"] = scenarios
    task = progress.add_task(f"{backend.name}: peers", total=args.peer_runs + 1)
    naive = []
    for _ in range(args.peer_runs):
        naive.append(naive_peer(backend.url))
        progress.advance(task)
    out["naive_peer_s"] = round(statistics.median(naive), 2)
    out["count_peer_ms"] = count_peer(backend.url, args.runs)
    progress.advance(task)
    worst = max(s["warm_ms"]["dashboard_call"] for s in scenarios)
    worst_cold = max(s["cold_ms"]["dashboard_call"] for s in scenarios)
    full = scenarios[0]["warm_ms"]["dashboard_call"]
    out["ratios"] = {
        "naive_over_dashboard_warm": round(out["naive_peer_s"] * 1000 / full, 1),
        "dashboard_warm_over_count": round(full / out["count_peer_ms"], 2),
    }
    out["worst_warm_ms"] = worst
    out["worst_cold_ms"] = worst_cold
    out["target_met"] = max(worst, worst_cold) < TARGET_S * 1000
    return out


def print_report(console: Console, report: dict[str, Any]) -> None:
    console.print(
        f"Registry: {report['registry']['patients']:,} patients, "
        f"{report['registry']['measurements']:,} measurements, "
        f"{report['registry']['sessions']:,} sessions (seed {report['seed']}); generated in "
        f"{report['generate_s']} s",
        highlight=False,
    )
    for res in report["backends"]:
        if "error" in res:
            console.print(f"[red]{res['backend']}: FAILED[/red] {res['error']}", highlight=False)
            continue
        table = Table(
            title=f"{res['backend']}: dashboard (ms; warm median of {report['runs']}, cold "
            f"median of {report['cold_runs']}: {res['cold']})"
        )
        for col in (
            "scenario",
            "rates SQL",
            "curves SQL",
            "whole call",
            "cold rates",
            "cold curves",
            "cold call",
        ):
            table.add_column(col, justify="right" if col != "scenario" else "left")
        for s in res["scenarios"]:
            w, c = s["warm_ms"], s["cold_ms"]
            table.add_row(
                s["scenario"],
                f"{w['rates_sql']:.0f}",
                f"{w['curves_sql']:.0f}",
                f"{w['dashboard_call']:.0f}",
                f"{c['rates_sql']:.0f}",
                f"{c['curves_sql']:.0f}",
                f"{c['dashboard_call']:.0f}",
            )
        console.print(table)
        r = res["ratios"]
        console.print(
            f"{res['backend']}: load {res['load_s']} s; whole-clinic refresh "
            f"{res['refresh']['seconds']} s ({res['refresh']['rows']:,} rows); one patient's "
            f"refresh {res['refresh_one_patient_ms']} ms; naive peer {res['naive_peer_s']} s "
            f"(x{r['naive_over_dashboard_warm']} the whole dashboard call, warm, everyone); "
            f"SELECT count(*) over the measurements {res['count_peer_ms']} ms (the dashboard "
            f"call is x{r['dashboard_warm_over_count']} of it); worst call warm "
            f"{res['worst_warm_ms']} ms, cold {res['worst_cold_ms']} ms: target < "
            f"{TARGET_S * 1000:.0f} ms {'met' if res['target_met'] else 'MISSED'}",
            highlight=False,
        )
        console.print(f"{res['backend']}: {res['facts']}", highlight=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the clinic dashboard.")
    parser.add_argument("--patients", type=int, default=100_000, help="patients (100000)")
    parser.add_argument(
        "--measurements", type=int, default=5_000_000, help="scores in total (5000000)"
    )
    parser.add_argument("--seed", type=int, default=20260302, help="random seed")
    parser.add_argument("--runs", type=int, default=7, help="warm runs per query (7)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold runs per query (3)")
    parser.add_argument("--peer-runs", type=int, default=1, help="runs of the naive peer (1)")
    parser.add_argument(
        "--postgres-url",
        metavar="URL",
        help="a PostgreSQL server on 127.0.0.1 to use instead of a throw-away cluster",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    checks = (
        (100 <= args.patients <= 1_000_000, "--patients must be 100..1000000"),
        (
            args.patients <= args.measurements <= 100_000_000,
            "--measurements must be at least --patients and at most 100000000",
        ),
        (1 <= args.runs <= 100, "--runs must be 1..100"),
        (1 <= args.cold_runs <= 20, "--cold-runs must be 1..20"),
        (1 <= args.peer_runs <= 20, "--peer-runs must be 1..20"),
        (not (args.no_sqlite and args.no_postgres), "nothing to measure"),
    )
    for ok, message in checks:
        if not ok:
            parser.error(message)
    if args.postgres_url:
        loopback_postgres(args.postgres_url)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    out = Console() if sys.stdout.isatty() else Console(width=160)
    report: dict[str, Any] = {
        "benchmark": "dashboard",
        "seed": args.seed,
        "runs": args.runs,
        "cold_runs": args.cold_runs,
        "peer_runs": args.peer_runs,
        "now": NOW.isoformat(),
        "parameters": {
            "loss_confirmations": LOSS_CONFIRMATIONS,
            "lost_after_days": LOST_AFTER_DAYS,
            "note": "benchmark stand-ins for a clinic's site policy",
        },
        "target_ms": TARGET_S * 1000,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "backends": [],
    }
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    t0 = perf_counter()
    with console.status("generating the registry"):
        reg = generate(args.patients, args.measurements, args.seed)
    report["generate_s"] = round(perf_counter() - t0, 1)
    report["registry"] = reg.facts
    with ExitStack() as stack, Progress(*columns, console=console) as progress:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kc-bench-dash-")))
        plans: list[Callable[[], Backend]] = []
        if not args.no_sqlite:

            def sqlite_backend() -> Backend:
                path = tmp / "dashboard.sqlite3"
                return Backend(
                    "sqlite",
                    f"sqlite:///{path}",
                    lambda: evict([path, Path(f"{path}-wal")]),
                    "new connection, database file evicted from the OS page cache",
                )

            plans.append(sqlite_backend)
        if not args.no_postgres:

            def postgres_backend() -> Backend:
                if args.postgres_url:
                    url = stack.enter_context(postgres_database(args.postgres_url))
                    return Backend("postgresql", url, lambda: None, "new connection only")
                server = ThrowawayPostgres()
                stack.callback(server.remove)
                return Backend(
                    "postgresql",
                    server.url(),
                    server.cold,
                    "server restarted, data files evicted from the OS page cache",
                )

            plans.append(postgres_backend)
        for make in plans:
            try:
                backend = make()
                report["backends"].append(run_backend(backend, reg, args, progress, tmp))
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                report["backends"].append({"backend": make.__name__, "error": str(exc)})
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(out, report)
    failed = any("error" in b for b in report["backends"])
    missed = any(
        b.get("backend") == "postgresql" and not b.get("target_met") for b in report["backends"]
    )
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
