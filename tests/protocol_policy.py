"""The test suite's protocol policy (TEST VALUES, tests/data/protocol-policy.test.toml).

Every protocol's hard ceilings must be set before a plan can be built; the tests
that are not about an unset ceiling build plans under this policy.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ketacare.core.protocols import Plan, SitePolicy, load_library, load_site_policy
from ketacare.core.protocols import build_plan as _build_plan

TEST_PROTOCOL_POLICY_FILE = Path(__file__).parent / "data" / "protocol-policy.test.toml"


@lru_cache(maxsize=1)
def test_policy() -> SitePolicy:
    """The test policy, loaded and checked like a clinic's file."""
    return load_site_policy(path=TEST_PROTOCOL_POLICY_FILE, library=load_library())


def build_plan(**kwargs: Any) -> Plan:
    """``build_plan`` under the test policy unless the test passes its own."""
    kwargs.setdefault("site_policy", test_policy())
    return _build_plan(**kwargs)
