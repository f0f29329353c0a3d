"""The clinic's site policy: four files and three numbers behind one typed loader.

Every value below is a TEST VALUE written into a temporary file; the tests check that
what the loader returns is what the file says, that each file is read again only when
it changes, and that a broken file stops the start naming the file and the field.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ketacare.core.errors import DataFileError
from ketacare.infra.policy import check_site_policy, session_policy
from ketacare.infra.settings import load_settings
from protocol_policy import TEST_PROTOCOL_POLICY_FILE

SESSION = "[monitoring]\nvitals_interval_min = 15\n[thresholds]\nsbp_mmhg = { high = 180 }\n"
SCREENING = '[site_policy]\nname = "Test clinic"\nscreening_systolic_max_mmhg = 150\n'
OUTCOME = (
    '[[booster]]\ndefinition_id = "pain-30"\nkind = "score_at_or_above"\nthreshold = 6\n'
    'set_by = "test policy 1"\n'
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _settings(tmp_path: Path, **files: Path) -> Any:
    return load_settings(var_dir=tmp_path / "var", **files)


def test_no_files_means_no_policy(tmp_path: Path) -> None:
    policy = _settings(tmp_path).policy()
    assert (policy.screening, policy.protocol, policy.session) == (None, None, None)
    assert policy.outcome.boosters == () and policy.outcome.path is None
    assert (policy.loss_confirmations, policy.lost_after_days, policy.weight_valid_days) == (
        None,
        None,
        None,
    )


def test_every_file_and_number_is_read_into_one_typed_policy(tmp_path: Path) -> None:
    settings = load_settings(
        var_dir=tmp_path / "var",
        site_policy_file=_write(tmp_path, "site.toml", SCREENING),
        protocol_policy_file=TEST_PROTOCOL_POLICY_FILE,
        session_policy_file=_write(tmp_path, "session.toml", SESSION),
        outcome_policy_file=_write(tmp_path, "outcome.toml", OUTCOME),
        outcome_loss_confirmations=2,
        outcome_lost_after_days=120,
        weight_valid_days=30,
    )
    policy = settings.policy()
    assert policy.screening is not None
    assert policy.screening.get("screening_systolic_max_mmhg") == 150
    assert policy.protocol is not None
    # tests/data/protocol-policy.test.toml: [crps-outpatient.limits.course_mg] hard = 1000
    assert (
        policy.protocol.value(protocol_id="crps-outpatient", key="course_mg", level="hard") == 1000
    )
    assert policy.session is not None
    assert policy.session.site.vitals_interval_min == 15
    assert policy.session.site.thresholds[("sbp_mmhg", "high")] == 180
    assert [(b.definition_id, b.threshold) for b in policy.outcome.boosters] == [("pain-30", 6)]
    assert (policy.loss_confirmations, policy.lost_after_days, policy.weight_valid_days) == (
        2,
        120,
        30,
    )
    assert check_site_policy(settings) == policy


def test_a_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, "session.toml", SESSION)
    settings = _settings(tmp_path, session_policy_file=path)
    first = session_policy(settings)
    assert session_policy(settings) is first  # unchanged file: the parsed policy is reused
    path.write_text(SESSION.replace("= 15", "= 10"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = session_policy(settings)
    assert second is not None and second.site.vitals_interval_min == 10


@pytest.mark.parametrize(
    ("setting", "name", "text", "message"),
    [
        (
            "session_policy_file",
            "session.toml",
            SESSION.replace("high = 180", "high = 500"),
            "field 'thresholds.sbp_mmhg.high': 500 is outside the data-entry bounds",
        ),
        (
            "session_policy_file",
            "session.toml",
            SESSION + "[monitoring2]\n",
            "must hold only 'monitoring', 'thresholds', 'cumulative_cap' and 'take_home'",
        ),
        (
            "protocol_policy_file",
            "protocol.toml",
            "[nope.limits.dose_mg]\nhard = 1\n",
            "field 'nope': unknown protocol 'nope'",
        ),
        (
            "outcome_policy_file",
            "outcome.toml",
            OUTCOME.replace("= 6", "= -1"),
            "field 'threshold': -1 is not allowed",
        ),
        (
            "site_policy_file",
            "site.toml",
            SCREENING.replace("= 150", "= -3"),
            "out of range",
        ),
        ("site_policy_file", "site.toml", "[site_policy", "is not valid TOML"),
    ],
)
def test_a_broken_file_is_refused_at_the_check_naming_file_and_field(
    tmp_path: Path, setting: str, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path, name, text)
    settings = _settings(tmp_path, **{setting: path})
    with pytest.raises(DataFileError) as raised:
        check_site_policy(settings)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_a_missing_file_names_its_setting(tmp_path: Path) -> None:
    settings = _settings(tmp_path, session_policy_file=tmp_path / "absent.toml")
    with pytest.raises(DataFileError) as raised:
        check_site_policy(settings)
    assert str(raised.value).startswith(f"session policy file {tmp_path / 'absent.toml'}: ")
    assert "cannot be read" in str(raised.value)
    assert "KETACARE_SESSION_POLICY_FILE" in str(raised.value)


def test_the_app_refuses_to_start_with_a_broken_session_policy(
    settings: Any, tmp_path: Path
) -> None:
    from ketacare.app import create_app

    settings.session_policy_file = _write(
        tmp_path, "session.toml", SESSION.replace("high = 180", "high = 500")
    )
    with pytest.raises(DataFileError, match="outside the data-entry bounds"):
        create_app(settings)


def test_db_upgrade_reports_a_policy_file_the_app_would_refuse(tmp_path: Path) -> None:
    bad = _write(tmp_path, "session.toml", "[monitoring]\nvitals_interval_min = 0\n")
    env = {
        **os.environ,
        "KETACARE_VAR_DIR": str(tmp_path),
        "KETACARE_DATABASE_URL": "",
        "KETACARE_SESSION_POLICY_FILE": str(bad),
    }
    run = subprocess.run(
        [sys.executable, "-m", "ketacare.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 2
    assert "schema empty ->" in run.stdout  # the upgrade itself was done
    assert f"session policy file {bad}: field 'monitoring.vitals_interval_min'" in run.stderr
    assert "must be positive" in run.stderr
