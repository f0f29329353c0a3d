"""`ketacare models` and `ketacare simulate` as the design document specifies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ketacare.cli import app

REGIMEN = {
    "doses": [
        {"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_kg_per_h": 0.35},
        {"route": "iv_infusion", "start_h": 24, "duration_h": 0.667, "amount_mg": 35},
        {"route": "iv_bolus", "start_h": 48, "amount_mg": 10},
    ]
}


@pytest.fixture
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always separates stderr
        return CliRunner()


@pytest.fixture
def regimen_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(REGIMEN))
    return path


def test_models_json(runner):
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)
    ids = {m["id"] for m in models}
    assert {"domino", "clements-250", "perez-ruixo-2021"} <= ids
    for m in models:
        assert {"id", "molecule", "routes", "source"} <= m.keys()


def test_simulate_json_document(runner, regimen_file):
    result = runner.invoke(
        app,
        [
            "simulate",
            "--model",
            "domino",
            "--weight",
            "70",
            "--regimen",
            str(regimen_file),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    keys = {
        "model",
        "molecule",
        "patient",
        "time_h",
        "plasma_ng_per_ml",
        "effect_ng_per_ml",
        "norketamine_ng_per_ml",
        "metrics",
        "population",
    }
    assert keys <= doc.keys()
    assert doc["model"] == "domino" and doc["molecule"] == "racemic ketamine"
    assert doc["patient"]["weight_kg"] == 70
    n = len(doc["time_h"])
    assert n == int((48 + 24) * 60) + 1  # default: last dose + 24 h at 1-min steps
    assert len(doc["plasma_ng_per_ml"]) == len(doc["effect_ng_per_ml"]) == n
    assert doc["norketamine_ng_per_ml"] is None and doc["population"] is None
    m = doc["metrics"]
    assert {"cmax_ng_per_ml", "tmax_h", "auc_ng_h_per_ml", "total_dose_mg"} <= m.keys()
    assert m["total_dose_mg"] == pytest.approx(98 + 35 + 10)
    assert m["cmax_ng_per_ml"] == pytest.approx(max(doc["plasma_ng_per_ml"]))
    assert "unverified" in result.stderr


def test_simulate_population_csv_and_plot(runner, tmp_path):
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps(
            {
                "doses": [
                    {"route": "intranasal", "start_h": 0, "amount_mg": 56},
                    {"route": "oral", "start_h": 24, "amount_mg": 50},
                ]
            }
        )
    )
    csv_path, png = tmp_path / "out.csv", tmp_path / "out.png"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--model",
            "perez-ruixo-2021",
            "--weight",
            "70",
            "--age",
            "40",
            "--sex",
            "F",
            "--regimen",
            str(path),
            "--hours",
            "48",
            "--step-min",
            "5",
            "--population",
            "300",
            "--seed",
            "2",
            "--json",
            "--csv",
            str(csv_path),
            "--plot",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    pop = doc["population"]
    assert pop["n"] == 300 and len(pop["p05"]) == len(doc["time_h"]) == 577
    assert np.all(np.array(pop["p05"]) <= np.array(pop["p95"]))
    assert doc["norketamine_ng_per_ml"] is not None and doc["effect_ng_per_ml"] is not None
    header = csv_path.read_text().splitlines()[0]
    assert header.startswith("time_h,plasma_ng_per_ml") and "plasma_p95_ng_per_ml" in header
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--model", "nope", "--weight", "70"], "unknown model 'nope'"),
        (["--model", "domino", "--weight", "-70"], "weight_kg -70"),
        (["--model", "domino", "--weight", "70", "--sex", "X"], "--sex must be F or M"),
        (["--model", "domino", "--weight", "70", "--step-min", "0"], "step_min 0"),
    ],
)
def test_simulate_bad_input_exits_2_with_one_line(runner, regimen_file, args, text):
    result = runner.invoke(app, ["simulate", *args, "--regimen", str(regimen_file)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and text in lines[0]


def test_simulate_bad_regimen_file(runner, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": -1}]}))
    result = runner.invoke(
        app, ["simulate", "--model", "domino", "--weight", "70", "--regimen", str(path)]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "dose 1 amount_mg -1 is out of range: allowed more than 0 mg"


def test_simulate_needs_one_regimen_source(runner):
    result = runner.invoke(app, ["simulate", "--model", "domino", "--weight", "70"])
    assert result.exit_code == 2
    assert "exactly one of --regimen FILE or --protocol ID" in result.stderr
