"""Treatment plans: protocol, tailored doses, therapy, adjuncts, goals, lifecycle, calendar."""
