"""Per-clinic outcomes over columnar numpy arrays (one row per measurement).

A registry is given as columns, not objects, so 100,000 patients with
5 million measurements are judged with a few sorts and bincounts:

- patients are positions ``0 .. n_patients - 1``;
- sessions: ``session_patient`` (int) and ``session_time`` (datetime64);
- measurements of one measure: ``patient``, ``time`` and ``value`` columns
  (:class:`MeasureColumns`); NaN values are missing and ignored.

Rules (the same as the per-patient ones in :mod:`ketacare.core.outcomes.patient`):

- **Treated**: at least one session at or before ``as_of``.
- **Baseline**: the last value at or before the first session (optionally no
  older than ``baseline_window``). **Follow-up**: values after the first session.
- **Judgeable**: an eligible baseline and at least one follow-up value.
- **Responder**: the definition met at any follow-up ("ever"); also reported:
  met at the last follow-up ("at last").
- **Lost to follow-up**: treated, and no value of the measure within
  ``lost_after`` before ``as_of`` (counting from the first session when nothing
  has been measured since). Lost patients stay in the denominators.
- **Loss of response**: after the first response, ``loss_confirmations``
  consecutive follow-ups that do not meet the definition; the loss is dated at
  the first of them. Durability runs from the first response to that date,
  censored at the last follow-up.
- **Ties**: scores sharing a timestamp keep their input order.
- **Date range**: ``started_from``/``started_to`` keep patients whose first
  session falls in the range (inclusive); data after ``as_of`` are ignored.

Examples
--------
>>> import numpy as np
>>> pain = MeasureColumns.build(patient=[0, 0, 1, 1], value=[8, 4, 6, 6],
...     time=["2026-01-01", "2026-01-10", "2026-01-01", "2026-01-10"])
>>> reg = Registry.build(n_patients=2, session_patient=[0, 1],
...     session_time=["2026-01-02", "2026-01-02"], measures={"nrs_pain": pain})
>>> out = clinic_outcomes(registry=reg, definition_id="pain-30", as_of="2026-01-20",
...     lost_after=np.timedelta64(30, "D"), loss_confirmations=2)
>>> row = out.rows[0]
>>> (row.treated, row.judgeable, row.responders_ever, row.rate_judgeable.value)
(2, 2, 1, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.outcomes.definitions import Definition, DefinitionLibrary, load_definitions
from ketacare.core.outcomes.survival import BandKind, KaplanMeier, kaplan_meier
from ketacare.core.outcomes.timeaxis import (
    SECONDS_PER_DAY,
    one_time,
    to_duration_seconds,
    to_seconds,
)

_NONE = np.iinfo(np.int64).max  # "no time" sentinel in int64 second columns

#: Per-patient status codes of :class:`PatientTable` (``status`` column).
NOT_IN_COHORT, NO_BASELINE, NOT_ELIGIBLE, NO_FOLLOW_UP, NON_RESPONDER, RESPONDER = range(6)
STATUS_NAMES = (
    "not_in_cohort",
    "no_baseline",
    "not_eligible",
    "no_follow_up",
    "non_responder",
    "responder",
)


@dataclass(frozen=True, slots=True, eq=False)
class MeasureColumns:
    """The measurements of one measure: three equal-length columns."""

    patient: NDArray[np.int64]
    time: NDArray[np.int64]
    value: NDArray[np.float64]

    @classmethod
    def build(cls, *, patient: ArrayLike, time: ArrayLike, value: ArrayLike) -> MeasureColumns:
        """Convert and check the columns (times to int64 seconds)."""
        p = np.asarray(patient, dtype=np.int64).ravel()
        t = to_seconds(time, field="measurement time")
        v = np.asarray(value, dtype=np.float64).ravel()
        if not p.size == t.size == v.size:
            raise InvalidInput(
                f"measurement columns differ in length: patient {p.size}, "
                f"time {t.size}, value {v.size}"
            )
        return cls(patient=p, time=t, value=v)


@dataclass(frozen=True, slots=True, eq=False)
class Registry:
    """A clinic's sessions and measurements as columns (see the module notes)."""

    n_patients: int
    session_patient: NDArray[np.int64]
    session_time: NDArray[np.int64]
    measures: Mapping[str, MeasureColumns]

    @classmethod
    def build(
        cls,
        *,
        n_patients: int,
        session_patient: ArrayLike,
        session_time: ArrayLike,
        measures: Mapping[str, MeasureColumns],
    ) -> Registry:
        """Convert and check the columns; patient positions must be in range."""
        if n_patients < 0:
            raise OutOfRange("n_patients", n_patients, ">= 0")
        sp = np.asarray(session_patient, dtype=np.int64).ravel()
        st = to_seconds(session_time, field="session time")
        if sp.size != st.size:
            raise InvalidInput(f"session columns differ in length: {sp.size} and {st.size}")
        for name, cols in [("session", sp), *((m, c.patient) for m, c in measures.items())]:
            if cols.size and (cols.min() < 0 or cols.max() >= n_patients):
                bad = cols[(cols < 0) | (cols >= n_patients)][0]
                raise OutOfRange(f"{name} patient", int(bad), f"0 to {n_patients - 1}")
        return cls(n_patients=n_patients, session_patient=sp, session_time=st, measures=measures)


