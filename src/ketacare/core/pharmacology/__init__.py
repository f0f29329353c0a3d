"""Pharmacology engine: ketamine PK/PD models as data, exact simulation, populations.

Pure numpy/scipy: nothing here reads the clock, the environment or a database.

Public API
----------
- :func:`list_models`, :func:`load_model`: the model library (TOML files in ``models/``).
- :func:`parse_regimen`: a regimen from its JSON form (design document).
- :class:`Patient`, :func:`simulate`: typical-patient curves and metrics.
- :func:`simulate_population`: percentile bands across virtual patients.
- :func:`list_bioavailability`, :func:`bioavailability`: route bioavailabilities as
  distributions with their sources.

Examples
--------
>>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate
>>> r = parse_regimen({"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 35}]},
...                   weight_kg=70)
>>> s = simulate(model=load_model(model_id="domino"), patient=Patient(weight_kg=70),
...              regimen=r, hours=1)
>>> round(float(s.plasma_ng_per_ml[0]), 1)  # 35 mg into V1 = 4.41 L
7936.5

Each name is imported from its module on first use, so that reading the model library
(``ketacare models``) loads neither numpy nor scipy, and a simulation does not load the
individualisation's optimiser.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ketacare.core.pharmacology.bioavailability import (
        Bioavailability,
        bioavailability,
        list_bioavailability,
    )
    from ketacare.core.pharmacology.convert import RouteConversion, convert_route
    from ketacare.core.pharmacology.individual.fit import (
        IndividualFit,
        IndividualParameter,
        fit_individual,
    )
    from ketacare.core.pharmacology.individual.inputs import (
        ResidualError,
        Sample,
        published_residual_error,
    )
    from ketacare.core.pharmacology.individual.predict import (
        IndividualPrediction,
        predict_at,
        predict_individual,
    )
    from ketacare.core.pharmacology.individual.response import (
        PainScore,
        ResponseAssumptions,
        ResponseFit,
        ResponsePrediction,
        fit_response,
        predict_response,
    )
    from ketacare.core.pharmacology.models import KNOWN_ROUTES, Model, list_models, load_model
    from ketacare.core.pharmacology.population import PopulationResult, simulate_population
    from ketacare.core.pharmacology.recommend import (
        AucTarget,
        AverageConcentrationTarget,
        IvOption,
        LimitFinding,
        Recommendation,
        RepeatedOption,
        SimpleLimits,
        WindowTarget,
        recommend,
    )
    from ketacare.core.pharmacology.regimen import Dose, Regimen, make_regimen, parse_regimen
    from ketacare.core.pharmacology.simulate import (
        Metrics,
        Patient,
        Simulation,
        check_patient,
        simulate,
    )


#: module (under this package) -> the public names it provides
_EXPORTS: dict[str, tuple[str, ...]] = {
    "bioavailability": ("Bioavailability", "bioavailability", "list_bioavailability"),
    "convert": ("RouteConversion", "convert_route"),
    "individual.fit": ("IndividualFit", "IndividualParameter", "fit_individual"),
    "individual.inputs": ("ResidualError", "Sample", "published_residual_error"),
    "individual.predict": ("IndividualPrediction", "predict_at", "predict_individual"),
    "individual.response": (
        "PainScore",
        "ResponseAssumptions",
        "ResponseFit",
        "ResponsePrediction",
        "fit_response",
        "predict_response",
    ),
    "models": ("KNOWN_ROUTES", "Model", "list_models", "load_model"),
    "recommend": (
        "AucTarget",
        "AverageConcentrationTarget",
        "IvOption",
        "LimitFinding",
        "Recommendation",
        "RepeatedOption",
        "SimpleLimits",
        "WindowTarget",
        "recommend",
    ),
    "regimen": ("Dose", "Regimen", "make_regimen", "parse_regimen"),
    "population": ("PopulationResult", "simulate_population"),
    "simulate": ("Metrics", "Patient", "Simulation", "check_patient", "simulate"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


class _Package(types.ModuleType):
    """This package's module object: the function ``simulate`` (``recommend``,
    ``bioavailability``) stays what ``ketacare.core.pharmacology.simulate`` names here.

    Importing a submodule binds it on its package; three submodules share their name with
    the function they export, and the function, loaded on first use, keeps the name.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _MODULE_OF.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "KNOWN_ROUTES",
    "Bioavailability",
    "Dose",
    "Metrics",
    "Model",
    "Patient",
    "PopulationResult",
    "Regimen",
    "Simulation",
    "bioavailability",
    "check_patient",
    "list_bioavailability",
    "list_models",
    "load_model",
    "make_regimen",
    "parse_regimen",
    "simulate",
    "simulate_population",
    "AucTarget",
    "AverageConcentrationTarget",
    "IndividualFit",
    "IndividualParameter",
    "IndividualPrediction",
    "IvOption",
    "LimitFinding",
    "PainScore",
    "Recommendation",
    "RepeatedOption",
    "ResidualError",
    "ResponseAssumptions",
    "ResponseFit",
    "ResponsePrediction",
    "RouteConversion",
    "Sample",
    "SimpleLimits",
    "WindowTarget",
    "convert_route",
    "fit_individual",
    "fit_response",
    "predict_at",
    "predict_individual",
    "predict_response",
    "published_residual_error",
    "recommend",
]
