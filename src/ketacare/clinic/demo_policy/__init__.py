"""The demo clinic's example site policy (EXAMPLE values, not clinical advice).

A clinic sets the numbers no source gives (protocol ceilings, vitals thresholds and
intervals, cumulative caps, take-home limits, booster rules, the outcome settings) in
its own files. The demo clinic ships one set of EXAMPLE values here, each marked in its
file as chosen for the demo and not a clinical recommendation (with the published
protocol that uses the number, where one does). They are applied only to a database
that ``ketacare demo`` seeded, and only where the operator has not named a file or
value of their own:

* ``protocol-policy.toml``: every demo database (plans can be signed);
* ``site-policy.toml``, ``session-policy.toml``, ``clinic-hours.toml``, ``outcome-policy.toml`` and
  ``outcome-settings.toml``: a demo seeded with its clinical history (``ketacare
  demo``), which marks its database as using the example policy.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ketacare.infra.settings import Settings

HERE = Path(__file__).parent
DEMO_PROTOCOL_POLICY_FILE = HERE / "protocol-policy.toml"
DEMO_SITE_POLICY_FILE = HERE / "site-policy.toml"
DEMO_SESSION_POLICY_FILE = HERE / "session-policy.toml"
DEMO_OUTCOME_POLICY_FILE = HERE / "outcome-policy.toml"
DEMO_OUTCOME_SETTINGS_FILE = HERE / "outcome-settings.toml"
DEMO_CLINIC_HOURS_FILE = HERE / "clinic-hours.toml"

#: what the pages say wherever the example policy is in force
EXAMPLE_NOTICE = (
    "The site policy (protocol ceilings, vitals thresholds and intervals, the cumulative "
    "cap, take-home limits, booster rules, outcome settings, opening days and closures) "
    "holds EXAMPLE values chosen for the demo, not clinical recommendations"
)


def _outcome_settings() -> dict[str, Any]:
    with DEMO_OUTCOME_SETTINGS_FILE.open("rb") as handle:
        values = tomllib.load(handle)
    return {
        "outcome_loss_confirmations": int(values["loss_confirmations"]),
        "outcome_lost_after_days": int(values["lost_after_days"]),
    }


def demo_settings(settings: Settings, *, example_policy: bool = False) -> Settings:
    """``settings`` with the demo's example policy wherever the operator set none.

    Without ``example_policy`` only the protocol policy is filled in (a demo database
    seeded without its history); with it, every policy file and outcome setting.
    """
    update: dict[str, Any] = {}
    if settings.protocol_policy_file is None:
        update["protocol_policy_file"] = DEMO_PROTOCOL_POLICY_FILE
    if example_policy:
        files = {
            "site_policy_file": DEMO_SITE_POLICY_FILE,
            "session_policy_file": DEMO_SESSION_POLICY_FILE,
            "outcome_policy_file": DEMO_OUTCOME_POLICY_FILE,
            "clinic_hours_file": DEMO_CLINIC_HOURS_FILE,
        }
        update.update({k: v for k, v in files.items() if getattr(settings, k) is None})
        update.update(
            {k: v for k, v in _outcome_settings().items() if getattr(settings, k) is None}
        )
    return settings.model_copy(update=update) if update else settings


def settings_for(settings: Settings, *, session: Session) -> Settings:
    """``settings`` as the server applies them to this database (demo: its example policy).

    For the command line, which reads the same database as the server: on a demo
    database the commands then judge the record by the policy it was made under.
    """
    from ketacare.clinic.system import service as system

    try:
        demo = system.is_demo(session=session)
        example = system.uses_example_policy(session=session)
    except SQLAlchemyError:  # no schema yet: nothing to apply
        session.rollback()
        return settings
    return demo_settings(settings, example_policy=example) if demo else settings
