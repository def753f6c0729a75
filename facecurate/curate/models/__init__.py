"""Bundled MediaPipe model files (Apache-2.0, see NOTICE) and a checksum-verified path to each.

``model_path(name)`` checks the file against SHA256SUMS once per process, so a missing or corrupt
copy fails with one clear line instead of a cryptic TFLite error deep inside a run.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import InputError

MODELS_DIR = Path(__file__).resolve().parent
_VERIFIED: set[tuple[str, str]] = set()


def read_checksums(folder: Path = MODELS_DIR) -> dict[str, str]:
    """The ``{file name: sha256 hex}`` table from ``folder/SHA256SUMS`` (``sha256sum`` format)."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        raise InputError(f"{sums}: checksum list missing; reinstall facecurate")
    table: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, fname = line.split(maxsplit=1)
            table[fname.lstrip("*").strip()] = digest.lower()
    return table


def model_names(folder: Path = MODELS_DIR) -> list[str]:
    """Names ``model_path`` accepts (with or without the ``.tflite`` suffix)."""
    return sorted(Path(n).stem for n in read_checksums(folder))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_path(name: str, folder: Path = MODELS_DIR) -> Path:
    """Path of bundled model ``name`` (e.g. "face_detection_short_range"), checksum verified once.

    Raises ``InputError`` naming the file when it is unknown, missing or does not match SHA256SUMS.
    """
    fname = name if name.endswith(".tflite") else f"{name}.tflite"
    table = read_checksums(folder)
    if fname not in table:
        raise InputError(f"{fname}: unknown model; bundled models: {', '.join(model_names(folder))}")
    path = folder / fname
    key = (str(path), table[fname])
    if key in _VERIFIED:
        return path
    if not path.is_file():
        raise InputError(f"{path}: model file missing; reinstall facecurate")
    digest = sha256_file(path)
    if digest != table[fname]:
        raise InputError(
            f"{path}: model file corrupt (sha256 {digest[:12]}..., expected {table[fname][:12]}...); reinstall facecurate"
        )
    _VERIFIED.add(key)
    return path
