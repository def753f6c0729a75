"""report.html in a real headless Chromium: accept two flags, reject one, download, and the CSV is what train reads."""
from __future__ import annotations

import time

import pytest

import _browser
from _relabel_data import faces, make_oof, manifest_of
from facecurate.curate.audit import relabel_report
from facecurate.curate.audit.report_html import overrides_from_flags
from facecurate.curate.cache import save_cache
from facecurate.curate.overrides import apply_overrides, read_overrides

pytestmark = pytest.mark.skipif(not _browser.available(), reason="needs Debian's chromium + chromium-driver (make test installs them)")


def test_accept_two_reject_one_download_overrides(tmp_path):
    from selenium.webdriver.common.by import By

    oof, _ = make_oof(40, seed=5, gender_flip=(2, 17), age_shift=(9,), swap=(4, 25), strength=(10.0, 5.0, 4.0))
    m = manifest_of(oof)
    cache = save_cache(tmp_path / "cache", faces(40, seed=5, h=48, w=36), m, {"params": {}, "versions": {}})
    oof.to_parquet(tmp_path / "oof.parquet")
    res = relabel_report(cache.path, oof=tmp_path / "oof.parquet", out=tmp_path / "rep", near_duplicates=False)
    assert len(res.flags) >= 3
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = _browser.chromium(downloads)
    try:
        driver.get(res.paths["html"].resolve().as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.flag")
        assert len(rows) == len(res.flags)
        ids = [r.get_attribute("data-flag") for r in rows]
        rows[0].find_element(By.CSS_SELECTOR, ".acc").click()
        rows[1].find_element(By.CSS_SELECTOR, ".rej").click()
        rows[2].find_element(By.CSS_SELECTOR, ".acc").click()
        assert [r.get_attribute("data-state") for r in rows[:3]] == ["accepted", "rejected", "accepted"]
        assert driver.find_element(By.ID, "n-acc").text == "2" and driver.find_element(By.ID, "n-rej").text == "1"
        # click-to-enlarge and the keyboard work on the same page
        driver.find_element(By.CSS_SELECTOR, "figure.ph img").click()
        assert "open" in driver.find_element(By.ID, "lightbox").get_attribute("class")
        driver.find_element(By.ID, "lightbox").click()
        driver.find_element(By.ID, "download").click()
        target = downloads / "overrides.csv"
        for _ in range(100):
            if target.is_file() and target.stat().st_size > 0:
                break
            time.sleep(0.1)
        got = target.read_text()
    finally:
        driver.quit()
    accepted = res.flags.iloc[[int(ids[0]), int(ids[2])]]
    expected = overrides_from_flags(accepted).to_csv(index=False)
    assert got == expected  # byte for byte what the report itself writes
    over = read_overrides(target)
    assert len(over) == len(accepted.drop_duplicates(["scope", "person", "image_id", "field"]))
    fixed, changed = apply_overrides(m, over)
    assert changed > 0
    assert not set(over["key"]) & {str(res.flags.iloc[int(ids[1])]["image_id"] or res.flags.iloc[int(ids[1])]["person"])} - set(
        overrides_from_flags(accepted)["key"])
