"""The personalisation core (request checks, protocol limits) called as the page calls it.

The command's behaviour is tested in ``test_personalise_cli.py``; these tests check the
pieces the page and the command share, against values read from the sources: the
Spravato label's highest dose for treatment-resistant depression is 84 mg per session
(the shipped ``esketamine-trd`` protocol cites it as its hard ``dose_mg`` limit).
"""

from __future__ import annotations

import dataclasses

import pytest

from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.pharmacology import parse_regimen
from ketacare.core.pharmacology.personalise import (
    PersonaliseRequest,
    parse_request,
    protocol_limit_check,
    protocol_route,
)
from ketacare.core.protocols import load_library, resolve_limits

LABEL_MAX_MG = 84.0  # Spravato label, TRD schedule: 56 or 84 mg per session

DOC = {
    "model": "perez-ruixo-2021",
    "patient": {"weight_kg": 80},
    "doses": [{"route": "intranasal", "start_h": 0, "amount_mg": 56}],
    "samples": [{"time_h": 0.7, "value_ng_per_ml": 61.0}],
    "protocol": "esketamine-trd",
}


@pytest.fixture(scope="module")
def check():
    protocol = load_library().get(protocol_id="esketamine-trd")
    return protocol_limit_check(
        protocol=protocol, limits=resolve_limits(protocol=protocol), weight_kg=80
    )


def nasal(amount_mg: float, route: str = "intranasal"):
    return parse_regimen(
        {"doses": [{"route": route, "start_h": 0, "amount_mg": amount_mg}]}, weight_kg=80
    )


def test_a_dose_above_the_label_maximum_is_a_hard_finding_naming_limit_and_source(check):
    findings = check(nasal(112))
    assert [(f.level, f.message) for f in findings] == [
        (
            "hard",
            "intranasal 112 mg exceeds the hard limit 84 mg of protocol esketamine-trd "
            "(source: Spravato label, TRD schedule)",
        )
    ]


@pytest.mark.parametrize("amount_mg", [56.0, LABEL_MAX_MG], ids=repr)
def test_a_labelled_dose_passes(check, amount_mg):
    assert check(nasal(amount_mg)) == ()


def test_a_dose_on_another_route_is_outside_the_protocol(check):
    # an oral dose is not the protocol's route: its limits do not apply (and say so elsewhere)
    assert check(nasal(500, route="oral")) == ()


def test_a_protocol_route_the_engine_does_not_know_is_refused():
    protocol = load_library().get(protocol_id="esketamine-trd")
    assert protocol_route(protocol) == "intranasal"
    with pytest.raises(UnknownItem, match="unknown protocol route 'nasal'"):
        protocol_route(dataclasses.replace(protocol, route="nasal"))


def test_the_request_is_typed_and_frozen():
    request = parse_request(doc=DOC)
    assert isinstance(request, PersonaliseRequest)
    assert request.protocol is not None and request.protocol.id == "esketamine-trd"
    assert request.regimen.total_dose_mg == 56.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.ceiling_ng_per_ml = 1.0  # type: ignore[misc]


def test_a_refused_request_raises_an_error_not_an_exit():
    # the page reads requests too: a refusal is an error it can show, never a process exit
    doc = {**DOC, "samples": [{"time_h": 0, "value_ng_per_ml": 61.0}]}
    with pytest.raises(InvalidInput, match=r"^sample 1 time_h: 0 h is not after the first dose"):
        parse_request(doc=doc)
