"""The simulation page: pick a model, a patient and a regimen; see the curves."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.plans.dosing import (
    library,
    protocol_policy,  # noqa: E402
)
from ketacare.clinic.simulation import service
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.web.page_call import PageCall, page_call
from ketacare.web.render import optional_float, optional_int

router = APIRouter(include_in_schema=False)


def _request(q: Any) -> service.SimulationRequest:
    weight = optional_float(q.get("weight_kg", ""), "weight_kg")
    if weight is None:
        raise InvalidInput("weight_kg is required")
    return service.SimulationRequest(
        model_id=q.get("model", ""),
        weight_kg=weight,
        age_years=optional_float(q.get("age_years", ""), "age_years"),
        sex=q.get("sex") or None,
        protocol_id=q.get("protocol") or None,
        route=q.get("route") or None,
        amount_mg=optional_float(q.get("amount_mg", ""), "amount_mg"),
        rate_mg_per_h=optional_float(q.get("rate_mg_per_h", ""), "rate_mg_per_h"),
        duration_h=optional_float(q.get("duration_h", ""), "duration_h"),
        hours=optional_float(q.get("hours", ""), "hours"),
        population=optional_int(q.get("population", ""), "population") or 0,
        seed=optional_int(q.get("seed", ""), "seed") or 1,
    )


@router.get("/simulate", response_class=HTMLResponse)
def simulate_page(call: PageCall = page_call("simulate:run")) -> Response:
    q = call.request.query_params
    result: dict[str, Any] | None = None
    error = None
    if q.get("model"):
        try:
            policy = protocol_policy(call.settings)
            result = service.run(dataclasses.replace(_request(q), site_policy=policy))
        except KetacareError as exc:
            error = str(exc)
    return call.render(
        "simulation/simulate.html",
        {
            "models": service.models(),
            "routes": service.PAGE_ROUTES,
            "protocols": library(call.settings).protocols,
            "q": q,
            "result": result,
            "error": error,
        },
        status_code=422 if error else 200,
    )
