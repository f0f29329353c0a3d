"""Safeguards against misuse: the cumulative dose on the chart, against the clinic's caps."""
