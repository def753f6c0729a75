"""The CLI's progress renderer: rich bars for ``curate.progress.Progress`` events, each with its count, elapsed time,
ETA and rate, and one closing line per finished task that shows the same seconds as its bar."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBars
from rich.text import Text


def task_seconds(task: Task) -> float:
    """A task's seconds as every column and its closing line show them: until it completed, not until it was removed."""
    return float((task.finished_time if task.finished else task.elapsed) or 0.0)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def rate_text(done: float, seconds: float) -> str:
    """``12.3/s``, or ``4.5 s each`` when one item takes longer than a second (an epoch, a fold); "" before any."""
    if not done or seconds <= 0:
        return ""
    rate = done / seconds
    return f"{rate:.1f}/s" if rate >= 1 else f"{1 / rate:.1f} s each"


class RateColumn(ProgressColumn):
    """Items per second since the task started (rich's own speed is a 30 s window: empty while one step takes longer)."""

    def render(self, task: Task) -> Text:
        return Text(rate_text(task.completed, task_seconds(task)) or "  -/s", style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """Time left at the task's average pace so far (``eta 0:01:23``): steady for slow steps such as epochs."""

    def render(self, task: Task) -> Text:
        elapsed = task_seconds(task)
        if task.finished or not task.completed or not task.total or elapsed <= 0:
            return Text("eta -:--:--" if not task.finished else "", style="progress.remaining")
        return Text(f"eta {_clock(elapsed / task.completed * (task.total - task.completed))}", style="progress.remaining")


class RichProgress:
    """A ``curate.progress.Progress`` drawn with rich: one bar per task; a finished task becomes a static line
    when the next one starts (so a long training run leaves one line per epoch, not a growing live area)."""

    def __init__(self, console: Console | None = None, enabled: bool = True, verbose: bool = False) -> None:
        self.console = console or Console(highlight=False)
        self.enabled, self.verbose = enabled, verbose
        self.t0 = time.perf_counter()
        self.bars = RichBars(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                             TimeElapsedColumn(), EtaColumn(), RateColumn(), TextColumn("{task.fields[info]}"),
                             console=self.console, disable=not enabled)
        self.tasks: dict[str, tuple[int, float]] = {}
        self.started = False

    def __enter__(self) -> "RichProgress":
        return self  # the live display starts with the first task: a command that fails early prints only its error

    def __exit__(self, *exc: object) -> None:
        for name in list(self.tasks):
            self._finish(name)
        if self.started:
            self.bars.stop()

    def _finish(self, name: str) -> None:
        tid, t0 = self.tasks.pop(name)
        task = self.bars._tasks[tid]  # noqa: SLF001 - rich keeps no public getter by id
        info = task.fields.get("info", "")
        secs = task_seconds(task) if task.start_time is not None else time.perf_counter() - t0
        self.bars.remove_task(tid)
        if self.enabled:
            stamp = f"[{time.perf_counter() - self.t0:6.1f} s] " if self.verbose else ""
            rate = rate_text(task.completed, secs)
            self.console.print(f"{stamp}{name}  {int(task.completed)}/{int(task.total or 0)}  {secs:.1f} s  {rate}  {info}".rstrip(),
                               markup=False, soft_wrap=True)

    def update(self, task: str, done: int, total: int, info: str = "") -> None:
        if not self.started:
            self.bars.start()
            self.started = True
        if task not in self.tasks:
            for name in [n for n, (tid, _) in self.tasks.items() if self.bars._tasks[tid].finished]:  # noqa: SLF001
                self._finish(name)
            self.tasks[task] = (self.bars.add_task(task, total=total, info=""), time.perf_counter())
        tid, _ = self.tasks[task]
        self.bars.update(tid, completed=done, total=total, info=info)

    def note(self, text: str) -> None:
        if self.enabled:
            stamp = f"[{time.perf_counter() - self.t0:6.1f} s] " if self.verbose else ""
            self.console.print(stamp + text, markup=False, soft_wrap=True)
