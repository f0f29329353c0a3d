"""Backup files sealed with AES-256-GCM under a key kept outside the database.

A sealed file is a header (magic, format, a random 8-byte nonce prefix) followed by
chunks of at most 1 MiB, each encrypted and authenticated on its own (so a dump larger
than memory streams through). Chunk ``i`` uses the nonce ``prefix || i`` (4 bytes) and
the header plus a last-chunk flag as associated data: a chunk altered, reordered,
dropped, or the file cut short, fails to open, as does a file sealed with another key.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ketacare.core.errors import KetacareError

MAGIC = b"KCSEAL1\n"
CHUNK = 1 << 20
_LENGTH = struct.Struct(">I")
#: a sealed chunk's ciphertext carries a 16-byte tag
_TAG = 16


class SealBroken(KetacareError):
    """A sealed file cannot be opened: another key, damaged or cut short."""


def read_key(path: Path) -> bytes:
    """The 32-byte key in ``path`` (64 hex characters), refused with what is wrong."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise SealBroken(f"cannot read the backup key file {path}: {exc.strerror or exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SealBroken(
            f"the backup key file {path} must hold exactly 64 hex characters (32 bytes); "
            "make one with `openssl rand -hex 32`"
        )
    return key


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


def seal(source: Path, target: Path, key: bytes) -> None:
    """Write ``source`` sealed into ``target`` (created 0600, must not exist)."""
    prefix = os.urandom(8)
    header = MAGIC + prefix
    aead = AESGCM(key)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as data:
        out.write(header)
        index = 0
        chunk = data.read(CHUNK)
        while True:
            following = data.read(CHUNK)
            last = not following
            sealed = aead.encrypt(_nonce(prefix, index), chunk, header + bytes([last]))
            out.write(_LENGTH.pack(len(sealed)) + sealed)
            if last:
                break
            chunk, index = following, index + 1
        out.flush()
        os.fsync(out.fileno())


def open_sealed(source: Path, target: Path, key: bytes) -> None:
    """Write the plain content of the sealed ``source`` into ``target`` (created 0600)."""
    aead = AESGCM(key)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as data:
        header = data.read(len(MAGIC) + 8)
        if len(header) != len(MAGIC) + 8 or not header.startswith(MAGIC):
            raise SealBroken(f"{source} is not a sealed ketacare backup file")
        prefix = header[len(MAGIC) :]
        index = 0
        while True:
            size = data.read(_LENGTH.size)
            if len(size) != _LENGTH.size:
                raise SealBroken(f"{source} is cut short (its last part is missing)")
            (length,) = _LENGTH.unpack(size)
            sealed = data.read(length)
            if length < _TAG or length > CHUNK + _TAG or len(sealed) != length:
                raise SealBroken(f"{source} is damaged (part {index})")
            for last in (False, True):
                try:
                    plain = aead.decrypt(_nonce(prefix, index), sealed, header + bytes([last]))
                except InvalidTag:
                    continue
                break
            else:
                raise SealBroken(
                    f"{source} cannot be opened with this backup key (another key, or the "
                    f"file was altered at part {index})"
                )
            out.write(plain)
            if last:
                if data.read(1):
                    raise SealBroken(f"{source} has data after its last part (altered)")
                return
            index += 1