@dataclass(frozen=True, slots=True, eq=False)
class PatientTable:
    """Per-patient results for one definition, as columns indexed by patient.

    Times are int64 seconds with ``_NONE`` (int64 max) for "none"; use the
    boolean columns to know which are set.
    """

    definition_id: str
    in_cohort: NDArray[np.bool_]
    n_sessions: NDArray[np.int64]
    first_session: NDArray[np.int64]
    baseline: NDArray[np.float64]
    n_follow_up: NDArray[np.int64]
    last_value: NDArray[np.float64]
    last_follow_up: NDArray[np.int64]
    status: NDArray[np.int8]
    met_at_last: NDArray[np.bool_]
    first_response: NDArray[np.int64]
    loss: NDArray[np.int64]
    lost_to_follow_up: NDArray[np.bool_]

    @property
    def responded(self) -> NDArray[np.bool_]:
        """Patients with a first response."""
        result: NDArray[np.bool_] = self.status == RESPONDER
        return result

    def durability_days(
        self, mask: NDArray[np.bool_] | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """(durations in days, loss observed) for the responders (within ``mask``).

        Durations run from the first response to the dated loss, or to the last
        follow-up (censored) for a patient still in response.
        """
        who = self.responded if mask is None else self.responded & mask
        event = who & (self.loss != _NONE)
        end = np.where(event, self.loss, self.last_follow_up)
        days = ((end - self.first_response)[who] / SECONDS_PER_DAY).astype(np.float64)
        return days, event[who]


@dataclass(frozen=True, slots=True)
class Rate:
    """A proportion with its numerator, denominator and Wilson score interval."""

    numerator: int
    denominator: int
    value: float | None
    lower: float | None
    upper: float | None

    @classmethod
    def of(cls, numerator: int, denominator: int, *, confidence: float = 0.95) -> Rate:
        """Wilson score interval; value None when the denominator is 0.

        Examples
        --------
        >>> r = Rate.of(5, 10)
        >>> (r.value, round(r.lower, 4), round(r.upper, 4))
        (0.5, 0.2366, 0.7634)
        """
        if denominator == 0:
            return cls(numerator, 0, None, None, None)
        p = numerator / denominator
        z = _two_sided_z(confidence)
        centre = (p + z * z / (2 * denominator)) / (1 + z * z / denominator)
        half = (z / (1 + z * z / denominator)) * math.sqrt(
            p * (1 - p) / denominator + z * z / (4 * denominator**2)
        )
        lower = 0.0 if numerator == 0 else max(0.0, centre - half)
        upper = 1.0 if numerator == denominator else min(1.0, centre + half)
        return cls(numerator, denominator, p, lower, upper)


@lru_cache(maxsize=8)
def _two_sided_z(confidence: float) -> float:
    """The normal quantile for a two-sided interval.

    The standard library's (Wichura's AS 241, as scipy's ``norm.ppf``; importing
    scipy.stats for it cost every command that reads outcomes 0.75 s of start-up).

    >>> round(_two_sided_z(0.95), 6)
    1.959964
    """
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True, slots=True, eq=False)
class RateRow:
    """Counts, rates and durability for one group (``group == ()`` is everyone).

    ``treated = no_baseline + not_eligible + eligible`` and
    ``eligible = no_follow_up + judgeable``. ``rate_judgeable`` divides the
    responders by the judgeable patients; ``rate_eligible`` by every eligible
    patient, counting those without follow-up (and the lost) as non-responders.
    ``lost_to_follow_up`` counts every lost patient (judged or not);
    ``lost_unjudged`` those of them without a judgeable result.
    """

    group: tuple[tuple[str, str], ...]
    treated: int
    no_baseline: int
    not_eligible: int
    eligible: int
    no_follow_up: int
    judgeable: int
    responders_ever: int
    responders_at_last: int
    lost_to_follow_up: int
    lost_unjudged: int
    rate_judgeable: Rate
    rate_eligible: Rate
    rate_at_last: Rate
    completeness: Rate
    durability: KaplanMeier | None


