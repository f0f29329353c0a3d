"""ketacare: an open platform for ketamine therapy programs in chronic pain.

The package is a pure clinical core (:mod:`ketacare.core`) inside a thin shell
(:mod:`ketacare.clinic`, :mod:`ketacare.infra`, :mod:`ketacare.web`). See
``docs/architecture.md``.
"""

__version__ = "0.1.0"
