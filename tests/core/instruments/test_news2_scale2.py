"""NEWS2 with SpO2 scale 2 (RCP 2017): the scale-2 row of Chart 1, bands and flags.

Every expected number below is read by hand from the Royal College of Physicians'
Chart 1, "National Early Warning Score (NEWS) 2", London: RCP, 2017
(https://www.rcplondon.ac.uk/projects/outputs/national-early-warning-score-news-2),
and checked against Table 1 of Echevarria, Steer, Bourke, Thorax 2019;74:941-946
(doi:10.1136/thoraxjnl-2019-213470):

    SpO2 scale 2  <=83: 3 | 84-85: 2 | 86-87: 1 | 88-92: 0 | >=93 on air: 0
                  93-94 on oxygen: 1 | 95-96 on oxygen: 2 | >=97 on oxygen: 3

Every other parameter scores as on scale 1 (tests/core/instruments/test_news2.py).
"""

from __future__ import annotations

import pytest

from core.instruments.probe import PROBE_HEAD
from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.instruments import get_instrument, load_instrument_text, score

# A set where every parameter but SpO2 (and oxygen) scores 0: RR 16, 37.0, SBP 120,
# HR 70, alert.
REST = {
    "respiratory_rate_per_min": 16,
    "temperature_c": 37.0,
    "systolic_mmhg": 120,
    "heart_rate_per_min": 70,
    "consciousness_cvpu": 0,
}

ON_AIR = [(83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (100, 0)]
ON_OXYGEN = [
    (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0),
    (93, 1), (94, 1), (95, 2), (96, 2), (97, 3), (100, 3),
]  # fmt: skip


@pytest.mark.parametrize(("spo2", "points"), ON_AIR)
def test_scale_2_on_air(spo2: int, points: int) -> None:
    result = score("news2_scale2", {**REST, "on_supplemental_oxygen": 0, "spo2_on_air_pct": spo2})
    assert result.subscores["spo2_scale2"] == points
    assert result.subscores["air_or_oxygen"] == 0
    assert result.total == points


@pytest.mark.parametrize(("spo2", "points"), ON_OXYGEN)
def test_scale_2_on_oxygen(spo2: int, points: int) -> None:
    result = score(
        "news2_scale2", {**REST, "on_supplemental_oxygen": 1, "spo2_on_oxygen_pct": spo2}
    )
    assert result.subscores["spo2_scale2"] == points
    assert result.subscores["air_or_oxygen"] == 2  # Chart 1: oxygen scores 2
    assert result.total == points + 2


# Worked sets, by hand from Chart 1 (scale 2 row) and Chart 2 (bands):
WORKED = [
    # 1. SpO2 90 on air (0), everything else 0: on target, low. On scale 1 the same 90
    #    would score 3 (<=91).
    ({"on_supplemental_oxygen": 0, "spo2_on_air_pct": 90}, 0, "low", []),
    # 2. SpO2 97 on oxygen (3) + oxygen (2) = 5: medium, and a red score.
    (
        {"on_supplemental_oxygen": 1, "spo2_on_oxygen_pct": 97},
        5,
        "medium",
        ["news2_single_parameter_3", "news2_urgent_response"],
    ),
    # 3. SpO2 83 on air (3), RR 22 (2), HR 112 (2) = 7: high.
    (
        {
            "on_supplemental_oxygen": 0,
            "spo2_on_air_pct": 83,
            "respiratory_rate_per_min": 22,
            "heart_rate_per_min": 112,
        },
        7,
        "high",
        ["news2_single_parameter_3", "news2_urgent_response", "news2_emergency_response"],
    ),
    # 4. SpO2 94 on oxygen (1) + oxygen (2) + temperature 38.5 (1) = 4: low, no red.
    (
        {"on_supplemental_oxygen": 1, "spo2_on_oxygen_pct": 94, "temperature_c": 38.5},
        4,
        "low",
        [],
    ),
]


@pytest.mark.parametrize(("changes", "total", "band", "flags"), WORKED)
def test_worked_sets(changes: dict[str, object], total: int, band: str, flags: list[str]) -> None:
    result = score("news2_scale2", {**REST, **changes})
    assert result.total == total
    assert result.band == band
    assert list(result.flags) == flags


def test_the_total_range_counts_the_spo2_alternatives_once() -> None:
    # Chart 1: RR 3 + SpO2 3 + oxygen 2 + temperature 3 (<=35.0) + systolic 3 + pulse 3
    # + consciousness 3 = 20, the RCP's "0-20" (the two SpO2 items are not added twice).
    assert get_instrument("news2_scale2").total_range() == (0, 20)
    assert get_instrument("news2").total_range() == (0, 20)


def test_a_reading_for_the_other_alternative_is_refused() -> None:
    with pytest.raises(InvalidInput, match="spo2_on_air_pct is asked only when"):
        score(
            "news2_scale2",
            {
                **REST,
                "on_supplemental_oxygen": 1,
                "spo2_on_air_pct": 90,
                "spo2_on_oxygen_pct": 90,
            },
        )


def test_a_missing_saturation_leaves_no_total() -> None:
    result = score("news2_scale2", {**REST, "on_supplemental_oxygen": 0})
    assert result.total is None and result.band is None
    assert result.missing == ("spo2_on_air_pct",)


_ONE_OF = (
    PROBE_HEAD
    + """
[[items]]
id = "gate"
label = "Gate"
kind = "boolean"
[[items]]
id = "a"
label = "A"
kind = "boolean"
{a_gate}
[[items]]
id = "b"
label = "B"
kind = "boolean"
enable_when = {{ item = "gate", equals = true }}
[[subscales]]
id = "ab"
label = "A or B"
items = ["a", "b"]
method = "one_of"
[scoring]
method = "sum"
"""
)


@pytest.mark.parametrize(
    ("a_gate", "message"),
    [
        ("", "each with enable_when"),
        ('enable_when = { item = "gate", equals = true }', "different answers"),
    ],
)
def test_loader_refuses_one_of_items_that_are_not_alternatives(a_gate: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        load_instrument_text(_ONE_OF.format(a_gate=a_gate))


def test_loader_takes_one_of_items_asked_under_different_answers() -> None:
    probe = load_instrument_text(
        _ONE_OF.format(a_gate='enable_when = { item = "gate", equals = false }')
    )
    assert probe.total_range() == (0, 2)  # the gate and one of a or b
