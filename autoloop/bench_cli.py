"""``autoloop bench cli``: what an ``autoloop`` command costs besides its work.

Each command runs in a fresh process (``python -m autoloop``), as a person runs it, ``repeat`` times: ones that do
little (help, the effective config) and an evaluation of the expert on the smoke suite, timed once as it drives the
routes (creating the home's tracking store) and then as it re-reads the finished evaluation, then the registry
listing of that home. A fresh interpreter's import of the
CLI is timed apart, with the heavy packages it loads. Whether a Prefect API is configured decides whether the stage
commands run as Prefect flow runs, so it goes with the figures.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from autoloop.progress import Progress

#: Packages whose import alone costs a second or so; the CLI loads them only in the commands that use them.
HEAVY = ("torch", "prefect", "mlflow", "numba", "scipy.stats", "matplotlib", "ray")


@dataclass(frozen=True)
class CommandTiming:
    """One command's wall seconds, each run in a fresh process.

    :param name: what it does.
    :param command: its arguments after ``autoloop`` (``HOME``: the bench's home folder).
    """

    name: str
    command: list[str]
    seconds: list[float]
    median_s: float
    min_s: float


@dataclass(frozen=True)
class ImportTiming:
    """``import autoloop.cli`` in a fresh interpreter: wall seconds (the median of the runs) and the heavy packages
    it loaded."""

    seconds: float
    heavy: list[str]


def commands(home: Path) -> list[tuple[str, list[str], bool]]:
    """The timed commands: name, arguments, and whether it is timed ``repeat`` times (else once)."""
    evaluate = ["evaluate", "--model", "expert", "--suite", "smoke", "--profile", "quick", "--home", str(home)]
    return [("help", ["--help"], True),
            ("config show", ["config", "show", "--profile", "quick"], True),
            ("evaluate smoke, driving the routes", evaluate, False),
            ("evaluate smoke, re-reading the finished evaluation", evaluate, True),
            ("models", ["models", "--profile", "quick", "--home", str(home)], True)]


def bench_cli(home: Path, *, repeat: int = 3) -> tuple[ImportTiming, list[CommandTiming]]:
    """Time the import of the CLI and :func:`commands` against ``home``, each ``repeat`` times.

    :raises RuntimeError: when a command fails (its output's end).
    """
    planned = commands(home)
    runs = repeat + sum(repeat if repeated else 1 for _, _, repeated in planned)
    results = []
    with Progress("bench cli", runs, "commands") as progress:
        imports = []
        for _ in range(repeat):
            imports.append(_import_once())
            progress.advance()
        for name, arguments, repeated in planned:
            seconds = []
            for _ in range(repeat if repeated else 1):
                seconds.append(_run_once(arguments))
                progress.advance()
            results.append(CommandTiming(name, [argument.replace(str(home), "HOME") for argument in arguments],
                                         seconds, statistics.median(seconds), min(seconds)))
    import_s = statistics.median(seconds for seconds, _ in imports)
    return ImportTiming(import_s, imports[-1][1]), results


def _run_once(arguments: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autoloop", *arguments], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "120"})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"autoloop {' '.join(arguments)} exited with {done.returncode}: "
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return elapsed


def _import_once() -> tuple[float, list[str]]:
    code = ("import json, sys, time; started = time.perf_counter(); import autoloop.cli; "
            "print(json.dumps([time.perf_counter() - started, "
            f"sorted(name for name in {HEAVY!r} if name in sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, heavy = json.loads(done.stdout)
    return float(seconds), list(heavy)
