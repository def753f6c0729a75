"""What tests record of a run: the notes a stage said (``Notes``, a ``Progress``) and the files it wrote (``file_tree``)."""
from __future__ import annotations

import json
from pathlib import Path


class Notes:
    """A ``curate.progress.Progress`` that keeps every note (iterate over it) and ignores bar updates. Not a list:
    stages take ``progress or QUIET``, and an empty list is false."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def update(self, task: str, done: int, total: int, info: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        self.texts.append(text)

    def __iter__(self):
        return iter(self.texts)


def file_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes) but locks; synth.json without its run-specific timing and
    resume count, so an interrupted-and-resumed synth output compares equal to an uninterrupted one."""
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}
    meta = json.loads(files.pop("synth.json"))
    for k in ("seconds", "resumed_blocks"):
        meta.pop(k)
    files["synth.json"] = json.dumps(meta, sort_keys=True).encode()
    return files
