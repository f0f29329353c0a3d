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
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import DataFileError, UnknownItem
from ketacare.core.sources import Source

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
_KIND = "model"

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
    label: str  # a short name for charts and tables
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
    #: covariate effects the source estimated that ketacare cannot apply (the patient
    #: record lacks the covariate): each warned of whenever the model is used
    covariates_not_applied: tuple[str, ...]
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


def _read_parameter(r: Reader, name: str, source_keys: set[str]) -> Parameter:
    optional = {"scale", "transform", "iiv_cv", "iiv_logit_sd", "age_slope_above"}
    r.fields(required={"value", "unit", "source", "where"}, optional=optional)
    unit = r.choice("unit", sorted(_UNITS))
    source = r.source_ref("source", source_keys)
    value = r.number("value", positive=True)
    scale = r.opt_text("scale")
    if scale not in (None, "weight"):
        raise r.fail("scale", f"{scale!r} is not one of weight")
    if (scale == "weight") != (unit == "L/kg"):
        raise r.fail("scale", "unit L/kg goes with scale = 'weight' (and only with it)")
    transform = r.opt_text("transform")
    if transform not in (None, "logit"):
        raise r.fail("transform", f"{transform!r} is not one of logit")
    if transform == "logit" and not (unit == "fraction" and 0 < value < 1):
        raise r.fail("value", "a logit parameter must be a fraction strictly between 0 and 1")
    if unit == "fraction" and value > 1:
        raise r.fail("value", f"a fraction must be at most 1, got {value}")
    iiv_cv = r.opt_number("iiv_cv", positive=True)
    if iiv_cv is not None and transform == "logit":
        raise r.fail("iiv_cv", "a logit parameter takes iiv_logit_sd, not iiv_cv")
    iiv_sd = r.opt_number("iiv_logit_sd", positive=True)
    if iiv_sd is not None and transform != "logit":
        raise r.fail("iiv_logit_sd", "iiv_logit_sd needs transform = 'logit'")
    age_slope = None
    slope = r.opt_sub("age_slope_above")
    if slope is not None:
        slope.fields(required={"age_years", "per_year"})
        age_slope = (slope.number("age_years", positive=True), slope.number("per_year"))
    return Parameter(
        name=name,
        value=value,
        unit=unit,
        source=source,
        where=r.text("where"),
        per_kg=scale == "weight",
        logit=transform == "logit",
        iiv_cv=iiv_cv,
        iiv_logit_sd=iiv_sd,
        age_slope=age_slope,
    )


def _expect_param(
    r: Reader, params: dict[str, Parameter], field: str, kinds: set[str], name: Any = None
) -> str:
    """The parameter ``field`` names (or ``name``, an element of a list field)."""
    if name is None:
        name = r.text(field)
    if not isinstance(name, str) or name not in params:
        raise r.fail(field, f"{name!r} is not a parameter of this model")
    if params[name].kind not in kinds:
        raise r.fail(field, f"parameter {name} has unit {params[name].unit}, expected {kinds}")
    return name


def _read_flows(
    top: Reader,
    comps: tuple[str, ...],
    params: dict[str, Parameter],
    volumes: dict[str, str],
) -> tuple[Flow, ...]:
    flows = []
    for r in top.tables("flows", required=True):
        r.fields(required={"from"}, optional={"to", "rate", "clearance"})
        source = r.choice("from", comps)
        target = r.choice("to", comps) if r.has("to") else None
        if source == target:
            raise r.fail("to", "a flow cannot return to its own compartment")
        if r.has("rate") == r.has("clearance"):
            raise r.fail("", "give exactly one of rate or clearance")
        rate = clearance = None
        if r.has("rate"):
            rate = _expect_param(r, params, "rate", {"rate"})
        else:
            clearance = _expect_param(r, params, "clearance", {"clearance"})
            if source not in volumes:
                raise r.fail(
                    "clearance", f"a clearance flow needs a volume on compartment {source}"
                )
        flows.append(Flow(source=source, target=target, rate=rate, clearance=clearance))
    return tuple(flows)


