"""The web shell: request dependencies, templates, static assets, error rendering."""
