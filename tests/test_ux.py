"""The second UX pass (issue 27), driven through the CLI: exit codes, files written, messages."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _relabel_data import faces, make_oof, manifest_of
from facecurate.cli import app
from facecurate.curate.cache import save_cache


WIDE = {"TERMINAL_WIDTH": "4000", "COLUMNS": "4000"}  # one line per option and message: nothing wraps


def invoke(*args):
    """Run ``facecurate ARGS`` in-process; the result's ``output`` holds stdout and stderr."""
    return CliRunner(env=WIDE).invoke(app, [str(a) for a in args])


def _one_line_error(r, code: int = 2) -> str:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.output
    return errors[0]


# --- 4. relabel-report refuses --out inside the photo folder the cache was cropped from -------------------------

def test_relabel_report_refuses_out_inside_the_photo_folder(tmp_path):
    photos = tmp_path / "DATA"
    (photos / "images").mkdir(parents=True)
    (photos / "train.csv").write_text("id,gender,race,age,path\n")
    oof, _ = make_oof(6, seed=3)
    cache = save_cache(tmp_path / "cache", faces(6, seed=3, h=32, w=24), manifest_of(oof),
                       {"params": {}, "versions": {}, "source": str(photos.resolve())})
    oof.to_parquet(tmp_path / "oof.parquet")
    before = sorted(p.relative_to(photos) for p in photos.rglob("*"))
    line = _one_line_error(invoke("relabel-report", cache.path, "--oof", tmp_path / "oof.parquet", "--out", photos / "rep"))
    assert "must not be the input folder" in line and str(photos.resolve()) in line
    assert sorted(p.relative_to(photos) for p in photos.rglob("*")) == before  # nothing written there
    # the cache folder itself is refused as before; a folder elsewhere is fine
    _one_line_error(invoke("relabel-report", cache.path, "--oof", tmp_path / "oof.parquet", "--out", cache.path / "rep"))
    r = invoke("relabel-report", cache.path, "--oof", tmp_path / "oof.parquet", "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rep" / "report.html").is_file()


# --- 10. a partial out-of-fold table is used with a warning naming how much it covers ---------------------------

