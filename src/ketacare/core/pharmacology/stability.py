"""Whether a model's compartment system drains, from its structure alone (pure Python).

A model is usable only if every eigenvalue of its rate matrix A is real and negative: the
modal solution needs real modes, and a mode at zero or above never drains. Listing the
library (``ketacare models``) should not need numpy for that, so this module decides it
from the flow graph, using three facts about linear compartment systems:

1. **Blocks.** Group the compartments into strongly connected components (compartments
   that can each reach the other through flows). Ordered along the flows, A is block
   triangular, so its eigenvalues are those of the components' blocks. An effect site
   (dCe/dt = ke0 (Cp - Ce)) is a block of its own with the single eigenvalue -ke0, and
   ke0 > 0 because every parameter value is positive (the reader refuses others).
2. **Negative.** A component's block has non-negative off-diagonal entries and each
   column sums to minus what leaves the component from that compartment. If something
   leaves the component (an elimination, or a flow to another component) the irreducible
   block is diagonally dominant with one strict column, so it is non-singular and every
   eigenvalue has a negative real part (Taussky; Jacquez & Simon, SIAM Review 35, 1993).
   If nothing leaves, the column sums are all zero and 0 is an eigenvalue: refused.
3. **Real.** If a component's exchanges form a tree and every exchange goes both ways
   (a mammillary or catenary model: a central compartment with peripherals, a chain),
   its block is similar to a symmetric matrix through a diagonal scaling, so its
   eigenvalues are real. A component with a one-way cycle can have complex eigenvalues:
   for such a structure this module cannot decide, and the caller runs the numerical
   eigenvalue check instead.

Every rate is positive by construction (positive values, positive unit factors), and
:func:`drains` checks that again on the typical values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ketacare.core.pharmacology.models import Model

__all__ = ["NOT_DRAINING", "UNDECIDED", "drains", "eigenvalues_drain", "model_drains"]

NOT_DRAINING = "every compartment must drain (some eigenvalue is not negative real)"

#: :func:`drains` cannot tell from the structure: check the eigenvalues numerically
UNDECIDED = None


def _components(nodes: list[str], edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components (Tarjan, iterative; a dozen compartments at most)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
    return found


def drains(
    compartments: Iterable[str],
    flows: Iterable[tuple[str, str | None, float]],
    effect_rates: Iterable[float],
) -> bool | None:
    """True if every eigenvalue of the system is real and negative, False if one is not.

    ``flows`` are ``(source, target, rate per hour)`` with target None for an
    elimination; ``effect_rates`` the ke0 of each effect site. Returns
    :data:`UNDECIDED` (None) when a component's structure does not guarantee real
    eigenvalues (see the module's notes): the caller checks them numerically.

    Examples
    --------
    >>> drains(["c", "p"], [("c", "p", 1.0), ("p", "c", 0.5), ("c", None, 0.2)], [0.3])
    True
    >>> drains(["c", "p"], [("c", "p", 1.0), ("p", "c", 0.5)], [])  # nothing leaves
    False
    >>> drains(["a", "b", "c"], [("a", "b", 1.0), ("b", "c", 1.0), ("c", "a", 1.0),
    ...                          ("a", None, 1.0)], []) is UNDECIDED  # a one-way cycle
    True
    """
    nodes = list(compartments)
    edges: dict[str, set[str]] = {c: set() for c in nodes}
    leaves: set[str] = set()  # compartments with an elimination
    for source, target, rate in flows:
        if not rate > 0:  # also refuses NaN
            return False
        if target is None:
            leaves.add(source)
        else:
            edges[source].add(target)
    if any(not rate > 0 for rate in effect_rates):
        return False
    for component in _components(nodes, edges):
        if not any(c in leaves or edges[c] - component for c in component):
            return False  # nothing leaves this component: an eigenvalue at zero
        inside = {(a, b) for a in component for b in edges[a] if b in component}
        if any((b, a) not in inside for a, b in inside):
            return UNDECIDED  # a one-way exchange inside a component
        if len(inside) // 2 != len(component) - 1:
            return UNDECIDED  # the exchanges form a cycle, not a tree
    return True


def model_drains(model: Model) -> bool:
    """The structural verdict on a model's typical system, or the numerical one when the
    structure does not settle it."""
    verdict = drains(model.compartments, _typical_flows(model), _typical_ke0(model))
    if verdict is UNDECIDED:
        return eigenvalues_drain(model)
    return verdict


def _typical(model: Model, name: str) -> float:
    """A parameter's typical value at 70 kg, no age, in internal units (as the numerical
    check builds it)."""
    p = model.parameter(name)
    return p.value * p.factor * (70.0 if p.per_kg else 1.0)


def _typical_flows(model: Model) -> list[tuple[str, str | None, float]]:
    flows = []
    for flow in model.flows:
        if flow.rate is not None:
            k = _typical(model, flow.rate)
        else:
            assert flow.clearance is not None
            volume = model.volume_of(flow.source)
            assert volume is not None
            k = _typical(model, flow.clearance) / _typical(model, volume)
        flows.append((flow.source, flow.target, k))
    return flows


def _typical_ke0(model: Model) -> list[float]:
    rates = []
    for site in model.effect_sites:
        if site.ke0 is not None:
            rates.append(_typical(model, site.ke0))
        else:
            assert site.t_half is not None
            rates.append(math.log(2.0) / _typical(model, site.t_half))
    return rates


def eigenvalues_drain(model: Model) -> bool:
    """The numerical check: the eigenvalues of the typical system (70 kg, no age)."""
    import numpy as np

    from ketacare.core.pharmacology.system import build_matrices, typical_parameters

    values = typical_parameters(model, weight_kg=70.0, age_years=None)
    system = build_matrices(model, values)
    eigenvalues = np.linalg.eigvals(system.a[0])
    # a zero eigenvalue (a compartment nothing leaves) comes out as about -1e-17: count
    # anything within round-off of the matrix's scale as not negative
    floor = -1e-12 * float(np.abs(system.a[0]).max())
    return not (np.any(eigenvalues.real >= floor) or np.any(np.abs(eigenvalues.imag) > 1e-9))
