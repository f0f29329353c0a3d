"""One audit key for the whole test run, in a file, named by the environment.

The test databases are seeded once (a template) and copied, and the CLI runs in
subprocesses: every one of them must sign and check the audit chain with the same
key. Imported by ``conftest.py`` before anything builds settings.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

if not os.environ.get("KETACARE_AUDIT_KEY_FILE"):
    _folder = Path(tempfile.mkdtemp(prefix="kc-audit-key-"))
    _path = _folder / "audit.key"
    _fd = os.open(_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(_fd, "w") as _handle:
        _handle.write(secrets.token_hex(32) + "\n")
    os.environ["KETACARE_AUDIT_KEY_FILE"] = str(_path)

TEST_AUDIT_KEY_FILE = Path(os.environ["KETACARE_AUDIT_KEY_FILE"])
