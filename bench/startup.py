"""Command-line start-up: ``ketacare --help`` and ``ketacare models`` against their peers.

Every ``ketacare`` command pays its start-up before it does anything. Measured in one run,
interleaved round by round so that the machine's load falls on every target alike:

  python -c pass          the interpreter alone (the floor)
  python -c "import typer"  the command-line library alone
  bare Typer app           a one-file Typer app with two commands (one with a --json option)
                           printing --help / running a command that prints a line: what
                           typer itself costs a command (typer coerces options with pydantic)

Each target runs as a new process (``python -m ketacare.cli``, as the console script does,
with this tree's ``src`` first on the path). Wall time and CPU time (user + system of the
child) are medians over the rounds; on a loaded machine the CPU time is the steadier figure.

With ``--compare-src DIR`` (another tree's ``src``, e.g. ``git archive main src | tar -x
-C /tmp/main``) the same ketacare commands also run from that tree, in the same rounds.

Run: .venv/bin/python bench/startup.py [--rounds 15] [--compare-src /tmp/main/src]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

BARE_APP = '''
import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("models")
def models(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """List things."""
    typer.echo("domino: racemic ketamine")


@app.command("other")
def other(name: str = typer.Option("x", "--name", help="A name.")) -> None:
    """Another command."""
    typer.echo(name)


app()
'''


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--compare-src", type=Path, default=None)
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    env["COLUMNS"] = "120"
    py = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        bare = Path(folder) / "bare_app.py"
        bare.write_text(BARE_APP, encoding="utf-8")
        targets = {
            "python -c pass": [py, "-c", "pass"],
            'python -c "import typer"': [py, "-c", "import typer"],
            "bare Typer app --help": [py, str(bare), "--help"],
            "bare Typer app models": [py, str(bare), "models"],
            "ketacare --help": [py, "-m", "ketacare.cli", "--help"],
            "ketacare models": [py, "-m", "ketacare.cli", "models"],
            "ketacare models --json": [py, "-m", "ketacare.cli", "models", "--json"],
        }
        envs = dict.fromkeys(targets, env)
        if args.compare_src is not None:
            other = {
                **env,
                "PYTHONPATH": os.pathsep.join(
                    [str(args.compare_src.resolve()), os.environ.get("PYTHONPATH", "")]
                ),
            }
            for name in ("ketacare --help", "ketacare models"):
                targets[f"{name} [compare]"] = targets[name]
                envs[f"{name} [compare]"] = other
        for name, argv in targets.items():  # warm the file cache and the bytecode
            run_once(argv, envs[name])
        walls: dict[str, list[float]] = {name: [] for name in targets}
        cpus: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, argv in targets.items():
                wall, cpu = run_once(argv, envs[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
    wall = {name: statistics.median(v) for name, v in walls.items()}
    cpu = {name: statistics.median(v) for name, v in cpus.items()}
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load:.1f}, ", end="")
    print(f"{args.rounds} rounds (median)")
    print(f"{'target':28s} {'wall s':>8s} {'cpu s':>8s} {'wall x peer':>12s} {'cpu x peer':>11s}")
    peers = {
        "ketacare --help": "bare Typer app --help",
        "ketacare models": "bare Typer app models",
        "ketacare models --json": "bare Typer app models",
        "ketacare --help [compare]": "bare Typer app --help",
        "ketacare models [compare]": "bare Typer app models",
    }
    for name in targets:
        peer = peers.get(name)
        ratio_w = f"{wall[name] / wall[peer]:12.2f}" if peer else f"{'':12s}"
        ratio_c = f"{cpu[name] / cpu[peer]:11.2f}" if peer else f"{'':11s}"
        print(f"{name:28s} {wall[name]:8.3f} {cpu[name]:8.3f} {ratio_w} {ratio_c}")
    print("target: ketacare --help and ketacare models under 0.3 s")


if __name__ == "__main__":
    main()
