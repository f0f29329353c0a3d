"""Measurement between visits: single-use self-report links and the reminder outbox."""
