"""NEWS2 (RCP 2017), SpO2 scale 1: chart ranges, bands and response flags.

Every expected number below is read by hand from the Royal College of Physicians'
Chart 1 (the NEWS scoring system) and Chart 2 (thresholds and triggers) of
"National Early Warning Score (NEWS) 2", London: RCP, 2017
(https://www.rcplondon.ac.uk/projects/outputs/national-early-warning-score-news-2):

    Respiration rate  <=8: 3 | 9-11: 1 | 12-20: 0 | 21-24: 2 | >=25: 3
    SpO2 scale 1      <=91: 3 | 92-93: 2 | 94-95: 1 | >=96: 0
    Air or oxygen     oxygen: 2 | air: 0
    Systolic BP       <=90: 3 | 91-100: 2 | 101-110: 1 | 111-219: 0 | >=220: 3
    Pulse             <=40: 3 | 41-50: 1 | 51-90: 0 | 91-110: 1 | 111-130: 2 | >=131: 3
    Consciousness     alert: 0 | new confusion, voice, pain, unresponsive: 3
    Temperature       <=35.0: 3 | 35.1-36.0: 1 | 36.1-38.0: 0 | 38.1-39.0: 1 | >=39.1: 2

    Aggregate 0-4 low; a 3 in any single parameter low-medium; 5-6 medium
    (key threshold for urgent response); 7 or more high.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.instruments.probe import PROBE_HEAD
from ketacare.cli import app
from ketacare.core.errors import OutOfRange
from ketacare.core.instruments import get_instrument, score

runner = CliRunner()
SESSIONS_TOML = Path(__file__).parents[3] / "src/ketacare/core/sessions/data/sessions.toml"

# Order: RR, SpO2, oxygen (0/1), temperature, systolic, pulse, consciousness (0/1).
# A set scoring 0 on every parameter: RR 16 (12-20), SpO2 97 (>=96), air,
# 37.0 (36.1-38.0), SBP 120 (111-219), pulse 70 (51-90), alert.
NORMAL = [16, 97, 0, 37.0, 120, 70, 0]
SUB = ["respiration_rate", "spo2_scale1", "air_or_oxygen", "temperature", "systolic_bp",
       "pulse", "consciousness"]  # fmt: skip
POSITION = {"rr": 0, "spo2": 1, "o2": 2, "temp": 3, "sbp": 4, "hr": 5, "cvpu": 6}
SUB_OF = {"rr": "respiration_rate", "spo2": "spo2_scale1", "o2": "air_or_oxygen",
          "temp": "temperature", "sbp": "systolic_bp", "hr": "pulse",
          "cvpu": "consciousness"}  # fmt: skip

# Each chart boundary, both sides, with the points Chart 1 gives.
BOUNDARIES = [
    ("rr", 8, 3), ("rr", 9, 1), ("rr", 11, 1), ("rr", 12, 0),
    ("rr", 20, 0), ("rr", 21, 2), ("rr", 24, 2), ("rr", 25, 3),
    ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1),
    ("spo2", 95, 1), ("spo2", 96, 0),
    ("o2", 0, 0), ("o2", 1, 2),
    ("sbp", 90, 3), ("sbp", 91, 2), ("sbp", 100, 2), ("sbp", 101, 1),
    ("sbp", 110, 1), ("sbp", 111, 0), ("sbp", 219, 0), ("sbp", 220, 3),
    ("hr", 40, 3), ("hr", 41, 1), ("hr", 50, 1), ("hr", 51, 0), ("hr", 90, 0),
    ("hr", 91, 1), ("hr", 110, 1), ("hr", 111, 2), ("hr", 130, 2), ("hr", 131, 3),
    ("temp", 35.0, 3), ("temp", 35.1, 1), ("temp", 36.0, 1), ("temp", 36.1, 0),
    ("temp", 38.0, 0), ("temp", 38.1, 1), ("temp", 39.0, 1), ("temp", 39.1, 2),
    ("cvpu", 0, 0), ("cvpu", 1, 3),
]  # fmt: skip


@pytest.mark.parametrize(("param", "value", "points"), BOUNDARIES)
def test_each_chart_boundary_scores_as_chart_1(param: str, value: float, points: int) -> None:
    answers = list(NORMAL)
    answers[POSITION[param]] = value
    result = score("news2", answers)
    assert result.subscores[SUB_OF[param]] == points
    # every other parameter of NORMAL scores 0, so the total is this parameter's points
    assert result.total == points


# Worked vitals sets: (answers, sub-scores in SUB order, total, band, flags).
WORKED = [
    # 1. All normal: 0+0+0+0+0+0+0 = 0, low.
    (NORMAL, [0, 0, 0, 0, 0, 0, 0], 0, "low", []),
    # 2. RR 22 (2), SpO2 95 (1), air (0), 37.5 (0), SBP 118 (0), HR 88 (0), alert (0)
    #    = 3, no red score: low.
    ([22, 95, 0, 37.5, 118, 88, 0], [2, 1, 0, 0, 0, 0, 0], 3, "low", []),
    # 3. RR 8 (3), rest normal: total 3 with a red score: low-medium.
    (
        [8, 97, 0, 37.0, 120, 70, 0],
        [3, 0, 0, 0, 0, 0, 0],
        3,
        "low_medium",
        ["news2_single_parameter_3"],
    ),
    # 4. Issue 13's CRPS infusion: RR 8 (3), SpO2 89 (3), air (0), 36.8 (0), SBP 182 (0),
    #    HR 118 (2), alert (0) = 8: high.
    (
        [8, 89, 0, 36.8, 182, 118, 0],
        [3, 3, 0, 0, 0, 2, 0],
        8,
        "high",
        ["news2_single_parameter_3", "news2_urgent_response", "news2_emergency_response"],
    ),
    # 5. RR 21 (2), SpO2 94 (1), oxygen (2), 38.1 (1), SBP 111 (0), HR 91 (1), alert (0)
    #    = 7: high.
    (
        [21, 94, 1, 38.1, 111, 91, 0],
        [2, 1, 2, 1, 0, 1, 0],
        7,
        "high",
        ["news2_urgent_response", "news2_emergency_response"],
    ),
    # 6. RR 12 (0), SpO2 96 (0), air, 39.1 (2), SBP 101 (1), HR 111 (2), alert = 5: medium.
    ([12, 96, 0, 39.1, 101, 111, 0], [0, 0, 0, 2, 1, 2, 0], 5, "medium", ["news2_urgent_response"]),
    # 7. RR 11 (1), SpO2 93 (2), air, 36.1 (0), SBP 110 (1), HR 50 (1), alert = 5 with no
    #    red score: medium.
    ([11, 93, 0, 36.1, 110, 50, 0], [1, 2, 0, 0, 1, 1, 0], 5, "medium", ["news2_urgent_response"]),
    # 8. New confusion (3) alone: 3, low-medium.
    (
        [16, 97, 0, 37.0, 120, 70, 1],
        [0, 0, 0, 0, 0, 0, 3],
        3,
        "low_medium",
        ["news2_single_parameter_3"],
    ),
    # 9. RR 20 (0), SpO2 92 (2), oxygen (2), 36.0 (1), SBP 219 (0), HR 41 (1), alert = 6:
    #    medium.
    ([20, 92, 1, 36.0, 219, 41, 0], [0, 2, 2, 1, 0, 1, 0], 6, "medium", ["news2_urgent_response"]),
    # 10. RR 25 (3), SpO2 91 (3), oxygen (2), 35.0 (3), SBP 90 (3), HR 131 (3), voice (3)
    #     = 20: the chart's maximum, high.
    (
        [25, 91, 1, 35.0, 90, 131, 1],
        [3, 3, 2, 3, 3, 3, 3],
        20,
        "high",
        ["news2_single_parameter_3", "news2_urgent_response", "news2_emergency_response"],
    ),
    # 11. RR 9 (1), SpO2 94 (1), air, 35.1 (1), SBP 100 (2), HR 51 (0), alert = 5: medium.
    ([9, 94, 0, 35.1, 100, 51, 0], [1, 1, 0, 1, 2, 0, 0], 5, "medium", ["news2_urgent_response"]),
    # 12. SBP 220 (3) and HR 40 (3), rest normal: 6, medium (the aggregate band wins over
    #     the red-score band).
    (
        [16, 97, 0, 37.0, 220, 40, 0],
        [0, 0, 0, 0, 3, 3, 0],
        6,
        "medium",
        ["news2_single_parameter_3", "news2_urgent_response"],
    ),
    # 13. RR 24 (2), SpO2 95 (1), air (0), 39.0 (1), SBP 91 (2), HR 130 (2), alert (0):
    #     2+1+0+1+2+2+0 = 8: high.
    (
        [24, 95, 0, 39.0, 91, 130, 0],
        [2, 1, 0, 1, 2, 2, 0],
        8,
        "high",
        ["news2_urgent_response", "news2_emergency_response"],
    ),
    # 14. RR 12 (0), SpO2 93 (2), oxygen (2), 38.0 (0), SBP 111 (0), HR 90 (0), alert (0)
    #     = 4: low, no red score.
    ([12, 93, 1, 38.0, 111, 90, 0], [0, 2, 2, 0, 0, 0, 0], 4, "low", []),
]


@pytest.mark.parametrize(("answers", "subs", "total", "band", "flags"), WORKED)
def test_worked_vitals_sets(
    answers: list[float], subs: list[int], total: int, band: str, flags: list[str]
) -> None:
    result = score("news2", answers)
    assert [result.subscores[s] for s in SUB] == subs
    assert sum(subs) == total  # the hand arithmetic itself
    assert result.total == total
    assert result.band == band
    assert list(result.flags) == flags


def test_limits_are_the_session_data_entry_bounds() -> None:
    bounds = tomllib.loads(SESSIONS_TOML.read_text())["plausibility"]
    inst = get_instrument("news2")
    pairs = {
        "respiratory_rate_per_min": "rr_per_min",
        "spo2_pct": "spo2_pct",
        "temperature_c": "temperature_c",
        "systolic_mmhg": "sbp_mmhg",
        "heart_rate_per_min": "hr_per_min",
    }
    for item_id, key in pairs.items():
        assert inst.item(item_id).limits == (bounds[key]["min"], bounds[key]["max"])


@pytest.mark.parametrize(
    ("position", "value", "item"),
    [
        (0, 101, "respiratory_rate_per_min"),
        (1, 101, "spo2_pct"),
        (2, 2, "on_supplemental_oxygen"),
        (3, 24.9, "temperature_c"),
        (3, 36.85, "temperature_c"),
        (4, 351, "systolic_mmhg"),
        (5, -1, "heart_rate_per_min"),
        (6, 2, "consciousness_cvpu"),
        (5, "fast", "heart_rate_per_min"),
    ],
)
def test_out_of_range_names_the_item(position: int, value: object, item: str) -> None:
    answers: list[object] = list(NORMAL)
    answers[position] = value
    with pytest.raises(OutOfRange, match=item):
        score("news2", answers)


def test_cli_json_contract() -> None:
    # Example 4 above: 3+3+0+0+0+2+0 = 8.
    result = runner.invoke(
        app, ["score", "news2", "--answers", "[8, 89, 0, 36.8, 182, 118, 0]", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["instrument"] == "news2"
    assert data["total"] == 8
    assert data["band"] == "high"
    assert "news2_single_parameter_3" in data["flags"]
    assert data["subscores"] == {
        "respiration_rate": 3, "spo2_scale1": 3, "air_or_oxygen": 0, "temperature": 0,
        "systolic_bp": 0, "pulse": 2, "consciousness": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("answers", "named", "allowed"),
    [
        ("[16, 97, 0, 37.0, 400, 70, 0]", "systolic_mmhg", "20 to 350 mmHg"),
        ("[16, 97, 0, 50.0, 120, 70, 0]", "temperature_c", "25 to 45 degC"),
        ("[16, 140, 0, 37.0, 120, 70, 0]", "spo2_pct", "0 to 100 %"),
        ("[16, 97, 3, 37.0, 120, 70, 0]", "on_supplemental_oxygen", "0 to 1"),
        ("[16, 97, 0, 37.0, 120, 70]", "expects 7 answers", "consciousness_cvpu"),
    ],
)
def test_cli_refuses_out_of_range_with_exit_2(answers: str, named: str, allowed: str) -> None:
    result = runner.invoke(app, ["score", "news2", "--answers", answers, "--json"])
    assert result.exit_code == 2
    message = result.output.strip()
    assert len(message.splitlines()) == 1
    assert named in message and allowed in message


def test_instruments_lists_news2() -> None:
    result = runner.invoke(app, ["instruments", "--json"])
    assert result.exit_code == 0
    by_id = {row["id"]: row for row in json.loads(result.stdout)}
    assert "Royal College of Physicians" in by_id["news2"]["source"]
    assert by_id["news2"]["items"][0] == "respiratory_rate_per_min"


_MEASUREMENT_FILE = (
    PROBE_HEAD
    + """
[[items]]
id = "reading"
label = "Reading"
kind = "measurement"
{extra}
[scoring]
method = "sum"
"""
)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # 8 then 10 leaves 9 unscored
        ("limits = { min = 0, max = 100 }\nranges = [{ max = 8, points = 3 }, "
         "{ min = 10, points = 0 }]", "contiguous"),
        ("ranges = [{ max = 8, points = 3 }, { min = 9, points = 0 }]", "needs limits"),
        ("limits = { min = 0, max = 100 }\nranges = [{ min = 0, max = 8, points = 3 }, "
         "{ min = 9, points = 0 }]", "first must have no min"),
        ("limits = { min = 0, max = 100 }\ndecimals = 1\nranges = [{ max = 35.0, points = 3 },"
         " { min = 35.2, points = 0 }]", "contiguous"),
    ],
)  # fmt: skip
def test_loader_refuses_a_chart_with_holes(extra: str, message: str) -> None:
    from ketacare.core.errors import DataFileError
    from ketacare.core.instruments import load_instrument_text

    with pytest.raises(DataFileError, match=message):
        load_instrument_text(_MEASUREMENT_FILE.format(extra=extra))
