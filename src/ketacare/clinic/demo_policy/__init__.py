"""The demo clinic's example protocol policy (EXAMPLE values, not clinical advice).

Every protocol's hard ceilings must be set before a plan can be signed; the demo
clinic uses ``protocol-policy.toml`` here when no policy file is configured.
"""

from __future__ import annotations

from pathlib import Path

from ketacare.infra.settings import Settings

DEMO_PROTOCOL_POLICY_FILE = Path(__file__).parent / "protocol-policy.toml"


def demo_settings(settings: Settings) -> Settings:
    """``settings`` with the demo's example protocol policy unless one is configured."""
    if settings.protocol_policy_file is not None:
        return settings
    return settings.model_copy(update={"protocol_policy_file": DEMO_PROTOCOL_POLICY_FILE})
