"""Infrastructure shared by every domain: settings, database, errors, permissions, clock.

Nothing here imports a domain (``ketacare.clinic``); domains import this.
"""
