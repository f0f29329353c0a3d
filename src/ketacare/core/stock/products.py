"""Controlled-substance products as data: what one unit (a vial, a device) holds.

The library is ``data/products.toml``; each product cites the label its strength and
volume come from, and carries an NDC only where a source names one for it. A clinic
also stocks products no source of ours describes (a compounding pharmacy's ketamine
oral solution or troche): it registers them from its supplier's label
(:func:`clinic_product`); they are the clinic's data, never shipped here, and say so
wherever they are shown (:data:`CLINIC_MARK`).

Examples
--------
>>> lib = products()
>>> vial = lib["ketamine-50mg-ml-10ml-vial"]
>>> (vial.molecule, vial.unit, vial.mg_per_unit, vial.ndc)
('racemic_ketamine', 'vial', 500.0, None)
>>> device = lib["esketamine-28mg-device"]
>>> (device.mg_per_unit, device.ndc, device.fits("intranasal_esketamine"))
(28.0, '50458-028', True)
>>> troche = clinic_product(id="clinic-1", molecule="racemic_ketamine",
...     label="ketamine 100 mg troche", form="sublingual_troche", unit="troche",
...     mg_per_unit=100, supplier="Example Compounding Pharmacy",
...     statement="label of lot T-1 (100 mg ketamine HCl per troche)")
>>> (troche.mg(3), troche.fits("sublingual"), troche.fits("oral"), troche.registered_by_clinic)
(300.0, True, False, True)
>>> troche.shown
"ketamine 100 mg troche (registered by the clinic from the supplier's label)"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import InvalidInput
from ketacare.core.sources import Source
from ketacare.core.stock.forms import form, forms

__all__ = [
    "CLINIC_MARK",
    "CLINIC_PREFIX",
    "MOLECULES",
    "UNITS",
    "Product",
    "clinic_product",
    "load_products",
    "products",
]

_KIND = "stock products"
#: The controlled molecules a product may hold (both Schedule III).
MOLECULES = ("racemic_ketamine", "esketamine")
#: What one counted unit of a product is.
UNITS = ("vial", "device", "ampoule", "tablet", "troche", "lozenge", "capsule", "bottle")
#: The ids of products a clinic registers begin so (a shipped id never does).
CLINIC_PREFIX = "clinic-"
#: How a clinic-registered product is marked wherever it is shown.
CLINIC_MARK = "registered by the clinic from the supplier's label"
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
    #: the clinic's own data, read from its supplier's label (not a shipped product)
    registered_by_clinic: bool = False

    @property
    def shown(self) -> str:
        """The label as pages and reports show it (a clinic's product marked so)."""
        return f"{self.label} ({CLINIC_MARK})" if self.registered_by_clinic else self.label

    @property
    def form_label(self) -> str:
        """How the product's dosage form reads."""
        return form(self.form).label

    def fits(self, route: str) -> bool:
        """Whether the product's form is given by the protocol route ``route``."""
        return form(self.form).fits(route)

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
    shape = entry.choice("form", tuple(forms()))
    ident = entry.text("id")
    if ident.startswith(CLINIC_PREFIX):
        raise entry.fail("id", f"{CLINIC_PREFIX}... ids are the clinic's own registrations")
    key = entry.text("source")
    if key not in sources:
        raise entry.fail("source", f"unknown source {key!r} (known: {', '.join(sorted(sources))})")
    return Product(
        id=ident,
        molecule=entry.choice("molecule", MOLECULES),
        label=entry.text("label"),
        form=shape,
        unit=entry.choice("unit", UNITS),
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


def _amount(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput(f"{what} must be a number above 0, got {value!r}")
    return float(value)


def clinic_product(
    *,
    id: str,
    molecule: str,
    label: str,
    form: str,
    unit: str,
    supplier: str,
    statement: str,
    mg_per_unit: float | None = None,
    strength_mg_per_ml: float | None = None,
    volume_ml: float | None = None,
) -> Product:
    """A product the clinic registers from its supplier's label (or certificate of
    analysis): :class:`InvalidInput` naming the field and what is allowed otherwise.

    The strength is mg per unit, or mg/mL and mL per unit (both given: they must agree);
    ``supplier`` and ``statement`` (the label or certificate it was read from) are
    required: they are the product's only source.
    """
    if not id.startswith(CLINIC_PREFIX):
        raise InvalidInput(f"a clinic's product id begins {CLINIC_PREFIX!r}, got {id!r}")
    if molecule not in MOLECULES:
        raise InvalidInput(f"molecule {molecule!r} is not known: allowed {', '.join(MOLECULES)}")
    if form not in forms():
        raise InvalidInput(f"form {form!r} is not known: allowed {', '.join(forms())}")
    if unit not in UNITS:
        raise InvalidInput(f"unit {unit!r} is not known: allowed {', '.join(UNITS)}")
    for value, what in (
        (label, "the product's label"),
        (supplier, "the supplier"),
        (statement, "the source statement (the label or certificate of analysis read)"),
    ):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{what} is required")
    strength = _amount(strength_mg_per_ml, "strength (mg/mL)")
    volume = _amount(volume_ml, "volume (mL per unit)")
    given = _amount(mg_per_unit, "mg per unit")
    if given is None:
        if strength is None or volume is None:
            raise InvalidInput("give mg per unit, or strength (mg/mL) and volume (mL per unit)")
        given = strength * volume
    elif strength is not None and volume is not None and abs(strength * volume - given) > 1e-9:
        raise InvalidInput(
            f"mg per unit {given:g} disagrees with {strength:g} mg/mL x {volume:g} mL "
            f"= {strength * volume:g} mg"
        )
    return Product(
        id=id,
        molecule=molecule,
        label=label.strip(),
        form=form,
        unit=unit,
        mg_per_unit=given,
        strength_mg_per_ml=strength,
        volume_ml=volume,
        ndc=None,
        source=Source(
            citation=f"{supplier.strip()}: {statement.strip()}",
            label=CLINIC_MARK,
            read="the supplier's label or certificate of analysis, by the clinic",
        ),
        registered_by_clinic=True,
    )