@dataclass(frozen=True, slots=True, eq=False)
class ClinicOutcomes:
    """The per-group table for one definition, with the rules' parameters."""

    definition: Definition
    as_of: int
    lost_after_days: float
    loss_confirmations: int
    rows: tuple[RateRow, ...]
    patients: PatientTable


def _first_last(keys: NDArray[np.int64]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Masks of the first and last row of each run of equal sorted keys."""
    if keys.size == 0:
        empty = np.zeros(0, dtype=bool)
        return empty, empty
    change = keys[1:] != keys[:-1]
    return np.concatenate(([True], change)), np.concatenate((change, [True]))


def _order(patient: NDArray[np.int64], time: NDArray[np.int64]) -> NDArray[np.intp]:
    """Stable order by (patient, time): one int64 key when it fits, else lexsort."""
    if not time.size:
        return np.zeros(0, dtype=np.intp)
    span = int(time.max()) - int(time.min())
    if span < 2**34 and int(patient.max()) < 2**28:
        key = (patient << 34) | (time - time.min())
        return np.argsort(key, kind="stable")
    return np.lexsort((time, patient))


def _check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise OutOfRange(name, value, "an integer >= 1 (clinic-set; no default)")
    return int(value)


def evaluate_patients(
    *,
    registry: Registry,
    definition: Definition,
    as_of: object,
    lost_after: object,
    loss_confirmations: int,
    baseline_window: object | None = None,
    started_from: object | None = None,
    started_to: object | None = None,
) -> PatientTable:
    """Judge every patient of the registry on one definition (vectorised).

    ``lost_after`` and ``loss_confirmations`` are clinic-set and have no
    default; see the module notes for every rule.
    """
    k = _check_positive_int("loss_confirmations", loss_confirmations)
    window = to_duration_seconds(lost_after, field="lost_after")
    now = one_time(as_of, field="as_of")
    n = registry.n_patients
    cols = registry.measures.get(definition.measure)
    if cols is None:
        cols = MeasureColumns.build(patient=[], time=np.array([], "datetime64[s]"), value=[])

    # sessions: count and first time per patient, up to as_of
    keep = registry.session_time <= now
    sp, st = registry.session_patient[keep], registry.session_time[keep]
    n_sessions = np.bincount(sp, minlength=n).astype(np.int64)
    first_session = np.full(n, _NONE, dtype=np.int64)
    if sp.size:
        np.minimum.at(first_session, sp, st)
    in_cohort = n_sessions > 0
    if started_from is not None:
        in_cohort &= first_session >= one_time(started_from, field="started_from")
    if started_to is not None:
        in_cohort &= first_session <= one_time(started_to, field="started_to")

    # measurements of this measure, up to as_of, sorted by (patient, time)
    ok = (cols.time <= now) & np.isfinite(cols.value)
    definition.check_values(cols.value[ok])
    p, t, v = cols.patient[ok], cols.time[ok], cols.value[ok]
    order = _order(p, t)
    p, t, v = p[order], t[order], v[order]
    fs = first_session[p]

    # baseline: last value at or before the first session
    pre = t <= fs
    if baseline_window is not None:
        pre &= t >= fs - to_duration_seconds(baseline_window, field="baseline_window")
    baseline = np.full(n, np.nan)
    rows = np.flatnonzero(pre)
    _, last = _first_last(p[rows])
    baseline[p[rows[last]]] = v[rows[last]]

    # follow-up values and the definition at each
    fu_rows = np.flatnonzero((t > fs) & (fs != _NONE))
    fp, ft, fv = p[fu_rows], t[fu_rows], v[fu_rows]
    met = definition.met(baseline[fp], fv)
    n_follow_up = np.bincount(fp, minlength=n).astype(np.int64)
    first, last = _first_last(fp)
    last_follow_up = np.full(n, _NONE, dtype=np.int64)
    last_follow_up[fp[last]] = ft[last]
    last_value = np.full(n, np.nan)
    last_value[fp[last]] = fv[last]
    met_at_last = np.zeros(n, dtype=bool)
    met_at_last[fp[last]] = met[last]
    first_response = np.full(n, _NONE, dtype=np.int64)
    first_row = np.full(n, _NONE, dtype=np.int64)  # position among follow-up rows
    met_rows = np.flatnonzero(met)
    mfirst, _ = _first_last(fp[met_rows])
    first_response[fp[met_rows[mfirst]]] = ft[met_rows[mfirst]]
    first_row[fp[met_rows[mfirst]]] = met_rows[mfirst]

    # loss of response: k consecutive non-meeting follow-ups after the first response
    # (by row order, so scores sharing a timestamp keep their input order)
    loss = np.full(n, _NONE, dtype=np.int64)
    after = np.flatnonzero(np.arange(fp.size) >= first_row[fp])
    if after.size:
        ap, amet = fp[after], met[after]
        pos = np.arange(after.size)
        start, _ = _first_last(ap)
        marker = np.where(amet, pos, -1)
        marker = np.where(start & ~amet, pos - 1, marker)
        run = np.where(amet, 0, pos - np.maximum.accumulate(marker))
        confirm = np.flatnonzero(run == k)
        lrows = after[confirm - k + 1]
        lfirst, _ = _first_last(fp[lrows])
        loss[fp[lrows[lfirst]]] = ft[lrows[lfirst]]

    has_baseline = np.isfinite(baseline)
    eligible = definition.eligible(baseline)
    status = np.full(n, NOT_IN_COHORT, dtype=np.int8)
    status[in_cohort & ~has_baseline] = NO_BASELINE
    status[in_cohort & has_baseline & ~eligible] = NOT_ELIGIBLE
    status[in_cohort & eligible & (n_follow_up == 0)] = NO_FOLLOW_UP
    judgeable = in_cohort & eligible & (n_follow_up > 0)
    status[judgeable] = NON_RESPONDER
    status[judgeable & (first_response != _NONE)] = RESPONDER

    contact = np.where(last_follow_up != _NONE, last_follow_up, first_session)
    lost = in_cohort & (now - contact > window)
    return PatientTable(
        definition_id=definition.id,
        in_cohort=in_cohort,
        n_sessions=n_sessions,
        first_session=first_session,
        baseline=baseline,
        n_follow_up=n_follow_up,
        last_value=last_value,
        last_follow_up=last_follow_up,
        status=status,
        met_at_last=met_at_last & judgeable,
        first_response=np.where(judgeable, first_response, _NONE),
        loss=np.where(judgeable, loss, _NONE),
        lost_to_follow_up=lost,
    )


def _group_codes(
    group_by: Mapping[str, ArrayLike], n: int
) -> tuple[NDArray[np.int64], list[tuple[tuple[str, str], ...]]]:
    codes = np.zeros(n, dtype=np.int64)
    labels: list[list[str]] = []
    names = list(group_by)
    for name in names:
        values = np.asarray(group_by[name]).astype(str).ravel()
        if values.size != n:
            raise InvalidInput(f"group_by[{name!r}] has {values.size} values for {n} patients")
        uniq, inv = np.unique(values, return_inverse=True)
        codes = codes * uniq.size + inv
        labels.append([str(u) for u in uniq])
    present, inverse = np.unique(codes, return_inverse=True)
    keys: list[tuple[tuple[str, str], ...]] = []
    for code in present.tolist():
        parts: list[tuple[str, str]] = []
        for name, lab in zip(reversed(names), reversed(labels), strict=True):
            code, idx = divmod(code, len(lab))
            parts.append((name, lab[idx]))
        keys.append(tuple(reversed(parts)))
    return inverse.astype(np.int64), keys


def _row(
    table: PatientTable,
    mask: NDArray[np.bool_],
    group: tuple[tuple[str, str], ...],
    confidence: float,
    band: BandKind,
) -> RateRow:
    s = table.status[mask]
    counts = np.bincount(s, minlength=len(STATUS_NAMES))
    treated = int(mask.sum() - counts[NOT_IN_COHORT])
    judgeable = int(counts[NON_RESPONDER] + counts[RESPONDER])
    eligible = judgeable + int(counts[NO_FOLLOW_UP])
    responders = int(counts[RESPONDER])
    at_last = int(table.met_at_last[mask].sum())
    lost = table.lost_to_follow_up[mask]
    sub_days, sub_event = table.durability_days(mask)
    km = (
        kaplan_meier(durations=sub_days, events=sub_event, confidence=confidence, band=band)
        if sub_days.size
        else None
    )
    return RateRow(
        group=group,
        treated=treated,
        no_baseline=int(counts[NO_BASELINE]),
        not_eligible=int(counts[NOT_ELIGIBLE]),
        eligible=eligible,
        no_follow_up=int(counts[NO_FOLLOW_UP]),
        judgeable=judgeable,
        responders_ever=responders,
        responders_at_last=at_last,
        lost_to_follow_up=int(lost.sum()),
        lost_unjudged=int((lost & (table.status[mask] <= NO_FOLLOW_UP)).sum()),
        rate_judgeable=Rate.of(responders, judgeable, confidence=confidence),
        rate_eligible=Rate.of(responders, eligible, confidence=confidence),
        rate_at_last=Rate.of(at_last, judgeable, confidence=confidence),
        completeness=Rate.of(judgeable, treated, confidence=confidence),
        durability=km,
    )


def clinic_outcomes(
    *,
    registry: Registry,
    definition_id: str,
    as_of: object,
    lost_after: object,
    loss_confirmations: int,
    group_by: Mapping[str, ArrayLike] | None = None,
    started_from: object | None = None,
    started_to: object | None = None,
    baseline_window: object | None = None,
    library: DefinitionLibrary | None = None,
    confidence: float = 0.95,
    band: BandKind = "log-log",
) -> ClinicOutcomes:
    """Response rates with denominators, completeness and durability, by group.

    Parameters
    ----------
    registry
        The columns (see :class:`Registry`).
    definition_id
        A response or remission definition (e.g. ``"pain-30"``).
    as_of
        The time of the analysis (the shell passes "now"); later data are ignored.
    lost_after
        Clinic-set window (``timedelta``): no value within it before ``as_of``
        means lost to follow-up. No default.
    loss_confirmations
        Clinic-set: consecutive non-meeting follow-ups that confirm a loss of
        response (for durability). No default.
    group_by
        Per-patient columns to group by, e.g. ``{"condition": ..., "protocol": ...}``;
        the first row is always everyone (``group == ()``).
    started_from, started_to
        Keep patients whose first session is in this range (inclusive).
    baseline_window
        Optional: the baseline must be no older than this before the first session.

    Examples
    --------
    See the module example; grouping:

    >>> import numpy as np
    >>> pain = MeasureColumns.build(patient=[0, 0, 1, 1], value=[8, 4, 6, 6],
    ...     time=["2026-01-01", "2026-01-10", "2026-01-01", "2026-01-10"])
    >>> reg = Registry.build(n_patients=2, session_patient=[0, 1],
    ...     session_time=["2026-01-02", "2026-01-02"], measures={"nrs_pain": pain})
    >>> out = clinic_outcomes(registry=reg, definition_id="pain-30", as_of="2026-01-20",
    ...     lost_after=np.timedelta64(30, "D"), loss_confirmations=1,
    ...     group_by={"condition": ["CRPS", "fibromyalgia"]})
    >>> [(r.group, r.responders_ever, r.judgeable) for r in out.rows]
    [((), 1, 2), ((('condition', 'CRPS'),), 1, 1), ((('condition', 'fibromyalgia'),), 0, 1)]
    """
    definition = (library or load_definitions()).get(definition_id=definition_id)
    table = evaluate_patients(
        registry=registry,
        definition=definition,
        as_of=as_of,
        lost_after=lost_after,
        loss_confirmations=loss_confirmations,
        baseline_window=baseline_window,
        started_from=started_from,
        started_to=started_to,
    )
    n = registry.n_patients
    everyone = np.ones(n, dtype=bool)
    rows = [_row(table, everyone, (), confidence, band)]
    if group_by:
        codes, keys = _group_codes(group_by, n)
        for g, key in enumerate(keys):
            rows.append(_row(table, codes == g, key, confidence, band))
    return ClinicOutcomes(
        definition=definition,
        as_of=one_time(as_of, field="as_of"),
        lost_after_days=to_duration_seconds(lost_after, field="lost_after") / SECONDS_PER_DAY,
        loss_confirmations=loss_confirmations,
        rows=tuple(rows),
        patients=table,
    )
