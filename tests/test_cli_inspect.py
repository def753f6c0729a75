"""The CLI as a user runs it: `--help`, `inspect` on a quirky layout, one clear line for bad input."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from _layout_data import quirky_train_layout

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "facecurate", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_help_lists_every_command():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("inspect", "crop", "relabel-report", "train", "predict"):
        assert cmd in r.stdout
    listed = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2]
    pipeline = [c for c in listed if c in ("inspect", "crop", "relabel-report", "train", "predict")]
    assert pipeline == ["inspect", "crop", "relabel-report", "train", "predict"]  # in the loop's order


def test_inspect_prints_exact_counts_and_writes_a_readable_png(tmp_path):
    data = tmp_path / "data"
    expect = quirky_train_layout(data)
    out = tmp_path / "out"
    r = run_cli("inspect", data, "--out", out, "--show", "100")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert f"people: {expect['persons']} photos: {expect['photos']}" in text
    assert "empty file (0 bytes)" in r.stdout and "missing photo(s): mask4" in r.stdout
    m = pd.read_parquet(out / "manifest.parquet")
    assert len(m) == expect["photos"]
    problems = pd.read_csv(out / "problems.csv")
    assert (problems["level"] == "error").sum() >= 4
    with Image.open(out / "distributions.png") as im:
        assert im.width >= 1000 and im.height >= 400
        assert len(np.unique(np.asarray(im.convert("L")))) > 20  # a real plot, not a blank canvas


def test_bad_path_is_one_line_exit_2(tmp_path):
    r = run_cli("inspect", tmp_path / "nope")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "nope" in r.stderr and "Traceback" not in r.stderr


def test_malformed_csv_is_one_line_exit_2(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "train.csv").write_text("id;gender;age\n1;male;3\n")
    r = run_cli("inspect", tmp_path)
    assert r.returncode == 2
    assert "train.csv" in r.stderr and "missing column" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_empty_and_tiny_classes_are_problems_and_the_people_grid_is_shown(tmp_path):
    from _crop_data import astronaut_person, train_layout

    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": astronaut_person(7)[0],
                                            "000002_male_Asian_20": astronaut_person(7, start=1)[0]})
    r = run_cli("inspect", root, "--out", tmp_path / "out", "--no-check-files")
    assert r.returncode == 0, r.stderr
    problems = pd.read_csv(tmp_path / "out" / "problems.csv")
    empty = problems[problems["what"].str.startswith("no photos")]
    assert len(empty) == 12 and (empty["level"] == "warning").all()   # 18 classes, 6 of them held by the two people
    assert problems["what"].str.contains("only 1 person").sum() == 6
    assert "people per gender x age group" in r.stdout and "problems: 0 errors (skipped), 18 warnings" in r.stdout
