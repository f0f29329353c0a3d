"""The PK/PD model library: one TOML file per model, validated on load.

A model file declares compartments, first-order flows between them (rate constants or
clearances), dosing routes (which compartment a dose enters, with which fraction and over
which zero-order duration), observed outputs (plasma, metabolite), effect sites and the
population the model was built on. Every parameter carries its unit and the key of its
source, and every source carries its citation. :func:`load_model` turns a file into a
frozen :class:`Model`; anything malformed raises :class:`~ketacare.core.errors.DataFileError`
naming the file and the entry.

Examples
--------
>>> model = load_model(model_id="domino")
>>> model.molecule, model.routes
('racemic ketamine', ('iv_bolus', 'iv_infusion'))
>>> model.parameter("k10").unit
'1/min'
>>> [m.id for m in list_models()][:2]
['clements-250', 'domino']
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ketacare.core.errors import DataFileError, UnknownItem

__all__ = [
    "KNOWN_ROUTES",
    "EffectSite",
    "Flow",
    "Model",
    "Parameter",
    "Population",
    "Route",
    "RoutePart",
    "Source",
    "list_models",
    "load_model",
    "load_model_file",
]

#: Routes a regimen may name; a model supports the subset it declares.
KNOWN_ROUTES = ("iv_bolus", "iv_infusion", "intranasal", "oral", "sublingual", "im")

MODELS_DIR = Path(__file__).parent / "models"

# unit -> (kind, factor to the internal unit); internal units are h, L, mg, L/h, 1/h.
_UNITS: dict[str, tuple[str, float]] = {
    "1/min": ("rate", 60.0),
    "1/h": ("rate", 1.0),
    "1/day": ("rate", 1.0 / 24.0),
    "L": ("volume", 1.0),
    "L/kg": ("volume", 1.0),
    "L/min": ("clearance", 60.0),
    "L/h": ("clearance", 1.0),
    "min": ("time", 1.0 / 60.0),
    "h": ("time", 1.0),
    "day": ("time", 24.0),
    "fraction": ("fraction", 1.0),
    "ng/mL": ("concentration", 1.0),
}


@dataclass(frozen=True, slots=True)
class Source:
    """A citation: who, when, where, and whether we read it ourselves."""

    key: str
    authors: str
    year: int
    title: str
    journal: str
    doi: str | None
    url: str | None
    verified: bool
    note: str | None

    def citation(self) -> str:
        """One-line citation: authors (year). title. journal. doi or url."""
        link = f"doi:{self.doi}" if self.doi else (self.url or "")
        return f"{self.authors} ({self.year}). {self.title}. {self.journal}. {link}".strip()


@dataclass(frozen=True, slots=True)
class Parameter:
    """A typical value with its unit, covariates, variability and source."""

    name: str
    value: float
    unit: str
    source: str
    where: str
    per_kg: bool = False
    logit: bool = False
    iiv_cv: float | None = None
    iiv_logit_sd: float | None = None
    age_slope: tuple[float, float] | None = None  # (age above which, change per year)

    @property
    def kind(self) -> str:
        """'rate', 'volume', 'clearance', 'time', 'fraction' or 'concentration'."""
        return _UNITS[self.unit][0]

    @property
    def factor(self) -> float:
        """Multiplier from the file's unit to the internal unit (h, L, L/h, 1/h)."""
        return _UNITS[self.unit][1]

    @property
    def omega(self) -> float | None:
        """SD of the between-patient random effect (log scale, or logit scale)."""
        if self.iiv_logit_sd is not None:
            return self.iiv_logit_sd
        if self.iiv_cv is not None:
            return math.sqrt(math.log1p(self.iiv_cv**2))
        return None


@dataclass(frozen=True, slots=True)
class Flow:
    """First-order transfer ``source -> target`` (``target`` None: elimination)."""

    source: str
    target: str | None
    rate: str | None
    clearance: str | None


