"""The ``ketacare`` command: one Typer app, with command groups registered per domain.

Each module in :mod:`ketacare.commands` exposes ``register(app)``; this file only
composes them and maps the error tree to exit codes (bad input exits 2 with one
line on stderr).
"""

from __future__ import annotations

import sys

import typer

from ketacare.commands import (
    analytics,
    clinic,
    instruments,
    operations,
    personalise,
    pharmacology,
    protocols,
    screening,
    stock,
)
from ketacare.core.errors import KetacareError

app = typer.Typer(
    name="ketacare",
    help="ketacare: ketamine therapy programs for chronic pain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (
    clinic,
    operations,
    pharmacology,
    personalise,
    instruments,
    screening,
    protocols,
    analytics,
    stock,
):
    module.register(app)


def main() -> None:
    """Entry point of the ``ketacare`` console script."""
    try:
        app()
    except KetacareError as exc:  # an error a command did not catch itself
        sys.stderr.write(" ".join(str(exc).split()) + "\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
