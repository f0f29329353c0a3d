"""Instrument responses (questionnaires and criteria) and the safety alerts they raise."""
