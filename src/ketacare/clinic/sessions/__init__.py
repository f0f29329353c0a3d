"""Dosing sessions at the chair: the event log, the chair view, the nurses' board, summaries."""
