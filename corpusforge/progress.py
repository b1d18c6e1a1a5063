"""Progress of a long command, on a terminal and in a log.

On a terminal it is a rich progress bar. When stderr is not a terminal (``corpusforge eval … > log 2>&1``, a Slurm
job, CI) rich draws nothing, so a command would be silent for its whole run; there `progress()` returns a
`PlainProgress` instead, which writes one line per task at a steady interval — done / total, rate, ETA — and a last
line when a task ends, as datatrove's executors do in their logs. ``CORPUSFORGE_PROGRESS_SECONDS`` sets the interval
(default 30). The CLI's build and eval commands and the trainer use it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

DEFAULT_SECONDS = 30.0


def interval() -> float:
    raw = os.environ.get("CORPUSFORGE_PROGRESS_SECONDS", "")
    try:
        return max(float(raw), 0.0) if raw else DEFAULT_SECONDS
    except ValueError:
        return DEFAULT_SECONDS


def clock(seconds: float) -> str:
    """1:05, 12:00, 1:02:03."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class _Task:
    description: str
    total: float | None
    fields: dict
    completed: float = 0.0
    base: float = 0.0  # done before this run (a resumed training): not part of the rate
    started: float = field(default_factory=lambda: time.monotonic())
    last_line: float = field(default_factory=lambda: time.monotonic())
    finished: bool = False
    stopped: bool = False
    lines: int = 0


def count(value: float) -> str:
    """12, 1,234; a rate under 100 keeps two significant digits (0.83 steps/s)."""
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:.2g}"


def size(value: float) -> str:
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


class PlainProgress:
    """The subset of rich's ``Progress`` the commands use (``add_task``, ``update``, a context manager), written as
    plain lines. ``unit`` formats the done/total figures (`count`, or `size` for bytes); ``detail`` adds the
    command's own fields to a line."""

    def __init__(
        self,
        unit: Callable[[float], str] = count,
        detail: Callable[[dict], str] | None = None,
        stream: TextIO | None = None,
        every: float | None = None,
    ):
        self.unit, self.detail = unit, detail
        self.stream = stream or sys.stderr
        self.every = interval() if every is None else every
        self.tasks: list[_Task] = []

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        # the last line of each task still open: what was done when the command ended, or where it stopped (only
        # in a log that already has its lines: an error stays one line)
        now = time.monotonic()
        for task in self.tasks:
            if not task.finished and (exc_type is None or task.lines):
                task.finished, task.stopped = True, exc_type is not None
                self._line(task, now)

    def add_task(self, description: str, total: float | None = None, completed: float = 0.0, **fields) -> int:
        self.tasks.append(_Task(description, total, fields, completed=completed, base=completed))
        return len(self.tasks) - 1

    def update(self, task_id: int, completed: float | None = None, total: float | None = None, **fields) -> None:
        task = self.tasks[task_id]
        if completed is not None:
            task.completed = completed
        if total is not None:
            task.total = total
        task.fields.update(fields)
        now = time.monotonic()
        done = task.total is not None and task.completed >= task.total
        if done and not task.finished:
            task.finished = True
            self._line(task, now)
        elif not done and now - task.last_line >= self.every:
            self._line(task, now)

    def line(self, task: _Task, now: float) -> str:
        elapsed = now - task.started
        parts = [f"{task.description}: {self.unit(task.completed)}"]
        if task.total:
            parts[0] += f" / {self.unit(task.total)} ({task.completed / task.total:.0%})"
        # under a second of work says nothing about the rate (a batch that ends as its task is first seen)
        rate = (task.completed - task.base) / elapsed if elapsed >= 1.0 else 0.0
        if rate:
            parts.append(f"{self.unit(rate)}/s")
        if self.detail:
            extra = self.detail(task.fields)
            if extra:
                parts.append(extra)
        parts.append(f"{clock(elapsed)} elapsed")
        if task.finished:
            parts.append("stopped" if task.stopped else "done")
        elif task.total and rate:
            parts.append(f"ETA {clock((task.total - task.completed) / rate)}")
        return " · ".join(parts)

    def _line(self, task: _Task, now: float) -> None:
        task.last_line, task.lines = now, task.lines + 1
        print(self.line(task, now), file=self.stream, flush=True)


def progress(rich_columns: Callable[[], tuple], unit: Callable[[float], str] = count, detail=None):
    """A rich progress bar on a terminal, `PlainProgress` lines otherwise. ``rich_columns`` builds the bar's columns
    (called only on a terminal)."""
    if not sys.stderr.isatty():
        return PlainProgress(unit=unit, detail=detail)
    from rich.console import Console
    from rich.progress import Progress

    return Progress(*rich_columns(), console=Console(stderr=True, highlight=False), transient=True)
