"""Anchors: signed checkpoints of the audit chain kept outside the database.

The keyed chain proves that no stored row was changed, but someone who controls
the database can still remove its newest rows, or all of them, and the shorter
chain is whole. An anchor records, at a moment, how many events the chain held,
the newest one's id and hash, and the first one's hash. Anchors are appended,
one JSON line each, to ``audit-anchors.jsonl`` in a folder on another disk or
host; each line is signed with a key derived from the audit key and names the
signature of the line before it, so a line cannot be altered or removed from
the middle unnoticed. :func:`check` then compares a verified chain with every
anchor: fewer events than an anchor saw (tail removed, table wiped), another
first event (the trail replaced) or another hash at an anchored id (rows
rewritten and the later hashes recomputed, which needs the key) are each named.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.audit.service import ChainReport, Checkpoint, key_of, verify
from ketacare.core.errors import KetacareError
from ketacare.infra.periodic import every

log = logging.getLogger("ketacare.audit")

ANCHOR_FILE = "audit-anchors.jsonl"
_DOMAIN = b"ketacare audit anchor v1"


class AnchorRefused(KetacareError):
    """An anchor was not written: the chain or the anchor file does not hold."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """One signed checkpoint: ``count`` events up to ``head_id`` whose hash is ``head``."""

    at: str
    count: int
    head_id: int | None
    head: str
    first: str | None
    legacy_rows: int
    prev: str
    sig: str = ""

    def signed_fields(self) -> dict[str, object]:
        fields = asdict(self)
        fields.pop("sig")
        return fields


def _sign(anchor: Anchor, key: bytes) -> str:
    anchor_key = hmac.new(key, _DOMAIN, hashlib.sha256).digest()
    payload = json.dumps(anchor.signed_fields(), sort_keys=True, separators=(",", ":"))
    return hmac.new(anchor_key, payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AnchorLog:
    """The anchors of a folder whose signatures hold, and what is wrong with the rest."""

    anchors: tuple[Anchor, ...]
    problems: tuple[str, ...]
    path: Path

    @property
    def latest(self) -> Anchor | None:
        return self.anchors[-1] if self.anchors else None


def read_anchors(directory: Path, key: bytes) -> AnchorLog:
    """Read and check every line of the folder's anchor file (none yet: an empty log)."""
    path = Path(directory) / ANCHOR_FILE
    anchors: list[Anchor] = []
    problems: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return AnchorLog((), (), path)
    except OSError as exc:
        return AnchorLog((), (f"cannot read the anchor file {path}: {exc.strerror or exc}",), path)
    previous = ""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            anchor = Anchor(**json.loads(line))
        except (ValueError, TypeError):
            problems.append(f"{path} line {number} is not an anchor (damaged or edited)")
            continue
        if not hmac.compare_digest(_sign(anchor, key), anchor.sig):
            problems.append(
                f"{path} line {number}: its signature does not match (edited, or signed "
                "with another audit key)"
            )
            continue
        if anchor.prev != previous:
            problems.append(
                f"{path} line {number} does not follow the line before it (lines were "
                "removed or reordered)"
            )
        anchors.append(anchor)
        previous = anchor.sig
    return AnchorLog(tuple(anchors), tuple(problems), path)


def check(report: ChainReport, anchors: Sequence[Anchor]) -> list[str]:
    """What a verified chain lacks or changed compared with each anchor (empty: nothing)."""
    problems: list[str] = []
    for anchor in anchors:
        if anchor.count == 0 or anchor.head_id is None:
            continue
        if not report.ok and report.head_id is not None and anchor.head_id > report.head_id:
            continue  # beyond the broken link: the chain's own report says why
        where = f"the anchor of {anchor.at}"
        if report.rows == 0:
            problems.append(
                f"the audit trail is empty, but {where} saw {anchor.count} events "
                "(the trail was wiped)"
            )
        elif report.first != anchor.first:
            problems.append(
                f"the trail's first event is not the one {where} saw (the trail was replaced)"
            )
        elif anchor.head_id in report.seen:
            position, stored = report.seen[anchor.head_id]
            if stored != anchor.head:
                problems.append(
                    f"event {anchor.head_id} differs from the one {where} saw: the chain was "
                    "rewritten after it was anchored"
                )
            elif position != anchor.count:
                problems.append(
                    f"{where} saw {anchor.count} events up to event {anchor.head_id}, the trail "
                    f"now holds {position}: events were removed and the chain recomputed"
                )
        elif report.ok and report.rows < anchor.count:
            problems.append(
                f"the trail holds {report.rows} events (up to event {report.head_id}) but "
                f"{where} saw {anchor.count} (up to event {anchor.head_id}): "
                f"{anchor.count - report.rows} events are missing from its end"
            )
        else:
            problems.append(f"event {anchor.head_id}, anchored at {anchor.at}, is missing")
    return problems


