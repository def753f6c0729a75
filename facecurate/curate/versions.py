"""The installed versions of the packages that shape a stage's output: part of its fingerprint (a new detector, OpenCV
or JPEG encoder may write other bytes, so a cache or an interrupted synth run is redone rather than mixed)."""
from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """Versions of the distributions ``names`` (``"absent"`` when one is not installed), plus the imported cv2's own."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    import cv2

    out["cv2"] = cv2.__version__
    return out
