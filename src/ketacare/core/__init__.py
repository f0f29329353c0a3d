"""Pure clinical knowledge and computation.

Nothing under ``ketacare.core`` imports the web, the database, the CLI or the
clock: the shell passes those in. A test (``tests/test_architecture.py``) keeps
it that way.
"""
