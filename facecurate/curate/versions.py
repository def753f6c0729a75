"""The installed versions of the packages that shape a stage's output: part of its fingerprint (a new detector, OpenCV
or JPEG encoder may write other bytes, so a cache or an interrupted synth run is redone rather than mixed)."""
from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata


def installed_versions(names: Sequence[str]) -> dict[str, str]:
    """Versions of the distributions ``names`` (``"absent"`` when one is not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """``installed_versions(names)``, plus the imported cv2's own (its wheel's name varies)."""
    import cv2

    return {**installed_versions(names), "cv2": cv2.__version__}
