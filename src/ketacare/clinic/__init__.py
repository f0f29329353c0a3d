"""The application shell, one folder per domain (orm, schemas, service, api, pages)."""
