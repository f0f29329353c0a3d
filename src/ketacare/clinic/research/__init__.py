"""Research: each patient's consent to the registry, and exports without identifiers."""
