"""Progress of long work, counted against its total: a rich progress bar on a terminal, and log lines.

The log lines (``evaluate smoke: 48/126 routes, 3.1 routes/s, 0:00:15``) go to autoloop's logger, hence to the
console when no terminal shows a bar, and to the Prefect run's log in the UI; one is written at most every
:data:`EVERY_S` seconds and one at the end. Nested work (a rollout inside an evaluation) shows its own bar. A loop over
a known list of items shows through :func:`counted`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between two log lines of one piece of work (its last line is always written).
EVERY_S = 10.0


class Progress:
    """``what`` done so far out of ``total`` ``unit`` (use as a context manager; :meth:`advance` as work ends).

    :param bar: show a rich bar (default: when standard error is a terminal).
    """

    def __init__(self, what: str, total: int, unit: str, *, done: int = 0, bar: bool | None = None) -> None:
        self.what, self.total, self.unit, self.done = what, total, unit, done
        self._started = time.monotonic()
        self._logged = self._started
        self._first = done
        self._bars: Bars | None = None
        if bar if bar is not None else sys.stderr.isatty():
            self._bars = Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn(unit), TaskProgressColumn(), TimeElapsedColumn(),
                              console=Console(stderr=True), transient=False)
            self._task = self._bars.add_task(what, total=total, completed=done)

    def __enter__(self) -> Progress:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._bars is not None:
            self._bars.stop()
        if kind is None and self.done != self._first:
            self._log()

    def advance(self, count: int = 1) -> None:
        """``count`` more units are done."""
        self.update(self.done + count)

    def update(self, done: int) -> None:
        """``done`` units are done in all."""
        self.done = done
        if self._bars is not None:
            self._bars.update(self._task, completed=done)
        if time.monotonic() - self._logged >= EVERY_S and done < self.total:
            self._log()

    def line(self) -> str:
        """The progress as one line: counts, rate, elapsed time."""
        elapsed = time.monotonic() - self._started
        rate = (self.done - self._first) / elapsed if elapsed > 0 else 0.0
        minutes, seconds = divmod(int(elapsed), 60)
        return (f"{self.what}: {self.done}/{self.total} {self.unit}, {rate:.3g} {self.unit}/s, "
                f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}")

    def _log(self) -> None:
        self._logged = time.monotonic()
        log.info("%s", self.line())


def counted(items: Sequence[T], what: str, unit: str) -> Iterator[T]:
    """Each of ``items`` in turn, shown as :class:`Progress` (``what``: done/``len(items)`` ``unit``); an item is
    done when the loop asks for the next one, or ends."""
    with Progress(what, len(items), unit) as progress:
        for item in items:
            yield item
            progress.advance()
