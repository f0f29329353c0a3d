"""The layout shows the architecture: the core imports nothing of the shell.

The application (``clinic``) does not import the command line either: what a page and a
command share lives in the core, so serving the web app never loads the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ketacare"
FORBIDDEN_IN_CORE = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "jinja2",
    "typer",
    "uvicorn",
    "alembic",
    "psycopg",
    "ketacare.clinic",
    "ketacare.infra",
    "ketacare.fhir",
    "ketacare.web",
    "ketacare.commands",
    "ketacare.app",
    "ketacare.cli",
)
FORBIDDEN_IN_INFRA = ("ketacare.clinic", "ketacare.web", "ketacare.commands", "ketacare.app")
FORBIDDEN_IN_CLINIC = ("ketacare.commands", "ketacare.cli")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(folder: Path, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(folder)} imports {name}")
    return found


def test_core_imports_no_shell_or_web_or_database_code() -> None:
    assert offenders(SRC / "core", FORBIDDEN_IN_CORE) == []


def test_infra_imports_no_domain() -> None:
    assert offenders(SRC / "infra", FORBIDDEN_IN_INFRA) == []


def test_clinic_imports_no_command_line() -> None:
    assert offenders(SRC / "clinic", FORBIDDEN_IN_CLINIC) == []


def test_the_check_itself_catches_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from sqlalchemy import select\nimport ketacare.clinic.patients\n")
    assert sorted(offenders(tmp_path, FORBIDDEN_IN_CORE)) == [
        "bad.py imports ketacare.clinic.patients",
        "bad.py imports sqlalchemy",
    ]


def test_the_clinic_check_catches_a_command_import(tmp_path: Path) -> None:
    bad = tmp_path / "service.py"
    bad.write_text(
        "from ketacare.commands.personalise import register\n"
        "import ketacare.cli\n"
        "from ketacare.core.pharmacology import load_model\n"
    )
    assert sorted(offenders(tmp_path, FORBIDDEN_IN_CLINIC)) == [
        "service.py imports ketacare.cli",
        "service.py imports ketacare.commands.personalise",
    ]


CLINIC = SRC / "clinic"
#: the files a domain folder of the shell holds (the same few in each)
STANDARD_FILES = ("__init__.py", "api.py", "orm.py", "pages.py", "schemas.py", "service.py")
#: domains that lack a standard file, and why (this list only shrinks)
NONSTANDARD = {
    "demo_policy": "not a domain: the demo clinic's example protocol policy (data)",
    "documents": "not a domain: the typesetting (HTML templates to PDF) of the domains' documents",
    "outcomes": "no service.py yet: record.py, panel.py and boosters.py hold its services",
    "personalise": "pages only: no API, schemas of its own",
    "simulation": "pages only: a form over the core's simulation, nothing stored",
    "system": "no pages or schemas: health, readiness and backups",
}


def _domains() -> list[Path]:
    return sorted(p for p in CLINIC.iterdir() if p.is_dir() and not p.name.startswith("_"))


def test_each_domain_has_the_standard_files_or_is_a_listed_exception() -> None:
    lacking = {
        d.name: [f for f in STANDARD_FILES if not (d / f).exists()]
        for d in _domains()
        if d.name not in NONSTANDARD
    }
    assert {name: files for name, files in lacking.items() if files} == {}
    # an exception that has become standard leaves the list
    assert [n for n in NONSTANDARD if not (CLINIC / n).is_dir()] == []


def test_the_clinic_tests_mirror_the_clinic_domains() -> None:
    """``tests/clinic/<domain>/`` holds the tests of ``clinic/<domain>/``: a folder there
    names a domain, and the tests of the whole application stand directly in
    ``tests/clinic/``, so a newcomer finds a domain's tests where its code is."""
    tests = Path(__file__).resolve().parent / "clinic"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders, "no domain folders under tests/clinic"
    assert sorted(folders - {d.name for d in _domains()}) == []


def test_every_orm_module_is_registered_in_the_metadata() -> None:
    tree = ast.parse((CLINIC / "models.py").read_text(encoding="utf-8"))
    registered = {
        node.module.split(".")[2]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("ketacare.clinic.")
        and any(alias.name == "orm" for alias in node.names)
    }
    with_tables = {d.name for d in _domains() if (d / "orm.py").exists()}
    assert with_tables == registered


#: route handlers that still write the audit trail themselves, and why (this list only
#: shrinks; the plans and sessions handlers left it when their services took the writes)
AUDIT_IN_HANDLERS: dict[str, str] = {}


def audit_writes(path: Path) -> list[int]:
    """The lines where a module calls the audit writer (``audit.record``, or ``record``
    imported from the audit service)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    audit_names = {"audit"}
    direct = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ketacare.clinic.audit.service":
            direct.update(a.asname or a.name for a in node.names if a.name == "record")
        if isinstance(node, ast.ImportFrom) and node.module == "ketacare.clinic.audit":
            audit_names.update(a.asname or a.name for a in node.names if a.name == "service")
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if (
            isinstance(f, ast.Attribute)
            and f.attr == "record"
            and isinstance(f.value, ast.Name)
            and f.value.id in audit_names
        ) or (isinstance(f, ast.Name) and f.id in direct):
            lines.append(node.lineno)
    return sorted(lines)


def test_route_handlers_never_call_the_audit_writer() -> None:
    """api.py and pages.py call services; the services write the audit trail."""
    found = {
        str(path.relative_to(CLINIC)): lines
        for path in sorted(CLINIC.glob("*/*.py"))
        if path.name in ("api.py", "pages.py") and (lines := audit_writes(path))
    }
    assert {name: lines for name, lines in found.items() if name not in AUDIT_IN_HANDLERS} == {}
    # an exception whose handlers no longer write the trail leaves the list
    assert [name for name in AUDIT_IN_HANDLERS if name not in found] == []


def test_the_audit_check_catches_a_handler_that_writes(tmp_path: Path) -> None:
    handler = tmp_path / "pages.py"
    handler.write_text(
        "from ketacare.clinic.audit import service as trail\n"
        "from ketacare.clinic.audit.service import record as write\n"
        "def page(session):\n"
        "    trail.record(session=session)\n"
        "    write(session=session)\n"
        "    other.record(session=session)\n"
    )
    assert audit_writes(handler) == [4, 5]


#: The modules mypy may skip (pyproject's allow-list) as of this test: the list only
#: shrinks. Remove a module here once it is clean under --strict and off the allow-list.
MYPY_ALLOWED: frozenset[str] = frozenset()


def mypy_allow_list(pyproject: Path) -> set[str]:
    """The modules pyproject exempts from mypy's errors (``ignore_errors = true``)."""
    import tomllib

    config = tomllib.loads(pyproject.read_text())["tool"]["mypy"]
    assert config.get("strict") is True and config.get("files") == ["src/ketacare"]
    return {
        module
        for override in config.get("overrides", [])
        if override.get("ignore_errors")
        for module in override["module"]
    }


def test_mypy_runs_strict_on_all_of_src_with_an_allow_list_that_only_shrinks() -> None:
    allowed = mypy_allow_list(SRC.parents[1] / "pyproject.toml")
    assert allowed <= MYPY_ALLOWED, f"added to mypy's allow-list: {sorted(allowed - MYPY_ALLOWED)}"


def test_no_source_file_is_over_600_lines() -> None:
    """A module that grows past 600 lines holds more than one concept: split it by them
    (data files are not code and are not counted)."""
    long = {
        str(path.relative_to(SRC)): n
        for path in sorted(SRC.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}
