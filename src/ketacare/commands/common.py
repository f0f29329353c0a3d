"""Helpers every CLI command shares: JSON output and the one-line error exit."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from ketacare.core.errors import KetacareError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Exit code for bad input, as the design document specifies.
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line on stderr and exit (2 by default: bad input)."""
    typer.echo(" ".join(str(message).split()), err=True)
    raise typer.Exit(code)


def _clean(value: Any) -> Any:
    """Make numpy values and non-finite floats JSON-safe (NaN/inf become null)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(_clean(document), ensure_ascii=False) + "\n")


def read_json_file(path: Path, what: str) -> Any:
    """Read a JSON input file, turning every failure into a one-line message."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror or exc}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")


def parse_json_option(text: str, option: str) -> Any:
    """Parse a JSON command-line option value."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{option} is not valid JSON: {exc.msg} at position {exc.pos}")


def run_guarded(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``func`` and turn any :class:`KetacareError` into the one-line exit 2."""
    try:
        return func(*args, **kwargs)
    except KetacareError as exc:
        fail(str(exc))


def require_suffix(*, path: Path, option: str, suffix: str) -> None:
    """Refuse (exit 2) an output file named for another format, before any work is done.

    ``suffix`` is lower case with its dot (``".pdf"``); the name's case does not matter.
    """
    if path.suffix.lower() != suffix:
        fail(f"{option} must name a {suffix} file, got {path}")


def write_output(*, path: Path, data: bytes) -> None:
    """Write a command's output file, turning a failure into the one-line exit 2."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


def save_plot(*, figure: Figure, path: Path) -> None:
    """Lay out, write (PNG, 120 dpi) and close a plot the command drew.

    The figure is closed even when the write fails (the one-line exit 2), so that a
    process drawing many plots does not keep them all.
    """
    import matplotlib.pyplot as plt

    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    except OSError as exc:
        fail(f"cannot write plot {path}: {exc.strerror or exc}")
    finally:
        plt.close(figure)
