"""Open a relabel-report ``report.html`` in headless Chromium (Debian's package) and save a screenshot.

Usage: python bench/report_screenshot.py REPORT.html [--out shot.png] [--size 1400,1800]
Installs ``chromium`` with apt-get when it is missing (needs root; not for CI). Chromium runs with
networking features off and a throw-away profile; the page must render from the file alone.
Prints one JSON line: the screenshot path, its size in pixels, the page's size and whether it holds
any http(s) reference.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ensure_chromium() -> str:
    """Path of the chromium binary, installing Debian's package when absent."""
    exe = shutil.which("chromium")
    if exe:
        return exe
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True,
                   env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    exe = shutil.which("chromium")
    if not exe:
        sys.exit("chromium is not installed and apt-get could not install it")
    return exe


def screenshot(report: Path, out: Path, size: str = "1400,1800", timeout: int = 120) -> dict:
    """Render ``report`` headless into ``out`` (PNG); returns what the JSON line reports."""
    exe = ensure_chromium()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--hide-scrollbars", f"--screenshot={out}", f"--window-size={size}",
               report.resolve().as_uri()]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        secs = time.perf_counter() - t0
    if r.returncode != 0 or not out.is_file():
        sys.exit(f"chromium failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    import cv2

    shot = cv2.imread(str(out))
    page = report.read_text(encoding="utf-8")
    return {"screenshot": str(out), "width": int(shot.shape[1]), "height": int(shot.shape[0]),
            "report_bytes": len(page.encode()), "cards": page.count('<section class="card"'),
            "external_refs": bool(re.search(r"https?://", page)), "chromium_s": round(secs, 2),
            "chromium": subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="report.html written by relabel-report")
    ap.add_argument("--out", type=Path, default=None, help="PNG to write [default: next to the report, report.png]")
    ap.add_argument("--size", default="1400,1800", help="browser window WIDTH,HEIGHT in pixels")
    a = ap.parse_args()
    if not a.report.is_file():
        sys.exit(f"{a.report}: file not found")
    print(json.dumps(screenshot(a.report, a.out or a.report.with_name("report.png"), a.size)))


if __name__ == "__main__":
    main()