def test_partial_oof_is_used_with_a_warning(tmp_path):
    oof, _ = make_oof(40, seed=4, gender_flip=(1,))
    cache = save_cache(tmp_path / "cache", faces(40, seed=4, h=32, w=24), manifest_of(oof), {"params": {}, "versions": {}})
    # a --fold 0 run: 14 of 40 people scored (make_oof puts person p in fold p % 3)
    part = oof[oof["fold"] == 0]
    part.to_parquet(tmp_path / "fold0.parquet")
    people, photos = part["person"].nunique(), len(part)
    r = invoke("relabel-report", cache.path, "--oof", tmp_path / "fold0.parquet", "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    expected = f"{people} of 40 people checked (the oof covers {photos} of 280 photos"
    assert f"warning: {expected}" in r.output
    assert "40 people checked" not in r.output.replace(f"{people} of 40 people checked", "")
    assert expected in (tmp_path / "rep" / "report.html").read_text()
    # a killed run: half the rows NaN
    killed = oof.copy()
    cols = [c for c in oof.columns if c.startswith("p_")]
    killed.loc[killed.index[140:], cols] = np.nan
    killed.to_parquet(tmp_path / "killed.parquet")
    r = invoke("relabel-report", cache.path, "--oof", tmp_path / "killed.parquet", "--out", tmp_path / "rep2")
    assert r.exit_code == 0, r.output
    assert "20 of 40 people checked (the oof covers 140 of 280 photos" in r.output
    # every probability NaN: one line, exit 2, no report
    nan = oof.copy()
    nan[cols] = np.nan
    nan.to_parquet(tmp_path / "nan.parquet")
    line = _one_line_error(invoke("relabel-report", cache.path, "--oof", tmp_path / "nan.parquet", "--out", tmp_path / "rep3"))
    assert "every probability is missing" in line
    assert not (tmp_path / "rep3" / "report.html").exists()
    # the whole table: no warning, "40 people checked"
    oof.to_parquet(tmp_path / "full.parquet")
    r = invoke("relabel-report", cache.path, "--oof", tmp_path / "full.parquet", "--out", tmp_path / "rep4")
    assert r.exit_code == 0 and "relabel-report: 40 people checked" in r.output, r.output
    assert "the oof covers" not in r.output


# --- 7. crop refuses to replace a cache made with other settings unless --replace ------------------------------

def _photos(root):
    from _crop_data import OFFSETS, paste_face, train_layout

    persons = {f"00000{p}_female_Asian_30": [(f"mask{i + 1}.jpg", paste_face(OFFSETS[p * 2 + i])[0]) for i in range(2)]
               for p in range(2)}
    return train_layout(root, persons)


def test_crop_refuses_a_cache_made_with_other_settings(tmp_path):
    data = _photos(tmp_path / "DATA")
    out = tmp_path / "cache"
    r = invoke("crop", data, "--out", out, "--size", "64", "--detector", "mediapipe", "--quiet")
    assert r.exit_code == 0, r.output
    meta = (out / "meta.json").read_bytes()
    line = _one_line_error(invoke("crop", data, "--out", out, "--size", "80", "--detector", "mediapipe", "--quiet"))
    assert "--size 64 -> 80" in line and "--replace" in line
    assert (out / "meta.json").read_bytes() == meta  # the cache was left as it was
    # the same settings reuse it; --replace overwrites it with the new size
    r = invoke("crop", data, "--out", out, "--size", "64", "--detector", "mediapipe")
    assert r.exit_code == 0 and "cache reused" in r.output, r.output
    r = invoke("crop", data, "--out", out, "--size", "80", "--detector", "mediapipe", "--replace", "--quiet")
    assert r.exit_code == 0, r.output
    assert np.load(out / "images.npy", mmap_mode="r").shape[1] == 80


# --- 1. predict's --out is a folder; 2. an eval folder without info.csv -----------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch tiny run (test_resnet at 32 x 24) on a generated cache: what predict reads."""
    from _train_data import make_cache
    from facecurate.train.augment import AugmentParams
    from facecurate.train.config import TrainConfig
    from facecurate.train.fit import train

    work = tmp_path_factory.mktemp("ux_run")
    cache = make_cache(work / "cache", n_people=6, seed=2)
    cfg = TrainConfig(model="test_resnet", batch_size=8, ema=0.0, patience=0, lr=3e-3, drop_rate=0.0, threads=1,
                      plots=False, epochs=1, val_ratio=0.34, augment=AugmentParams(enabled=False))
    return train(cache, work / "run", cfg)


def test_predict_out_is_a_folder(run, tmp_path):
    from _train_data import make_eval_layout

    data = tmp_path / "eval"
    order = make_eval_layout(data, n=3)
    r = invoke("predict", run, data, "--out", tmp_path / "mine", "--device", "cpu", "--threads", "1")
    assert r.exit_code == 0, r.output
    assert {"submission.csv", "probs.parquet", "predict.json"} <= {p.name for p in (tmp_path / "mine").iterdir()}
    assert list(pd.read_csv(tmp_path / "mine" / "submission.csv")["ImageID"]) == order
    assert "layout: eval: info.csv lists the photos in images/" in r.output
    # a file-like --out is one clear line, and nothing is written
    line = _one_line_error(invoke("predict", run, data, "--out", tmp_path / "my_submission.csv"))
    assert "--out is a folder" in line and str(tmp_path / "my_submission") in line
    assert not (tmp_path / "my_submission.csv").exists()
    # the earlier spelling FOLDER/submission.csv names FOLDER
    r = invoke("predict", run, data, "--out", tmp_path / "old" / "submission.csv", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "old" / "submission.csv").is_file() and (tmp_path / "old" / "predict.json").is_file()


def test_eval_folder_without_info_csv_keeps_the_competition_format(run, tmp_path):
    from _train_data import make_eval_layout

    data = tmp_path / "eval"
    order = make_eval_layout(data, n=3)
    (data / "info.csv").unlink()
    r = invoke("predict", run, data, "--out", tmp_path / "pred", "--device", "cpu")
    assert r.exit_code == 0, r.output
    sub = pd.read_csv(tmp_path / "pred" / "submission.csv")
    assert list(sub.columns) == ["ImageID", "ans"] and list(sub["ImageID"]) == sorted(order)
    assert "layout: folder: no info.csv or train.csv here" in r.output and "images/ folder without info.csv" in r.output
    assert "warning: " in r.output and "no info.csv beside images/" in r.output
    info = json.loads((tmp_path / "pred" / "predict.json").read_text())
    assert info["layout"] == "folder" and "no info.csv" in info["warnings"][0]


# --- 5. --threads: one option, the same meaning, on every command that computes ----------------------------------

def test_threads_is_one_option_everywhere(tmp_path):
    from facecurate.cli.app import THREADS_HELP

    for cmd in ("crop", "predict", "explain", "pseudo-label", "ensemble", "train", "tune", "relabel-report"):
        r = invoke(cmd, "--help")
        assert r.exit_code == 0 and "--threads" in r.output, cmd
        assert " ".join(THREADS_HELP.split()[:4]) in " ".join(r.output.split()), cmd
    data = _photos(tmp_path / "DATA")
    line = _one_line_error(invoke("crop", data, "--out", tmp_path / "c", "--threads", "0"))
    assert "--threads 0" in line
    r = invoke("crop", data, "--out", tmp_path / "c", "--threads", "1", "--detector", "mediapipe", "--size", "64", "--quiet")
    assert r.exit_code == 0, r.output


# --- 6. progress with rate and ETA; train's ETA per epoch and for the whole run ---------------------------------

def test_train_progress_shows_rate_and_eta_per_epoch_and_for_the_run(tmp_path):
    import re

    from _train_data import make_cache

    # 16 people, batches of 2: ~28 steps an epoch, so the bar is drawn mid-epoch with an ETA (with 5 steps of 4 an
    # epoch once finished in 0.1 s, before the bar's next redraw, and no ETA was ever shown)
    cache = make_cache(tmp_path / "cache", n_people=16, seed=2)
    r = CliRunner(env={**WIDE, "FORCE_COLOR": "1"}).invoke(app, [
        "train", str(cache.path), "--out", str(tmp_path / "run"), "--model", "test_resnet", "--epochs", "2", "--folds", "2",
        "--fold", "0", "--batch-size", "2", "--threads", "1", "--no-plots", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", r.output).replace("\r", "\n")
    # live bars: each epoch and the whole run (1 fold x 2 epochs) with an ETA and a rate
    assert re.search(r"f0 ep 1/2 .* eta \d:\d\d:\d\d .*(/s|s each)", text), text[-3000:]
    assert re.search(r"run: 1 fold\(s\) x 2 epochs .* eta (\d:\d\d:\d\d|-:--:--)", text), text[-3000:]
    # closing lines: seconds and the rate they imply agree
    # (the rate reads "N s each" when an epoch takes a second or more, "N/s" when it is faster: a quiet machine)
    done = re.search(r"^run: 1 fold\(s\) x 2 epochs  2/2  ([0-9.]+) s  ([0-9.]+)( s each|/s)", text, re.M)
    assert done, text[-3000:]
    seconds, rate = float(done.group(1)), float(done.group(2))
    each = rate if done.group(3) == " s each" else 1 / rate
    assert abs(seconds / 2 - each) < max(0.06, 0.06 * each)


# --- 8. help consistency ------------------------------------------------------------------------------------------

def test_help_is_consistent():
    from facecurate.cli.app import app as the_app
    import typer

    r = CliRunner(env=WIDE).invoke(the_app, [])
    assert r.exit_code == 0 and "Usage:" in r.output and "crop" in r.output  # bare `facecurate`: help, success
    for name in typer.main.get_command(the_app).commands:
        out = invoke(name, "--help").output
        assert "[default: (" not in out, name  # one style: [default: x]
        assert "list[" not in out and "<list" not in out, name
        config_line = " ".join(out.split()).split("--config ")[-1][:200]
        assert "e.g." in config_line, name
        example = config_line.split("e.g. ")[1].split(":")[0]
        assert f"--{example.replace('_', '-')} " in out, (name, example)  # the example is one of its own options
    assert "HEIGHT[,WIDTH]" in invoke("train", "--help").output
    assert "HEIGHT[,WIDTH]" in invoke("relabel-report", "--help").output
    crop = invoke("crop", "--help").output
    assert "[shift|pad]" in crop and "[gray|blur|black]" in crop and "[default: artifacts/cache/<data name>]" in crop
    train = invoke("train", "--help").output
    for panel in ("Data", "Model", "Optimisation", "Folds", "Output", "Hardware"):
        assert f"╭─ {panel} " in train, panel
    assert "[ce|smooth|focal|f1]" in train


# --- runs side by side; python cli.py -----------------------------------------------------------------------------

def test_runs_side_by_side(run, tmp_path):
    import shutil

    from facecurate.train.config import TrainConfig
    from facecurate.train.fit import train

    root = tmp_path / "runs"
    shutil.copytree(run, root / "a")
    cache = json.loads((run / "config.json").read_text())["cache"]
    train(cache, root / "b", TrainConfig(model="test_resnet", batch_size=8, ema=0.0, patience=0, lr=1e-2, drop_rate=0.0,
                                         threads=1, plots=False, epochs=2, val_ratio=0.34))
    (root / "c").mkdir()
    (root / "c" / "config.json").write_text("{}")  # an unfinished run: left out, and said
    r = invoke("runs", root, "--csv", "--html", "--out", tmp_path / "cmp", "--sort", "run")
    assert r.exit_code == 0, r.output
    # a's run trained 1 epoch at lr 3e-3 without augmentation, b 2 epochs at 1e-2 with it
    assert "settings that differ: epochs, lr, augment.enabled" in r.output and "unfinished runs left out: c" in r.output
    table = pd.read_csv(tmp_path / "cmp" / "runs.csv")
    assert list(table["run"]) == ["a", "b"]
    assert {"epochs", "lr", "augment.enabled", "oof_f1", "oof_f1_mask", "oof_f1_gender", "oof_f1_age", "best_epoch", "train_s"} <= set(table.columns)
    assert "model" not in table.columns and "augment.hflip" not in table.columns  # the same in both: not shown
    for name in ("a", "b"):
        want = json.loads((root / name / "summary.json").read_text())
        got = table.set_index("run").loc[name]
        assert abs(got["oof_f1"] - want["oof_f1"]) < 1e-9 and abs(got["oof_f1_age"] - want["oof_f1_age"]) < 1e-9
        assert str(got["best_epoch"]) == ",".join(str(f["best_epoch"]) for f in want["per_fold"])
        assert got["train_s"] == pytest.approx(pd.read_csv(root / name / "metrics.csv")["epoch_s"].sum())
    page = (tmp_path / "cmp" / "runs.html").read_text()
    assert page.count("<tr>") == 3 and "data:image/png;base64," in page and "http" not in page
    _runs_page_sorts_in_chromium(tmp_path / "cmp" / "runs.html", tmp_path)
    # mistakes: one line, exit 2
    assert "no such folder" in _one_line_error(invoke("runs", tmp_path / "nope"))
    assert "--sort" in _one_line_error(invoke("runs", root, "--sort", "nope"))
    assert "must not" in _one_line_error(invoke("runs", root, "--csv", "--out", root / "a" / "cmp"))


def _runs_page_sorts_in_chromium(page, tmp_path):
    """In Debian's Chromium (when installed): a click on a column header sorts the rows, a second click reverses them."""
    import _browser

    if not _browser.available():
        return
    from selenium.webdriver.common.by import By

    driver = _browser.chromium(tmp_path / "downloads")
    try:
        driver.get(page.as_uri())
        first = lambda: [r.find_elements(By.TAG_NAME, "td")[0].text for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr")]  # noqa: E731
        assert first() == ["a", "b"]
        header = [h for h in driver.find_elements(By.TAG_NAME, "th") if h.text == "run"][0]
        header.click()
        assert first() == ["b", "a"]
        header.click()
        assert first() == ["a", "b"]
        driver.save_screenshot(str(tmp_path / "runs.png"))
        assert (tmp_path / "runs.png").stat().st_size > 10_000
    finally:
        driver.quit()


def test_python_cli_py_works_like_facecurate(tmp_path):
    import subprocess
    import sys

    from _relabel_data import ROOT

    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "crop", str(tmp_path / "nope")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: ") and "nope" in r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "cli.py")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "crop" in r.stdout and "runs" in r.stdout
