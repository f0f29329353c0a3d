"""CLI command groups, one module per domain; :mod:`ketacare.cli` registers them all."""
