"""API shapes of the clinic dashboard (aggregates only: no patient is named)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ketacare.clinic.analytics.service import Curve, Dashboard, GroupRow
from ketacare.core.outcomes import Definition, Rate


class RateOut(BaseModel):
    """A proportion with its numerator, denominator and Wilson score interval."""

    numerator: int | None = Field(description="None: withheld from a research reader")
    denominator: int | None = Field(description="None: withheld from a research reader")
    value: float | None = Field(description="None when the denominator is 0, or withheld")
    lower: float | None
    upper: float | None

    @classmethod
    def of(cls, rate: Rate, *, shown: bool = True) -> RateOut:
        if not shown:
            return cls(numerator=None, denominator=None, value=None, lower=None, upper=None)
        return cls(
            numerator=rate.numerator,
            denominator=rate.denominator,
            value=rate.value,
            lower=rate.lower,
            upper=rate.upper,
        )


class GroupOut(BaseModel):
    """One group's patients by what could be judged, and its rates.

    For a research reader a count from 1 to 10, and any figure it could be derived from,
    is None (withheld; see ``parameters.research_smallest_count_shown``).
    """

    kind: Literal["all", "condition", "protocol"]
    key: str | None
    label: str
    treated: int | None = Field(description="patients of the cohort (a dose given)")
    no_baseline: int | None
    not_eligible: int | None = Field(description="a baseline the definition does not assess")
    no_follow_up: int | None
    eligible: int | None
    judgeable: int | None = Field(description="an eligible baseline and at least one follow-up")
    responders: int | None = Field(description="met the definition at any follow-up")
    at_last: int | None = Field(description="met the definition at the last follow-up")
    lost_to_follow_up: int | None = Field(description="None: no follow-up window set, or withheld")
    lost_unjudged: int | None = Field(description="lost patients who could not be judged")
    rate_judgeable: RateOut = Field(description="responders / judgeable")
    rate_eligible: RateOut = Field(
        description="responders / eligible (no follow-up counts as no response)"
    )
    rate_at_last: RateOut = Field(description="met at the last follow-up / judgeable")
    completeness: RateOut = Field(description="judgeable / treated")

    @classmethod
    def of(cls, row: GroupRow) -> GroupOut:
        c = row.counts

        def n(figure: str, value: int) -> int | None:
            return value if row.shown(figure) else None

        def rate(name: str) -> RateOut:
            return RateOut.of(getattr(row, name), shown=row.shown(name))

        return cls(
            kind=row.kind,
            key=row.key,
            label=row.label,
            treated=n("treated", c.treated),
            no_baseline=n("no_baseline", c.no_baseline),
            not_eligible=n("not_eligible", c.not_eligible),
            no_follow_up=n("no_follow_up", c.no_follow_up),
            eligible=n("eligible", c.eligible),
            judgeable=n("judgeable", c.judgeable),
            responders=n("responders", c.responders),
            at_last=n("at_last", c.at_last),
            lost_to_follow_up=n("lost", c.lost) if row.lost_computed else None,
            lost_unjudged=n("lost_unjudged", c.lost_unjudged) if row.lost_computed else None,
            rate_judgeable=rate("rate_judgeable"),
            rate_eligible=rate("rate_eligible"),
            rate_at_last=rate("rate_at_last"),
            completeness=rate("completeness"),
        )


class SourceOut(BaseModel):
    citation: str
    url: str
    doi: str | None


class DefinitionOut(BaseModel):
    id: str
    role: str
    measure: str
    label: str
    short: str
    sources: list[SourceOut]

    @classmethod
    def of(cls, d: Definition) -> DefinitionOut:
        return cls(
            id=d.id,
            role=d.role,
            measure=d.measure,
            label=d.label,
            short=d.short,
            sources=[SourceOut(citation=s.citation, url=s.url, doi=s.doi) for s in d.sources],
        )


class CurveOut(BaseModel):
    """A Kaplan-Meier step table: S(t) from ``time_days[i]`` until the next time."""

    key: str | None
    label: str
    n: int
    events: int
    median_days: float | None
    median_lower_days: float | None
    median_upper_days: float | None
    time_days: list[float]
    at_risk: list[int]
    survival: list[float]
    lower: list[float]
    upper: list[float]

    @classmethod
    def of(cls, curve: Curve) -> CurveOut:
        km = curve.km
        return cls(
            key=curve.key,
            label=curve.label,
            n=km.n,
            events=km.n_events,
            median_days=km.median,
            median_lower_days=km.median_lower,
            median_upper_days=km.median_upper,
            time_days=km.time.tolist(),
            at_risk=km.at_risk.tolist(),
            survival=km.survival.tolist(),
            lower=km.lower.tolist(),
            upper=km.upper.tolist(),
        )


class DefinitionOutcomes(BaseModel):
    definition: DefinitionOut
    overall: GroupOut
    by_condition: list[GroupOut]
    by_protocol: list[GroupOut]


class DefinitionDurability(BaseModel):
    definition_id: str
    computed: bool
    curves: list[CurveOut]


class OptionOut(BaseModel):
    key: str
    label: str


class MethodOut(BaseModel):
    method: str
    citation: str
    doi: str | None
    url: str | None


class FiltersOut(BaseModel):
    started_from: str | None
    started_to: str | None
    condition: str | None
    protocol: str | None
    lost_after_days: int | None
    split: str


class ParametersOut(BaseModel):
    as_of: datetime
    confidence: float
    lost_after_days: int | None = Field(description="the follow-up window applied")
    lost_after_source: str | None = Field(description="'filter', 'clinic setting' or None")
    loss_confirmations: int | None = Field(description="the clinic's setting (site policy)")
    summary_loss_confirmations: int | None = Field(
        description="the setting the summary was judged with (last whole-clinic refresh)"
    )
    durability_computed: bool
    last_refresh_at: datetime | None
    notes: list[str]
    research_smallest_count_shown: int | None = Field(
        description="set: a research reader's view (consented patients only; no count from "
        "1 to this less one, directly or by subtraction)"
    )


def _parameters(d: Dashboard) -> ParametersOut:
    return ParametersOut(
        as_of=d.as_of,
        confidence=d.statistics.confidence,
        lost_after_days=d.lost_after_days,
        lost_after_source=d.lost_after_source,
        loss_confirmations=d.state.settings_loss_confirmations,
        summary_loss_confirmations=d.state.summary_loss_confirmations,
        durability_computed=d.state.durability_computed,
        last_refresh_at=d.state.last_run_at,
        notes=[*d.rules, *d.notes],
        research_smallest_count_shown=d.research.smallest_shown if d.research else None,
    )


class OutcomesOut(BaseModel):
    """Rates and completeness by definition, overall and by condition and protocol."""

    parameters: ParametersOut
    filters: FiltersOut
    conditions: list[OptionOut]
    protocols: list[OptionOut]
    definitions: list[DefinitionOutcomes]
    methods: list[MethodOut]

    @classmethod
    def of(cls, d: Dashboard) -> OutcomesOut:
        return cls(
            parameters=_parameters(d),
            filters=FiltersOut(**d.filters.as_dict()),
            conditions=[OptionOut(key=k, label=v) for k, v in d.conditions],
            protocols=[OptionOut(key=k, label=v) for k, v in d.protocols],
            definitions=[
                DefinitionOutcomes(
                    definition=DefinitionOut.of(r.definition),
                    overall=GroupOut.of(r.overall),
                    by_condition=[GroupOut.of(g) for g in r.by_condition],
                    by_protocol=[GroupOut.of(g) for g in r.by_protocol],
                )
                for r in d.results
            ],
            methods=[
                MethodOut(method=m.method, citation=m.citation, doi=m.doi, url=m.url)
                for m in d.statistics.sources
            ],
        )


class DurabilityOut(BaseModel):
    """Kaplan-Meier curves of the durability of response, with Greenwood bands."""

    parameters: ParametersOut
    filters: FiltersOut
    definitions: list[DefinitionDurability]

    @classmethod
    def of(cls, d: Dashboard) -> DurabilityOut:
        return cls(
            parameters=_parameters(d),
            filters=FiltersOut(**d.filters.as_dict()),
            definitions=[
                DefinitionDurability(
                    definition_id=r.definition.id,
                    computed=d.state.durability_computed,
                    curves=[CurveOut.of(c) for c in r.curves],
                )
                for r in d.results
            ],
        )
