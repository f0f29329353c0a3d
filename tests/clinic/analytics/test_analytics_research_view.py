"""A researcher reading the clinic dashboard sees only patients who consented to
research, and no count from 1 to 10, directly or by subtraction (CMS cell size
suppression policy: "no cell ... containing a value of 1 to 10 can be reported
directly. A value of zero does not violate the minimum cell size policy. In addition, no
cell can be reported that allows a value of 1 to 10 to be derived from other reported
cells"). A physician sees every treated patient, unchanged.

The cohort is written straight into the outcome summary (what the dashboard reads), on
the pain-30 definition, every patient dosed on 2026-01-05 (counts worked by hand):

===========  =========  ================  ========================  ==================
group        condition  protocol          consented                 statuses
===========  =========  ================  ========================  ==================
A            M79.7      crps-outpatient   23 (+5 not, +1 withdrew)  12 R (all at last),
                                                                    11 NR; the 6 others R
B            G90.5      crps-outpatient   11                        11 R (all at last)
C            F33.1      depression-iv     3                         3 R (all at last)
===========  =========  ================  ========================  ==================

Research view (no follow-up window: nothing is "lost"): the 37 consented patients. F33.1
has 3 treated, 3 responders, 3 at the last follow-up, 3 judgeable and 3 eligible: each
withheld. Its treated count would still be the whole cohort's 37 less G90.5's 11 and
M79.7's 23, so the smallest other count of that sum, G90.5's 11, is withheld with it
(and likewise for responders, at-last, judgeable, eligible). By protocol, depression-iv
(the same 3 patients) is withheld and so is crps-outpatient's 34 (37 = 3 + 34). Shown:
the cohort (37 treated, 26 responders, 37 judgeable) and M79.7 (23 treated, 12
responders, 11 non-responders).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ketacare.clinic.analytics.orm import OutcomeSummary
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.research.orm import ResearchConsent
from ketacare.core.outcomes import STATUS_NAMES
from ketacare.core.research.disclosure import SmallCells, small_cells, withhold
from ketacare.infra.db import unit_of_work

ENTRY = datetime(2026, 1, 5, 10, tzinfo=UTC)
RESPONDER = STATUS_NAMES.index("responder")
NON_RESPONDER = STATUS_NAMES.index("non_responder")


def _write(app: Any, groups: list[tuple[str, str, int, int, str | None]]) -> None:
    """(condition, protocol, responders, non-responders, consent) per group of patients;
    consent None: never asked; "withdrawn": granted, then withdrawn."""
    with unit_of_work(app.state.ctx.sessions) as s:
        assert s.scalar(select(OutcomeSummary.id).limit(1)) is None  # nobody else counted
        n = 0
        for condition, protocol, responders, non_responders, consent in groups:
            for status in [RESPONDER] * responders + [NON_RESPONDER] * non_responders:
                n += 1
                patient = Patient(
                    mrn=f"RV-{n}",
                    given_name=f"P{n}",
                    family_name="Research",
                    birth_date=date(1970, 1, 1),
                    sex="female",
                    created_at=ENTRY,
                )
                s.add(patient)
                s.flush()
                decisions = {
                    None: [],
                    "granted": ["granted"],
                    "withdrawn": ["granted", "withdrawn"],
                }
                for i, decision in enumerate(decisions[consent]):
                    s.add(
                        ResearchConsent(
                            patient_id=patient.id,
                            decision=decision,
                            note="registry consent form v1",
                            recorded_at=datetime(2026, 1, 5 + i, 9, tzinfo=UTC),
                        )
                    )
                s.add(
                    OutcomeSummary(
                        patient_id=patient.id,
                        cohort_entry=ENTRY,
                        last_contact=datetime(2026, 2, 20, tzinfo=UTC),
                        status=status,
                        met_at_last=status == RESPONDER,
                        sessions_given=6,
                        follow_ups=3,
                        definition_id="pain-30",
                        condition=condition,
                        protocol_id=protocol,
                        refreshed_at=ENTRY,
                        # responders followed 30 days, still responding (censored)
                        durability_days=30 if status == RESPONDER else None,
                        durability_event=False if status == RESPONDER else None,
                    )
                )


COHORT = [
    ("M79.7", "crps-outpatient", 12, 11, "granted"),
    ("M79.7", "crps-outpatient", 5, 0, None),
    ("M79.7", "crps-outpatient", 1, 0, "withdrawn"),
    ("G90.5", "crps-outpatient", 11, 0, "granted"),
    ("F33.1", "depression-iv", 3, 0, "granted"),
]


def _pain30(client: Any, headers: dict[str, str], **params: str) -> dict[str, Any]:
    r = client.get("/api/v1/analytics/outcomes", headers=headers, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    found = {d["definition"]["id"]: d for d in body["definitions"]}["pain-30"]
    return {"parameters": body["parameters"], **found}


COUNTS = ("treated", "no_baseline", "not_eligible", "no_follow_up", "eligible", "judgeable")
COUNTS += ("responders", "at_last")


def test_a_researcher_sees_the_consented_cohort_without_small_counts(
    app: Any, client: Any, login_api: Any
) -> None:
    _write(app, COHORT)
    physician = _pain30(client, login_api("physician"))
    assert physician["parameters"]["research_smallest_count_shown"] is None
    assert (physician["overall"]["treated"], physician["overall"]["responders"]) == (43, 32)
    assert {g["key"]: g["treated"] for g in physician["by_condition"]} == {
        "M79.7": 29,
        "G90.5": 11,
        "F33.1": 3,
    }

    research = _pain30(client, login_api("researcher"))
    assert research["parameters"]["research_smallest_count_shown"] == 11
    overall = research["overall"]
    assert (overall["treated"], overall["responders"], overall["judgeable"]) == (37, 26, 37)
    assert overall["rate_judgeable"]["numerator"] == 26
    rows = {g["key"]: g for g in research["by_condition"] + research["by_protocol"]}
    assert (rows["M79.7"]["treated"], rows["M79.7"]["responders"]) == (23, 12)
    assert rows["M79.7"]["rate_judgeable"]["value"] == pytest.approx(12 / 23)
    for small in ("F33.1", "depression-iv"):
        assert {f: rows[small][f] for f in COUNTS} == {
            "treated": None,
            "no_baseline": 0,
            "not_eligible": 0,
            "no_follow_up": 0,
            "eligible": None,
            "judgeable": None,
            "responders": None,
            "at_last": None,
        }
        assert rows[small]["rate_judgeable"] == {
            "numerator": None,
            "denominator": None,
            "value": None,
            "lower": None,
            "upper": None,
        }
    assert rows["G90.5"]["treated"] is None and rows["G90.5"]["responders"] is None
    assert rows["crps-outpatient"]["treated"] is None
    # every count the researcher was given is 0 or at least 11
    shown = [
        g[f]
        for g in [overall, *research["by_condition"], *research["by_protocol"]]
        for f in COUNTS
        if g[f] is not None
    ]
    assert shown and all(n == 0 or n >= 11 for n in shown)
    # and no withheld count can be solved for: independently, by linear programming over
    # every sum the table shows (non-negative counts), each has more than one value
    _assert_not_derivable(research)
    note = " ".join(research["parameters"]["notes"])
    assert "only the patients whose newest research consent decision is 'granted'" in note


def _assert_not_derivable(research: dict[str, Any]) -> None:
    """Each withheld count of the table can take at least two values consistent with
    every shown count and sum (scipy's LP, written here apart from the code)."""
    from scipy.optimize import linprog

    rows = [research["overall"], *research["by_condition"], *research["by_protocol"]]
    k = len(research["by_condition"])
    figures = ("no_baseline", "not_eligible", "no_follow_up", "non_resp", "responders")
    figures += ("treated", "judgeable", "eligible", "at_last", "not_at_last")
    names = [(n, f) for n in range(len(rows)) for f in figures]
    at = {name: i for i, name in enumerate(names)}
    equations: list[dict[tuple[int, str], int]] = []
    for n in range(len(rows)):
        equations += [
            {(n, "treated"): -1, **{(n, f): 1 for f in figures[:5]}},
            {(n, "judgeable"): -1, (n, "non_resp"): 1, (n, "responders"): 1},
            {(n, "eligible"): -1, (n, "no_follow_up"): 1, (n, "judgeable"): 1},
            {(n, "responders"): -1, (n, "at_last"): 1, (n, "not_at_last"): 1},
        ]
    for members in (range(1, 1 + k), range(1 + k, len(rows))):
        for f in figures:
            equations.append({(0, f): -1, **{(m, f): 1 for m in members}})
    for n, row in enumerate(rows):  # the shown counts are known
        for f in figures:
            if row.get(f) is not None:
                equations.append({(n, f): 1, "value": row[f]})  # type: ignore[dict-item]
    a = np.zeros((len(equations), len(names)))
    b = np.zeros(len(equations))
    for r, eq in enumerate(equations):
        for key, coefficient in eq.items():
            if key == "value":
                b[r] = coefficient
            else:
                a[r, at[key]] = coefficient
    withheld = [(n, f) for n, row in enumerate(rows) for f in COUNTS if row[f] is None]
    assert withheld
    for cell in withheld:
        c = np.zeros(len(names))
        c[at[cell]] = 1.0
        low = linprog(c, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
        high = linprog(-c, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
        assert low.status == 0 and high.status in (0, 3)  # 3: no greatest value
        assert high.status == 3 or -high.fun - low.fun >= 1, f"{cell} is fixed at {low.fun}"


def test_a_cohort_too_small_shows_nothing_but_zeros(app: Any, client: Any, login_api: Any) -> None:
    _write(app, [("M79.7", "crps-outpatient", 4, 3, "granted"), ("G90.5", "ketamine", 9, 0, None)])
    research = _pain30(client, login_api("researcher"))
    for row in [research["overall"], *research["by_condition"], *research["by_protocol"]]:
        assert all(row[f] in (None, 0) for f in COUNTS), row
    assert research["overall"]["treated"] is None
    assert _pain30(client, login_api("physician"))["overall"]["treated"] == 16


@pytest.mark.parametrize(
    "params",
    [
        {"started_from": "2026-01-05"},
        {"started_to": "2026-01-05"},
        {"condition": "M79.7"},
        {"protocol": "crps-outpatient"},
        {"lost_after_days": "60"},
    ],
)
def test_a_researcher_cannot_narrow_the_cohort(
    app: Any, client: Any, login_api: Any, login_page: Any, params: dict[str, str]
) -> None:
    _write(app, COHORT)
    (named,) = params
    r = client.get("/api/v1/analytics/outcomes", headers=login_api("researcher"), params=params)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(f"{named}: a research reader sees the whole")
    assert "Allowed: split" in r.json()["detail"]
    with app.state.ctx.sessions() as s:
        reads = s.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "analytics", AuditEvent.action == "read"
            )
        ).all()
    assert reads == []  # refused before anything was read
    login_page("researcher")
    page = client.get("/dashboard", params=params)
    assert page.status_code == 422 and "a research reader sees the whole" in page.text


def test_a_researcher_gets_no_durability_steps(app: Any, client: Any, login_api: Any) -> None:
    """Durability is computed (the summary was judged with the clinic's 2 confirmations):
    the physician gets the curve of the 32 responders; the researcher none."""
    from ketacare.clinic.analytics.orm import OutcomeSummaryRun

    _write(app, COHORT)
    app.state.ctx.settings.outcome_loss_confirmations = 2
    with unit_of_work(app.state.ctx.sessions) as s:
        s.add(OutcomeSummaryRun(at=ENTRY, loss_confirmations=2, patients=43, rows=43, seconds=0))

    def pain30(user: str) -> dict[str, Any]:
        r = client.get("/api/v1/analytics/durability", headers=login_api(user))
        assert r.status_code == 200, r.text
        (found,) = [d for d in r.json()["definitions"] if d["definition_id"] == "pain-30"]
        return dict(found)

    physician = pain30("physician")
    assert physician["computed"] is True
    assert [(c["key"], c["n"], c["events"]) for c in physician["curves"]] == [(None, 32, 0)]
    research = pain30("researcher")
    assert research["computed"] is True and research["curves"] == []


def test_the_researchers_page_says_what_it_withholds(
    app: Any, client: Any, login_page: Any
) -> None:
    _write(app, COHORT)
    login_page("researcher")
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert 'data-testid="research-view"' in page.text
    assert 'aria-label="Filters"' not in page.text  # nothing to narrow the cohort with
    assert page.text.count('<span class="withheld"') >= 10
    assert "Every patient who has been given a dose and consented to research," in page.text
    login_page("physician")
    page = client.get("/dashboard")
    assert 'data-testid="research-view"' not in page.text and 'aria-label="Filters"' in page.text
    assert "Every patient who has been given a dose, judged" in page.text
    assert "F33.1" in page.text


# ------------------------------------------------------------------ the rule in the core


def test_the_rule_is_the_cms_threshold_with_its_source() -> None:
    rule = small_cells()
    assert rule.smallest_shown == 11  # "a value of 1 to 10" may not be reported
    assert [rule.shows(n) for n in (0, 1, 10, 11, 250)] == [True, False, False, True, True]
    assert "hhs.gov/guidance/document/cms-cell-suppression-policy" in rule.rule


RULE = SmallCells(11)


@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8))
def test_no_withheld_cell_of_a_sum_can_be_had_by_subtraction(parts: list[int]) -> None:
    cells = {"total": sum(parts), **{f"g{i}": n for i, n in enumerate(parts)}}
    hidden = withhold(cells, [("total", [f"g{i}" for i in range(len(parts))])], RULE)
    assert all(RULE.shows(v) for k, v in cells.items() if k not in hidden)
    assert all(k in hidden for k, v in cells.items() if not RULE.shows(v))
    unknown = [k for k in cells if k in hidden]
    # one equation: a single unknown is fixed by it; two or more are not
    assert len(unknown) != 1


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(2, 6), st.integers(1, 3))
def test_no_small_count_of_a_random_table_can_be_pinned(
    seed: int, conditions: int, protocols: int
) -> None:
    """Random dashboard tables (the shape the researcher reads): after ``withhold`` no
    withheld count from 1 to 10 has a single value consistent with what is shown, by
    scipy's LP (bench/disclosure.py builds the table and runs the same audit)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    from disclosure import lp_audit, table

    cells, sums = table(conditions, protocols, seed=seed)
    hidden = withhold(cells, sums, RULE, group=lambda cell: cell[0])
    assert all(RULE.shows(v) for k, v in cells.items() if k not in hidden)
    assert lp_audit(cells, sums, hidden) == 0
