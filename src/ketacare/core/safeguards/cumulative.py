"""The cumulative dose: what a patient has been given, over time, against the clinic's caps.

Repeated ketamine carries harms that grow with dose and time (cholestatic liver injury
and lower urinary tract damage with recurrent use; abuse and dependence), yet no
guideline sets a cumulative-dose or session-frequency cap. So this module does two
things only:

- **Arithmetic**: per session, per course and over rolling windows, the milligrams
  given, the milligrams per kilogram (each dose over the weight its session was dosed
  from) and the number of sessions, kept apart per molecule (racemic ketamine and
  esketamine are not added together: no source gives an equivalence).
- **The clinic's own caps** (site policy, :func:`parse_caps`): "at most X mg, Y mg/kg
  or Z sessions of this molecule in any N days (or ever)". A cap has no default; each
  records who approved it. :func:`check_caps` tells whether a planned dose would take
  a total above a cap.

Why checking at each new dose is enough: a window's content only grows when a dose
starts inside it, so the fullest N-day window always ends at a dose's start. Checking,
before every dose, each window that ends at a dose and would hold the planned one (the
window ending at the planned dose, and, for a dose charted after the fact, those ending
at the later doses it falls inside), with that dose included, therefore keeps every
N-day window under the cap, whatever the order doses are charted in.

Times are aware datetimes passed in by the caller (the core reads no clock). A dose
counts in the window ``(at - N days, at]`` by the time its dosing started.

Examples
--------
>>> from datetime import UTC, datetime, timedelta
>>> day = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
>>> doses = [DoseGiven(session_id=i + 1, course_id=1, at=day + timedelta(days=i),
...                    molecule="racemic_ketamine", route="iv_infusion", mg=98.0,
...                    weight_kg=70.0) for i in range(10)]
>>> t = total(doses, molecule="racemic_ketamine", window_days=7, at=day + timedelta(days=9))
>>> t.sessions, t.mg, round(t.mg_per_kg, 3)
(7, 686.0, 9.8)
>>> cap = CumulativeCap(molecule="racemic_ketamine", window_days=30, max_mg=1000.0,
...                   approved="medical director, 2026-01-05")
>>> nxt = PlannedDose(molecule="racemic_ketamine", mg=98.0, weight_kg=70.0)
>>> [c.message() for c in check_caps(doses, caps=[cap], planned=nxt,
...                                   at=day + timedelta(days=10)) if c.exceeded]
... # doctest: +NORMALIZE_WHITESPACE
['racemic ketamine in any 30 days: 980 mg given + 98 mg planned = 1078 mg,
  above the clinic cap of 1000 mg (site policy, approved by medical director, 2026-01-05)']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, get_args

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.terminology.treatments import treatment_vocabulary

Measure = Literal["mg", "mg_per_kg", "sessions"]
MEASURES: Final[tuple[Measure, ...]] = get_args(Measure)

#: Rolling windows shown beside the whole history. These are reporting windows for the
#: reader (a week, a month, a year), not limits: no source gives a limit.
REPORT_WINDOWS_DAYS: Final[tuple[int, ...]] = (7, 30, 365)

# A total is above a cap only by more than this (delivered doses are computed from rate
# histories and carry floating-point residue: 97.99999999 mg is 98 mg).
_TOLERANCE: Final = 1e-6

_UNITS: Final[Mapping[Measure, str]] = {"mg": "mg", "mg_per_kg": "mg/kg", "sessions": "sessions"}


def molecule_label(molecule: str) -> str:
    """``racemic_ketamine`` -> ``racemic ketamine`` (the treatment vocabulary's label).

    An unknown molecule is refused (:class:`~ketacare.core.errors.UnknownItem`), never shown
    under a made-up name.
    """
    return treatment_vocabulary().molecule(molecule).label


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} must be a time with a time zone, got {value.isoformat()}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseGiven:
    """One session's dose as given (dosing started), from the session's own log.

    ``mg`` is what the log says was delivered (so far, while ``ongoing``); ``weight_kg``
    is the weight the session was dosed from; ``course_id`` names the course (the first
    version of the plan the session belongs to).
    """

    session_id: int
    course_id: int
    at: datetime
    molecule: str
    route: str
    mg: float
    weight_kg: float
    ongoing: bool = False

    def __post_init__(self) -> None:
        _aware(self.at, "dose time")
        if not (math.isfinite(self.mg) and self.mg >= 0):
            raise InvalidInput(f"session {self.session_id}: dose {self.mg} mg must be >= 0")
        if not (math.isfinite(self.weight_kg) and self.weight_kg > 0):
            raise InvalidInput(
                f"session {self.session_id}: weight {self.weight_kg} kg must be positive"
            )

    @property
    def mg_per_kg(self) -> float:
        """The dose per kilogram of the weight the session was dosed from."""
        return self.mg / self.weight_kg


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedDose:
    """The dose about to be given: what a cap check adds to the totals."""

    molecule: str
    mg: float
    weight_kg: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mg) and self.mg >= 0):
            raise InvalidInput(f"planned dose {self.mg} mg must be >= 0")
        if not (math.isfinite(self.weight_kg) and self.weight_kg > 0):
            raise InvalidInput(f"planned weight {self.weight_kg} kg must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Total:
    """Sessions, mg and mg/kg of one molecule in a window (``window_days`` None: ever)."""

    molecule: str
    window_days: float | None
    sessions: int
    mg: float
    mg_per_kg: float

    def value(self, measure: Measure) -> float:
        """The total in one measure."""
        return float(self.sessions) if measure == "sessions" else getattr(self, measure)


@dataclass(frozen=True, slots=True, kw_only=True)
class CourseTotal:
    """What one course (a plan and its later versions) has given, per molecule."""

    course_id: int
    molecule: str
    sessions: int
    mg: float
    mg_per_kg: float
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CumulativeCap:
    """A clinic's cap on one molecule in any ``window_days`` days (None: ever).

    At least one of ``max_mg``, ``max_mg_per_kg`` and ``max_sessions`` is set; a total
    may reach a cap but not exceed it.
    """

    molecule: str
    window_days: float | None
    max_mg: float | None = None
    max_mg_per_kg: float | None = None
    max_sessions: int | None = None
    approved: str = ""

    def limits(self) -> tuple[tuple[Measure, float], ...]:
        """The measures this cap sets, with their limits."""
        values = (self.max_mg, self.max_mg_per_kg, self.max_sessions)
        return tuple((m, float(v)) for m, v in zip(MEASURES, values, strict=True) if v is not None)

    def window_text(self) -> str:
        """``in any 30 days`` or ``in all``."""
        if self.window_days is None:
            return "in all"
        return f"in any {self.window_days:g} days"

    def describe(self) -> str:
        """One line for a page.

        >>> print(CumulativeCap(molecule="esketamine", window_days=7, max_sessions=2,
        ...                   max_mg=168, approved="board 2026-02").describe())
        ... # doctest: +NORMALIZE_WHITESPACE
        esketamine in any 7 days: at most 168 mg, 2 sessions
        (site policy, approved by board 2026-02)
        """
        parts = ", ".join(f"{v:g} {_UNITS[m]}" for m, v in self.limits())
        return (
            f"{molecule_label(self.molecule)} {self.window_text()}: at most {parts} "
            f"(site policy, approved by {self.approved})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CapCheck:
    """One measure of one cap against the window ending at the planned dose."""

    cap: CumulativeCap
    measure: Measure
    given: float
    planned: float
    limit: float

    @property
    def after(self) -> float:
        """The total once the planned dose is given."""
        return self.given + self.planned

    @property
    def exceeded(self) -> bool:
        """True when the planned dose would take the total above the cap."""
        return self.after > self.limit + _TOLERANCE

    @property
    def headroom(self) -> float:
        """How much of the cap is left once the planned dose is given (negative: over)."""
        return self.limit - self.after

    def message(self) -> str:
        """What a clinician reads: the totals, the cap and who set it."""
        unit = _UNITS[self.measure]
        head = f"{molecule_label(self.cap.molecule)} {self.cap.window_text()}: "
        if self.measure == "sessions":
            amounts = f"{self.given:g} sessions given + this one = {self.after:g}"
        else:
            amounts = (
                f"{_fmt(self.given)} {unit} given + {_fmt(self.planned)} {unit} planned = "
                f"{_fmt(self.after)} {unit}"
            )
        verdict = "above" if self.exceeded else "within"
        return (
            f"{head}{amounts}, {verdict} the clinic cap of {self.limit:g} {unit} "
            f"(site policy, approved by {self.cap.approved})"
        )


def _fmt(value: float) -> str:
    return f"{round(value, 2):g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cumulative:
    """A patient's cumulative dose at ``at``: rolling and whole-history totals, courses, doses."""

    at: datetime
    totals: tuple[Total, ...]  # per molecule: each report window, then the whole history
    courses: tuple[CourseTotal, ...]
    doses: tuple[DoseGiven, ...]  # in the order given

    @property
    def molecules(self) -> tuple[str, ...]:
        """The molecules given, in the order first given."""
        return tuple(dict.fromkeys(d.molecule for d in self.doses))

    def totals_of(self, molecule: str) -> tuple[Total, ...]:
        """One molecule's totals, report windows first, the whole history last."""
        return tuple(t for t in self.totals if t.molecule == molecule)


def _in_window(dose: DoseGiven, window_days: float | None, at: datetime) -> bool:
    if dose.at > at:
        return False
    return window_days is None or dose.at > at - timedelta(days=window_days)


def total(
    doses: Iterable[DoseGiven], *, molecule: str, window_days: float | None, at: datetime
) -> Total:
    """Sessions, mg and mg/kg of ``molecule`` given in ``(at - window_days, at]``.

    ``window_days`` None counts everything given by ``at``.
    """
    _aware(at, "at")
    chosen = [d for d in doses if d.molecule == molecule and _in_window(d, window_days, at)]
    return Total(
        molecule=molecule,
        window_days=window_days,
        sessions=len(chosen),
        mg=math.fsum(d.mg for d in chosen),
        mg_per_kg=math.fsum(d.mg_per_kg for d in chosen),
    )


def cumulative(
    doses: Sequence[DoseGiven],
    *,
    at: datetime,
    windows_days: Sequence[float] = REPORT_WINDOWS_DAYS,
) -> Cumulative:
    """Everything a chart shows about the cumulative dose at ``at``.

    >>> from datetime import UTC, datetime
    >>> d = DoseGiven(session_id=1, course_id=4, at=datetime(2026, 1, 1, tzinfo=UTC),
    ...               molecule="esketamine", route="intranasal_esketamine", mg=56.0,
    ...               weight_kg=80.0)
    >>> e = cumulative([d], at=datetime(2026, 1, 20, tzinfo=UTC))
    >>> [(t.window_days, t.sessions, t.mg) for t in e.totals_of("esketamine")]
    [(7, 0, 0.0), (30, 1, 56.0), (365, 1, 56.0), (None, 1, 56.0)]
    >>> e.courses[0].mg_per_kg
    0.7
    """
    _aware(at, "at")
    given = sorted((d for d in doses if d.at <= at), key=lambda d: (d.at, d.session_id))
    molecules = list(dict.fromkeys(d.molecule for d in given))
    totals = [
        total(given, molecule=m, window_days=w, at=at)
        for m in molecules
        for w in (*windows_days, None)
    ]
    courses: dict[tuple[int, str], list[DoseGiven]] = {}
    for d in given:
        courses.setdefault((d.course_id, d.molecule), []).append(d)
    course_totals = [
        CourseTotal(
            course_id=course_id,
            molecule=molecule,
            sessions=len(items),
            mg=math.fsum(d.mg for d in items),
            mg_per_kg=math.fsum(d.mg_per_kg for d in items),
            first=items[0].at,
            last=items[-1].at,
        )
        for (course_id, molecule), items in courses.items()
    ]
    return Cumulative(at=at, totals=tuple(totals), courses=tuple(course_totals), doses=tuple(given))


def check_caps(
    doses: Iterable[DoseGiven],
    *,
    caps: Sequence[CumulativeCap],
    at: datetime,
    planned: PlannedDose,
) -> tuple[CapCheck, ...]:
    """Each limit of each cap on the planned molecule, for the fullest window that would
    hold the planned dose at ``at``.

    The planned dose counts as one more session and its mg and mg/kg. Usually no dose
    is later than ``at`` and the window checked is the one ending at ``at``. A dose
    charted after the fact (``at`` before doses already given) also falls inside the
    windows ending at those later doses, so each of them is checked too and the
    fullest one, per measure, is reported.
    """
    _aware(at, "at")
    given = list(doses)
    out: list[CapCheck] = []
    for cap in caps:
        if cap.molecule != planned.molecule:
            continue
        # the windows that hold the planned dose: the one ending at it, and each one
        # ending at a later dose of the molecule that the planned dose falls inside
        ends = [at] + [
            d.at
            for d in given
            if d.molecule == cap.molecule
            and d.at > at
            and (cap.window_days is None or d.at - timedelta(days=cap.window_days) < at)
        ]
        windows = [
            total(given, molecule=cap.molecule, window_days=cap.window_days, at=end) for end in ends
        ]
        adds: dict[Measure, float] = {
            "mg": planned.mg,
            "mg_per_kg": planned.mg / planned.weight_kg,
            "sessions": 1.0,
        }
        out += [
            CapCheck(
                cap=cap,
                measure=measure,
                given=max(w.value(measure) for w in windows),
                planned=adds[measure],
                limit=limit,
            )
            for measure, limit in cap.limits()
        ]
    return tuple(out)


# --------------------------------------------------------------------------- the policy file

_CAP_FIELDS: Final = frozenset(
    {"molecule", "window_days", "max_mg", "max_mg_per_kg", "max_sessions", "approved"}
)


def parse_caps(
    raw: Any, *, path: str = "<text>", molecules: Sequence[str]
) -> tuple[CumulativeCap, ...]:
    """Validate the ``[[cumulative_cap]]`` tables of a clinic's session policy.

    Each table names a molecule (one the protocol library gives), optionally a
    ``window_days`` (leave it out for the whole history), at least one of ``max_mg``,
    ``max_mg_per_kg`` and ``max_sessions``, and who ``approved`` it (no published cap
    exists, so the file must say whose decision it is).

    >>> parse_caps([{"molecule": "esketamine", "window_days": 7, "max_sessions": 2,
    ...              "approved": "medical director 2026-02-01"}],
    ...            molecules=["esketamine"])[0].max_sessions
    2
    >>> parse_caps([{"molecule": "esketamine", "window_days": 7, "approved": "board"}],
    ...            molecules=["esketamine"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: ... 'cumulative_cap[0]': set at least one of max_mg, ...
    """

    def fail(where: str, problem: str) -> DataFileError:
        return DataFileError(f"session policy file {path}: field {where!r}: {problem}")

    if not isinstance(raw, list):
        raise fail("cumulative_cap", "must be an array of tables ([[cumulative_cap]])")
    caps: list[CumulativeCap] = []
    for i, table in enumerate(raw):
        where = f"cumulative_cap[{i}]"
        if not isinstance(table, dict):
            raise fail(where, "must be a table")
        extra = sorted(set(table) - _CAP_FIELDS)
        if extra:
            raise fail(f"{where}.{extra[0]}", f"unknown field (allowed: {sorted(_CAP_FIELDS)})")
        molecule = table.get("molecule")
        if molecule not in molecules:
            raise fail(f"{where}.molecule", f"{molecule!r} is not one of {sorted(molecules)}")
        approved = table.get("approved")
        if not isinstance(approved, str) or not approved.strip():
            raise fail(
                f"{where}.approved",
                "say who approved this cap (no published source gives one)",
            )
        numbers: dict[str, float | None] = {}
        for key in ("window_days", "max_mg", "max_mg_per_kg", "max_sessions"):
            value = table.get(key)
            if value is None:
                numbers[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(f"{where}.{key}", f"must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise fail(f"{where}.{key}", f"must be positive, got {value!r}")
            if key == "max_sessions" and not isinstance(value, int):
                raise fail(f"{where}.{key}", f"must be a whole number, got {value!r}")
            numbers[key] = float(value)
        if all(numbers[k] is None for k in ("max_mg", "max_mg_per_kg", "max_sessions")):
            raise fail(where, "set at least one of max_mg, max_mg_per_kg, max_sessions")
        sessions = numbers["max_sessions"]
        caps.append(
            CumulativeCap(
                molecule=str(molecule),
                window_days=numbers["window_days"],
                max_mg=numbers["max_mg"],
                max_mg_per_kg=numbers["max_mg_per_kg"],
                max_sessions=None if sessions is None else int(sessions),
                approved=approved.strip(),
            )
        )
    return tuple(caps)
