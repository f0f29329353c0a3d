"""Installation metadata (demo flag) and health."""
