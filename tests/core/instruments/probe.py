"""The head of a made-up instrument file for loader tests: an id, titles, how the clinic
uses it, a licence and one source. Each test adds the items and scoring it checks."""

PROBE_HEAD = """
id = "probe"
version = "1"
title = "Probe"
short_title = "Probe"
description = "A made-up instrument for loader checks."
[use]
self_report = false
screenings = []
[licence]
case = "full_text"
holder = "none"
terms = "none"
[[sources]]
citation = "none"
url = "https://example.org"
"""
