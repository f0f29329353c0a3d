"""The clinic dashboard: outcome rates, durability and completeness across patients."""