def _read_parts(
    r: Reader, route: str, comps: tuple[str, ...], params: dict[str, Parameter]
) -> tuple[RoutePart, ...]:
    parts = []
    for part in r.tables("parts", required=True):
        part.fields(required={"to"}, optional={"fraction", "duration"})
        fraction = part.strings("fraction", default=())
        for factor in fraction:
            base = factor[2:] if factor.startswith("1-") else factor
            _expect_param(part, params, "fraction", {"fraction"}, base)
        duration = None
        if part.has("duration"):
            duration = _expect_param(part, params, "duration", {"time"})
            if params[duration].omega is not None:
                raise part.fail("duration", "a zero-order duration cannot have variability")
        if route in ("iv_bolus", "iv_infusion") and (fraction or duration):
            raise part.fail("", "IV routes take neither fraction nor duration")
        parts.append(RoutePart(to=part.choice("to", comps), fraction=fraction, duration=duration))
    return tuple(parts)


def _read_routes(
    top: Reader, comps: tuple[str, ...], params: dict[str, Parameter]
) -> tuple[Route, ...]:
    routes = []
    device = ("spray_fraction", "spray_factor", "device_interval", "dose_window")
    for name, r in top.named_tables("routes"):
        if name not in KNOWN_ROUTES:
            raise r.fail("", f"unknown route {name!r}: known are {', '.join(KNOWN_ROUTES)}")
        r.fields(required={"parts"}, optional={"spray_mg", *device})
        parts = _read_parts(r, name, comps, params)
        spray = r.opt_number("spray_mg", positive=True)
        names: dict[str, str | None] = dict.fromkeys(device)
        if spray is not None:
            # without the grouping rule the devices of one dose cannot be told from a new dose
            if not (r.has("device_interval") and r.has("dose_window")):
                raise r.fail(
                    "",
                    "a device route (spray_mg) needs device_interval (time between the devices "
                    "of one dose) and dose_window (how long after a device the next one still "
                    "belongs to the same dose), each a time parameter with its source",
                )
            for field in device:
                kind = {"fraction"} if field.startswith("spray") else {"time"}
                names[field] = _expect_param(r, params, field, kind)
            for field in ("device_interval", "dose_window"):
                timed = params[names[field] or ""]
                if timed.omega is not None or timed.value <= 0:
                    raise r.fail(field, f"{timed.name} must be a positive time with no variability")
        elif any(r.has(field) for field in device):
            raise r.fail(
                "", "spray_fraction, spray_factor, device_interval and dose_window need spray_mg"
            )
        routes.append(Route(name, parts, spray, *names.values()))
    if not routes:
        raise top.fail("routes", "at least one route is required")
    return tuple(routes)


