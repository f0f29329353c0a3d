"""Interactive simulation of the PK/PD model library (no patient data)."""
