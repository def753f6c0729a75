"""How stages report progress without printing: the caller passes a ``Progress``; the library never prints.

``update(task, done, total, info)`` is called as work advances (``task`` names a bar such as "crop",
"detect keypoints" or "f0 ep 3/15"; ``info`` is a short status text); ``note(text)`` is one line worth
telling the user now (a cache reused or resumed, problems found). ``None`` everywhere means quiet.
The CLI renders these with rich; tests record them.
"""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What a stage may tell its caller while it runs."""

    def update(self, task: str, done: int, total: int, info: str = "") -> None: ...

    def note(self, text: str) -> None: ...


class Quiet:
    """The default ``Progress``: says nothing."""

    def update(self, task: str, done: int, total: int, info: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        pass


QUIET = Quiet()


class Steps:
    """One task's finished items, reported through ``progress`` as they advance."""

    def __init__(self, progress: Progress | None, task: str, total: int, done: int = 0) -> None:
        self.progress, self.task, self.total, self.done = progress or QUIET, task, int(total), int(done)
        self.progress.update(self.task, self.done, self.total)

    def advance(self, n: int = 1, info: str = "") -> None:
        self.done += int(n)
        self.progress.update(self.task, self.done, self.total, info)
