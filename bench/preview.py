"""Plan preview and the simulation page: server time in-process, against named peers.

Issue #20's target: the plan page's exposure preview, the plan preview (``POST
/api/v1/plans/preview``, the document ``ketacare plan preview --json`` prints) and the
simulation page with a 2,000-patient band under 150 ms of server time.

The app is called in-process through httpx's ASGI transport (no HTTP, no sockets) on a
fresh SQLite demo database (``ketacare demo --no-history``'s records: accounts and eight
patients, under the demo's EXAMPLE site policy), logged in as the demo physician. Each
request is timed alone, wall and CPU time of this process, and the targets take turns
round by round; figures are medians.

Named peers, run in the same script:

  peer route        a bare FastAPI app whose one route returns the same bytes as the
                    measured page, through the same transport (what serving costs)
  simulate()        the engine call the page makes for the typical patient, alone
  population        ``simulate_population()`` for the page's band, alone

Run: .venv/bin/python bench/preview.py [--rounds 30] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

TARGET_MS = 150.0
USERNAME = "physician"
#: the simulation page's request: esketamine TRD course under the demo policy, the
#: library's model with variability, and the page's largest band (2,000 patients)
SIM_QUERY = {
    "model": "perez-ruixo-2021",
    "weight_kg": "70",
    "age_years": "40",
    "sex": "F",
    "protocol": "esketamine-trd",
    "population": "2000",
    "seed": "1",
}
#: the same page for one intranasal dose (24 h after it, 1-minute output)
SIM_QUERY_DOSE = {
    "model": "perez-ruixo-2021",
    "weight_kg": "70",
    "age_years": "40",
    "route": "intranasal",
    "amount_mg": "56",
    "population": "2000",
    "seed": "1",
}
PLAN_PROTOCOLS = ("crps-outpatient", "esketamine-trd")


def prepare(folder: Path) -> Any:
    """A migrated SQLite demo database (no history) and the app's settings for it."""
    from ketacare.clinic import demo
    from ketacare.clinic.demo_policy import settings_for
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
    from ketacare.infra.migrate import upgrade
    from ketacare.infra.settings import load_settings

    url = f"sqlite:///{folder / 'bench.db'}"
    settings = load_settings(
        database_url=url,
        var_dir=folder / "var",
        secret_key="x" * 40,
        cookie_secure=False,
        totp_required_roles="",
    )
    engine = make_engine(url)
    try:
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        with unit_of_work(sessions) as session:
            demo.seed(session=session, now=datetime.now(UTC), settings=settings)
        with sessions() as session:
            settings = settings_for(settings, session=session)
    finally:
        engine.dispose()
    return settings


