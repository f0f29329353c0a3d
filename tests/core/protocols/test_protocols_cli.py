"""`ketacare protocols` and `ketacare plan preview`, through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ketacare.cli import app
from protocol_policy import TEST_PROTOCOL_POLICY_FILE

runner = CliRunner()
#: the test policy (TEST VALUES) sets every hard ceiling, so previews can be built
POLICY_ENV = {"KETACARE_PROTOCOL_POLICY_FILE": str(TEST_PROTOCOL_POLICY_FILE)}


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=POLICY_ENV if env is None else env)


def refusal(result: Result, *, prints_nothing: bool = True) -> str:
    """The one stderr line of a refused command (exit 2), which printed nothing else."""
    assert result.exit_code == 2, result.output
    if prints_nothing:
        assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_protocols_json() -> None:
    result = run("protocols", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    rows = {row["id"]: row for row in document["protocols"]}
    assert set(rows) >= {"crps-outpatient", "esketamine-trd", "depression-iv"}
    row = rows["crps-outpatient"]
    assert row["route"] == "iv_infusion"
    assert row["indications"][0] == {
        "code": "G90.50",
        "display": "Complex regional pain syndrome I, unspecified",
    }
    assert row["source"]["doi"] == "10.1016/j.pain.2009.08.015"


def test_protocols_table() -> None:
    result = run("protocols")
    assert result.exit_code == 0
    assert "Protocol library" in result.stdout
    assert "depression-iv" in result.stdout


def test_preview_json_matches_the_contract() -> None:
    result = run(
        "plan", "preview", "--protocol", "crps-outpatient", "--weight", "60",
        "--bag-mg", "100", "--bag-ml", "100", "--start", "2025-03-03", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["protocol"] == "crps-outpatient"
    assert doc["weight_kg"] == 60.0
    # 0.35 x 60 = 21 mg/h = 21 mL/h at 1 mg/mL; x 4 h = 84 mg; x 10 = 840 mg
    first = doc["sessions"][0]
    assert {k: first[k] for k in ("day", "dose_mg", "rate_mg_per_h", "rate_ml_per_h")} == {
        "day": 1,
        "dose_mg": 84.0,
        "rate_mg_per_h": 21.0,
        "rate_ml_per_h": 21.0,
    }
    assert first["duration_h"] == 4.0
    assert first["date"] == "2025-03-03"
    assert doc["total_dose_mg"] == 840.0
    limits = doc["limits"]
    assert limits["rate_mg_per_h"]["hard"]["value"] == 25.0
    assert limits["rate_mg_per_h"]["hard"]["basis"] == "sourced"
    assert limits["rate_mg_per_h"]["hard"]["source"] == "Schwartzman 2009"
    assert limits["rate_mg_per_h"]["soft"]["basis"] == "not_configured"
    # the soft slots no source gives (the per-kg and per-course kinds were added with
    # the hard ceilings); the test policy sets only hard values
    assert doc["limits_not_configured"] == [
        "dose_mg soft",
        "dose_mg_per_kg soft",
        "rate_mg_per_h soft",
        "course_mg soft",
    ]
    assert doc["requires_review"] is True


def test_preview_non_infusion_has_null_rates() -> None:
    result = run("plan", "preview", "--protocol", "esketamine-trd", "--weight", "70", "--json")
    doc = json.loads(result.stdout)
    assert doc["sessions"][0]["rate_mg_per_h"] is None
    assert doc["sessions"][0]["rate_ml_per_h"] is None
    assert doc["sessions"][0]["duration_h"] is None
    assert doc["total_dose_mg"] == 672.0


def test_preview_hard_limit_exits_2_with_one_line() -> None:
    result = run(
        "plan", "preview", "--protocol", "crps-outpatient", "--weight", "70",
        "--dose-mg-per-kg-per-h", "2.1", "--json",
    )  # fmt: skip
    assert refusal(result).startswith(
        "dose 2.1 mg/kg/h exceeds the hard limit 1.0 mg/kg/h of protocol crps-outpatient"
    )


def test_preview_soft_limit_is_reported_not_refused() -> None:
    result = run(
        "plan", "preview", "--protocol", "crps-outpatient", "--weight", "50",
        "--dose-mg-per-kg-per-h", "0.4", "--json",
    )  # fmt: skip
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert len(doc["soft_limit_findings"]) == 10
    assert doc["soft_limit_findings"][0]["requires"] == ["reason", "cosignature"]
    # the table output names the limit once, with the ten days (50 kg x 0.4 mg/kg/h each day)
    table = run(
        "plan", "preview", "--protocol", "crps-outpatient", "--weight", "50",
        "--dose-mg-per-kg-per-h", "0.4",
    )  # fmt: skip
    text = " ".join(table.stdout.split())
    assert "requires a documented reason and a co-signature, for:" in text
    assert (
        "0.4 mg/kg/h above the soft limit 0.35 mg/kg/h (source: Schwartzman 2009) on days 1-10"
        in (text)
    )


def test_preview_table_output() -> None:
    result = run("plan", "preview", "--protocol", "depression-iv", "--weight", "70")
    assert result.exit_code == 0
    assert "Sessions" in result.stdout and "Limits" in result.stdout
    assert "total dose 420 mg" in result.stdout


def test_preview_with_site_policy_and_clinic_dir(tmp_path: Path) -> None:
    policy = tmp_path / "site.toml"
    # TEST VALUES: every slot of esketamine-trd set, so nothing needs review
    policy.write_text(
        "[esketamine-trd.limits.dose_mg]\nsoft = 84\n"
        "[esketamine-trd.limits.dose_mg_per_kg]\nsoft = 5\nhard = 5\n"
        "[esketamine-trd.limits.course_mg]\nsoft = 1100\nhard = 1100\n",
        encoding="utf-8",
    )
    (tmp_path / "own").mkdir()  # an empty clinic directory adds nothing
    result = run(
        "plan", "preview", "--protocol", "esketamine-trd", "--weight", "70",
        "--site-policy", str(policy), "--protocols-dir", str(tmp_path / "own"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requires_review"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weight", "70"], "--protocol is required"),
        (["--protocol", "crps-outpatient"], "--weight is required"),
        (["--protocol", "nope", "--weight", "70"], "unknown protocol 'nope'"),
        (["--protocol", "crps-outpatient", "--weight", "abc"], "--weight must be a number"),
        (["--protocol", "crps-outpatient", "--weight", "400"], "weight_kg 400.0 is out of range"),
        (["--protocol", "crps-outpatient", "--weight", "70", "--bag-mg", "100"], "give both"),
        (
            [
                "--protocol",
                "crps-outpatient",
                "--weight",
                "70",
                "--dose-mg",
                "5",
                "--dose-mg-per-kg-per-h",
                "0.1",
            ],
            "not both",
        ),
        (["--protocol", "crps-outpatient", "--weight", "70", "--start", "3/3/25"], "--start"),
        (["--protocol", "crps-outpatient", "--weight", "nan"], "finite number"),
        (["--protocol", "oral-followon", "--weight", "70"], "no published dose"),
        (["--protocol", "esketamine-trd", "--weight", "70", "--dose-mg", "70"], "allows 56"),
        (
            ["--protocol", "crps-outpatient", "--weight", "70", "--site-policy", "/nonexistent"],
            "cannot be read",
        ),
    ],
    ids=repr,
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    assert message in refusal(run("plan", "preview", *args))


def test_bad_clinic_directory_exits_2(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("schema = 1\n", encoding="utf-8")
    result = run("protocols", "--protocols-dir", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("field 'id': is missing")


# --- absolute ceilings (issue 13 item 6) ---


def test_issue_example_5000_mg_oral_refused_above_the_hard_limit() -> None:
    # 5,000 mg at 62.5 kg = 80 mg/kg; the test policy's hard dose is 500 mg (TEST VALUE)
    result = run(
        "plan", "preview", "--protocol", "oral-followon", "--weight", "62.5",
        "--dose-mg", "5000", "--json",
    )  # fmt: skip
    assert refusal(result).startswith(
        "dose 5000.0 mg exceeds the hard limit 500.0 mg of protocol oral-followon (site policy"
    )


def test_preview_of_a_protocol_with_unset_ceilings_is_marked_not_usable() -> None:
    # no protocol policy: oral-followon has no sourced ceiling at all. The command refuses
    # (exit 2, one line naming the unset limits); the preview is printed for information
    result = run(
        "plan", "preview", "--protocol", "oral-followon", "--weight", "62.5",
        "--dose-mg", "5000", "--json", env={"KETACARE_PROTOCOL_POLICY_FILE": ""},
    )  # fmt: skip
    line = refusal(result, prints_nothing=False)
    doc = json.loads(result.stdout)
    assert doc["usable"] is False
    assert doc["hard_limits_not_set"] == ["dose_mg", "dose_mg_per_kg", "course_mg"]
    assert doc["not_usable_reason"].startswith(
        "protocol oral-followon cannot be used for a plan: hard limits dose_mg (mg), "
        "dose_mg_per_kg (mg/kg), course_mg (mg per course) not set: set them in the "
        "protocol policy file ([oral-followon.limits.dose_mg] hard = ..."
    )
    assert line.startswith(
        "protocol oral-followon cannot be used for a plan: hard limits dose_mg (mg), "
        "dose_mg_per_kg (mg/kg), course_mg (mg per course) not set: set them in the "
        "protocol policy file"
    )
    assert line.endswith("(preview only: no plan can be signed under it)")


def test_preview_with_unset_ceilings_still_enforces_the_sourced_limits() -> None:
    # crps-outpatient's sourced hard rate is 1.0 mg/kg/h (its source's "low dose"); its
    # per-kg and course ceilings are unset here, which does not switch the sourced check off
    result = run(
        "plan", "preview", "--protocol", "crps-outpatient", "--weight", "70",
        "--dose-mg-per-kg-per-h", "2.1", "--json", env={"KETACARE_PROTOCOL_POLICY_FILE": ""},
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("dose 2.1 mg/kg/h exceeds the hard limit 1.0 mg/kg/h")


def test_preview_json_of_a_usable_plan_says_so() -> None:
    result = run("plan", "preview", "--protocol", "crps-outpatient", "--weight", "60", "--json")
    doc = json.loads(result.stdout)
    assert (doc["usable"], doc["hard_limits_not_set"], doc["not_usable_reason"]) == (
        True,
        [],
        None,
    )
    assert result.exit_code == 0
    assert result.stderr == ""


def test_simulate_a_protocol_reads_the_clinic_policy_from_the_environment() -> None:
    args = ("simulate", "--model", "clements-250", "--weight", "60", "--protocol",
            "crps-outpatient", "--json")  # fmt: skip
    refused = run(*args, env={"KETACARE_PROTOCOL_POLICY_FILE": ""})
    assert refused.exit_code == 2
    assert refused.stderr.startswith("protocol crps-outpatient cannot be used for a plan")
    built = run(*args)
    assert built.exit_code == 0, built.output
    # 0.35 mg/kg/h x 60 kg = 21 mg/h for 4 h, ten sessions: 840 mg in all
    assert json.loads(built.stdout)["metrics"]["total_dose_mg"] == pytest.approx(840.0)


def test_simulate_refuses_a_model_of_another_molecule_than_the_protocol() -> None:
    # depression-iv gives racemic ketamine; perez-ruixo-2021 is a model of esketamine
    result = run(
        "simulate", "--model", "perez-ruixo-2021", "--weight", "70", "--protocol",
        "depression-iv", "--json",
    )  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "model perez-ruixo-2021 simulates esketamine (iv bolus, iv infusion, intranasal, oral); "
        "protocol depression-iv gives racemic ketamine by IV infusion: choose one of "
        "clements-250, domino (ketacare models)"
    )
    # and the other way round: crps-continuous is S-ketamine (Sigtermans 2009)
    other = run(
        "simulate", "--model", "domino", "--weight", "70", "--protocol", "crps-continuous",
    )  # fmt: skip
    assert other.exit_code == 2 and "choose one of perez-ruixo-2021" in other.stderr


def test_simulate_a_protocol_infuses_for_its_minutes_exactly() -> None:
    # depression-iv: 0.5 mg/kg over 40 min, 12 sessions; at 70 kg 35 mg each, 420 mg in all
    # (40 min read as 0.667 h would give 52.5 mg/h x 0.667 h x 12 = 420.21 mg)
    result = run(
        "simulate", "--model", "domino", "--weight", "70", "--protocol", "depression-iv",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["total_dose_mg"] == pytest.approx(420.0, abs=1e-9)


def test_course_total_above_the_hard_limit_is_refused(tmp_path: Path) -> None:
    # depression-iv at 70 kg: 0.5 x 70 = 35 mg x 12 sessions = 420 mg > course 400 (TEST VALUE)
    policy = tmp_path / "p.toml"
    policy.write_text(
        "[depression-iv.limits.dose_mg]\nhard = 300\n"
        "[depression-iv.limits.rate_mg_per_h]\nhard = 400\n"
        "[depression-iv.limits.rate_mg_per_kg_per_h]\nhard = 1.5\n"
        "[depression-iv.limits.course_mg]\nhard = 400\n",
        encoding="utf-8",
    )
    result = run(
        "plan", "preview", "--protocol", "depression-iv", "--weight", "70",
        "--site-policy", str(policy),
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "course dose 420.0 mg (12 sessions) exceeds the hard limit 400.0 mg per course of "
        "protocol depression-iv (site policy)"
    )


def test_protocols_json_says_which_protocols_are_usable() -> None:
    bare = json.loads(run("protocols", "--json", env={"KETACARE_PROTOCOL_POLICY_FILE": ""}).stdout)
    rows = {row["id"]: row for row in bare["protocols"]}
    assert rows["oral-followon"]["usable"] is False
    assert rows["oral-followon"]["hard_limits_not_set"] == [
        "dose_mg",
        "dose_mg_per_kg",
        "course_mg",
    ]
    assert "set them in the protocol policy file" in rows["oral-followon"]["reason"]
    configured = json.loads(run("protocols", "--json").stdout)
    assert all(row["usable"] and row["reason"] is None for row in configured["protocols"])


def test_demo_example_policy_fills_every_hard_ceiling() -> None:
    from ketacare.clinic.demo_policy import DEMO_PROTOCOL_POLICY_FILE

    env = {"KETACARE_PROTOCOL_POLICY_FILE": str(DEMO_PROTOCOL_POLICY_FILE)}
    document = json.loads(run("protocols", "--json", env=env).stdout)
    assert [r["id"] for r in document["protocols"] if not r["usable"]] == []