def verify_against(
    *, session: Session, log_: AnchorLog, key: bytes | None = None
) -> tuple[ChainReport, list[str]]:
    """Verify the whole chain and compare it with every anchor of ``log_``."""
    watch = {a.head_id for a in log_.anchors if a.head_id is not None}
    report = verify(session=session, key=key, watch=watch)
    return report, [*log_.problems, *check(report, log_.anchors)]


def _resume(session: Session, anchor: Anchor) -> Checkpoint | str:
    """Where to continue verifying after ``anchor``, or why the chain no longer matches it."""
    table = AuditEvent.__table__
    if anchor.head_id is None:
        return Checkpoint(0, 0, anchor.head, None, 0, keyed=False)
    stored = session.scalar(select(table.c.hash).where(table.c.id == anchor.head_id))
    count = session.scalar(
        select(func.count()).select_from(table).where(table.c.id <= anchor.head_id)
    )
    first = session.scalar(select(table.c.hash).order_by(table.c.id).limit(1))
    if stored is None or stored != anchor.head or count != anchor.count or first != anchor.first:
        return (
            f"the audit trail no longer matches the anchor of {anchor.at} "
            f"({anchor.count} events up to event {anchor.head_id}): run `ketacare audit verify "
            "--anchors` to see what changed"
        )
    keyed = anchor.legacy_rows < anchor.count
    return Checkpoint(
        anchor.head_id, anchor.count, anchor.head, anchor.first, anchor.legacy_rows, keyed
    )


def write_anchor(
    *, session: Session, directory: Path, now: datetime, key: bytes | None = None
) -> Anchor:
    """Verify the chain since the folder's last anchor and append a new signed anchor."""
    key = key_of(session) if key is None else key
    existing = read_anchors(directory, key)
    if existing.problems:
        raise AnchorRefused(
            f"{existing.problems[0]}; keep that file as evidence, move it aside and anchor again"
        )
    last = existing.latest
    since = None
    if last is not None:
        resumed = _resume(session, last)
        if isinstance(resumed, str):
            raise AnchorRefused(resumed)
        since = resumed
    report = verify(session=session, key=key, since=since)
    if not report.ok:
        raise AnchorRefused(
            f"the audit trail is broken at event {report.first_broken_id}: {report.problem}"
        )
    anchor = Anchor(
        at=now.isoformat(timespec="seconds"),
        count=report.rows,
        head_id=report.head_id,
        head=report.head,
        first=report.first,
        legacy_rows=report.legacy_rows,
        prev=last.sig if last else "",
    )
    anchor = replace(anchor, sig=_sign(anchor, key))
    _append_line(existing.path, json.dumps(asdict(anchor), sort_keys=True))
    return anchor


def _append_line(path: Path, line: str) -> None:
    """Append one line (created 0600), flushed to the disk before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


async def anchor_periodically(
    *,
    sessions: sessionmaker[Session],
    directory: Path,
    minutes: float,
    clock: Callable[[], datetime],
) -> None:
    """The server's schedule: an anchor at start, then every ``minutes``; a failure is
    logged in one line and retried at the next turn."""

    def once() -> Anchor:
        with sessions() as session:
            return write_anchor(session=session, directory=directory, now=clock())

    await every(
        minutes * 60,
        once,
        done=lambda anchor: f"audit anchor: {anchor.count} events, head {anchor.head[:16]}",
        failed=f"audit anchor NOT written to {directory}",
        logger=log,
    )