async def login(client: httpx.AsyncClient) -> str:
    """Log in through the login form; returns the page's CSRF token."""
    from ketacare.clinic.demo import DEMO_PASSWORD

    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if not token:
        raise RuntimeError("the login form has no CSRF token")
    done = await client.post(
        "/login",
        data={"username": USERNAME, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
    )
    if done.status_code != 303:
        raise RuntimeError(f"login failed: HTTP {done.status_code} {done.text[:200]}")
    page = await client.get(done.headers["location"])
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    if not found:
        raise RuntimeError("no CSRF token on the landing page")
    return found.group(1)


async def api_token(client: httpx.AsyncClient) -> dict[str, str]:
    from ketacare.clinic.demo import DEMO_PASSWORD

    r = await client.post(
        "/api/v1/auth/token", data={"username": USERNAME, "password": DEMO_PASSWORD}
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def peer_app(bodies: dict[str, bytes]) -> Any:
    """A bare FastAPI app: one route per measured target, returning its bytes."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    for name, body in bodies.items():
        media = "application/json" if body[:1] in (b"{", b"[") else "text/html; charset=utf-8"

        def route(body: bytes = body, media: str = media) -> Response:
            return Response(body, media_type=media)

        app.add_api_route(f"/peer/{name}", route, methods=["GET"])
    return app


Call = Callable[[], Awaitable[Any]]


async def timed(call: Call) -> tuple[float, float]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    await call()
    return time.perf_counter() - t0, time.process_time() - cpu0


async def run(rounds: int, warmup: int) -> dict[str, Any]:
    from ketacare.app import create_app
    from ketacare.clinic.simulation import service as sim_service
    from ketacare.core.pharmacology import (
        Patient,
        load_model,
        parse_regimen,
        simulate,
        simulate_population,
    )

    with tempfile.TemporaryDirectory() as folder:
        settings = prepare(Path(folder))
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        base = "http://ketacare.test"
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            csrf = await login(client)
            bearer = await api_token(client)
            plan_ids: dict[str, int] = {}
            for protocol in PLAN_PROTOCOLS:
                r = await client.post(
                    "/api/v1/patients/1/plans",
                    json={"protocol": protocol},
                    headers={**bearer, "X-CSRF-Token": csrf},
                )
                if r.status_code != 201:
                    raise RuntimeError(f"plan {protocol}: HTTP {r.status_code} {r.text[:300]}")
                plan_ids[protocol] = int(r.json()["id"])
            preview_body = {"protocol": "crps-outpatient", "weight_kg": 70}

            async def plan_page(protocol: str) -> httpx.Response:
                r = await client.get(f"/plans/{plan_ids[protocol]}")
                r.raise_for_status()
                return r

            async def sim_page(query: dict[str, str]) -> httpx.Response:
                r = await client.get("/simulate", params=query)
                r.raise_for_status()
                return r

            async def api_preview() -> httpx.Response:
                r = await client.post("/api/v1/plans/preview", json=preview_body, headers=bearer)
                r.raise_for_status()
                return r

            ketacare: dict[str, Call] = {
                "plan page, crps-outpatient (Domino)": lambda: plan_page("crps-outpatient"),
                "plan page, esketamine-trd (Perez-Ruixo)": lambda: plan_page("esketamine-trd"),
                "POST /api/v1/plans/preview": api_preview,
                "simulate page, esketamine-trd, band 2000": lambda: sim_page(SIM_QUERY),
                "simulate page, 56 mg intranasal, band 2000": lambda: sim_page(SIM_QUERY_DOSE),
            }
            bodies = {}
            for i, call in enumerate(ketacare.values()):
                bodies[str(i)] = (await call()).content
            if "population" not in bodies["3"].decode() and "p95" not in bodies["3"].decode():
                raise RuntimeError("the simulation page shows no band")
            peer = peer_app(bodies)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=peer), base_url=base
            ) as peer_client:

                def peer_call(i: int) -> Call:
                    async def call() -> httpx.Response:
                        return (await peer_client.get(f"/peer/{i}")).raise_for_status()

                    return call

                peers = {
                    f"peer route, bytes of #{i + 1}": peer_call(i) for i in range(len(ketacare))
                }

                # the engine alone, as the pages call it
                model = load_model(model_id="perez-ruixo-2021")
                patient = Patient(weight_kg=70, age_years=40, sex="F")
                request = sim_service.SimulationRequest(
                    model_id="perez-ruixo-2021",
                    weight_kg=70,
                    age_years=40,
                    sex="F",
                    protocol_id="esketamine-trd",
                    population=2000,
                    site_policy=_policy(settings),
                )
                regimen = parse_regimen(sim_service.regimen_document(request), weight_kg=70)
                hours = regimen.end_h + 24.0
                step = next(
                    (m for m in sim_service.STEPS_MIN if hours * 60 / m <= 3000),
                    sim_service.STEPS_MIN[-1],
                )

                async def engine_sim() -> None:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        simulate(
                            model=model,
                            patient=patient,
                            regimen=regimen,
                            hours=hours,
                            step_min=step,
                        )

                async def engine_pop() -> None:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        simulate_population(
                            model=model,
                            patient=patient,
                            regimen=regimen,
                            n=2000,
                            seed=1,
                            hours=hours,
                            step_min=step,
                        )

                async def service_run() -> None:
                    sim_service.run(request)

                engine: dict[str, Call] = {
                    "simulate(), esketamine-trd": engine_sim,
                    "simulate_population(), esketamine-trd, 2000": engine_pop,
                    "simulation service.run(), esketamine-trd, 2000": service_run,
                }
                targets = {**ketacare, **peers, **engine}
                for _ in range(warmup):
                    for call in targets.values():
                        await call()
                walls: dict[str, list[float]] = {n: [] for n in targets}
                cpus: dict[str, list[float]] = {n: [] for n in targets}
                for r in range(rounds):
                    names = list(targets)
                    names = names[r % len(names) :] + names[: r % len(names)]
                    for name in names:
                        wall, cpu = await timed(targets[name])
                        walls[name].append(wall)
                        cpus[name].append(cpu)
        app.state.engine.dispose()
    rows = []
    for i, name in enumerate(ketacare):
        peer_name = f"peer route, bytes of #{i + 1}"
        rows.append(
            _row(f"#{i + 1} {name}", walls[name], cpus[name], walls[peer_name], len(bodies[str(i)]))
        )
    for name in (*peers, *engine):
        rows.append(_row(name, walls[name], cpus[name], None, None))
    return {
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
        "load": round(os.getloadavg()[0], 1),
        "rounds": rounds,
        "target_ms": TARGET_MS,
        "rows": rows,
    }


def _policy(settings: Any) -> Any:
    from ketacare.clinic.plans.dosing import protocol_policy

    return protocol_policy(settings)


def _row(
    name: str, wall: list[float], cpu: list[float], peer: list[float] | None, size: int | None
) -> dict[str, Any]:
    median = statistics.median(wall) * 1000
    row: dict[str, Any] = {
        "target": name,
        "median_ms": round(median, 2),
        "p90_ms": round(sorted(wall)[int(0.9 * (len(wall) - 1))] * 1000, 2),
        "cpu_ms": round(statistics.median(cpu) * 1000, 2),
    }
    if peer is not None:
        row["x_peer"] = round(median / (statistics.median(peer) * 1000), 1)
        row["bytes"] = size
        row["under_target"] = median < TARGET_MS
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args.rounds, args.warmup))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"python {report['python']}, {report['cores']} cores, load {report['load']}, "
        f"{report['rounds']} rounds (median), in-process ASGI, SQLite demo database"
    )
    print(
        f"{'target':52s} {'wall ms':>8s} {'p90 ms':>8s} {'cpu ms':>8s} {'x peer':>7s} {'bytes':>8s}"
    )
    for row in report["rows"]:
        ratio = f"{row['x_peer']:7.1f}" if "x_peer" in row else f"{'':7s}"
        size = f"{row['bytes']:8d}" if row.get("bytes") else f"{'':8s}"
        print(
            f"{row['target']:52s} {row['median_ms']:8.1f} {row['p90_ms']:8.1f} "
            f"{row['cpu_ms']:8.1f} {ratio} {size}"
        )
    print(f"target: each page under {TARGET_MS:g} ms of server time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
