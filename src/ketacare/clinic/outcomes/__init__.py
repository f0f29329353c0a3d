"""Outcomes in the application: the progress report (and, next, the outcome panel and dashboard)."""
