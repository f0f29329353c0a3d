"""The stock page's check of every closed session's drug account, against its peer.

The page lists closed sessions whose account no longer balances, so it needs the account
of every session that ever drew from stock. Two ways, on the same synthetic ledger (one
receipt per 10 sessions; each session draws one vial and wastes the rest, witnessed):

  one pass     ``core.stock.accounts``: the ledger indexed once for all sessions
  per session  ``core.stock.account`` once a session (what the page did before): each
               call reads the whole ledger again, so the time grows with sessions x entries

Both give the same accounts (checked). CPU seconds, medians of the rounds.

Run: .venv/bin/python bench/stock_accounts.py [--sessions 200 1000 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, date, datetime, timedelta

from ketacare.core.stock import (
    Draw,
    Entry,
    Purpose,
    Receipt,
    Waste,
    Witness,
    account,
    accounts,
)

VIAL = "ketamine-50mg-ml-10ml-vial"  # 500 mg a vial
T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


def ledger(sessions: int) -> tuple[tuple[Entry, ...], dict[Purpose, float]]:
    """A ledger of ``sessions`` sessions, each 120 mg given and 380 mg wasted."""
    entries: list[Entry] = []
    delivered: dict[Purpose, float] = {}
    n = 0
    for s in range(sessions):
        at = T0 + timedelta(minutes=10 * s)
        if s % 10 == 0:
            n += 1
            entries.append(
                Receipt(
                    id=n,
                    at=at,
                    by="ana",
                    lot_id=s // 10 + 1,
                    site="main",
                    product=VIAL,
                    lot=f"L{s // 10 + 1}",
                    expiry=date(2028, 1, 31),
                    units=10,
                    supplier="Wholesaler",
                    reference=f"INV-{n}",
                )
            )
        draw = n + 1
        entries += [
            Draw(
                id=draw,
                at=at,
                by="ana",
                lot_id=s // 10 + 1,
                units=1,
                prepared_mg=120,
                dosing_session_id=s + 1,
            ),
            Waste(id=draw + 1, at=at, by="ana", draw_id=draw, mg=380, ml=None, method="sink"),
            Witness(id=draw + 2, at=at, by="ben", target_id=draw + 1),
        ]
        n = draw + 2
        delivered[("session", s + 1)] = 120.0
    return tuple(entries), delivered


def per_session(entries: tuple[Entry, ...], delivered: dict[Purpose, float]) -> list[object]:
    """The peer: one account a session, each reading the whole ledger."""
    return [
        account(entries, delivered_mg=given, dosing_session_id=key[1])
        for key, given in delivered.items()
    ]


def cpu(work: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        work()  # type: ignore[operator]
        times.append(time.process_time() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[200, 1000, 3000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("sessions  entries   one pass   per session   ratio")
    for sessions in args.sessions:
        entries, delivered = ledger(sessions)
        together = accounts(entries, delivered=delivered)
        alone = dict(zip(delivered, per_session(entries, delivered), strict=True))
        assert together == alone and all(a.accounted for a in together.values())
        one = cpu(lambda e=entries, d=delivered: accounts(e, delivered=d), args.rounds)
        each = cpu(lambda e=entries, d=delivered: per_session(e, d), args.rounds)
        print(f"{sessions:8d} {len(entries):8d} {one:9.3f} s {each:11.3f} s   x{each / one:.0f}")


if __name__ == "__main__":
    main()
