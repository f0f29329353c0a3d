"""The command line starts without loading what no command has asked for yet.

Every ``ketacare`` command pays for what importing :mod:`ketacare.cli` loads. The
command modules import numpy, scipy, matplotlib, the database and the web stack inside
the command that needs them, so ``ketacare --help`` and ``ketacare models`` stay quick.
Each check runs a fresh interpreter: the test process itself has loaded everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: top-level packages no command needs before it runs
HEAVY = ("numpy", "scipy", "numba", "matplotlib", "sqlalchemy", "fastapi", "starlette", "alembic")


def loaded_after(code: str) -> dict[str, bool]:
    """Which of HEAVY (and rich, pydantic) a fresh interpreter holds after ``code``."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"names = {[*HEAVY, 'rich', 'pydantic', 'uvicorn']!r}\n"
        "sys.__stdout__.write('\\n' + json.dumps({n: n in sys.modules for n in names}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded: dict[str, bool] = json.loads(done.stdout.rsplit("\n", 1)[-1])
    return loaded


def run_command(*args: str) -> str:
    """Run ``ketacare ARGS`` in the probe's interpreter, as the console script does."""
    return (
        "import runpy\n"
        f"sys.argv = ['ketacare', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('ketacare.cli', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
    )


def test_importing_the_cli_loads_no_heavy_package() -> None:
    loaded = loaded_after("import ketacare.cli")
    assert [name for name in HEAVY if loaded[name]] == []
    assert not loaded["rich"]  # typer loads rich only to print help
    assert not loaded["uvicorn"]


def test_the_error_tree_and_permission_table_load_no_numerical_package() -> None:
    """Every command and route imports them: a database command (audit verify, backup)
    must not pay for numpy, scipy or numba because the error tree named a session error."""
    loaded = loaded_after("import ketacare.infra.errors, ketacare.infra.permissions")
    assert [name for name in ("numpy", "scipy", "numba") if loaded[name]] == []


def test_help_loads_no_heavy_package() -> None:
    loaded = loaded_after(run_command("--help"))
    assert [name for name in HEAVY if loaded[name]] == []


def test_models_reads_the_library_without_numpy_scipy_or_the_database() -> None:
    # each model's stability is decided from its flow graph in pure Python (numpy checks
    # the eigenvalues again where a model is loaded to be simulated)
    loaded = loaded_after(run_command("models", "--json"))
    assert [name for name in HEAVY if loaded[name]] == []


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "preview", "--help"),
        ("simulate", "--help"),
        ("personalise", "--help"),
        ("audit", "--help"),
        ("db", "--help"),
    ],
)
def test_a_command_s_help_loads_none_of_its_work(args: tuple[str, ...]) -> None:
    loaded = loaded_after(run_command(*args))
    assert [name for name in HEAVY if loaded[name]] == []


def test_every_command_is_still_listed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ketacare.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    for name in (
        "serve",
        "demo",
        "db",
        "user",
        "outbox",
        "report",
        "export",
        "followup",
        "audit",
        "backup",
        "restore",
        "models",
        "simulate",
        "personalise",
        "instruments",
        "score",
        "screen",
        "protocols",
        "plan",
        "analytics",
    ):
        assert f" {name} " in done.stdout, name


def test_serve_starts_no_warm_child_once_the_loops_are_cached(tmp_path: Path) -> None:
    """The server skips the child that would only load numba's cache, and starts it when
    either entry point is missing or older than the module's source."""
    from ketacare.commands.clinic import _population_loops_cached

    source = tmp_path / "kernel.py"
    source.write_text("# loops\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    assert not _population_loops_cached(source)  # nothing compiled yet
    v = f"{sys.version_info.major}{sys.version_info.minor}"
    (cache / "kernel.fill_rows-1.py27.nbi").write_bytes(b"")  # another interpreter's
    (cache / "kernel.band_rows-1.py27.nbi").write_bytes(b"")
    assert not _population_loops_cached(source)
    fill = cache / f"kernel.fill_rows-120.py{v}.nbi"
    fill.write_bytes(b"")
    assert not _population_loops_cached(source)  # band_rows missing
    band = cache / f"kernel.band_rows-260.py{v}.nbi"
    band.write_bytes(b"")
    assert _population_loops_cached(source)
    changed = source.stat().st_mtime
    os.utime(band, (changed - 60, changed - 60))  # compiled before the source changed
    assert not _population_loops_cached(source)
    assert not _population_loops_cached(tmp_path / "gone.py")