@dataclass(frozen=True, slots=True)
class RoutePart:
    """One destination of a dose: compartment, fraction factors, zero-order duration."""

    to: str
    fraction: tuple[str, ...] = ()
    duration: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """How a route's dose enters the model.

    A device route (``spray_mg`` set: esketamine nasal spray) also names the time between
    the devices of one dose (``device_interval``) and how far apart two devices may be and
    still belong to one dose (``dose_window``); see :func:`~ketacare.core.pharmacology.
    simulate.dose_inputs` for the rule.
    """

    name: str
    parts: tuple[RoutePart, ...]
    spray_mg: float | None = None
    spray_fraction: str | None = None
    spray_factor: str | None = None
    device_interval: str | None = None
    dose_window: str | None = None


@dataclass(frozen=True, slots=True)
class EffectSite:
    """A hypothetical effect compartment: dCe/dt = ke0 (Cp - Ce)."""

    id: str
    description: str
    driver: str
    ke0: str | None
    t_half: str | None
    c50: str | None


@dataclass(frozen=True, slots=True)
class Population:
    """The population a model was estimated in (ranges are inclusive)."""

    description: str
    age_years: tuple[float, float] | None
    weight_kg: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class Model:
    """A validated PK/PD model from the library."""

    id: str
    name: str
    molecule: str
    metabolite: str | None
    verified: bool
    notes: str
    sources: tuple[Source, ...]
    population: Population
    compartments: tuple[str, ...]
    volumes: tuple[tuple[str, str], ...]
    parameters: tuple[Parameter, ...]
    flows: tuple[Flow, ...]
    plasma: str
    metabolite_compartment: str | None
    route_specs: tuple[Route, ...]
    effect_sites: tuple[EffectSite, ...]
    path: str

    @property
    def routes(self) -> tuple[str, ...]:
        """Names of the routes this model supports."""
        return tuple(r.name for r in self.route_specs)

    @property
    def has_variability(self) -> bool:
        """True when at least one parameter has published inter-individual variability."""
        return any(p.omega is not None for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise UnknownItem(f"parameter of model {self.id}", name, [p.name for p in self.parameters])

    def route(self, name: str) -> Route:
        """The route called ``name``; an unsupported route raises UnknownItem."""
        for r in self.route_specs:
            if r.name == name:
                return r
        raise UnknownItem(f"route for model {self.id}", name, list(self.routes))

    def source(self, key: str) -> Source:
        """The source with key ``key``."""
        for s in self.sources:
            if s.key == key:
                return s
        raise UnknownItem(f"source of model {self.id}", key, [s.key for s in self.sources])

    def volume_of(self, compartment: str) -> str | None:
        """Name of the volume parameter of ``compartment`` (None if it has none)."""
        return dict(self.volumes).get(compartment)

    @property
    def primary_source(self) -> Source:
        """The first source listed in the file."""
        return self.sources[0]


class _Reader:
    """Small helpers that turn malformed data into one clear DataFileError."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> DataFileError:
        return DataFileError(f"model file {self.path.name}: {where}: {problem}")

    def table(self, data: Any, where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, "must be a table")
        return data

    def keys(
        self, data: dict[str, Any], where: str, required: set[str], optional: set[str]
    ) -> None:
        missing = required - data.keys()
        if missing:
            raise self.fail(where, f"missing {', '.join(sorted(missing))}")
        extra = data.keys() - required - optional
        if extra:
            raise self.fail(where, f"unknown key {', '.join(sorted(extra))}")

    def text(self, data: dict[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"{key} must be a non-empty string")
        return value

    def opt_text(self, data: dict[str, Any], key: str, where: str) -> str | None:
        return None if key not in data else self.text(data, key, where)

    def number(self, value: Any, where: str, *, positive: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or (positive and number <= 0):
            raise self.fail(where, f"must be a positive finite number, got {value!r}")
        return number

    def range(self, value: Any, where: str) -> tuple[float, float] | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(where, "must be [low, high]")
        low, high = (self.number(v, where) for v in value)
        if low > high:
            raise self.fail(where, f"low {low} is above high {high}")
        return (low, high)


def _read_sources(r: _Reader, data: Any) -> tuple[Source, ...]:
    sources = []
    for key, raw in r.table(data, "sources").items():
        where = f"sources.{key}"
        entry = r.table(raw, where)
        r.keys(
            entry,
            where,
            {"authors", "year", "title", "journal", "verified"},
            {"doi", "url", "note"},
        )
        if "doi" not in entry and "url" not in entry:
            raise r.fail(where, "needs a doi or a url")
        year = entry["year"]
        if not isinstance(year, int) or not 1900 < year < 2100:
            raise r.fail(where, f"year must be an integer year, got {year!r}")
        if not isinstance(entry["verified"], bool):
            raise r.fail(where, "verified must be true or false")
        sources.append(
            Source(
                key=key,
                authors=r.text(entry, "authors", where),
                year=year,
                title=r.text(entry, "title", where),
                journal=r.text(entry, "journal", where),
                doi=r.opt_text(entry, "doi", where),
                url=r.opt_text(entry, "url", where),
                verified=entry["verified"],
                note=r.opt_text(entry, "note", where),
            )
        )
    if not sources:
        raise r.fail("sources", "at least one source is required")
    return tuple(sources)


def _read_parameter(r: _Reader, name: str, raw: Any, source_keys: set[str]) -> Parameter:
    where = f"parameters.{name}"
    entry = r.table(raw, where)
    optional = {"scale", "transform", "iiv_cv", "iiv_logit_sd", "age_slope_above"}
    r.keys(entry, where, {"value", "unit", "source", "where"}, optional)
    unit = r.text(entry, "unit", where)
    if unit not in _UNITS:
        raise r.fail(where, f"unknown unit {unit!r}: known are {', '.join(sorted(_UNITS))}")
    if entry["source"] not in source_keys:
        raise r.fail(where, f"source {entry['source']!r} is not in [sources]")
    value = r.number(entry["value"], f"{where}.value")
    scale = entry.get("scale")
    if scale not in (None, "weight"):
        raise r.fail(where, f"scale must be 'weight', got {scale!r}")
    if (scale == "weight") != (unit == "L/kg"):
        raise r.fail(where, "unit L/kg goes with scale = 'weight' (and only with it)")
    transform = entry.get("transform")
    if transform not in (None, "logit"):
        raise r.fail(where, f"transform must be 'logit', got {transform!r}")
    if transform == "logit" and not (unit == "fraction" and 0 < value < 1):
        raise r.fail(where, "a logit parameter must be a fraction strictly between 0 and 1")
    if unit == "fraction" and value > 1:
        raise r.fail(where, f"a fraction must be at most 1, got {value}")
    iiv_cv = entry.get("iiv_cv")
    iiv_sd = entry.get("iiv_logit_sd")
    if iiv_cv is not None:
        iiv_cv = r.number(iiv_cv, f"{where}.iiv_cv")
        if transform == "logit":
            raise r.fail(where, "a logit parameter takes iiv_logit_sd, not iiv_cv")
    if iiv_sd is not None:
        iiv_sd = r.number(iiv_sd, f"{where}.iiv_logit_sd")
        if transform != "logit":
            raise r.fail(where, "iiv_logit_sd needs transform = 'logit'")
    age_slope = None
    if "age_slope_above" in entry:
        slope = r.table(entry["age_slope_above"], f"{where}.age_slope_above")
        r.keys(slope, f"{where}.age_slope_above", {"age_years", "per_year"}, set())
        age_slope = (
            r.number(slope["age_years"], f"{where}.age_slope_above.age_years"),
            r.number(slope["per_year"], f"{where}.age_slope_above.per_year", positive=False),
        )
    return Parameter(
        name=name,
        value=value,
        unit=unit,
        source=entry["source"],
        where=r.text(entry, "where", where),
        per_kg=scale == "weight",
        logit=transform == "logit",
        iiv_cv=iiv_cv,
        iiv_logit_sd=iiv_sd,
        age_slope=age_slope,
    )


def _expect_param(
    r: _Reader, params: dict[str, Parameter], name: Any, kinds: set[str], where: str
) -> str:
    if not isinstance(name, str) or name not in params:
        raise r.fail(where, f"{name!r} is not a parameter of this model")
    if params[name].kind not in kinds:
        raise r.fail(where, f"parameter {name} has unit {params[name].unit}, expected {kinds}")
    return name


def _read_flows(
    r: _Reader,
    data: Any,
    comps: tuple[str, ...],
    params: dict[str, Parameter],
    volumes: dict[str, str],
) -> tuple[Flow, ...]:
    if not isinstance(data, list) or not data:
        raise r.fail("flows", "must be a non-empty list of [[flows]] tables")
    flows = []
    for i, raw in enumerate(data):
        where = f"flows[{i}]"
        entry = r.table(raw, where)
        r.keys(entry, where, {"from"}, {"to", "rate", "clearance"})
        source, target = entry["from"], entry.get("to")
        for name in (source, target):
            if name is not None and name not in comps:
                raise r.fail(where, f"unknown compartment {name!r}")
        if source == target:
            raise r.fail(where, "a flow cannot return to its own compartment")
        if ("rate" in entry) == ("clearance" in entry):
            raise r.fail(where, "give exactly one of rate or clearance")
        rate = clearance = None
        if "rate" in entry:
            rate = _expect_param(r, params, entry["rate"], {"rate"}, where)
        else:
            clearance = _expect_param(r, params, entry["clearance"], {"clearance"}, where)
            if source not in volumes:
                raise r.fail(where, f"a clearance flow needs a volume on compartment {source}")
        flows.append(Flow(source=source, target=target, rate=rate, clearance=clearance))
    return tuple(flows)


def _read_routes(
    r: _Reader, data: Any, comps: tuple[str, ...], params: dict[str, Parameter]
) -> tuple[Route, ...]:
    routes = []
    for name, raw in r.table(data, "routes").items():
        where = f"routes.{name}"
        if name not in KNOWN_ROUTES:
            raise r.fail(where, f"unknown route: known are {', '.join(KNOWN_ROUTES)}")
        entry = r.table(raw, where)
        r.keys(
            entry,
            where,
            {"parts"},
            {"spray_mg", "spray_fraction", "spray_factor", "device_interval", "dose_window"},
        )
        if not isinstance(entry["parts"], list) or not entry["parts"]:
            raise r.fail(where, "parts must be a non-empty list")
        parts = []
        for j, raw_part in enumerate(entry["parts"]):
            pwhere = f"{where}.parts[{j}]"
            part = r.table(raw_part, pwhere)
            r.keys(part, pwhere, {"to"}, {"fraction", "duration"})
            if part["to"] not in comps:
                raise r.fail(pwhere, f"unknown compartment {part['to']!r}")
            fraction = part.get("fraction", [])
            if not isinstance(fraction, list):
                raise r.fail(pwhere, "fraction must be a list of parameter names (or '1-NAME')")
            for factor in fraction:
                base = factor[2:] if isinstance(factor, str) and factor.startswith("1-") else factor
                _expect_param(r, params, base, {"fraction"}, pwhere)
            duration = part.get("duration")
            if duration is not None:
                _expect_param(r, params, duration, {"time"}, pwhere)
                if params[duration].omega is not None:
                    raise r.fail(pwhere, "a zero-order duration cannot have variability")
            if name in ("iv_bolus", "iv_infusion") and (fraction or duration):
                raise r.fail(pwhere, "IV routes take neither fraction nor duration")
            parts.append(RoutePart(to=part["to"], fraction=tuple(fraction), duration=duration))
        spray = entry.get("spray_mg")
        spray_fraction = entry.get("spray_fraction")
        spray_factor = entry.get("spray_factor")
        interval = entry.get("device_interval")
        window = entry.get("dose_window")
        if spray is not None:
            spray = r.number(spray, f"{where}.spray_mg")
            _expect_param(r, params, spray_fraction, {"fraction"}, where)
            _expect_param(r, params, spray_factor, {"fraction"}, where)
            # without these the devices of one dose cannot be told from a new dose
            if interval is None or window is None:
                raise r.fail(
                    where,
                    "a device route (spray_mg) needs device_interval (time between the devices "
                    "of one dose) and dose_window (how long after a device the next one still "
                    "belongs to the same dose), each a time parameter with its source",
                )
            checked = (
                _expect_param(r, params, interval, {"time"}, where),
                _expect_param(r, params, window, {"time"}, where),
            )
            for name_ in checked:
                if params[name_].omega is not None or params[name_].value <= 0:
                    raise r.fail(where, f"{name_} must be a positive time with no variability")
        elif any(x is not None for x in (spray_fraction, spray_factor, interval, window)):
            raise r.fail(
                where, "spray_fraction, spray_factor, device_interval and dose_window need spray_mg"
            )
        routes.append(
            Route(name, tuple(parts), spray, spray_fraction, spray_factor, interval, window)
        )
    if not routes:
        raise r.fail("routes", "at least one route is required")
    return tuple(routes)


def _read_effects(
    r: _Reader, data: Any, volumes: dict[str, str], params: dict[str, Parameter]
) -> tuple[EffectSite, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise r.fail("effect_sites", "must be a list of [[effect_sites]] tables")
    sites = []
    for i, raw in enumerate(data):
        where = f"effect_sites[{i}]"
        entry = r.table(raw, where)
        r.keys(entry, where, {"id", "description", "driver"}, {"ke0", "t_half", "c50"})
        if entry["driver"] not in volumes:
            raise r.fail(where, f"driver {entry['driver']!r} must be a compartment with a volume")
        if ("ke0" in entry) == ("t_half" in entry):
            raise r.fail(where, "give exactly one of ke0 or t_half")
        ke0 = t_half = c50 = None
        if "ke0" in entry:
            ke0 = _expect_param(r, params, entry["ke0"], {"rate"}, where)
        else:
            t_half = _expect_param(r, params, entry["t_half"], {"time"}, where)
        if "c50" in entry:
            c50 = _expect_param(r, params, entry["c50"], {"concentration"}, where)
        for name in (ke0, t_half):
            if name is not None and params[name].omega is not None:
                raise r.fail(where, "effect-site variability is not supported")
        sites.append(
            EffectSite(
                id=r.text(entry, "id", where),
                description=r.text(entry, "description", where),
                driver=entry["driver"],
                ke0=ke0,
                t_half=t_half,
                c50=c50,
            )
        )
    if len({s.id for s in sites}) != len(sites):
        raise r.fail("effect_sites", "ids must be unique")
    return tuple(sites)


def load_model_file(path: Path) -> Model:
    """Read and validate one model file.

    Parameters
    ----------
    path
        A TOML model file.

    Returns
    -------
    Model
        The validated model.

    Raises
    ------
    DataFileError
        When the file is not valid TOML or breaks any rule of the model format.

    Examples
    --------
    >>> load_model_file(MODELS_DIR / "domino.toml").id
    'domino'
    """
    r = _Reader(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataFileError(f"model file {path.name}: cannot be read: {exc}") from exc
    top_required = {"id", "name", "molecule", "verified", "time_unit", "notes", "sources"}
    top_required |= {"population", "compartments", "parameters", "flows", "outputs", "routes"}
    r.keys(data, "top level", top_required, {"metabolite", "effect_sites"})
    sources = _read_sources(r, data["sources"])
    source_keys = {s.key for s in sources}
    params_raw = r.table(data["parameters"], "parameters")
    params = {name: _read_parameter(r, name, raw, source_keys) for name, raw in params_raw.items()}

    comps_raw = r.table(data["compartments"], "compartments")
    volumes: dict[str, str] = {}
    for comp, raw in comps_raw.items():
        entry = r.table(raw, f"compartments.{comp}")
        r.keys(entry, f"compartments.{comp}", set(), {"volume"})
        if "volume" in entry:
            volumes[comp] = _expect_param(
                r, params, entry["volume"], {"volume"}, f"compartments.{comp}"
            )
    comps = tuple(comps_raw)
    if not comps:
        raise r.fail("compartments", "at least one compartment is required")

    pop = r.table(data["population"], "population")
    r.keys(pop, "population", {"description"}, {"age_years", "weight_kg", "source"})
    if "source" in pop and pop["source"] not in source_keys:
        raise r.fail("population", f"source {pop['source']!r} is not in [sources]")
    population = Population(
        description=r.text(pop, "description", "population"),
        age_years=r.range(pop.get("age_years"), "population.age_years"),
        weight_kg=r.range(pop.get("weight_kg"), "population.weight_kg"),
    )

    outputs = r.table(data["outputs"], "outputs")
    r.keys(outputs, "outputs", {"plasma"}, {"metabolite"})
    for key, comp in outputs.items():
        if comp not in volumes:
            raise r.fail(f"outputs.{key}", f"{comp!r} must be a compartment with a volume")
    metabolite = data.get("metabolite")
    if (metabolite is None) != ("metabolite" not in outputs):
        raise r.fail("outputs", "a metabolite name and a metabolite output go together")
    if data["time_unit"] not in ("min", "h"):
        raise r.fail("time_unit", "must be 'min' or 'h'")
    if not isinstance(data["verified"], bool):
        raise r.fail("verified", "must be true or false")

    model = Model(
        id=r.text(data, "id", "id"),
        name=r.text(data, "name", "name"),
        molecule=r.text(data, "molecule", "molecule"),
        metabolite=metabolite,
        verified=data["verified"],
        notes=" ".join(r.text(data, "notes", "notes").split()),
        sources=sources,
        population=population,
        compartments=comps,
        volumes=tuple(volumes.items()),
        parameters=tuple(params.values()),
        flows=_read_flows(r, data["flows"], comps, params, volumes),
        plasma=outputs["plasma"],
        metabolite_compartment=outputs.get("metabolite"),
        route_specs=_read_routes(r, data["routes"], comps, params),
        effect_sites=_read_effects(r, data.get("effect_sites"), volumes, params),
        path=str(path),
    )
    _check_stable(r, model)
    return model


def _check_stable(r: _Reader, model: Model) -> None:
    """Refuse a model whose typical system does not drain: every eigenvalue must be < 0."""
    import numpy as np

    from ketacare.core.pharmacology.system import build_matrices, typical_parameters

    values = typical_parameters(model, weight_kg=70.0, age_years=None)
    system = build_matrices(model, values)
    eigenvalues = np.linalg.eigvals(system.a[0])
    if np.any(eigenvalues.real >= 0) or np.any(np.abs(eigenvalues.imag) > 1e-9):
        raise r.fail("flows", "every compartment must drain (some eigenvalue is not negative real)")


@cache
def _library() -> dict[str, Model]:
    models = {}
    for path in sorted(MODELS_DIR.glob("*.toml")):
        model = load_model_file(path)
        if model.id in models:
            raise DataFileError(f"model file {path.name}: duplicate model id {model.id!r}")
        models[model.id] = model
    return models


def list_models() -> tuple[Model, ...]:
    """Every model in the library, sorted by id.

    Examples
    --------
    >>> "perez-ruixo-2021" in [m.id for m in list_models()]
    True
    """
    return tuple(sorted(_library().values(), key=lambda m: m.id))


def load_model(*, model_id: str) -> Model:
    """The library model ``model_id``; an unknown id raises UnknownItem.

    Examples
    --------
    >>> load_model(model_id="nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.UnknownItem: unknown model 'nope': known are clements-250, domino, ...
    """
    library = _library()
    if model_id not in library:
        raise UnknownItem("model", model_id, list(library))
    return library[model_id]
