"""How N rows are cut into resumable chunks: the unit that `crop`'s cache writer and `embed`'s store finish, hash
and resume one at a time (``Chunks``: chunk ``c`` is rows ``c * size`` up to ``(c + 1) * size``, the last one shorter)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunks:
    """``n`` rows in chunks of ``size`` rows, in order; only the last chunk may be shorter."""

    n: int
    size: int

    @property
    def count(self) -> int:
        """How many chunks (0 for no rows)."""
        return (self.n + self.size - 1) // self.size

    def rows(self, c: int) -> range:
        """Row indices of chunk ``c``."""
        return range(c * self.size, min(self.n, (c + 1) * self.size))

    def pending(self, done: Iterable[int]) -> list[int]:
        """The chunks not in ``done``, in order."""
        done = set(done)
        return [c for c in range(self.count) if c not in done]
