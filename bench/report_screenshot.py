"""Open a relabel-report ``report.html`` in headless Chromium (Debian's package, driven by selenium) and save a screenshot.

Usage: python bench/report_screenshot.py REPORT.html [--out shot.png] [--size 1440,900] [--full]
Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs both). Chromium runs with
networking features off and a throw-away profile; the page must render from the file alone.
Prints one JSON line: the screenshot path, its size in pixels, the page's size, the number of cards
and whether the page holds any http(s) reference.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars")


def screenshot(report: Path, out: Path, size: str = "1440,900", full: bool = False) -> dict:
    """Render ``report`` headless into ``out`` (PNG, the window or with ``full`` the whole page); returns the JSON line."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        sys.exit("chromium and chromium-driver are not installed: apt-get install -y chromium chromium-driver (make test does)")
    w, h = (int(v) for v in size.split(","))
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={w},{h}"):
        opts.add_argument(f)
    t0 = time.perf_counter()
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(report.resolve().as_uri())
        page_h = int(driver.execute_script("return document.documentElement.scrollHeight"))
        if full:
            driver.set_window_size(w, min(page_h, 12000))
        driver.save_screenshot(str(out))
        version = driver.capabilities.get("browserVersion", "")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    import cv2

    shot = cv2.imread(str(out))
    page = report.read_text(encoding="utf-8")
    return {"screenshot": str(out), "width": int(shot.shape[1]), "height": int(shot.shape[0]), "page_height": page_h,
            "report_bytes": len(page.encode()), "cards": page.count('<section class="card"'),
            "external_refs": bool(re.search(r"https?://", page)), "chromium_s": round(time.perf_counter() - t0, 2),
            "chromium": version}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="report.html written by relabel-report")
    ap.add_argument("--out", type=Path, default=None, help="PNG to write [default: next to the report, report.png]")
    ap.add_argument("--size", default="1440,900", help="browser window WIDTH,HEIGHT in pixels")
    ap.add_argument("--full", action="store_true", help="capture the whole page height (up to 12000 px)")
    a = ap.parse_args()
    if not a.report.is_file():
        sys.exit(f"{a.report}: file not found")
    print(json.dumps(screenshot(a.report, a.out or a.report.with_name("report.png"), a.size, a.full)))


if __name__ == "__main__":
    main()
