"""CLI command ``ketacare personalise FILE.json [--json] [--plot F.png]``.

One input file carries the model, the patient's covariates, the doses given (the design
document's regimen form), the measured levels (below the LLOQ as ``null`` with its
``lloq_ng_per_ml``), optionally pain scores with the caller's stated response
assumptions, an exposure target with the regimen shapes to dose, a concentration
ceiling, a protocol whose soft/hard limits each recommendation is checked against, and
route conversions. The command prints this patient's individual parameters with their
uncertainty, the predicted curves with credible bands, the response fit, the
recommendations and the conversions (see docs/personalisation.md, "Command line").

Every check of the input happens here, before any computation, so that bad input exits
2 with one line on stderr naming the field and what is allowed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import typer

from ketacare.commands.common import emit_json, fail, read_json_file, run_guarded
from ketacare.core.errors import ClinicalWarning, InvalidInput, KetacareError
from ketacare.core.pharmacology import (
    KNOWN_ROUTES,
    AucTarget,
    AverageConcentrationTarget,
    Dose,
    IndividualFit,
    IndividualPrediction,
    IvOption,
    LimitFinding,
    Model,
    PainScore,
    Patient,
    Recommendation,
    Regimen,
    RepeatedOption,
    ResponseAssumptions,
    ResponseFit,
    ResponsePrediction,
    RouteConversion,
    Sample,
    WindowTarget,
    convert_route,
    fit_individual,
    fit_response,
    load_model,
    parse_regimen,
    predict_at,
    predict_individual,
    predict_response,
    recommend,
)
from ketacare.core.protocols import (
    Protocol,
    ResolvedLimit,
    SitePolicy,
    load_library,
    load_site_policy,
    resolve_limits,
)
from ketacare.core.protocols.regimen import ENGINE_ROUTE

Target = AucTarget | AverageConcentrationTarget | WindowTarget
Option = IvOption | RepeatedOption

TOP_FIELDS = (
    "model",
    "patient",
    "doses",
    "samples",
    "response",
    "target",
    "options",
    "ceiling_ng_per_ml",
    "protocol",
    "convert",
    "settings",
)
SETTINGS_FIELDS = ("hours", "step_min", "n_draws", "seed", "sampling")
ASSUMPTION_FIELDS = ("emax_fraction", "gamma", "nrs_sd", "c50_log_sd")


# --------------------------------------------------------------------------------------
# reading the input: every check names the field and what is allowed
# --------------------------------------------------------------------------------------


def _bad(where: str, problem: str) -> NoReturn:
    # an error, not an exit: the application's Personalise page reads requests too
    raise InvalidInput(f"{where}: {problem}")


def _object(
    value: Any, where: str, allowed: Sequence[str], required: Sequence[str] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        _bad(where, f"must be an object with {', '.join(required or allowed)}")
    extra = sorted(set(value) - set(allowed))
    if extra:
        _bad(where, f"unknown field {', '.join(extra)}: allowed are {', '.join(allowed)}")
    missing = [k for k in required if k not in value]
    if missing:
        _bad(where, f"needs {', '.join(missing)}")
    return value


def _list(value: Any, where: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        _bad(where, f"must be a list of {what}")
    return value


def _number(
    value: Any,
    where: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    unit: str = "",
) -> float:
    """A finite number within [low, high] (``open_low``: strictly above ``low``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _bad(where, f"must be a finite number, got {value!r}")
    number = float(value)
    too_low = low is not None and (number <= low if open_low else number < low)
    too_high = high is not None and number > high
    if too_low or too_high:
        parts = []
        if low is not None:
            parts.append(f"{'more than' if open_low else 'at least'} {low:g}")
        if high is not None:
            parts.append(f"at most {high:g}")
        _bad(where, f"{number:g} is out of range: allowed {' and '.join(parts)} {unit}".rstrip())
    return number


def _integer(value: Any, where: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _bad(where, f"must be a whole number from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        _bad(where, f"{value} is out of range: allowed {low} to {high}")
    return int(value)


def _route(value: Any, where: str) -> str:
    if value not in KNOWN_ROUTES:
        _bad(where, f"unknown route {value!r}: known are {', '.join(KNOWN_ROUTES)}")
    return str(value)


@dataclass(frozen=True)
class Conversion:
    """One requested route conversion: a dose (given, or stated) to ``to_route``."""

    to_route: str
    from_dose: Dose
    from_index: int | None
    to_duration_h: float


@dataclass(frozen=True)
class ResponseInput:
    """Pain scores with the baseline and the caller's assumptions (no defaults)."""

    scores: tuple[PainScore, ...]
    baseline_nrs: float
    assumptions: ResponseAssumptions
    effect_site: str


@dataclass(frozen=True)
class Settings:
    """Grid and posterior sampling."""

    hours: float | None
    step_min: float | None
    n_draws: int
    seed: int
    sampling: str


@dataclass(frozen=True)
class Request:
    """The validated input file."""

    model: Model
    patient: Patient
    regimen: Regimen
    doses_json: list[dict[str, Any]]
    samples: tuple[Sample, ...]
    response: ResponseInput | None
    target: Target | None
    options: tuple[Option, ...]
    ceiling_ng_per_ml: float | None
    protocol: Protocol | None
    conversions: tuple[Conversion, ...]
    settings: Settings


def _patient(raw: Any) -> Patient:
    doc = _object(raw, "patient", ("weight_kg", "age_years", "sex"), ("weight_kg",))
    weight = _number(doc["weight_kg"], "patient.weight_kg", low=20, high=350, unit="kg")
    age = doc.get("age_years")
    if age is not None:
        age = _number(age, "patient.age_years", low=0, high=120, unit="years")
    sex = doc.get("sex")
    if sex not in (None, "F", "M"):
        _bad("patient.sex", f"must be F or M, got {sex!r}")
    return Patient(weight_kg=weight, age_years=age, sex=sex)


def _samples(raw: Any, model: Model, regimen: Regimen) -> tuple[Sample, ...]:
    first = regimen.doses[0].start_h
    out = []
    analytes = ("plasma", "metabolite") if model.metabolite else ("plasma",)
    for i, item in enumerate(_list(raw, "samples", "measured levels")):
        where = f"sample {i + 1}"
        doc = _object(
            item,
            where,
            ("time_h", "value_ng_per_ml", "lloq_ng_per_ml", "analyte"),
            ("time_h", "value_ng_per_ml"),
        )
        time_h = _number(doc["time_h"], f"{where} time_h", low=0, high=24 * 366, unit="h")
        if time_h <= first:
            _bad(
                f"{where} time_h",
                f"{time_h:g} h is not after the first dose (start_h {first:g} h): sample times "
                "are hours from the start of the regimen and a level before any dose carries "
                "no information",
            )
        analyte = doc.get("analyte", "plasma")
        if analyte not in analytes:
            what = (
                f"plasma ({model.molecule}) or metabolite ({model.metabolite})"
                if model.metabolite
                else f"plasma ({model.molecule}); model {model.id} has no metabolite"
            )
            _bad(f"{where} analyte", f"must be {what}, got {analyte!r}")
        lloq = doc.get("lloq_ng_per_ml")
        if lloq is not None:
            lloq = _number(lloq, f"{where} lloq_ng_per_ml", low=0, open_low=True, unit="ng/mL")
        value = doc["value_ng_per_ml"]
        if value is None:
            if lloq is None:
                raise InvalidInput(
                    f"{where} is below the LLOQ (value_ng_per_ml null) but gives no "
                    "lloq_ng_per_ml: a censored level needs its limit of quantification"
                )
        else:
            value = _number(value, f"{where} value_ng_per_ml", low=0, open_low=True, unit="ng/mL")
            if lloq is not None and value < lloq:
                _bad(
                    f"{where} value_ng_per_ml",
                    f"{value:g} is below its lloq_ng_per_ml {lloq:g}: report a level below "
                    "the LLOQ as null",
                )
        out.append(
            Sample(time_h=time_h, value_ng_per_ml=value, analyte=analyte, lloq_ng_per_ml=lloq)
        )
    return tuple(out)


def _response(raw: Any, model: Model) -> ResponseInput:
    doc = _object(
        raw,
        "response",
        ("scores", "baseline_nrs", "assumptions", "effect_site"),
        ("scores", "baseline_nrs", "assumptions"),
    )
    baseline = _number(doc["baseline_nrs"], "response.baseline_nrs", low=0, high=10, open_low=True)
    scores = []
    for i, item in enumerate(_list(doc["scores"], "response.scores", "pain scores")):
        where = f"response score {i + 1}"
        s = _object(item, where, ("time_h", "nrs"), ("time_h", "nrs"))
        scores.append(
            PainScore(
                time_h=_number(s["time_h"], f"{where} time_h", low=0, high=24 * 366, unit="h"),
                nrs=_number(s["nrs"], f"{where} nrs", low=0, high=10),
            )
        )
    if not scores:
        _bad("response.scores", "a response fit needs at least one pain score")
    a = doc["assumptions"]
    if not isinstance(a, dict) or any(k not in a for k in ASSUMPTION_FIELDS):
        _bad(
            "response.assumptions",
            f"must give {', '.join(ASSUMPTION_FIELDS)} (there are no defaults: no source we "
            "read gives the concentration-effect form, its steepness, the maximal relief or "
            "the SDs)",
        )
    _object(a, "response.assumptions", (*ASSUMPTION_FIELDS, "note"))
    values = {}
    for name in ASSUMPTION_FIELDS:
        values[name] = _number(
            a[name],
            f"response.assumptions.{name}",
            low=0,
            open_low=True,
            high=1 if name == "emax_fraction" else None,
        )
    note = a.get("note", "user-supplied")
    if not isinstance(note, str) or not note.strip():
        _bad("response.assumptions.note", "must be a non-empty text saying where they come from")
    site = doc.get("effect_site", "crps_analgesia")
    sites = [s.id for s in model.effect_sites if s.c50 is not None]
    if site not in sites:
        known = ", ".join(sites) if sites else "none"
        _bad(
            "response.effect_site",
            f"{site!r} has no sourced concentration-response model (C50) in model {model.id}; "
            f"sites with one: {known}",
        )
    return ResponseInput(
        scores=tuple(scores),
        baseline_nrs=baseline,
        assumptions=ResponseAssumptions(note=note, **values),
        effect_site=str(site),
    )


def _target(raw: Any) -> Target:
    shapes = (
        "{auc_ng_h_per_ml[, tolerance]}, {concentration_ng_per_ml[, tolerance]} or "
        "{low_ng_per_ml, high_ng_per_ml}"
    )
    if not isinstance(raw, dict):
        _bad("target", f"must be one of {shapes}")
    keys = set(raw)
    tolerance = 0.10
    if "tolerance" in raw:
        tolerance = _number(raw["tolerance"], "target.tolerance", low=0, high=0.5, open_low=True)
    if keys <= {"auc_ng_h_per_ml", "tolerance"} and "auc_ng_h_per_ml" in keys:
        value = _number(raw["auc_ng_h_per_ml"], "target.auc_ng_h_per_ml", low=0, open_low=True)
        return AucTarget(auc_ng_h_per_ml=value, tolerance=tolerance)
    if keys <= {"concentration_ng_per_ml", "tolerance"} and "concentration_ng_per_ml" in keys:
        value = _number(
            raw["concentration_ng_per_ml"], "target.concentration_ng_per_ml", low=0, open_low=True
        )
        return AverageConcentrationTarget(concentration_ng_per_ml=value, tolerance=tolerance)
    if keys == {"low_ng_per_ml", "high_ng_per_ml"}:
        low = _number(raw["low_ng_per_ml"], "target.low_ng_per_ml", low=0, open_low=True)
        high = _number(raw["high_ng_per_ml"], "target.high_ng_per_ml", low=0, open_low=True)
        if not low < high:
            _bad("target", f"low_ng_per_ml {low:g} must be below high_ng_per_ml {high:g}")
        return WindowTarget(low_ng_per_ml=low, high_ng_per_ml=high)
    _bad("target", f"must be one of {shapes}; got fields {', '.join(sorted(keys)) or 'none'}")


def _options(raw: Any, model: Model) -> tuple[Option, ...]:
    out: list[Option] = []
    items = _list(raw, "options", "regimen shapes")
    if not items:
        _bad("options", "give at least one regimen shape to dose")
    for i, item in enumerate(items):
        where = f"option {i + 1}"
        if not isinstance(item, dict) or "route" not in item:
            _bad(where, "must be an object with route (and duration_h, or interval_h and n_doses)")
        route = _route(item["route"], f"{where} route")
        if route not in model.routes:
            _bad(
                f"{where} route",
                f"model {model.id} has no route {route}: it has {', '.join(model.routes)}",
            )
        if route == "iv_infusion":
            doc = _object(item, where, ("route", "duration_h"), ("route", "duration_h"))
            duration = _number(
                doc["duration_h"], f"{where} duration_h", low=0, high=168, open_low=True, unit="h"
            )
            out.append(IvOption(duration_h=duration))
        else:
            doc = _object(item, where, ("route", "interval_h", "n_doses"), ("route",))
            interval = _number(
                doc.get("interval_h", 24), f"{where} interval_h", low=0, open_low=True, unit="h"
            )
            n_doses = _integer(doc.get("n_doses", 1), f"{where} n_doses", low=1, high=366)
            out.append(RepeatedOption(route=route, interval_h=interval, n_doses=n_doses))
    return tuple(out)


def _protocol(raw: Any, model: Model) -> Protocol:
    if not isinstance(raw, str) or not raw:
        _bad("protocol", "must be a protocol id (see `ketacare protocols`)")
    library = run_guarded(load_library)
    protocol: Protocol = run_guarded(library.get, protocol_id=raw)

    def norm(text: str) -> str:
        return text.lower().replace(" ", "_")

    if norm(protocol.molecule) != norm(model.molecule):
        _bad(
            "protocol",
            f"protocol {protocol.id} is for {protocol.molecule.replace('_', ' ')} but model "
            f"{model.id} is {model.molecule}: its mg limits do not apply; choose a protocol "
            f"for {model.molecule}",
        )
    return protocol


def _conversions(raw: Any, regimen: Regimen, weight_kg: float) -> tuple[Conversion, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        where = "convert" if not isinstance(raw, list) else f"convert {i + 1}"
        doc = _object(item, where, ("to_route", "from_dose", "to_duration_h"), ("to_route",))
        to_route = _route(doc["to_route"], f"{where} to_route")
        duration = 0.0
        if to_route == "iv_infusion":
            if "to_duration_h" not in doc:
                _bad(where, "a conversion to iv_infusion needs to_duration_h (hours)")
            duration = _number(
                doc["to_duration_h"], f"{where} to_duration_h", low=0, open_low=True, unit="h"
            )
        elif "to_duration_h" in doc:
            _bad(f"{where} to_duration_h", "applies only to a conversion to iv_infusion")
        source = doc.get("from_dose", len(regimen.doses))
        index: int | None
        if isinstance(source, dict):
            try:
                one = parse_regimen({"doses": [source]}, weight_kg=weight_kg)
            except KetacareError as exc:
                _bad(f"{where} from_dose", str(exc).replace("dose 1 ", "", 1))
            dose, index = one.doses[0], None
        else:
            n = len(regimen.doses)
            if isinstance(source, bool) or not isinstance(source, int) or not 1 <= source <= n:
                _bad(
                    f"{where} from_dose",
                    f"must be the number of a dose given (1 to {n}) or a dose object in the "
                    f"regimen form, got {source!r}",
                )
            index = int(source)
            dose = regimen.doses[index - 1]
        out.append(Conversion(to_route, dose, index, duration))
    return tuple(out)


def _settings(raw: Any) -> Settings:
    doc = _object(raw, "settings", SETTINGS_FIELDS)
    hours = doc.get("hours")
    if hours is not None:
        hours = _number(hours, "settings.hours", low=0, high=24 * 366, open_low=True, unit="h")
    step = doc.get("step_min")
    if step is not None:
        step = _number(step, "settings.step_min", low=0, high=24 * 60, open_low=True, unit="min")
    sampling = doc.get("sampling", "importance")
    if sampling not in ("importance", "laplace"):
        _bad("settings.sampling", f"must be importance or laplace, got {sampling!r}")
    return Settings(
        hours=hours,
        step_min=step,
        n_draws=_integer(doc.get("n_draws", 1000), "settings.n_draws", low=0, high=20_000),
        seed=_integer(doc.get("seed", 0), "settings.seed", low=0, high=2**32 - 1),
        sampling=str(sampling),
    )


def parse_request(doc: Any) -> Request:
    """Validate the whole input file (exits 2 with one line at the first problem)."""
    doc = _object(doc, "input", TOP_FIELDS, ("model", "patient", "doses"))
    if not isinstance(doc["model"], str):
        _bad("model", "must be a model id (see `ketacare models`)")
    model: Model = run_guarded(load_model, model_id=doc["model"])
    if not model.has_variability:
        _bad(
            "model",
            f"{model.id} has no published between-patient variability, so it has no prior "
            "for individualisation; use a model with published variability (see `ketacare "
            "models --json`, population_variability)",
        )
    patient = _patient(doc["patient"])
    doses = _list(doc["doses"], "doses", "doses in the regimen form of the design document")
    regimen: Regimen = run_guarded(parse_regimen, {"doses": doses}, weight_kg=patient.weight_kg)
    for i, dose in enumerate(regimen.doses):
        if dose.route not in model.routes:
            _bad(
                f"dose {i + 1} route",
                f"model {model.id} has no route {dose.route}: it has {', '.join(model.routes)}",
            )
    samples = _samples(doc.get("samples", []), model, regimen)
    response = _response(doc["response"], model) if "response" in doc else None
    target = _target(doc["target"]) if "target" in doc else None
    options = _options(doc["options"], model) if "options" in doc else ()
    if target is not None and not options:
        _bad("options", "a target needs the regimen shapes to dose (options)")
    if options and target is None:
        _bad("target", "options need a target to dose them to")
    ceiling = doc.get("ceiling_ng_per_ml")
    if ceiling is not None:
        ceiling = _number(ceiling, "ceiling_ng_per_ml", low=0, open_low=True, unit="ng/mL")
    protocol = _protocol(doc["protocol"], model) if "protocol" in doc else None
    conversions = (
        _conversions(doc["convert"], regimen, patient.weight_kg) if "convert" in doc else ()
    )
    settings = _settings(doc.get("settings", {}))
    return Request(
        model=model,
        patient=patient,
        regimen=regimen,
        doses_json=doses,
        samples=samples,
        response=response,
        target=target,
        options=options,
        ceiling_ng_per_ml=ceiling,
        protocol=protocol,
        conversions=conversions,
        settings=settings,
    )


# --------------------------------------------------------------------------------------
# protocol limits as the limit function of `recommend`
# --------------------------------------------------------------------------------------


def protocol_limit_check(
    *, protocol: Protocol, limits: Sequence[ResolvedLimit], weight_kg: float
) -> Callable[[Regimen], tuple[LimitFinding, ...]]:
    """The protocol's resolved soft/hard limits as ``Regimen -> findings`` for ``recommend``.

    Each dose on the protocol's route is checked for every configured limit kind (dose in
    mg and mg/kg, rate in mg/h and mg/kg/h); doses on other routes are outside the
    protocol and are not checked (the recommendation says so).
    """
    route = ENGINE_ROUTE.get(protocol.route, protocol.route)
    configured = [b for b in limits if b.value is not None]

    def check(regimen: Regimen) -> tuple[LimitFinding, ...]:
        messages: dict[tuple[str, str], None] = {}
        for dose in regimen.doses:
            if dose.route != route:
                continue
            values = {"dose_mg": dose.amount_mg, "dose_mg_per_kg": dose.amount_mg / weight_kg}
            rate = dose.rate_mg_per_h
            if rate is not None:
                values["rate_mg_per_h"] = rate
                values["rate_mg_per_kg_per_h"] = rate / weight_kg
            for bound in configured:
                value = values.get(bound.key)
                if value is None or bound.value is None or not value > bound.value:
                    continue
                where = f"source: {bound.source}" if bound.source else "site policy"
                tail = "" if bound.level == "hard" else ": needs a reason and a co-signature"
                text = (
                    f"{dose.route} {value:.4g} {bound.unit} exceeds the {bound.level} limit "
                    f"{bound.value:g} {bound.unit} of protocol {protocol.id} ({where}){tail}"
                )
                messages[(bound.level, text)] = None
        return tuple(LimitFinding(level, text) for level, text in messages)

    return check


# --------------------------------------------------------------------------------------
# the computation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Everything computed, for the JSON document, the table and the plot."""

    request: Request
    fit: IndividualFit
    prediction: IndividualPrediction
    sample_pred: np.ndarray  # (n_samples,) MAP prediction at each sample
    sample_band: np.ndarray | None  # (3, n_samples)
    response: ResponseFit | None
    response_prediction: ResponsePrediction | None
    recommendations: tuple[Recommendation, ...]
    recommendation_responses: tuple[ResponsePrediction | None, ...]
    conversions: tuple[RouteConversion, ...]
    limits: tuple[ResolvedLimit, ...]
    warnings: tuple[str, ...]


def _default_step(hours: float) -> float:
    if hours <= 48:
        return 5.0
    if hours <= 168:
        return 15.0
    return 60.0


def compute(request: Request, site_policy: SitePolicy | None = None) -> Outcome:
    """Fit, predict, fit the response, recommend and convert, as the request asks."""
    r, s = request, request.settings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClinicalWarning)
        fit: IndividualFit = run_guarded(
            fit_individual,
            model=r.model,
            patient=r.patient,
            regimen=r.regimen,
            samples=r.samples,
            n_draws=s.n_draws,
            sampling=s.sampling,
            seed=s.seed,
        )
        last = max(
            [r.regimen.end_h]
            + [x.time_h for x in r.samples]
            + ([x.time_h for x in r.response.scores] if r.response else [])
        )
        hours = s.hours if s.hours is not None else last + 24.0
        step = s.step_min if s.step_min is not None else _default_step(hours)
        prediction: IndividualPrediction = run_guarded(
            predict_individual, fit=fit, hours=hours, step_min=step
        )
        times = np.array([x.time_h for x in r.samples], dtype=np.float64)
        sample_pred = np.zeros(len(r.samples))
        sample_band = None
        for analyte in ("plasma", "metabolite"):
            idx = [i for i, x in enumerate(r.samples) if x.analyte == analyte]
            if not idx:
                continue
            sample_pred[idx] = predict_at(fit=fit, times_h=times[idx], analyte=analyte)
            if fit.draws.shape[0]:
                if sample_band is None:
                    sample_band = np.zeros((3, len(r.samples)))
                per_draw = predict_at(fit=fit, times_h=times[idx], analyte=analyte, etas=fit.draws)
                sample_band[:, idx] = np.percentile(per_draw, [5, 50, 95], axis=0)
        response = response_prediction = None
        if r.response is not None:
            response = run_guarded(
                fit_response,
                fit=fit,
                scores=r.response.scores,
                baseline_nrs=r.response.baseline_nrs,
                assumptions=r.response.assumptions,
                effect_site=r.response.effect_site,
            )
            response_prediction = run_guarded(
                predict_response, response=response, regimen=r.regimen, hours=hours, step_min=60.0
            )
        limits: tuple[ResolvedLimit, ...] = ()
        check = None
        if r.protocol is not None:
            limits = resolve_limits(protocol=r.protocol, site_policy=site_policy)
            check = protocol_limit_check(
                protocol=r.protocol, limits=limits, weight_kg=r.patient.weight_kg
            )
        recommendations: tuple[Recommendation, ...] = ()
        rec_responses: list[ResponsePrediction | None] = []
        if r.target is not None:
            span = max(
                o.duration_h if isinstance(o, IvOption) else (o.n_doses - 1) * o.interval_h
                for o in r.options
            )
            span += 24.0
            recommendations = run_guarded(
                recommend,
                fit=fit,
                target=r.target,
                options=r.options,
                limits=check,
                ceiling_ng_per_ml=r.ceiling_ng_per_ml,
                step_min=s.step_min if s.step_min is not None else _default_step(span),
            )
            for rec in recommendations:
                if response is None:
                    rec_responses.append(None)
                    continue
                rec_responses.append(
                    run_guarded(
                        predict_response,
                        response=response,
                        regimen=rec.regimen,
                        hours=float(rec.prediction.time_h[-1]),
                        step_min=60.0,
                    )
                )
        conversions = tuple(
            run_guarded(
                convert_route,
                fit=fit,
                from_dose=c.from_dose,
                to_route=c.to_route,
                to_duration_h=c.to_duration_h,
                seed=s.seed,
            )
            for c in r.conversions
        )
    messages = list(fit.warnings) + [
        str(w.message) for w in caught if issubclass(w.category, ClinicalWarning)
    ]
    if not fit.converged:
        messages.append(f"the fit did not converge: {fit.message}")
    if r.protocol is not None:
        route = ENGINE_ROUTE.get(r.protocol.route, r.protocol.route)
        outside = sorted({rec.route for rec in recommendations if rec.route != route})
        if outside:
            messages.append(
                f"protocol {r.protocol.id} is {route}: its limits were not checked for "
                f"{', '.join(outside)} recommendations"
            )
    if r.response is not None:
        messages.append("the response fit rests on the caller's stated assumptions: exploratory")
    return Outcome(
        request=r,
        fit=fit,
        prediction=prediction,
        sample_pred=sample_pred,
        sample_band=sample_band,
        response=response,
        response_prediction=response_prediction,
        recommendations=recommendations,
        recommendation_responses=tuple(rec_responses),
        conversions=conversions,
        limits=limits,
        warnings=tuple(dict.fromkeys(messages)),
    )


# --------------------------------------------------------------------------------------
# the JSON document
# --------------------------------------------------------------------------------------


def _band(band: np.ndarray | None) -> dict[str, Any] | None:
    if band is None:
        return None
    return {"p05": band[0], "p50": band[1], "p95": band[2]}


def _pct(p05: float | None, p50: float | None, p95: float | None) -> dict[str, Any] | None:
    if p50 is None:
        return None
    return {"p05": p05, "p50": p50, "p95": p95}


def _curves(pred: IndividualPrediction, ceiling: float | None) -> dict[str, Any]:
    return {
        "time_h": pred.time_h,
        "percentiles": list(pred.percentiles),
        "plasma_ng_per_ml": pred.plasma_ng_per_ml,
        "plasma_band": _band(pred.plasma_band),
        "typical_plasma_ng_per_ml": pred.typical_plasma_ng_per_ml,
        "effect_ng_per_ml": dict(pred.effect_ng_per_ml),
        "effect_band": {k: _band(v) for k, v in pred.effect_band.items()},
        "metabolite_ng_per_ml": pred.metabolite_ng_per_ml,
        "metabolite_band": _band(pred.metabolite_band),
        "auc_ng_h_per_ml": pred.auc_ng_h_per_ml,
        "metabolite_auc_ng_h_per_ml": pred.metabolite_auc_ng_h_per_ml,
        "cmax_ng_per_ml": float(np.max(pred.plasma_ng_per_ml)),
        "probability_above_ceiling": None if ceiling is None else pred.probability_above(ceiling),
    }


def _nrs(pred: ResponsePrediction | None) -> dict[str, Any] | None:
    if pred is None:
        return None
    return {
        "time_h": pred.time_h,
        "effect_ng_per_ml": pred.effect_ng_per_ml,
        "nrs_median": pred.nrs_median,
        "nrs_p05": pred.nrs_p05,
        "nrs_p95": pred.nrs_p95,
    }


def _dose_json(dose: Dose) -> dict[str, Any]:
    if dose.route == "iv_infusion":
        return {
            "route": dose.route,
            "start_h": dose.start_h,
            "duration_h": dose.duration_h,
            "rate_mg_per_h": dose.rate_mg_per_h,
        }
    return {"route": dose.route, "start_h": dose.start_h, "amount_mg": dose.amount_mg}


def _target_json(target: Target | None) -> dict[str, Any] | None:
    if target is None:
        return None
    if isinstance(target, AucTarget):
        return {
            "kind": "auc",
            "auc_ng_h_per_ml": target.auc_ng_h_per_ml,
            "tolerance": target.tolerance,
        }
    if isinstance(target, AverageConcentrationTarget):
        return {
            "kind": "average_concentration",
            "concentration_ng_per_ml": target.concentration_ng_per_ml,
            "tolerance": target.tolerance,
        }
    return {
        "kind": "window",
        "low_ng_per_ml": target.low_ng_per_ml,
        "high_ng_per_ml": target.high_ng_per_ml,
    }


def _recommendation_json(
    rec: Recommendation, nrs: ResponsePrediction | None, protocol: Protocol | None
) -> dict[str, Any]:
    checked = None
    if protocol is not None:
        checked = rec.route == ENGINE_ROUTE.get(protocol.route, protocol.route)
    return {
        "label": rec.label,
        "route": rec.route,
        "dose_mg": rec.dose_mg,
        "rate_mg_per_h": rec.rate_mg_per_h,
        "duration_h": rec.duration_h,
        "interval_h": rec.interval_h,
        "n_doses": rec.n_doses,
        "regimen": {"doses": [_dose_json(d) for d in rec.regimen.doses]},
        "metric": rec.metric,
        "predicted": {"p05": rec.predicted_p05, "p50": rec.predicted_p50, "p95": rec.predicted_p95},
        "reached": rec.reached,
        "status": rec.status,
        "findings": [{"level": f.level, "message": f.message} for f in rec.findings],
        "protocol_limits_checked": checked,
        "ceiling_ng_per_ml": rec.ceiling_ng_per_ml,
        "probability_above_ceiling": rec.probability_above_ceiling,
        "prediction": _curves(rec.prediction, None),
        "response_prediction": _nrs(nrs),
    }


def _conversion_json(c: RouteConversion, request: Conversion) -> dict[str, Any]:
    d = request.from_dose
    return {
        "from": {
            "dose": request.from_index,
            "route": d.route,
            "amount_mg": d.amount_mg,
            "duration_h": d.duration_h if d.route == "iv_infusion" else None,
        },
        "to_route": c.to_route,
        "to_duration_h": request.to_duration_h if c.to_route == "iv_infusion" else None,
        "model_dose_mg": _pct(c.model_dose_p05, c.model_dose_p50, c.model_dose_p95),
        "literature_dose_mg": _pct(
            c.literature_dose_p05, c.literature_dose_p50, c.literature_dose_p95
        ),
        "literature_sources": list(c.literature_sources),
        "parent_auc_from_ng_h_per_ml": c.parent_auc_from_ng_h_per_ml,
        "parent_auc_to_ng_h_per_ml": c.parent_auc_to_ng_h_per_ml,
        "metabolite_auc_ratio": _pct(
            c.metabolite_auc_ratio_p05, c.metabolite_auc_ratio_p50, c.metabolite_auc_ratio_p95
        ),
        "notes": list(c.notes),
    }


def document(out: Outcome) -> dict[str, Any]:
    """The ``--json`` document."""
    r, fit = out.request, out.fit
    model = r.model
    resp = None
    if out.response is not None and r.response is not None:
        rf = out.response
        resp = {
            "label": "exploratory",
            "effect_site": rf.effect_site,
            "c50_population_ng_per_ml": rf.c50_population_ng_per_ml,
            "c50_ng_per_ml": {"p05": rf.c50_p05, "p50": rf.c50_ng_per_ml, "p95": rf.c50_p95},
            "baseline_nrs": rf.baseline_nrs,
            "assumptions": {
                "emax_fraction": rf.assumptions.emax_fraction,
                "gamma": rf.assumptions.gamma,
                "nrs_sd": rf.assumptions.nrs_sd,
                "c50_log_sd": rf.assumptions.c50_log_sd,
                "note": rf.assumptions.note,
            },
            "scores": [
                {
                    "time_h": s.time_h,
                    "nrs": s.nrs,
                    "effect_ng_per_ml": float(ce),
                    "observed_relief": float(rel),
                }
                for s, ce, rel in zip(
                    r.response.scores,
                    rf.effect_at_scores_ng_per_ml,
                    rf.observed_relief,
                    strict=True,
                )
            ],
            "sourced": list(rf.sourced),
            "assumed": list(rf.assumed),
            "prediction": _nrs(out.response_prediction),
        }
    protocol = None
    if r.protocol is not None:
        protocol = {
            "id": r.protocol.id,
            "title": r.protocol.title,
            "molecule": r.protocol.molecule,
            "route": r.protocol.route,
            "limits": [{"limit_kind": b.key, "level": b.level, **b.to_dict()} for b in out.limits],
            "not_configured": [f"{b.key} {b.level}" for b in out.limits if b.value is None],
        }
    samples = []
    for i, s in enumerate(r.samples):
        samples.append(
            {
                "time_h": s.time_h,
                "analyte": s.analyte,
                "value_ng_per_ml": s.value_ng_per_ml,
                "lloq_ng_per_ml": s.lloq_ng_per_ml,
                "below_lloq": s.below_lloq,
                "predicted_ng_per_ml": float(out.sample_pred[i]),
                "predicted_band": None
                if out.sample_band is None
                else {
                    "p05": float(out.sample_band[0, i]),
                    "p50": float(out.sample_band[1, i]),
                    "p95": float(out.sample_band[2, i]),
                },
            }
        )
    return {
        "model": model.id,
        "molecule": model.molecule,
        "metabolite": model.metabolite,
        "patient": {
            "weight_kg": r.patient.weight_kg,
            "age_years": r.patient.age_years,
            "sex": r.patient.sex,
        },
        "doses": [_dose_json(d) for d in r.regimen.doses],
        "residual_error": {
            "plasma_log_sd": fit.residual_error.plasma_log_sd,
            "metabolite_log_sd": fit.residual_error.metabolite_log_sd,
            "source": fit.residual_error.source,
            "user_supplied": fit.residual_error.user_supplied,
        },
        "fit": {
            "converged": fit.converged,
            "message": fit.message,
            "iterations": fit.iterations,
            "objective": fit.objective,
            "n_samples": len(r.samples),
            "n_below_lloq": sum(1 for s in r.samples if s.below_lloq),
            "sampling": fit.sampling,
            "n_draws": int(fit.draws.shape[0]),
            "seed": r.settings.seed,
            "effective_sample_size": fit.effective_sample_size,
        },
        "parameters": [
            {
                "name": p.name,
                "unit": p.unit,
                "typical": p.typical,
                "estimate": p.estimate,
                "p05": p.p05,
                "p95": p.p95,
                "sd_ratio": p.sd_ratio,
                "informed": p.informed,
            }
            for p in fit.parameters
        ],
        "samples": samples,
        "prediction": _curves(out.prediction, r.ceiling_ng_per_ml),
        "response": resp,
        "target": _target_json(r.target),
        "ceiling_ng_per_ml": r.ceiling_ng_per_ml,
        "protocol": protocol,
        "recommendations": [
            _recommendation_json(rec, nrs, r.protocol)
            for rec, nrs in zip(out.recommendations, out.recommendation_responses, strict=True)
        ],
        "conversions": [
            _conversion_json(c, req) for c, req in zip(out.conversions, r.conversions, strict=True)
        ],
        "warnings": list(out.warnings),
    }


# --------------------------------------------------------------------------------------
# human output and plot
# --------------------------------------------------------------------------------------


def _g(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _print_human(out: Outcome) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    r, fit = out.request, out.fit
    age = "" if r.patient.age_years is None else f", {r.patient.age_years:g} years"
    blq = sum(1 for s in r.samples if s.below_lloq)
    console.print(
        f"[bold]{r.model.id}[/bold] ({r.model.molecule}); {r.patient.weight_kg:g} kg{age}; "
        f"{len(r.regimen.doses)} doses, {r.regimen.total_dose_mg:g} mg; "
        f"{len(r.samples)} samples ({blq} below the LLOQ)"
    )
    ess = "" if fit.effective_sample_size is None else f", ESS {fit.effective_sample_size:.0f}"
    console.print(
        f"MAP fit {'converged' if fit.converged else 'NOT converged'}; "
        f"{fit.draws.shape[0]} posterior draws ({fit.sampling}{ess})"
    )
    table = Table(title="Individual parameters (90% credible interval)")
    for col in ("parameter", "unit", "typical", "estimate", "5th", "95th", "SD ratio", "informed"):
        table.add_column(col, justify="left" if col in ("parameter", "unit") else "right")
    for p in fit.parameters:
        table.add_row(
            p.name,
            p.unit,
            _g(p.typical),
            _g(p.estimate),
            _g(p.p05),
            _g(p.p95),
            f"{p.sd_ratio:.2f}",
            "yes" if p.informed else "prior",
        )
    console.print(table)
    if r.samples:
        st = Table(title="Samples against the fit")
        for col in ("time h", "analyte", "measured ng/mL", "MAP ng/mL", "90% band"):
            st.add_column(col, justify="left" if col == "analyte" else "right")
        for i, s in enumerate(r.samples):
            measured = f"< {s.lloq_ng_per_ml:g} (BLQ)" if s.below_lloq else _g(s.value_ng_per_ml)
            band = (
                "-"
                if out.sample_band is None
                else f"{_g(out.sample_band[0, i])}-{_g(out.sample_band[2, i])}"
            )
            st.add_row(f"{s.time_h:g}", s.analyte, measured, _g(out.sample_pred[i]), band)
        console.print(st)
    pred = out.prediction
    line = (
        f"predicted over 0-{pred.time_h[-1]:g} h: peak {_g(float(np.max(pred.plasma_ng_per_ml)))} "
        f"ng/mL, AUC {_g(pred.auc_ng_h_per_ml)} ng*h/mL"
    )
    if r.ceiling_ng_per_ml is not None:
        prob = pred.probability_above(r.ceiling_ng_per_ml)
        line += f"; P(peak > {r.ceiling_ng_per_ml:g} ng/mL) {_g(prob, 2)}"
    console.print(line)
    if out.response is not None:
        rf = out.response
        console.print(
            f"response (exploratory, {rf.effect_site}): C50 {_g(rf.c50_ng_per_ml)} ng/mL "
            f"(90% {_g(rf.c50_p05)}-{_g(rf.c50_p95)}; population {rf.c50_population_ng_per_ml:g})"
        )
        for text in rf.assumed:
            console.print(f"  assumed: {text}")
    if r.protocol is not None:
        console.print(f"protocol {r.protocol.id}: {r.protocol.title}")
        for b in out.limits:
            value = "not configured" if b.value is None else f"{b.value:g} {b.unit}"
            console.print(f"  {b.key} {b.level}: {value} ({b.basis})")
    if out.recommendations:
        rt = Table(title="Recommendations")
        for col in ("option", "dose mg", "metric p50 (5th-95th)", "status", "P(peak>ceiling)"):
            rt.add_column(col, justify="left" if col in ("option", "status") else "right")
        for rec in out.recommendations:
            status = rec.status + ("" if rec.reached else " (target not reached)")
            rt.add_row(
                rec.label,
                _g(rec.dose_mg),
                f"{_g(rec.predicted_p50)} ({_g(rec.predicted_p05)}-{_g(rec.predicted_p95)})",
                status,
                _g(rec.probability_above_ceiling, 2),
            )
        console.print(rt)
        metrics = sorted({rec.metric for rec in out.recommendations})
        console.print(f"metric: {', '.join(metrics)}")
        for rec in out.recommendations:
            for f in rec.findings:
                console.print(f"  [{f.level}] {rec.label}: {f.message}")
    if out.conversions:
        ct = Table(title="Route conversions (matched parent AUC)")
        for col in ("from", "to", "model mg p50 (5th-95th)", "published-F mg", "metabolite x"):
            ct.add_column(col, justify="left" if col in ("from", "to") else "right")
        for c in out.conversions:
            model_mg = (
                "-"
                if c.model_dose_p50 is None
                else f"{_g(c.model_dose_p50)} ({_g(c.model_dose_p05)}-{_g(c.model_dose_p95)})"
            )
            lit = (
                "-"
                if c.literature_dose_p50 is None
                else f"{_g(c.literature_dose_p50)} ({_g(c.literature_dose_p05)}-"
                f"{_g(c.literature_dose_p95)})"
            )
            ct.add_row(
                f"{c.from_route} {c.from_dose_mg:g} mg",
                c.to_route,
                model_mg,
                lit,
                _g(c.metabolite_auc_ratio_p50),
            )
        console.print(ct)
        for c in out.conversions:
            for note in c.notes:
                console.print(f"  note: {note}")
    for message in out.warnings:
        console.print(f"[yellow]warning:[/yellow] {message}")


def _write_plot(path: Path, out: Outcome) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, pred = out.request, out.prediction
    days = pred.time_h[-1] > 72
    scale = 24.0 if days else 1.0
    t = pred.time_h / scale
    panels: list[str] = ["plasma"]
    if pred.metabolite_ng_per_ml is not None:
        panels.append("metabolite")
    if pred.effect_ng_per_ml:
        panels.append("effect")
    if out.response_prediction is not None:
        panels.append("response")
    heights = [3] + [2] * (len(panels) - 1)
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, 3 + 2.2 * len(panels)),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    by_panel = dict(zip(panels, axes[:, 0], strict=True))

    def curve(ax: Any, line: np.ndarray, band: np.ndarray | None, color: str, name: str) -> None:
        if band is not None:
            ax.fill_between(t, band[0], band[2], color=color, alpha=0.2, label=f"{name} 90% band")
        ax.plot(t, line, color=color, lw=1.5, label=f"{name} (MAP)")

    def points(ax: Any, analyte: str, color: str) -> None:
        measured = [s for s in r.samples if s.analyte == analyte and not s.below_lloq]
        blq = [s for s in r.samples if s.analyte == analyte and s.below_lloq]
        if measured:
            ax.plot(
                [s.time_h / scale for s in measured],
                [s.value_ng_per_ml for s in measured],
                "o",
                color=color,
                mec="black",
                ms=7,
                label="measured",
            )
        if blq:
            ax.plot(
                [s.time_h / scale for s in blq],
                [s.lloq_ng_per_ml for s in blq],
                "o",
                mfc="none",
                mec=color,
                mew=1.5,
                ms=8,
                label="below LLOQ (drawn at the LLOQ)",
            )

    ax = by_panel["plasma"]
    curve(ax, pred.plasma_ng_per_ml, pred.plasma_band, "tab:blue", r.model.molecule)
    ax.plot(
        t, pred.typical_plasma_ng_per_ml, color="grey", ls="--", lw=1, label="population typical"
    )
    points(ax, "plasma", "tab:blue")
    if r.ceiling_ng_per_ml is not None:
        ax.axhline(r.ceiling_ng_per_ml, color="tab:red", ls=":", lw=1, label="ceiling")
    ax.set_ylabel("plasma (ng/mL)")
    ax.set_title(
        f"{r.model.name}\nindividual fit: MAP curve, 90% credible band, measured levels",
        fontsize=10,
    )
    if "metabolite" in by_panel and pred.metabolite_ng_per_ml is not None:
        ax = by_panel["metabolite"]
        name = r.model.metabolite or "metabolite"
        curve(ax, pred.metabolite_ng_per_ml, pred.metabolite_band, "tab:orange", name)
        points(ax, "metabolite", "tab:orange")
        ax.set_ylabel(f"{name} (ng/mL)")
    if "effect" in by_panel:
        ax = by_panel["effect"]
        colors = ["tab:green", "tab:purple", "tab:brown"]
        for (site, line), color in zip(pred.effect_ng_per_ml.items(), colors, strict=False):
            curve(ax, line, pred.effect_band.get(site), color, f"effect site {site}")
        ax.set_ylabel("effect site (ng/mL)")
    if "response" in by_panel and out.response_prediction is not None and r.response:
        ax = by_panel["response"]
        rp = out.response_prediction
        tt = rp.time_h / scale
        ax.fill_between(tt, rp.nrs_p05, rp.nrs_p95, color="tab:red", alpha=0.15, label="90% band")
        ax.plot(tt, rp.nrs_median, color="tab:red", lw=1.3, label="predicted NRS (exploratory)")
        ax.plot(
            [s.time_h / scale for s in r.response.scores],
            [s.nrs for s in r.response.scores],
            "s",
            color="tab:red",
            mec="black",
            label="pain scores",
        )
        ax.set_ylim(0, 10)
        ax.set_ylabel("pain NRS")
    for ax in by_panel.values():
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (days)" if days else "time (h)")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        fail(f"cannot write plot {path}: {exc.strerror or exc}")
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------


def personalise_command(
    file: Path = typer.Argument(..., help="Personalisation input (JSON).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write a PNG plot of the fit."),
    site_policy: Path | None = typer.Option(
        None, "--site-policy", help="The clinic's site-policy limits (TOML) for the protocol."
    ),
) -> None:
    """Fit this patient's PK from measured levels; recommend and convert regimens."""
    if plot_path is not None and plot_path.suffix.lower() != ".png":
        fail(f"--plot must name a .png file, got {plot_path}")
    raw = read_json_file(file, "personalisation input")
    request = run_guarded(parse_request, raw)
    policy = None
    if site_policy is not None:
        if request.protocol is None:
            fail("--site-policy applies to a protocol: the input names none (field protocol)")
        policy = run_guarded(load_site_policy, path=site_policy, library=run_guarded(load_library))
    out = compute(request, policy)
    if plot_path is not None:
        _write_plot(plot_path, out)
    if as_json:
        emit_json(document(out))
    else:
        _print_human(out)


def register(app: typer.Typer) -> None:
    """Add ``ketacare personalise`` to the app."""
    app.command("personalise")(personalise_command)


__all__ = ["Request", "compute", "document", "parse_request", "protocol_limit_check", "register"]
