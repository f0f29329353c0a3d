"""Dosage forms as data, the shipped products' forms, and a clinic's own products."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.stock import clinic_product, forms, load_products, products
from ketacare.core.stock.forms import load_forms

SHIPPED = Path(__file__).resolve().parents[3] / "src/ketacare/core/stock/data"


def test_no_shipped_product_is_taken_home_and_none_is_the_clinics() -> None:
    lib = products()
    assert {p.id: p.form for p in lib.values()} == {
        "ketamine-10mg-ml-20ml-vial": "injection_solution",
        "ketamine-50mg-ml-10ml-vial": "injection_solution",
        "ketamine-100mg-ml-5ml-vial": "injection_solution",
        "esketamine-28mg-device": "nasal_spray",
    }
    racemic = [p for p in lib.values() if p.molecule == "racemic_ketamine"]
    for route in ("oral", "sublingual", "intranasal"):
        assert not any(p.fits(route) for p in racemic)
    assert not any(p.registered_by_clinic for p in lib.values())


def test_a_products_file_never_ships_a_clinic_product(tmp_path: Path) -> None:
    text = (SHIPPED / "products.toml").read_text()
    bad = tmp_path / "products.toml"
    bad.write_text(text.replace('id = "ketamine-10mg-ml-20ml-vial"', 'id = "clinic-1"'))
    with pytest.raises(DataFileError, match="clinic-... ids are the clinic's own"):
        load_products(bad)


def test_a_forms_file_names_only_routes_of_the_vocabulary(tmp_path: Path) -> None:
    text = (SHIPPED / "forms.toml").read_text()
    bad = tmp_path / "forms.toml"
    bad.write_text(text.replace('routes = ["oral"]', 'routes = ["rectal"]', 1))
    with pytest.raises(DataFileError, match="'rectal' is not a route"):
        load_forms(bad)
    assert forms()["oral_solution"].routes == ("oral",)


def test_a_clinic_product_from_mg_per_ml_and_ml_per_unit() -> None:
    # 10 mg/mL x 10 mL = 100 mg per bottle; 3 bottles = 300 mg
    p = clinic_product(
        id="clinic-4",
        molecule="racemic_ketamine",
        label="oral solution",
        form="oral_solution",
        unit="bottle",
        strength_mg_per_ml=10,
        volume_ml=10,
        supplier="pharmacy",
        statement="label",
    )
    assert (p.mg_per_unit, p.mg(3), p.fits("oral"), p.ndc) == (100.0, 300.0, True, None)
    assert p.source.citation == "pharmacy: label"
    with pytest.raises(InvalidInput, match="molecule 'arketamine' is not known"):
        clinic_product(
            id="clinic-4",
            molecule="arketamine",
            label="x",
            form="oral_solution",
            unit="bottle",
            mg_per_unit=1,
            supplier="s",
            statement="t",
        )
