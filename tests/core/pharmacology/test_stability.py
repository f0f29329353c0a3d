"""The structural drainage check: the same verdict as the eigenvalues, without numpy.

``ketacare models`` reads the library with :func:`stability.drains` (pure Python). Each
verdict here is checked against numpy's eigenvalues of the same matrix, built
independently from the flows; a structure the rule cannot settle goes to the numerical
check, and a library model is checked numerically again before its first simulation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ketacare.core.errors import DataFileError
from ketacare.core.pharmacology import models as models_module
from ketacare.core.pharmacology import stability
from ketacare.core.pharmacology.models import MODELS_DIR, list_models, load_model_file
from ketacare.core.pharmacology.stability import UNDECIDED, drains


def matrix(names: list[str], flows: list[tuple[str, str | None, float]]) -> np.ndarray:
    index = {c: i for i, c in enumerate(names)}
    a = np.zeros((len(names), len(names)))
    for source, target, k in flows:
        a[index[source], index[source]] -= k
        if target is not None:
            a[index[target], index[source]] += k
    return a


def eigen_verdict(a: np.ndarray) -> bool:
    # a zero eigenvalue comes out of LAPACK as about -1e-17, so "negative" means below
    # round-off of the matrix's scale (numpy alone calls such a closed system draining)
    lam = np.linalg.eigvals(a)
    scale = np.abs(a).max()
    return bool(np.all(lam.real < -1e-12 * scale) and np.all(np.abs(lam.imag) <= 1e-9))


def random_structure(
    rng: np.random.Generator,
) -> tuple[list[str], list[tuple[str, str | None, float]]]:
    """Mammillary or catenary exchanges, one-way depots in and metabolites out, and
    eliminations here and there (sometimes none, so some systems do not drain)."""
    n = int(rng.integers(1, 6))
    core = [f"c{i}" for i in range(n)]
    flows: list[tuple[str, str | None, float]] = []
    for i in range(1, n):
        hub = core[0] if rng.random() < 0.5 else core[i - 1]  # mammillary or catenary
        flows += [(hub, core[i], float(rng.lognormal())), (core[i], hub, float(rng.lognormal()))]
    depots = [f"d{i}" for i in range(int(rng.integers(0, 3)))]
    for d in depots:
        flows.append((d, core[int(rng.integers(n))], float(rng.lognormal())))
    metabolites = [f"m{i}" for i in range(int(rng.integers(0, 3)))]
    for m in metabolites:
        flows.append((core[int(rng.integers(n))], m, float(rng.lognormal())))
    for c in core + metabolites:
        if rng.random() < 0.6:
            flows.append((c, None, float(rng.lognormal())))
    return core + depots + metabolites, flows


def test_the_structural_verdict_equals_the_eigenvalues_on_random_library_like_systems() -> None:
    rng = np.random.default_rng(20)
    seen = {True: 0, False: 0}
    for _ in range(400):
        names, flows = random_structure(rng)
        verdict = drains(names, flows, [])
        assert verdict is not UNDECIDED
        assert verdict == eigen_verdict(matrix(names, flows)), (names, flows)
        seen[verdict] += 1
    assert seen[True] > 50 and seen[False] > 50  # both verdicts were exercised


def test_hand_worked_cases() -> None:
    # two compartments exchanging, eliminated from the central one: eigenvalues of
    # [[-3, 1], [2, -1]] are -2 +- sqrt(3), both negative
    flows = [("c", "p", 2.0), ("p", "c", 1.0), ("c", None, 1.0)]
    assert drains(["c", "p"], flows, []) is True
    assert np.allclose(
        sorted(np.linalg.eigvals(matrix(["c", "p"], flows))), [-2 - 3**0.5, -2 + 3**0.5]
    )
    # the same without elimination: column sums are zero, 0 is an eigenvalue
    assert drains(["c", "p"], flows[:2], []) is False
    # a depot feeding a closed pair: the pair does not drain
    assert drains(["d", "c", "p"], [("d", "c", 1.0), *flows[:2]], []) is False
    # a compartment with no flow at all keeps its drug forever
    assert drains(["c", "x"], [("c", None, 1.0)], []) is False
    # a zero or NaN rate, a zero ke0
    assert drains(["c"], [("c", None, 0.0)], []) is False
    assert drains(["c"], [("c", None, math.nan)], []) is False
    assert drains(["c"], [("c", None, 1.0)], [0.0]) is False
    assert drains(["c"], [("c", None, 1.0)], [0.5]) is True


def test_a_one_way_cycle_is_left_to_the_eigenvalues() -> None:
    # a -> b -> c -> a with equal rates has eigenvalues -1 + e^(2 pi i k / 3) - 1/3 ...:
    # complex, so real modes do not exist; the rule cannot promise real ones
    names = ["a", "b", "c"]
    flows = [("a", "b", 1.0), ("b", "c", 1.0), ("c", "a", 1.0), ("a", None, 0.3)]
    assert drains(names, flows, []) is UNDECIDED
    assert eigen_verdict(matrix(names, flows)) is False
    # a cycle of two-way exchanges is not a tree either
    ring = [(x, y, 1.0) for x, y in (("a", "b"), ("b", "c"), ("c", "a"))]
    ring += [(y, x, k) for x, y, k in ring] + [("a", None, 1.0)]
    assert drains(names, ring, []) is UNDECIDED


def test_an_undecided_structure_goes_to_the_numerical_check(monkeypatch) -> None:
    path = MODELS_DIR / "clements_250.toml"
    calls = []
    real = stability.eigenvalues_drain

    def counted(model):
        calls.append(model.id)
        return real(model)

    monkeypatch.setattr(stability, "drains", lambda *args: UNDECIDED)
    monkeypatch.setattr(stability, "eigenvalues_drain", counted)
    assert load_model_file(path).id == "clements-250"
    assert calls == ["clements-250"]
    monkeypatch.setattr(stability, "eigenvalues_drain", lambda model: False)
    with pytest.raises(DataFileError, match="must drain"):
        load_model_file(path)


def test_every_library_model_is_decided_by_structure_and_agrees_with_numpy() -> None:
    for model in list_models():
        flows = stability._typical_flows(model)
        verdict = drains(model.compartments, flows, stability._typical_ke0(model))
        assert verdict is True, model.id
        assert stability.eigenvalues_drain(model) is True, model.id


def test_a_library_model_is_checked_numerically_before_it_is_simulated(monkeypatch) -> None:
    models_module._checked_numerically.cache_clear()
    monkeypatch.setattr(stability, "eigenvalues_drain", lambda model: False)
    try:
        with pytest.raises(DataFileError, match="must drain"):
            models_module.load_model(model_id="domino")
        # listing does not run it
        assert "domino" in [m.id for m in list_models()]
    finally:
        models_module._checked_numerically.cache_clear()
