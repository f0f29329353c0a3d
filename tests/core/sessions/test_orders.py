"""The monitoring order: where each value came from, and the NEWS2 SpO2 scale."""

from __future__ import annotations

import tomllib

import pytest

from ketacare.core.errors import InvalidInput
from ketacare.core.protocols import load_library
from ketacare.core.sessions.orders import MonitoringOrder, monitoring_order
from ketacare.core.sessions.site_policy import parse_session_policy

ENTERED = {
    "sbp_high": 180, "sbp_low": 90, "dbp_high": 110, "dbp_low": 50, "hr_high": 120,
    "hr_low": 50, "spo2_low": 92, "rr_low": 10, "moaas_at_or_below": 2, "observation_min": 60,
}  # fmt: skip

# depression-iv's sourced vitals interval is 10 min (Riva-Posse 2018, the protocol file)
PROTOCOL = load_library().get(protocol_id="depression-iv")


def test_a_prefilled_value_sent_back_unchanged_keeps_its_origin() -> None:
    policy = parse_session_policy(tomllib.loads("[thresholds]\nsbp_mmhg = { high = 170 }\n"))
    # the sign form posts every field, pre-filled ones included
    posted = {**ENTERED, "sbp_high": 170, "vitals_interval_min": 10,
              "recovery_vitals_interval_min": 5}  # fmt: skip
    order = monitoring_order(protocol=PROTOCOL, entered=posted, policy=policy, set_by="dr_a")
    assert order.origins["sbp_high"] == "clinic_policy"  # 170 as the policy sets it
    assert order.origins["vitals_interval_min"] == "sourced"  # 10 as the protocol cites
    assert order.origins["recovery_vitals_interval_min"] == "plan"  # 5: the physician's own
    changed = monitoring_order(
        protocol=PROTOCOL, entered={**posted, "sbp_high": 160}, policy=policy, set_by="dr_a"
    )
    assert changed.origins["sbp_high"] == "plan" and changed.values["sbp_high"] == 160


def test_scale_2_round_trips_and_an_old_order_is_scale_1() -> None:
    order = monitoring_order(
        protocol=PROTOCOL,
        entered={
            **ENTERED,
            "spo2_low": 88,
            "news2_spo2_scale": "2",
            "news2_spo2_scale_basis": " COPD; 88-92% ",
        },
        policy=None,
        set_by="dr_a",
    )
    assert (order.spo2_scale, order.spo2_scale_basis) == (2, "COPD; 88-92%")
    assert MonitoringOrder.from_dict(order.to_dict()) == order
    old = {k: v for k, v in order.to_dict().items() if not k.startswith("news2_")}
    assert MonitoringOrder.from_dict(old).spo2_scale == 1


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"news2_spo2_scale": "2", "news2_spo2_scale_basis": "   "}, "needs its basis"),
        ({"news2_spo2_scale": True}, "must be 1 or 2"),
        ({"news2_spo2_scale": "1", "news2_spo2_scale_basis": "COPD"}, "recorded only with"),
    ],
)
def test_scale_refusals_name_the_field(extra: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        monitoring_order(
            protocol=PROTOCOL, entered={**ENTERED, **extra}, policy=None, set_by="dr_a"
        )


def test_scale_2_refuses_an_spo2_low_inside_its_target() -> None:
    # RCP 2017 Chart 1: on scale 2, 88-92% scores 0 (on target); an SpO2 low of 89 would
    # alert at a saturation the order itself calls on target
    scale2 = {"news2_spo2_scale": 2, "news2_spo2_scale_basis": "COPD; 88-92%"}
    with pytest.raises(InvalidInput, match="spo2_low 89 % is above 88 %, the lower end"):
        monitoring_order(
            protocol=PROTOCOL, entered={**ENTERED, **scale2, "spo2_low": 89}, policy=None,
            set_by="dr_a",
        )  # fmt: skip
    at_edge = monitoring_order(
        protocol=PROTOCOL, entered={**ENTERED, **scale2, "spo2_low": 88}, policy=None,
        set_by="dr_a",
    )  # fmt: skip
    assert at_edge.spo2_scale == 2
