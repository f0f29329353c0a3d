"""`ketacare instruments` and `ketacare score` (design document contracts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketacare.cli import app

runner = CliRunner()
KETACARE = Path(sys.executable).parent / "ketacare"


def test_instruments_json_lists_the_library() -> None:
    result = runner.invoke(app, ["instruments", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    by_id = {row["id"]: row for row in rows}
    assert len(rows) == 17  # the 15 questionnaires and NEWS2 on its two SpO2 scales
    assert {"id", "version", "licence", "source", "title"} <= set(by_id["phq9"])
    assert by_id["bpi_sf"]["licence"] == "labels_only"
    assert by_id["auditc"]["needs_sex"] is True
    assert by_id["cadss"]["scored"] is False


def test_instruments_text_output() -> None:
    result = runner.invoke(app, ["instruments"])
    assert result.exit_code == 0
    assert "phq9" in result.stdout and "source:" in result.stdout


def test_score_json_contract() -> None:
    result = runner.invoke(app, ["score", "phq9", "--answers", "[1,1,2,1,0,1,1,0,1]", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["instrument"] == "phq9"
    assert data["total"] == 8 and data["band"] == "mild"
    assert data["flags"] == ["phq9_item9_positive"]
    assert data["subscores"] == {}


def test_score_object_answers_and_sex() -> None:
    result = runner.invoke(
        app, ["score", "auditc", "--answers", '{"q1": 2, "q2": 1, "q3": 0}', "--sex", "F", "--json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["band"] == "positive"


def test_score_null_means_missing() -> None:
    result = runner.invoke(app, ["score", "gad7", "--answers", "[1,1,null,1,1,1,1]", "--json"])
    data = json.loads(result.stdout)
    assert data["total"] is None and data["missing"] == ["q3"]


def test_score_text_output_shows_flags() -> None:
    result = runner.invoke(
        app, ["score", "cssrs_screener", "--answers", "[true,true,false,true,false,false,null]"]
    )
    assert result.exit_code == 0
    assert "band: high" in result.stdout and "FLAG cssrs_high_risk" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "phq9", "--answers", "[4,0,0,0,0,0,0,0,0]"], "phq9 item q1"),
        (["score", "phq9", "--answers", "[1,2"], "--answers is not valid JSON"),
        (["score", "phq9", "--answers", "7"], "--answers must be a JSON array"),
        (["score", "nope", "--answers", "[]"], "unknown instrument 'nope'"),
        (["score", "ort", "--answers", json.dumps([False] * 10)], "ort needs the patient's sex"),
        (["score", "auditc", "--answers", "[1,1,1]", "--sex", "X"], "use F or M"),
        (["score", "cadss", "--answers", "[]"], "cadss cannot be scored"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line_on_stderr(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_installed_command_exits_2_with_one_line_on_stderr() -> None:
    done = subprocess.run(
        [str(KETACARE), "score", "phq9", "--answers", "[4,0,0,0,0,0,0,0,0]"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "phq9 item q1" in done.stderr
