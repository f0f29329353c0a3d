"""Outcomes in the application: the chart's outcome panel and its JSON, the progress report,
the clinic's outcome policy file and the booster suggestions a physician accepts or dismisses."""
