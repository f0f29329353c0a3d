"""The stock core: the product library, the ledger's rules, and properties of the replay
over random sequences (the inventory at a past instant is the ledger replayed to it)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.stock import (
    Count,
    Disposal,
    Draw,
    Entry,
    Receipt,
    Resolution,
    TransferIn,
    TransferOut,
    Void,
    Waste,
    Witness,
    account,
    accounts,
    append,
    append_all,
    load_products,
    products,
    replay,
)

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
VIAL = "ketamine-50mg-ml-10ml-vial"  # 50 mg/mL x 10 mL = 500 mg a vial
DEVICE = "esketamine-28mg-device"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def receipt(id: int, lot_id: int = 1, units: int = 10, **kw: object) -> Receipt:
    values: dict[str, object] = {
        "id": id,
        "at": at(0),
        "by": "ana",
        "lot_id": lot_id,
        "site": "main",
        "product": VIAL,
        "lot": f"L{lot_id}",
        "expiry": date(2027, 1, 31),
        "units": units,
        "supplier": "Wholesaler",
        "reference": "INV-1",
    }
    values.update(kw)
    return Receipt(**values)  # type: ignore[arg-type]


def test_the_library_cites_a_source_for_every_product_and_an_ndc_only_where_sourced() -> None:
    lib = products()
    assert {p.id: p.mg_per_unit for p in lib.values()} == {
        "ketamine-10mg-ml-20ml-vial": 200.0,  # 10 mg/mL x 20 mL
        VIAL: 500.0,
        "ketamine-100mg-ml-5ml-vial": 500.0,  # 100 mg/mL x 5 mL
        DEVICE: 28.0,
    }
    assert {p.id for p in lib.values() if p.ndc} == {DEVICE}
    assert lib[DEVICE].ndc == "50458-028"
    assert all(p.source.url.startswith("https://") and p.source.quote for p in lib.values())


def test_a_products_file_whose_numbers_disagree_is_refused(tmp_path: Path) -> None:
    text = (Path(__file__).parents[3] / "src/ketacare/core/stock/data/products.toml").read_text()
    bad = tmp_path / "p.toml"
    bad.write_text(text.replace("mg_per_unit = 28", "mg_per_unit = 28\nstrength_mg_per_ml = 100"))
    with pytest.raises(DataFileError, match="mg_per_unit.*disagrees"):
        load_products(bad)


def test_the_remainder_of_a_session_and_its_witness() -> None:
    ledger: tuple[Entry, ...] = (
        receipt(1),
        Draw(id=2, at=at(10), by="ana", lot_id=1, units=2, prepared_mg=150, dosing_session_id=9),
        Waste(id=3, at=at(90), by="ana", draw_id=2, mg=880, ml=None, method="sink"),
    )
    # 2 vials = 1000 mg opened; 120 mg given; 880 mg wasted but not yet witnessed
    a = account(ledger, delivered_mg=120, dosing_session_id=9)
    assert (a.opened_mg, a.wasted_mg, a.pending_waste_mg, a.remainder_mg) == (1000, 0, 880, 880)
    assert not a.accounted
    ledger = append(ledger, Witness(id=4, at=at(91), by="ben", target_id=3))
    assert account(ledger, delivered_mg=120, dosing_session_id=9).accounted
    # more waste than was opened is refused
    with pytest.raises(InvalidInput, match="1001 mg wasted is more than the 1000 mg opened"):
        replay(
            (
                *ledger,
                Waste(id=5, at=at(92), by="ana", draw_id=2, mg=121, ml=None, method="sink"),
                Witness(id=6, at=at(92), by="ben", target_id=5),
            )
        )


def test_every_session_s_account_from_one_pass_over_the_ledger() -> None:
    """``accounts`` gives, for each purpose, what ``account`` gives for it alone; the
    figures worked by hand from the entries (500 mg a vial)."""
    ledger: tuple[Entry, ...] = (
        receipt(1, units=20),
        # session 9: two draws (3 vials), one of them voided; 880 mg wasted, witnessed
        Draw(id=2, at=at(10), by="ana", lot_id=1, units=2, prepared_mg=150, dosing_session_id=9),
        Draw(id=3, at=at(11), by="ana", lot_id=1, units=1, prepared_mg=50, dosing_session_id=9),
        Void(id=4, at=at(12), by="ana", target_id=3, reason="drawn for the wrong session"),
        Waste(id=5, at=at(90), by="ana", draw_id=2, mg=880, ml=None, method="sink"),
        Witness(id=6, at=at(91), by="ben", target_id=5),
        # session 11: one vial, 400 mg wasted and not yet witnessed, 60 mg voided waste
        Draw(id=7, at=at(20), by="ana", lot_id=1, units=1, prepared_mg=100, dosing_session_id=11),
        Waste(id=8, at=at(95), by="ana", draw_id=7, mg=400, ml=None, method="sink"),
        Waste(id=9, at=at(96), by="ana", draw_id=7, mg=60, ml=None, method="sink"),
        Void(id=10, at=at(97), by="ana", target_id=9, reason="entered twice"),
        # a take-home supply of 2 vials
        Draw(id=11, at=at(30), by="ana", lot_id=1, units=2, prepared_mg=1000, take_home_id=4),
    )
    delivered = {("session", 9): 120.0, ("session", 11): 100.0, ("take_home", 4): 1000.0}
    delivered |= {("session", 12): 0.0}  # a session that drew nothing
    together = accounts(ledger, delivered=delivered)
    alone = {
        ("session", 9): account(ledger, delivered_mg=120, dosing_session_id=9),
        ("session", 11): account(ledger, delivered_mg=100, dosing_session_id=11),
        ("take_home", 4): account(ledger, delivered_mg=1000, take_home_id=4),
        ("session", 12): account(ledger, delivered_mg=0, dosing_session_id=12),
    }
    assert together == alone
    figures = {
        key: (a.opened_mg, a.wasted_mg, a.pending_waste_mg, a.accounted)
        for key, a in together.items()
    }
    assert figures == {
        ("session", 9): (1000, 880, 0, True),  # 1000 - 120 given - 880 wasted = 0
        ("session", 11): (500, 0, 400, False),  # 500 - 100 = 400 waiting for its witness
        ("take_home", 4): (1000, 0, 0, True),
        ("session", 12): (0, 0, 0, True),
    }
    assert [d.id for d in together[("session", 9)].draws] == [2]
    with pytest.raises(InvalidInput, match="a dosing session or a take-home supply"):
        account(ledger, delivered_mg=0)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            Draw(id=9, at=at(5), by="ana", lot_id=2, units=1, prepared_mg=10, dosing_session_id=1),
            "lot L2 expired on 2026-03-01",
        ),
        (
            Draw(id=9, at=at(5), by="ana", lot_id=1, units=11, prepared_mg=10, dosing_session_id=1),
            "lot L1 has 10",
        ),
        (
            Draw(id=9, at=at(-5), by="ana", lot_id=1, units=1, prepared_mg=10, dosing_session_id=1),
            "lot 1 had not been received",
        ),
        (Void(id=9, at=at(5), by="ana", target_id=1, reason="typo"), None),
        (
            Resolution(id=9, at=at(5), by="doc", count_id=1, outcome="adjusted", reason="x"),
            "not a witnessed count",
        ),
    ],
    ids=repr,
)
def test_refusals_name_the_reason(entry: Entry, message: str | None) -> None:
    base = (receipt(1), receipt(2, lot_id=2, units=3, expiry=date(2026, 3, 1)))
    if message is None:  # a void of a receipt is allowed while nothing was drawn from it
        assert [b.lot_id for b in replay(append(base, entry)).lots] == [2]
        return
    with pytest.raises(InvalidInput, match=message):
        append(base, entry)


def test_a_void_that_would_leave_a_draw_without_stock_is_refused() -> None:
    ledger = (
        receipt(1, units=2),
        Draw(id=2, at=at(5), by="ana", lot_id=1, units=2, prepared_mg=10, dosing_session_id=1),
    )
    with pytest.raises(InvalidInput, match="entry 2: lot 1 had not been received"):
        append(ledger, Void(id=3, at=at(6), by="ana", target_id=1, reason="wrong lot"))


def test_a_discrepancy_resolved_as_theft_needs_the_dea_form_and_adjusts_the_balance() -> None:
    ledger: tuple[Entry, ...] = (
        receipt(1, units=5),
        Count(id=2, at=at(60), by="ana", lot_id=1, units_counted=3),
        Witness(id=3, at=at(61), by="ben", target_id=2),
    )
    [d] = replay(ledger).discrepancies
    assert (d.expected, d.counted, d.difference) == (5, 3, -2)
    with pytest.raises(InvalidInput, match="DEA Form 106"):
        Resolution(id=4, at=at(70), by="doc", count_id=2, outcome="theft", reason="break-in")
    ledger = append(
        ledger,
        Resolution(
            id=4,
            at=at(70),
            by="doc",
            count_id=2,
            outcome="theft",
            reason="break-in",
            report_reference="106-1",
        ),
    )
    stock = replay(ledger)
    assert (stock.lot(1).units_on_hand, stock.lot(1).mg_on_hand) == (3, 1500)
    assert stock.discrepancies[0].resolved
    # before the resolution the books still said 5
    assert replay(ledger, at=at(65)).lot(1).units_on_hand == 5


# --------------------------------------------------------------------------- properties

OPS = st.lists(
    st.tuples(
        st.sampled_from(("receipt", "draw", "dispose", "count", "void")),
        st.integers(min_value=1, max_value=3),  # lot
        st.integers(min_value=1, max_value=6),  # units
        st.integers(min_value=1, max_value=240),  # minutes after the previous entry
        st.booleans(),  # witnessed (disposals, counts)
    ),
    max_size=30,
)


def _build(ops: list[tuple[str, int, int, int, bool]]) -> tuple[Entry, ...]:
    """Append each operation; keep those the ledger accepts (the refused change nothing)."""
    ledger: tuple[Entry, ...] = ()
    clock = 0
    for kind, lot, units, step, witnessed in ops:
        clock += step
        n = len(ledger) + 1
        new: list[Entry]
        if kind == "receipt":
            new = [receipt(n, lot_id=lot, units=units, at=at(clock), product=VIAL)]
        elif kind == "draw":
            new = [
                Draw(
                    id=n,
                    at=at(clock),
                    by="ana",
                    lot_id=lot,
                    units=units,
                    prepared_mg=1,
                    dosing_session_id=n,
                )
            ]
        elif kind in ("dispose", "count"):
            first: Entry = (
                Disposal(
                    id=n,
                    at=at(clock),
                    by="ana",
                    lot_id=lot,
                    units=units,
                    disposal="destroyed",
                    reason="expired",
                    reference="41-1",
                )
                if kind == "dispose"
                else Count(id=n, at=at(clock), by="ana", lot_id=lot, units_counted=units)
            )
            new = [first] + (
                [Witness(id=n + 1, at=at(clock + 1), by="ben", target_id=n)] if witnessed else []
            )
        else:
            targets = [e for e in ledger if isinstance(e, Receipt | Draw)]
            if not targets:
                continue
            new = [
                Void(
                    id=n,
                    at=at(clock),
                    by="ana",
                    target_id=targets[units % len(targets)].id,
                    reason="error",
                )
            ]
        try:
            candidate = ledger
            for e in new:
                candidate = append(candidate, e)
        except InvalidInput:
            continue
        ledger = candidate
    return ledger


def _expected_on_hand(ledger: tuple[Entry, ...], t: datetime) -> dict[int, int]:
    """An independent count: what came in minus what went out, by ``t``."""
    voided = {e.target_id for e in ledger if isinstance(e, Void) and e.at <= t}
    signed = {e.target_id for e in ledger if isinstance(e, Witness) and e.at <= t}
    out: dict[int, int] = {}
    for e in ledger:
        if e.at > t or e.id in voided:
            continue
        if isinstance(e, Receipt):
            out[e.lot_id] = out.get(e.lot_id, 0) + e.units
        elif isinstance(e, Draw):
            out[e.lot_id] -= e.units
        elif isinstance(e, Disposal) and e.id in signed:
            out[e.lot_id] -= e.units
    return out


@settings(max_examples=200, deadline=None)
@given(ops=OPS, probe=st.integers(min_value=0, max_value=30 * 241))
def test_the_inventory_at_a_past_instant_is_the_ledger_replayed_to_it(
    ops: list[tuple[str, int, int, int, bool]], probe: int
) -> None:
    ledger = _build(ops)
    t = at(probe)
    report = {b.lot_id: (b.units_on_hand, b.mg_on_hand) for b in replay(ledger, at=t).lots}
    expected = _expected_on_hand(ledger, t)
    assert report == {lot: (units, units * 500.0) for lot, units in expected.items()}
    assert all(units >= 0 for units, _ in report.values())
    # the ledger as it stood at t (later entries not yet written) gives the same inventory
    then = tuple(e for e in ledger if e.at <= t)
    assert {b.lot_id: b.units_on_hand for b in replay(then).lots} == expected


def transfer(
    out_id: int, units: int = 3, site: str = "north", minutes: int = 10, **kw: object
) -> tuple[TransferOut, TransferIn]:
    """Lot 1 (L1 at main) to ``site``: the out and its in (lot 2 there)."""
    out = TransferOut(id=out_id, at=at(minutes), by="ana", lot_id=1, units=units, reference="TS-1")
    values: dict[str, object] = {
        "id": out_id + 1,
        "at": at(minutes),
        "by": "ana",
        "transfer_id": out_id,
        "lot_id": 2,
        "site": site,
        "product": VIAL,
        "lot": "L1",
        "expiry": date(2027, 1, 31),
        "units": units,
    }
    values.update(kw)
    return out, TransferIn(**values)  # type: ignore[arg-type]


def test_a_witnessed_transfer_moves_units_between_sites() -> None:
    lib = products()
    ledger = append_all((receipt(1),), transfer(2), lib)
    # not witnessed yet: nothing moved, the transfer awaits its witness
    stock = replay(ledger, lib)
    assert [(b.site, b.units_on_hand) for b in stock.lots] == [("main", 10)]
    assert [e.id for e in stock.pending] == [2]
    ledger = append(ledger, Witness(id=4, at=at(11), by="ben", target_id=2), lib)
    stock = replay(ledger, lib)
    assert [(b.site, b.lot, b.units_on_hand, b.mg_on_hand) for b in stock.lots] == [
        ("main", "L1", 7, 3500),
        ("north", "L1", 3, 1500),
    ]
    assert (stock.lot(1).transferred_out, stock.lot(2).transferred_in) == (3, 3)
    # the receiving site draws from the lot it now holds
    draw = Draw(id=5, at=at(20), by="ana", lot_id=2, units=1, prepared_mg=100, dosing_session_id=9)
    ledger = append(ledger, draw, lib)
    assert account(ledger, lib, delivered_mg=100, dosing_session_id=9).opened_mg == 500
    # a void of the in alone is refused; the in follows a void of the out
    with pytest.raises(InvalidInput, match="void the transfer out 2"):
        append(ledger, Void(id=6, at=at(30), by="ana", target_id=3, reason="x"), lib)
    with pytest.raises(InvalidInput, match="lot 2 had not been received"):  # the draw from it
        append(ledger, Void(id=6, at=at(30), by="ana", target_id=2, reason="x"), lib)
    undone = append(ledger[:-1], Void(id=6, at=at(30), by="ana", target_id=2, reason="x"), lib)
    assert [(b.site, b.units_on_hand) for b in replay(undone, lib).lots] == [("main", 10)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"units": 11}, "has 10"),
        ({"site": "main"}, "a transfer is between two sites"),
        ({"minutes": 60 * 24 * 400}, "expired on 2027-01-31: an expired lot is not transferred"),
    ],
)
def test_a_bad_transfer_is_refused(change: dict[str, object], message: str) -> None:
    units = int(change.get("units", 3))  # type: ignore[call-overload]
    minutes = int(change.get("minutes", 10))  # type: ignore[call-overload]
    site = str(change.get("site", "north"))
    with pytest.raises(InvalidInput, match=message):
        append_all((receipt(1),), transfer(2, units=units, site=site, minutes=minutes))


def test_a_transfer_out_without_its_in_and_a_self_witness_are_refused() -> None:
    out, into = transfer(2)
    with pytest.raises(InvalidInput, match="recorded with its transfer in"):
        append((receipt(1),), out)
    with pytest.raises(InvalidInput, match="second person"):
        append((receipt(1), out, into), Witness(id=4, at=at(11), by="ana", target_id=2))
