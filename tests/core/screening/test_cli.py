"""``ketacare screen`` through a small Typer app that calls the domain's ``register``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ketacare.commands import screening

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples" / "screening"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    screening.register(app)

    @app.callback()
    def _root() -> None:
        """Test root so that `screen` stays a subcommand."""

    return app


def _run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["screen", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("name", "decision"),
    [
        ("eligible-esketamine.json", "eligible"),
        ("review-ketamine-crps.json", "physician_review"),
        ("not-eligible-ketamine.json", "not_eligible"),
    ],
)
def test_examples_json(app: typer.Typer, name: str, decision: str) -> None:
    code, out, _ = _run(app, str(EXAMPLES / name), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["decision"] == decision
    assert all(set(r) == {"rule", "severity", "message", "source"} for r in doc["reasons"])


def test_policy_option(app: typer.Typer) -> None:
    file = EXAMPLES / "eligible-ketamine-with-policy.json"
    code, out, _ = _run(app, str(file), "--json")
    assert json.loads(out)["decision"] == "physician_review"  # BP policy unset
    policy = EXAMPLES / "site-policy.example.toml"
    code, out, _ = _run(app, str(file), "--json", "--policy", str(policy))
    doc = json.loads(out)
    assert code == 0 and doc["decision"] == "eligible"
    assert doc["site_policy"]["name"] == "Example clinic (illustration only)"
    assert {p["key"] for p in doc["site_policies"] if p["status"] == "applied"} == {
        "screening_systolic_max_mmhg",
        "screening_diastolic_max_mmhg",
    }


def test_text_output(app: typer.Typer) -> None:
    code, out, _ = _run(app, str(EXAMPLES / "review-ketamine-crps.json"))
    assert code == 0
    assert "Decision: PHYSICIAN REVIEW NEEDED" in out
    assert "UNSET" in out and "Missing to decide:" in out


def test_schema(app: typer.Typer) -> None:
    code, out, _ = _run(app, "--schema")
    assert code == 0
    assert json.loads(out)["title"] == "ketacare screening input"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ('{"treatment": {"molecule": "ketamine", "route": "rectal"}}', "treatment.route"),
        (
            '{"treatment": {"molecule": "ketamine", "route": "oral"},'
            ' "vitals": {"systolic_mmhg": 1}}',
            "out of range",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    app: typer.Typer, tmp_path: Path, content: str, fragment: str
) -> None:
    file = tmp_path / "in.json"
    file.write_text(content, encoding="utf-8")
    code, out, err = _run(app, str(file), "--json")
    assert code == 2 and out == ""
    assert fragment in err and err.count("\n") == 1


def test_missing_file_and_bad_policy_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    code, _, err = _run(app, str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read screening input" in err
    code, _, err = _run(app)
    assert code == 2 and "FILE.json" in err
    policy = tmp_path / "p.toml"
    policy.write_text("[site_policy]\nbp = 1\n", encoding="utf-8")
    code, _, err = _run(app, str(EXAMPLES / "eligible-esketamine.json"), "--policy", str(policy))
    assert code == 2 and "unknown field(s) bp" in err and err.count("\n") == 1


def test_screen_json_reads_brand_allergy_phq9_total_and_dotless_code(
    app: typer.Typer, tmp_path: Path
) -> None:
    """The issue's cases through the command: each must stop an unchecked "eligible"."""
    base = json.loads((EXAMPLES / "eligible-esketamine.json").read_text())
    del base["history"]["ketamine_hypersensitivity"]  # the question left unanswered

    cases = {
        # Spravato label: hypersensitivity to esketamine is a contraindication.
        "allergy": ({"allergies": ["Spravato (angioedema)"]}, "not_eligible"),
        # PHQ-9 item 9 must be asked whatever the total.
        "phq9": (
            {
                "allergies": [],
                "instruments": [
                    *base["instruments"],
                    {"instrument": "phq9", "total": 21, "flags": []},
                ],
            },
            "physician_review",
        ),
        # ICD-10-CM I67.1 cerebral aneurysm, nonruptured; Spravato label contraindication.
        "dotless": ({"allergies": [], "conditions": ["I671"]}, "not_eligible"),
    }
    for name, (patch, decision) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({**base, **patch}))
        code, out, _ = _run(app, str(path), "--json")
        assert code == 0, name
        doc = json.loads(out)
        assert doc["decision"] == decision, (name, doc["reasons"])
        assert all(set(r) == {"rule", "severity", "message", "source"} for r in doc["reasons"])
    phq9 = json.loads(_run(app, str(tmp_path / "phq9.json"), "--json")[1])
    assert "instrument:phq9 item q9" in [m["item"] for m in phq9["missing"]]


def test_schema_documents_item_answers(app: typer.Typer) -> None:
    code, out, _ = _run(app, "--schema")
    assert code == 0
    schema = json.loads(out)
    scored = schema["properties"]["instruments"]["items"]["oneOf"][0]
    assert (
        "items" in scored["properties"] and "item 9" in scored["properties"]["items"]["description"]
    )
