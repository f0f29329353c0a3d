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
"""

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
    PopulationResult,
    Simulation,
    check_patient,
    simulate,
    simulate_population,
)

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
