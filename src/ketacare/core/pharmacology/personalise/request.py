"""A personalisation request: the input document checked and turned into typed values.

One document carries the model, the patient's covariates, the doses given (the design
document's regimen form), the measured levels (below the LLOQ as ``null`` with its
``lloq_ng_per_ml``), optionally pain scores with the caller's stated response
assumptions, an exposure target with the regimen shapes to dose, a concentration
ceiling, a protocol whose soft/hard limits each recommendation is checked against, and
route conversions (see docs/personalisation.md, "Command line").

``ketacare personalise`` reads it from a file; the Personalise page builds it from the
record. Both go through :func:`parse_request`, so the same input is refused with the
same one-line message, naming the field and what is allowed, before any computation.

Examples
--------
>>> request = parse_request(doc={
...     "model": "perez-ruixo-2021",
...     "patient": {"weight_kg": 72},
...     "doses": [{"route": "iv_infusion", "start_h": 0, "duration_h": 4,
...                "rate_mg_per_h": 20}],
...     "samples": [{"time_h": 2, "value_ng_per_ml": 62.0},
...                 {"time_h": 12, "value_ng_per_ml": None, "lloq_ng_per_ml": 5}],
... })
>>> request.regimen.total_dose_mg, [s.below_lloq for s in request.samples]
(80.0, [False, True])
>>> request.settings
FitSettings(hours=None, step_min=None, n_draws=1000, seed=0, sampling='importance')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.pharmacology.individual.inputs import Sample
from ketacare.core.pharmacology.individual.response import PainScore, ResponseAssumptions
from ketacare.core.pharmacology.models import Model, load_model
from ketacare.core.pharmacology.personalise.fields import (
    bad,
    fields_of,
    integer,
    list_of,
    number,
    route,
)
from ketacare.core.pharmacology.recommend import (
    AucTarget,
    AverageConcentrationTarget,
    IvOption,
    RepeatedOption,
    WindowTarget,
)
from ketacare.core.pharmacology.regimen import Dose, Regimen, parse_regimen
from ketacare.core.pharmacology.simulate import Patient
from ketacare.core.protocols import Protocol, load_library

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


@dataclass(frozen=True, slots=True)
class Conversion:
    """One requested route conversion: a dose (given, or stated) to ``to_route``.

    ``from_index`` is the dose's number in the regimen (1-based) when it was given, None
    for a stated dose, so the output can say which dose was converted.
    """

    to_route: str
    from_dose: Dose
    from_index: int | None
    to_duration_h: float


@dataclass(frozen=True, slots=True)
class ResponseInput:
    """Pain scores with the baseline and the caller's assumptions (no defaults).

    No source we read gives the concentration-effect form, its steepness, the maximal
    relief or the SDs, so the caller states them and the fit is labelled exploratory.
    """

    scores: tuple[PainScore, ...]
    baseline_nrs: float
    assumptions: ResponseAssumptions
    effect_site: str


@dataclass(frozen=True, slots=True)
class FitSettings:
    """The prediction grid and the posterior sampling.

    ``hours`` and ``step_min`` left None are chosen from the regimen and the samples
    (:func:`~ketacare.core.pharmacology.personalise.compute.compute`); ``seed`` makes the
    posterior draws repeatable, so the same request gives the same numbers on the page
    and on the command line.
    """

    hours: float | None
    step_min: float | None
    n_draws: int
    seed: int
    sampling: str


@dataclass(frozen=True, slots=True)
class PersonaliseRequest:
    """The validated input document, as typed values ready for the computation."""

    model: Model
    patient: Patient
    regimen: Regimen
    samples: tuple[Sample, ...]
    response: ResponseInput | None
    target: Target | None
    options: tuple[Option, ...]
    ceiling_ng_per_ml: float | None
    protocol: Protocol | None
    conversions: tuple[Conversion, ...]
    settings: FitSettings


def _patient(raw: Any) -> Patient:
    doc = fields_of(raw, "patient", ("weight_kg", "age_years", "sex"), ("weight_kg",))
    weight = number(doc["weight_kg"], "patient.weight_kg", low=20, high=350, unit="kg")
    age = doc.get("age_years")
    if age is not None:
        age = number(age, "patient.age_years", low=0, high=120, unit="years")
    sex = doc.get("sex")
    if sex not in (None, "F", "M"):
        bad("patient.sex", f"must be F or M, got {sex!r}")
    return Patient(weight_kg=weight, age_years=age, sex=sex)


def _samples(raw: Any, model: Model, regimen: Regimen) -> tuple[Sample, ...]:
    first = regimen.doses[0].start_h
    out = []
    analytes = ("plasma", "metabolite") if model.metabolite else ("plasma",)
    for i, item in enumerate(list_of(raw, "samples", "measured levels")):
        where = f"sample {i + 1}"
        doc = fields_of(
            item,
            where,
            ("time_h", "value_ng_per_ml", "lloq_ng_per_ml", "analyte"),
            ("time_h", "value_ng_per_ml"),
        )
        time_h = number(doc["time_h"], f"{where} time_h", low=0, high=24 * 366, unit="h")
        if time_h <= first:
            bad(
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
            bad(f"{where} analyte", f"must be {what}, got {analyte!r}")
        lloq = doc.get("lloq_ng_per_ml")
        if lloq is not None:
            lloq = number(lloq, f"{where} lloq_ng_per_ml", low=0, open_low=True, unit="ng/mL")
        value = doc["value_ng_per_ml"]
        if value is None:
            if lloq is None:
                raise InvalidInput(
                    f"{where} is below the LLOQ (value_ng_per_ml null) but gives no "
                    "lloq_ng_per_ml: a censored level needs its limit of quantification"
                )
        else:
            value = number(value, f"{where} value_ng_per_ml", low=0, open_low=True, unit="ng/mL")
            if lloq is not None and value < lloq:
                bad(
                    f"{where} value_ng_per_ml",
                    f"{value:g} is below its lloq_ng_per_ml {lloq:g}: report a level below "
                    "the LLOQ as null",
                )
        out.append(
            Sample(time_h=time_h, value_ng_per_ml=value, analyte=analyte, lloq_ng_per_ml=lloq)
        )
    return tuple(out)


def _response(raw: Any, model: Model) -> ResponseInput:
    doc = fields_of(
        raw,
        "response",
        ("scores", "baseline_nrs", "assumptions", "effect_site"),
        ("scores", "baseline_nrs", "assumptions"),
    )
    baseline = number(doc["baseline_nrs"], "response.baseline_nrs", low=0, high=10, open_low=True)
    scores = []
    for i, item in enumerate(list_of(doc["scores"], "response.scores", "pain scores")):
        where = f"response score {i + 1}"
        s = fields_of(item, where, ("time_h", "nrs"), ("time_h", "nrs"))
        scores.append(
            PainScore(
                time_h=number(s["time_h"], f"{where} time_h", low=0, high=24 * 366, unit="h"),
                nrs=number(s["nrs"], f"{where} nrs", low=0, high=10),
            )
        )
    if not scores:
        bad("response.scores", "a response fit needs at least one pain score")
    a = doc["assumptions"]
    if not isinstance(a, dict) or any(k not in a for k in ASSUMPTION_FIELDS):
        bad(
            "response.assumptions",
            f"must give {', '.join(ASSUMPTION_FIELDS)} (there are no defaults: no source we "
            "read gives the concentration-effect form, its steepness, the maximal relief or "
            "the SDs)",
        )
    fields_of(a, "response.assumptions", (*ASSUMPTION_FIELDS, "note"))
    values = {}
    for name in ASSUMPTION_FIELDS:
        values[name] = number(
            a[name],
            f"response.assumptions.{name}",
            low=0,
            open_low=True,
            high=1 if name == "emax_fraction" else None,
        )
    note = a.get("note", "user-supplied")
    if not isinstance(note, str) or not note.strip():
        bad("response.assumptions.note", "must be a non-empty text saying where they come from")
    site = doc.get("effect_site", "crps_analgesia")
    sites = [s.id for s in model.effect_sites if s.c50 is not None]
    if site not in sites:
        known = ", ".join(sites) if sites else "none"
        bad(
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
        bad("target", f"must be one of {shapes}")
    keys = set(raw)
    tolerance = 0.10
    if "tolerance" in raw:
        tolerance = number(raw["tolerance"], "target.tolerance", low=0, high=0.5, open_low=True)
    if keys <= {"auc_ng_h_per_ml", "tolerance"} and "auc_ng_h_per_ml" in keys:
        value = number(raw["auc_ng_h_per_ml"], "target.auc_ng_h_per_ml", low=0, open_low=True)
        return AucTarget(auc_ng_h_per_ml=value, tolerance=tolerance)
    if keys <= {"concentration_ng_per_ml", "tolerance"} and "concentration_ng_per_ml" in keys:
        value = number(
            raw["concentration_ng_per_ml"], "target.concentration_ng_per_ml", low=0, open_low=True
        )
        return AverageConcentrationTarget(concentration_ng_per_ml=value, tolerance=tolerance)
    if keys == {"low_ng_per_ml", "high_ng_per_ml"}:
        low = number(raw["low_ng_per_ml"], "target.low_ng_per_ml", low=0, open_low=True)
        high = number(raw["high_ng_per_ml"], "target.high_ng_per_ml", low=0, open_low=True)
        if not low < high:
            bad("target", f"low_ng_per_ml {low:g} must be below high_ng_per_ml {high:g}")
        return WindowTarget(low_ng_per_ml=low, high_ng_per_ml=high)
    bad("target", f"must be one of {shapes}; got fields {', '.join(sorted(keys)) or 'none'}")


def _options(raw: Any, model: Model) -> tuple[Option, ...]:
    out: list[Option] = []
    items = list_of(raw, "options", "regimen shapes")
    if not items:
        bad("options", "give at least one regimen shape to dose")
    for i, item in enumerate(items):
        where = f"option {i + 1}"
        if not isinstance(item, dict) or "route" not in item:
            bad(where, "must be an object with route (and duration_h, or interval_h and n_doses)")
        option_route = route(item["route"], f"{where} route")
        if option_route not in model.routes:
            bad(
                f"{where} route",
                f"model {model.id} has no route {option_route}: it has {', '.join(model.routes)}",
            )
        if option_route == "iv_infusion":
            doc = fields_of(item, where, ("route", "duration_h"), ("route", "duration_h"))
            duration = number(
                doc["duration_h"], f"{where} duration_h", low=0, high=168, open_low=True, unit="h"
            )
            out.append(IvOption(duration_h=duration))
        else:
            doc = fields_of(item, where, ("route", "interval_h", "n_doses"), ("route",))
            interval = number(
                doc.get("interval_h", 24), f"{where} interval_h", low=0, open_low=True, unit="h"
            )
            n_doses = integer(doc.get("n_doses", 1), f"{where} n_doses", low=1, high=366)
            out.append(RepeatedOption(route=option_route, interval_h=interval, n_doses=n_doses))
    return tuple(out)


def _protocol(raw: Any, model: Model) -> Protocol:
    if not isinstance(raw, str) or not raw:
        bad("protocol", "must be a protocol id (see `ketacare protocols`)")
    protocol = load_library().get(protocol_id=raw)

    def norm(text: str) -> str:
        return text.lower().replace(" ", "_")

    if norm(protocol.molecule) != norm(model.molecule):
        bad(
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
        doc = fields_of(item, where, ("to_route", "from_dose", "to_duration_h"), ("to_route",))
        to_route = route(doc["to_route"], f"{where} to_route")
        duration = 0.0
        if to_route == "iv_infusion":
            if "to_duration_h" not in doc:
                bad(where, "a conversion to iv_infusion needs to_duration_h (hours)")
            duration = number(
                doc["to_duration_h"], f"{where} to_duration_h", low=0, open_low=True, unit="h"
            )
        elif "to_duration_h" in doc:
            bad(f"{where} to_duration_h", "applies only to a conversion to iv_infusion")
        source = doc.get("from_dose", len(regimen.doses))
        index: int | None
        if isinstance(source, dict):
            try:
                one = parse_regimen({"doses": [source]}, weight_kg=weight_kg)
            except KetacareError as exc:
                bad(f"{where} from_dose", str(exc).replace("dose 1 ", "", 1))
            dose, index = one.doses[0], None
        else:
            n = len(regimen.doses)
            if isinstance(source, bool) or not isinstance(source, int) or not 1 <= source <= n:
                bad(
                    f"{where} from_dose",
                    f"must be the number of a dose given (1 to {n}) or a dose object in the "
                    f"regimen form, got {source!r}",
                )
            index = int(source)
            dose = regimen.doses[index - 1]
        out.append(Conversion(to_route, dose, index, duration))
    return tuple(out)


def _settings(raw: Any) -> FitSettings:
    doc = fields_of(raw, "settings", SETTINGS_FIELDS)
    hours = doc.get("hours")
    if hours is not None:
        hours = number(hours, "settings.hours", low=0, high=24 * 366, open_low=True, unit="h")
    step = doc.get("step_min")
    if step is not None:
        step = number(step, "settings.step_min", low=0, high=24 * 60, open_low=True, unit="min")
    sampling = doc.get("sampling", "importance")
    if sampling not in ("importance", "laplace"):
        bad("settings.sampling", f"must be importance or laplace, got {sampling!r}")
    return FitSettings(
        hours=hours,
        step_min=step,
        n_draws=integer(doc.get("n_draws", 1000), "settings.n_draws", low=0, high=20_000),
        seed=integer(doc.get("seed", 0), "settings.seed", low=0, high=2**32 - 1),
        sampling=str(sampling),
    )


def parse_request(*, doc: object) -> PersonaliseRequest:
    """Validate the whole input document and return it as typed values.

    Raises
    ------
    KetacareError
        At the first problem, one line naming the field and what is allowed (the
        command prints it and exits 2; the page shows it).

    Examples
    --------
    A model without published variability has no prior to individualise from:

    >>> parse_request(doc={"model": "domino", "patient": {"weight_kg": 70}, "doses": []})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: model: domino has no published between-patient ...
    """
    doc = fields_of(doc, "input", TOP_FIELDS, ("model", "patient", "doses"))
    if not isinstance(doc["model"], str):
        bad("model", "must be a model id (see `ketacare models`)")
    model = load_model(model_id=doc["model"])
    if not model.has_variability:
        bad(
            "model",
            f"{model.id} has no published between-patient variability, so it has no prior "
            "for individualisation; use a model with published variability (see `ketacare "
            "models --json`, population_variability)",
        )
    patient = _patient(doc["patient"])
    doses = list_of(doc["doses"], "doses", "doses in the regimen form of the design document")
    regimen = parse_regimen({"doses": doses}, weight_kg=patient.weight_kg)
    for i, dose in enumerate(regimen.doses):
        if dose.route not in model.routes:
            bad(
                f"dose {i + 1} route",
                f"model {model.id} has no route {dose.route}: it has {', '.join(model.routes)}",
            )
    samples = _samples(doc.get("samples", []), model, regimen)
    response = _response(doc["response"], model) if "response" in doc else None
    target = _target(doc["target"]) if "target" in doc else None
    options = _options(doc["options"], model) if "options" in doc else ()
    if target is not None and not options:
        bad("options", "a target needs the regimen shapes to dose (options)")
    if options and target is None:
        bad("target", "options need a target to dose them to")
    ceiling = doc.get("ceiling_ng_per_ml")
    if ceiling is not None:
        ceiling = number(ceiling, "ceiling_ng_per_ml", low=0, open_low=True, unit="ng/mL")
    protocol = _protocol(doc["protocol"], model) if "protocol" in doc else None
    conversions = (
        _conversions(doc["convert"], regimen, patient.weight_kg) if "convert" in doc else ()
    )
    settings = _settings(doc.get("settings", {}))
    return PersonaliseRequest(
        model=model,
        patient=patient,
        regimen=regimen,
        samples=samples,
        response=response,
        target=target,
        options=options,
        ceiling_ng_per_ml=ceiling,
        protocol=protocol,
        conversions=conversions,
        settings=settings,
    )


__all__ = [
    "ASSUMPTION_FIELDS",
    "SETTINGS_FIELDS",
    "TOP_FIELDS",
    "Conversion",
    "FitSettings",
    "Option",
    "PersonaliseRequest",
    "ResponseInput",
    "Target",
    "parse_request",
]
