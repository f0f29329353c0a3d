"""Controlled-substance products as data: what one unit (a vial, a device) holds.

The library is ``data/products.toml``; each product cites the label its strength and
volume come from, and carries an NDC only where a source names one for it.

Examples
--------
>>> lib = products()
>>> vial = lib["ketamine-50mg-ml-10ml-vial"]
>>> (vial.molecule, vial.unit, vial.mg_per_unit, vial.ndc)
('racemic_ketamine', 'vial', 500.0, None)
>>> device = lib["esketamine-28mg-device"]
>>> (device.mg_per_unit, device.ndc)
(28.0, '50458-028')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.sources import Source

__all__ = ["MOLECULES", "Product", "load_products", "products"]

_KIND = "stock products"
#: The controlled molecules a product may hold (both Schedule III).
MOLECULES = ("racemic_ketamine", "esketamine")
_UNITS = ("vial", "device", "ampoule", "tablet", "troche", "bottle")
_NDC = re.compile(r"^\d{4,5}-\d{3,4}(-\d{1,2})?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
    """One stocked presentation; a lot of it is counted in whole units."""

    id: str
    molecule: str
    label: str
    form: str
    unit: str
    mg_per_unit: float
    strength_mg_per_ml: float | None
    volume_ml: float | None
    ndc: str | None
    source: Source

    def mg(self, units: int) -> float:
        """The mg held by ``units`` whole units.

        Examples
        --------
        >>> products()["ketamine-100mg-ml-5ml-vial"].mg(3)
        1500.0
        """
        return self.mg_per_unit * units


def _product(entry: Reader, sources: dict[str, Source]) -> Product:
    entry.fields(
        required=("id", "molecule", "label", "form", "unit", "source"),
        optional=("strength_mg_per_ml", "volume_ml", "mg_per_unit", "ndc"),
    )
    strength = entry.opt_number("strength_mg_per_ml", positive=True)
    volume = entry.opt_number("volume_ml", positive=True)
    given = entry.opt_number("mg_per_unit", positive=True)
    if given is None:
        if strength is None or volume is None:
            raise entry.fail(
                "mg_per_unit", "is missing: give it, or strength_mg_per_ml and volume_ml"
            )
        mg_per_unit = strength * volume
    else:
        mg_per_unit = given
        if strength is not None and volume is not None and abs(strength * volume - given) > 1e-9:
            raise entry.fail("mg_per_unit", "disagrees with strength_mg_per_ml x volume_ml")
    ndc = entry.opt_text("ndc")
    if ndc is not None and not _NDC.match(ndc):
        raise entry.fail("ndc", f"{ndc!r} is not an NDC (labeler-product[-package], digits)")
    key = entry.text("source")
    if key not in sources:
        raise entry.fail("source", f"unknown source {key!r} (known: {', '.join(sorted(sources))})")
    return Product(
        id=entry.text("id"),
        molecule=entry.choice("molecule", MOLECULES),
        label=entry.text("label"),
        form=entry.text("form"),
        unit=entry.choice("unit", _UNITS),
        mg_per_unit=float(mg_per_unit),
        strength_mg_per_ml=strength,
        volume_ml=volume,
        ndc=ndc,
        source=sources[key],
    )


def load_products(
    file: Path | Traversable, *, name: str | Path | None = None
) -> dict[str, Product]:
    """Read a products file (the library's, or a clinic's own), by product id."""
    shown = name if name is not None else str(file)
    top = Reader(kind=_KIND, path=shown, table=read_toml(file, kind=_KIND, name=shown))
    top.fields(required=("schema", "sources", "products"))
    if top.integer("schema") != 1:
        raise top.fail("schema", "must be 1")
    sources = top.sources("sources", required={"key", "label", "citation", "url", "read", "quote"})
    found: dict[str, Product] = {}
    for entry in top.tables("products", required=True, id_key="id"):
        product = _product(entry, sources)
        if product.id in found:
            raise entry.fail("id", f"duplicate product id {product.id!r}")
        found[product.id] = product
    return found


@cache
def products() -> dict[str, Product]:
    """The product library shipped with ketacare (``data/products.toml``)."""
    file = resources.files("ketacare.core.stock").joinpath("data", "products.toml")
    return load_products(file, name="products.toml")
