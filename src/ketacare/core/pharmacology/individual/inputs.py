"""What individualisation is given: measured levels, and the residual error around them.

A sample is a plasma (parent) or metabolite level at a time from the first dose, or a result
below the lower limit of quantification. The residual error is the model's published one
(:func:`published_residual_error`) or one the caller gives, labelled user-supplied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.pharmacology.models import Model

__all__ = [
    "ANALYTES",
    "RESIDUAL_PARAMETERS",
    "ResidualError",
    "Sample",
    "check_samples",
    "published_residual_error",
]
#: What a sample can measure: the parent drug in plasma, or the model's metabolite.
ANALYTES = ("plasma", "metabolite")
#: Names of the residual-error parameters in a model file (SD of log concentration).
RESIDUAL_PARAMETERS = {
    "plasma": "residual_log_sd_plasma",
    "metabolite": "residual_log_sd_metabolite",
}


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured level. ``value_ng_per_ml=None`` means below the LLOQ (which is then required).

    Examples
    --------
    >>> Sample(time_h=4.0, value_ng_per_ml=None, lloq_ng_per_ml=1.0).below_lloq
    True
    """

    time_h: float
    value_ng_per_ml: float | None
    analyte: str = "plasma"
    lloq_ng_per_ml: float | None = None

    @property
    def below_lloq(self) -> bool:
        """True for a result reported as below the lower limit of quantification."""
        return self.value_ng_per_ml is None


@dataclass(frozen=True, slots=True)
class ResidualError:
    """Residual error: SD of log(observed) around log(predicted), per analyte.

    ``user_supplied`` is True when the caller gave it (no published value for the model).
    """

    plasma_log_sd: float | None
    metabolite_log_sd: float | None
    source: str
    user_supplied: bool

    def sd(self, analyte: str) -> float:
        """The SD for ``analyte``; InvalidInput when there is none."""
        value = self.plasma_log_sd if analyte == "plasma" else self.metabolite_log_sd
        if value is None:
            raise InvalidInput(f"no residual error for {analyte} samples ({self.source})")
        return value


def published_residual_error(*, model: Model) -> ResidualError:
    """The model's published residual error (parameters ``residual_log_sd_*`` of its file).

    Raises
    ------
    InvalidInput
        When the model has no published residual error.

    Examples
    --------
    >>> from ketacare.core.pharmacology import load_model
    >>> published_residual_error(model=load_model(model_id="perez-ruixo-2021")).plasma_log_sd
    0.276
    >>> published_residual_error(model=load_model(model_id="domino"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: model domino has no published residual error model...
    """
    names = {p.name for p in model.parameters}
    values: dict[str, float | None] = {}
    sources = []
    for analyte, name in RESIDUAL_PARAMETERS.items():
        if name in names:
            p = model.parameter(name)
            values[analyte] = p.value
            trace = model.source(p.source)
            primary = model.primary_source
            via = "" if trace.key == primary.key else f", as traced in {trace.citation}"
            sources.append(f"{primary.citation}{via} ({p.where})")
        else:
            values[analyte] = None
    if values["plasma"] is None and values["metabolite"] is None:
        raise InvalidInput(
            f"model {model.id} has no published residual error model, which Bayesian "
            "individualisation needs; give residual_error=ResidualError(..., "
            "user_supplied=True) explicitly, or use a model that publishes one"
        )
    return ResidualError(
        plasma_log_sd=values["plasma"],
        metabolite_log_sd=values["metabolite"],
        source="; ".join(sources),
        user_supplied=False,
    )


def check_samples(model: Model, samples: Sequence[Sample]) -> tuple[Sample, ...]:
    """The samples, each checked against ``model``; a clear error for the first bad one."""
    out = []
    for i, s in enumerate(samples):
        label = f"sample {i + 1}"
        if s.analyte not in ANALYTES:
            raise InvalidInput(f"{label} analyte must be one of {', '.join(ANALYTES)}")
        if s.analyte == "metabolite" and model.metabolite is None:
            raise InvalidInput(f"{label}: model {model.id} has no metabolite")
        if not (math.isfinite(s.time_h) and 0 <= s.time_h <= 24 * 366):
            raise OutOfRange(f"{label} time_h", s.time_h, "0 to 8784 h")
        if s.value_ng_per_ml is None:
            if s.lloq_ng_per_ml is None:
                raise InvalidInput(
                    f"{label} is below the LLOQ (no value) but gives no lloq_ng_per_ml"
                )
        elif not (math.isfinite(s.value_ng_per_ml) and s.value_ng_per_ml > 0):
            raise OutOfRange(f"{label} value_ng_per_ml", s.value_ng_per_ml, "more than 0 ng/mL")
        if s.lloq_ng_per_ml is not None and not s.lloq_ng_per_ml > 0:
            raise OutOfRange(f"{label} lloq_ng_per_ml", s.lloq_ng_per_ml, "more than 0 ng/mL")
        out.append(s)
    return tuple(out)
