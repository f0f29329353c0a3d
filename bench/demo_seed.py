"""Seeding the demo clinic (`ketacare demo`, what `make run` does on an empty database).

Two targets, interleaved round by round on new SQLite files so that the machine's load
falls on both alike:

  history      the whole demo clinic: thirty patients with months of care (the default)
  no history   its peer: the accounts and eight patients, without the months of care
               (`ketacare demo --no-history`, what the command-line tests seed)

CPU time of this process (medians over the rounds) and the share of it spent typesetting
the signed consent documents (WeasyPrint), the part that grows with the number of
patients. The clock is fixed, so every round seeds the same records.

Run: .venv/bin/python bench/demo_seed.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def seed_once(folder: Path, *, history: bool) -> tuple[float, float, int]:
    """CPU seconds of one seeding, the CPU seconds of its PDFs and how many there were."""
    import ketacare.clinic.consent.document as document
    from ketacare.clinic import demo
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
    from ketacare.infra.migrate import upgrade
    from ketacare.infra.settings import load_settings

    url = f"sqlite:///{folder / 'demo.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    typeset = document.render_pdf
    spent = [0.0, 0]

    def timed(doc: object) -> bytes:
        started = time.process_time()
        try:
            return typeset(doc)  # type: ignore[arg-type]
        finally:
            spent[0] += time.process_time() - started
            spent[1] += 1

    document.render_pdf = timed  # type: ignore[assignment]
    try:
        started = time.process_time()
        with unit_of_work(make_sessionmaker(engine)) as session:
            settings = load_settings(database_url=url, var_dir=folder / "var")
            demo.seed(session=session, now=NOW, settings=settings, history=history)
        cpu = time.process_time() - started
    finally:
        document.render_pdf = typeset  # type: ignore[assignment]
        engine.dispose()
    return cpu, spent[0], int(spent[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    seed_once(Path(tempfile.mkdtemp()), history=False)  # imports and templates, not measured
    runs: dict[str, list[tuple[float, float, int]]] = {"history": [], "no history": []}
    for _ in range(args.rounds):
        for name in runs:
            runs[name].append(seed_once(Path(tempfile.mkdtemp()), history=name == "history"))
    print(f"demo seeding, CPU seconds, median of {args.rounds} rounds")
    medians = {}
    for name, rows in runs.items():
        cpu = statistics.median(r[0] for r in rows)
        pdf = statistics.median(r[1] for r in rows)
        medians[name] = cpu
        print(
            f"  {name:<11} {cpu:6.2f} s   consent PDFs {rows[0][2]:3d}: {pdf:5.2f} s "
            f"({100 * pdf / cpu:.0f} %)"
        )
    ratio = medians["history"] / medians["no history"]
    print(f"  history / no history: x{ratio:.1f}")


if __name__ == "__main__":
    main()
