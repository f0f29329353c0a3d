"""Personalisation: this patient's pharmacokinetics from measured levels, and what follows.

The computation behind ``ketacare personalise`` and the Personalise page of a plan, in
three steps that both call:

- :func:`parse_request` checks an input document (docs/personalisation.md, "Command
  line") and returns a :class:`PersonaliseRequest` of typed values, or refuses with one
  line naming the field and what is allowed;
- :func:`compute` fits the individual parameters, predicts the curves with credible
  bands, fits the exploratory pain response, recommends regimens for a target under a
  protocol's limits and converts between routes (a :class:`PersonaliseOutcome`);
- :func:`to_document` gives the outcome as the command's ``--json`` document.

Pure: nothing here reads the clock, the environment, a database or a file other than
the shipped model and protocol data; printing and plotting belong to the command.

Examples
--------
>>> from ketacare.core.pharmacology.personalise import compute, parse_request, to_document
>>> doc = {
...     "model": "perez-ruixo-2021",
...     "patient": {"weight_kg": 72},
...     "doses": [{"route": "iv_infusion", "start_h": 0, "duration_h": 4,
...                "rate_mg_per_h": 20}],
...     "samples": [{"time_h": 2, "value_ng_per_ml": 62.0}],
...     "settings": {"n_draws": 0, "hours": 12, "step_min": 30},
... }
>>> result = to_document(outcome=compute(request=parse_request(doc=doc)))
>>> result["model"], result["fit"]["n_samples"], result["recommendations"]
('perez-ruixo-2021', 1, [])
"""

from ketacare.core.pharmacology.personalise.compute import (
    PersonaliseOutcome,
    compute,
    default_step,
)
from ketacare.core.pharmacology.personalise.document import to_document
from ketacare.core.pharmacology.personalise.limits import protocol_limit_check, protocol_route
from ketacare.core.pharmacology.personalise.request import (
    Conversion,
    FitSettings,
    Option,
    PersonaliseRequest,
    ResponseInput,
    Target,
    parse_request,
)

__all__ = [
    "Conversion",
    "FitSettings",
    "Option",
    "PersonaliseOutcome",
    "PersonaliseRequest",
    "ResponseInput",
    "Target",
    "compute",
    "default_step",
    "parse_request",
    "protocol_limit_check",
    "protocol_route",
    "to_document",
]
