"""The patient record: demographics, weights, conditions, medications, allergies."""
