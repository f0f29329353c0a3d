"""``ketacare.core.pharmacology`` loads each public name from its module on first use.

Reading the model library then needs neither scipy nor the individualisation code, and a
name is the same object whichever way it is reached. Three submodules share their name
with the function they export (``simulate``, ``recommend``, ``bioavailability``): the
package's name is the function, whichever is imported first.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import ketacare.core.pharmacology as pharmacology


def fresh(code: str) -> object:
    """Run ``code`` (which sets ``out``) in a new interpreter and return ``out``."""
    probe = f"import json, sys\n{code}\nprint(json.dumps(out))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout)


def test_every_public_name_is_its_module_s_object() -> None:
    assert sorted(pharmacology.__all__) == sorted(pharmacology._MODULE_OF)
    for name in pharmacology.__all__:
        module = importlib.import_module(
            f"ketacare.core.pharmacology.{pharmacology._MODULE_OF[name]}"
        )
        assert getattr(pharmacology, name) is getattr(module, name), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'simulat'"):
        _ = pharmacology.simulat


def test_the_model_library_loads_without_scipy() -> None:
    out = fresh(
        "from ketacare.core.pharmacology import list_models\n"
        "ids = [m.id for m in list_models()]\n"
        "out = ['scipy' in sys.modules, 'domino' in ids]"
    )
    assert out == [False, True]


def test_a_simulation_loads_without_scipy() -> None:
    out = fresh(
        "from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate\n"
        "r = parse_regimen({'doses': [{'route': 'iv_bolus', 'start_h': 0, 'amount_mg': 35}]},"
        " weight_kg=70)\n"
        "s = simulate(model=load_model(model_id='domino'), patient=Patient(weight_kg=70),"
        " regimen=r, hours=1)\n"
        "out = ['scipy' in sys.modules, round(float(s.plasma_ng_per_ml[0]), 1)]"
    )
    # 35 mg into Domino's V1 of 4.41 L (0.063 L/kg x 70 kg) = 7936.5 ng/mL
    assert out == [False, 7936.5]


@pytest.mark.parametrize("name", ["simulate", "recommend", "bioavailability"])
def test_a_function_keeps_its_name_when_its_module_is_imported_first(name: str) -> None:
    out = fresh(
        f"import ketacare.core.pharmacology.{name} as _\n"
        f"from ketacare.core.pharmacology import {name}\n"
        f"out = [callable({name}), type({name}).__name__]"
    )
    assert out == [True, "function"]
