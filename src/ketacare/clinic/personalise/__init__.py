"""Personalised dosing from this patient's measured levels and the doses given."""
