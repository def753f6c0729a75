"""How N rows are cut into resumable chunks: the unit that `crop`'s cache writer and `embed`'s store finish, hash
and resume one at a time (``Chunks``: chunk ``c`` is rows ``c * size`` up to ``(c + 1) * size``, the last one shorter;
``ChunkedRows``: the same as methods of a pass), and ``write_progress``: how every resumable pass (crop, embed,
synth) writes its progress file."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


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


class ChunkedRows:
    """``n_chunks``, ``chunk_range(c)`` and ``pending_chunks()`` of a resumable pass over ``n`` rows in chunks of
    ``chunk`` rows whose finished chunks are ``done`` (the cache writer, the embedding store)."""

    n: int
    chunk: int
    done: list[int]

    @property
    def n_chunks(self) -> int:
        return Chunks(self.n, self.chunk).count

    def chunk_range(self, c: int) -> range:
        """Row indices of chunk ``c``."""
        return Chunks(self.n, self.chunk).rows(c)

    def pending_chunks(self) -> list[int]:
        """Chunks not finished yet, in order."""
        return Chunks(self.n, self.chunk).pending(self.done)


def write_progress(path: Path, state: dict, indent: int = 2) -> None:
    """Write a pass's progress file whole or not at all: a temporary file beside it, then ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=indent, default=str))
    os.replace(tmp, path)
