"""ketacare.core.outcomes."""
