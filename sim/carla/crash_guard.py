"""Running native code that may kill its process (the ``carla`` wheel's OpenDRIVE parser) in a child process.

:func:`run_guarded` calls a function in a fresh Python interpreter (``sys.executable`` with the caller's
``sys.path``, environment and working directory) and returns its result, passed back by pickle. When the child
dies (a signal such as SIGSEGV, or an exit without a result) the caller gets a :class:`ChildCrashed`, a
``ValueError`` whose one line says what crashed and how, and lives on. An exception the function raises is raised
again in the caller, chained to the child's traceback.

The child is a new interpreter started with ``subprocess``, not a ``multiprocessing`` worker: it never imports the
caller's ``__main__`` (a script, a Prefect or a Ray worker) and never forks a process that runs threads, so it works
the same under pytest, in flow runs and in Ray workers. The function, its arguments and its result must pickle
(a module-level function; its module is imported again in the child). Starting the child costs about the import
of the function's module (a few hundred milliseconds for :mod:`sim.carla.opendrive`).
"""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# The child: reads (sys.path, pickled call) from stdin, writes (ok, result or (error, traceback)) to the file argv[1].
_CHILD = """
import os, pickle, sys, traceback
path, call = pickle.load(sys.stdin.buffer)
sys.path[:] = path
try:
    function, args, kwargs = pickle.loads(call)
    outcome = pickle.dumps((True, function(*args, **kwargs)))
except BaseException as error:
    try:  # an exception class whose arguments do not round-trip fails on loading: the caller gets its text
        outcome = pickle.dumps((False, (error, traceback.format_exc())))
        pickle.loads(outcome)
    except Exception:
        outcome = pickle.dumps((False, (RuntimeError(f"{type(error).__name__}: {error}"), traceback.format_exc())))
with open(sys.argv[1] + ".part", "wb") as file:
    file.write(outcome)
os.replace(sys.argv[1] + ".part", sys.argv[1])
"""


class ChildCrashed(ValueError):
    """The child process died before returning a result (e.g. a native library's segmentation fault)."""


class ChildTraceback(Exception):
    """The traceback of an exception raised in the child (the cause of that exception, raised again here)."""


def run_guarded(crashed: str, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` run in a child process.

    :param crashed: what the error says when the child dies, e.g. ``"the carla parser crashed on Town01.xodr"``;
        how it died follows in parentheses (``(signal 11, SIGSEGV)``, ``(exit status 1)``).
    :raises ChildCrashed: when the child dies without a result; whatever ``function`` raises, raised again.
    """
    call = pickle.dumps((function, args, kwargs))
    with tempfile.TemporaryDirectory(prefix="autoloop-guard-") as folder:
        result = Path(folder) / "result.pickle"
        child = subprocess.run([sys.executable, "-c", _CHILD, str(result)], input=pickle.dumps((sys.path, call)),
                               check=False)
        if not result.is_file():
            raise ChildCrashed(f"{crashed} ({_death(child.returncode)})")
        returned, value = pickle.loads(result.read_bytes())
    if returned:
        output: T = value
        return output
    error, trace = value
    raise error from ChildTraceback(trace)


def _death(returncode: int) -> str:
    """How a child died, from its exit status (negative: the signal that killed it)."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"signal {-returncode}, {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"