def _read_effects(
    top: Reader, volumes: dict[str, str], params: dict[str, Parameter]
) -> tuple[EffectSite, ...]:
    sites = []
    for r in top.tables("effect_sites"):
        r.fields(
            required={"id", "label", "description", "driver"}, optional={"ke0", "t_half", "c50"}
        )
        driver = r.text("driver")
        if driver not in volumes:
            raise r.fail("driver", f"{driver!r} must be a compartment with a volume")
        if r.has("ke0") == r.has("t_half"):
            raise r.fail("", "give exactly one of ke0 or t_half")
        ke0 = t_half = c50 = None
        if r.has("ke0"):
            ke0 = _expect_param(r, params, "ke0", {"rate"})
        else:
            t_half = _expect_param(r, params, "t_half", {"time"})
        if r.has("c50"):
            c50 = _expect_param(r, params, "c50", {"concentration"})
        for name in (ke0, t_half):
            if name is not None and params[name].omega is not None:
                raise r.fail("", "effect-site variability is not supported")
        sites.append(
            EffectSite(
                id=r.text("id"),
                label=r.text("label"),
                description=r.text("description"),
                driver=driver,
                ke0=ke0,
                t_half=t_half,
                c50=c50,
            )
        )
    if len({s.id for s in sites}) != len(sites):
        raise top.fail("effect_sites", "ids must be unique")
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
    data = read_toml(path, kind=_KIND, name=path.name)
    top = Reader(kind=_KIND, path=path.name, table=data)
    top_required = {"id", "name", "molecule", "verified", "time_unit", "notes", "sources"}
    top_required |= {"population", "compartments", "parameters", "flows", "outputs", "routes"}
    top.fields(
        required=top_required, optional={"metabolite", "effect_sites", "covariates_not_applied"}
    )
    sources = top.sources(
        "sources",
        required={"authors", "year", "title", "journal", "verified"},
        optional={"doi", "url", "note"},
        keyed=True,
    )
    source_keys = set(sources)
    params = {
        name: _read_parameter(r, name, source_keys) for name, r in top.named_tables("parameters")
    }

    volumes: dict[str, str] = {}
    comp_tables = top.named_tables("compartments")
    for comp, r in comp_tables:
        r.only({"volume"})
        if r.has("volume"):
            volumes[comp] = _expect_param(r, params, "volume", {"volume"})
    comps = tuple(comp for comp, _ in comp_tables)
    if not comps:
        raise top.fail("compartments", "at least one compartment is required")

    pop = top.sub("population")
    pop.fields(required={"description"}, optional={"age_years", "weight_kg", "source"})
    pop.opt_source_ref("source", source_keys)
    population = Population(
        description=pop.text("description"),
        age_years=pop.interval("age_years", positive=True) if pop.has("age_years") else None,
        weight_kg=pop.interval("weight_kg", positive=True) if pop.has("weight_kg") else None,
    )

    outputs = top.sub("outputs")
    outputs.fields(required={"plasma"}, optional={"metabolite"})
    for key in outputs.table:
        if outputs.text(key) not in volumes:
            raise outputs.fail(key, f"{outputs.text(key)!r} must be a compartment with a volume")
    metabolite = top.opt_text("metabolite")
    if (metabolite is None) != (not outputs.has("metabolite")):
        raise top.fail("outputs", "a metabolite name and a metabolite output go together")
    top.choice("time_unit", ("min", "h"))

    model = Model(
        id=top.text("id"),
        name=top.text("name"),
        molecule=top.text("molecule"),
        metabolite=metabolite,
        verified=top.boolean("verified"),
        notes=" ".join(top.text("notes").split()),
        sources=tuple(sources.values()),
        population=population,
        covariates_not_applied=top.strings("covariates_not_applied", default=()),
        compartments=comps,
        volumes=tuple(volumes.items()),
        parameters=tuple(params.values()),
        flows=_read_flows(top, comps, params, volumes),
        plasma=outputs.text("plasma"),
        metabolite_compartment=outputs.opt_text("metabolite"),
        route_specs=_read_routes(top, comps, params),
        effect_sites=_read_effects(top, volumes, params),
        path=str(path),
    )
    _check_stable(top, model)
    return model


def _check_stable(top: Reader, model: Model) -> None:
    """Refuse a model whose typical system does not drain: every eigenvalue must be < 0.

    Decided from the flow graph in pure Python (:mod:`.stability`) when the structure
    settles it, as it does for every model in the library; otherwise numerically.
    """
    from ketacare.core.pharmacology.stability import NOT_DRAINING, model_drains

    if not model_drains(model):
        raise top.fail("flows", NOT_DRAINING)


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
    model = library[model_id]
    _checked_numerically(model.id)
    return model


@cache
def _checked_numerically(model_id: str) -> None:
    """Before a library model's first simulation, its eigenvalues too (once per process).

    The structural check already ran when the file was read; this one confirms it with
    numbers where a model is loaded to be simulated (listing the library skips it).
    """
    from ketacare.core.pharmacology.stability import NOT_DRAINING, eigenvalues_drain

    model = _library()[model_id]
    if not eigenvalues_drain(model):
        raise DataFileError(f"model file {model.path}: field 'flows': {NOT_DRAINING}")
