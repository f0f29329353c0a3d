"""Eligibility screenings: decisions from the record, physician sign-off, validity."""
