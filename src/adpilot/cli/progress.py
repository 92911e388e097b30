"""Progress for long CLI steps: a rich bar with time elapsed and an estimate of the time left on a
terminal, and plain, throttled lines with the same estimate when stderr is a file or a pipe
(CI logs, ``make demo 2>log``), where a live bar would print only its final state.

The library reports progress through ``progress(name, done, total)`` callbacks; this module
renders them. 进度条：终端上显示剩余时间估计；输出到文件时按行打印。
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from adpilot.cli._common import err_console

Callback = Callable[[str, int, int], None]


class EtaColumn(ProgressColumn):
    """``about 1:23 left`` for tasks added with ``eta=True`` (others: nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self._remaining = TimeRemainingColumn()

    def render(self, task: Task) -> Text:
        if not task.fields.get("eta") or task.finished:
            return Text("")
        left = self._remaining.render(task)
        return Text(f"about {left.plain} left", style="progress.remaining")


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``1 h 2 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


class LineProgress:
    """Plain progress lines: at most one per task every ``every`` seconds (and the first and the
    last), each with done/total, the share and the estimated time left."""

    def __init__(self, console: Console, every: float = 10.0) -> None:
        self.console, self.every = console, every
        self._start: dict[str, tuple[float, int]] = {}
        self._last: dict[str, float] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        now = time.perf_counter()
        first = name not in self._start
        if first:
            self._start[name] = (now, done)
        t0, d0 = self._start[name]
        final = total and done >= total
        if not (first or final or now - self._last.get(name, 0.0) >= self.every):
            return
        if final and self._last.get(name) == -1.0:
            return  # the last line was printed already
        self._last[name] = -1.0 if final else now
        line = f"{name}: {done:,}/{total:,}" if total else f"{name}: {done:,}"
        if total:
            line += f" ({done / total:.0%})"
            rate = (done - d0) / (now - t0) if now > t0 and done > d0 else 0.0
            if final:
                line += f", done in {format_seconds(now - t0)}"
            elif rate > 0:
                line += f", about {format_seconds((total - done) / rate)} left"
        self.console.print(line, highlight=False, soft_wrap=True)


def bar_columns() -> tuple[ProgressColumn, ...]:
    return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), EtaColumn())


@contextmanager
def progress_reporter(console: Console | None = None, *, labels: dict[str, str] | None = None
                      ) -> Iterator[Callback]:
    """A ``progress(name, done, total)`` callback for the duration of the block: one bar per
    name (described by ``labels[name]`` when given) with an estimate of the time left."""
    console = console or err_console
    labels = labels or {}
    if not console.is_terminal:
        lines = LineProgress(console)
        yield lambda name, done, total: lines(labels.get(name, name), done, total)
        return
    with Progress(*bar_columns(), console=console) as bar:
        handles: dict[str, int] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in handles:
                handles[name] = bar.add_task(labels.get(name, name), total=total or None,
                                             eta=True)
            bar.update(handles[name], completed=done, total=total or None)

        yield update
