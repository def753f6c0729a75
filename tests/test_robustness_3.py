"""Hostile input, round three (issue 25, the rest), through the real CLI: synth over a folder holding the user's files,
synth resumed over cut or damaged partial files and photos, crop on an unfinished synth output, train onto a finished
run, and train's other writes on a full disk. Each case is one line naming the file and exit code 2, or works where
working is right (a resume that redoes a damaged block); the CLI helpers are tests/_cli.py's."""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from _cli import cli, refused
from _recording import file_tree
from PIL import Image
from test_robustness_2 import TINY_TRAIN, _copy, _truncate

from facecurate.curate.synth import (
    SynthParams,
    SynthStopped,
    astronaut_variants,
    synthesize_sources,
)
from facecurate.curate.synth.sources import read_faces

#: 18 people with one block of 16: two keypoint blocks and two render blocks (the CLI rounds --block to 16).
SYNTH = ["--people", "18", "--seed", "1", "--photos", "mask1,normal", "--contact", "2", "--block", "16"]



def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def faces(work):
    """18 astronaut variants named as UTKFace photos (age_gender_race_date)."""
    folder = work / "faces"
    folder.mkdir()
    for i, img in enumerate(astronaut_variants(18, seed=31)):
        Image.fromarray(img).save(folder / f"{20 + 3 * i}_{i % 2}_0_2017010{i % 9}{i:02d}.jpg.chip.jpg")
    return folder


@pytest.fixture(scope="module")
def whole(work, faces):
    """An uninterrupted synth run through the CLI: the reference every resumed run must equal."""
    r = cli("synth", faces, work / "whole", *SYNTH)
    assert r.exit_code == 0, r.output
    assert json.loads((work / "whole" / "synth.json").read_text())["blocks"] == 2
    return work / "whole"


@pytest.fixture(scope="module")
def interrupted(work, faces, whole):
    """The same run stopped after both keypoint blocks and the first render block (as an interruption would)."""
    out = work / "interrupted"
    sources, problems = read_faces(faces)
    params = SynthParams(people=18, seed=1, photos="mask1,normal", contact=2, block=16)
    with pytest.raises(SynthStopped):
        synthesize_sources(sources, out, params, problems=problems, stop_after_blocks=3)
    prog = json.loads((out / ".partial" / "progress.json").read_text())
    assert prog["scan_complete"] and prog["render_done"] == [0] and not (out / "truth.csv").exists()
    return out


# ---------------------------------------------------------------------------------------------- 1. the user's files in OUT


def test_synth_over_an_output_holding_the_users_photos_refuses_and_keeps_them(work, faces, whole):
    over = _copy(whole, work / "over")
    person = min(p.name for p in (over / "images").iterdir())
    mine = [over / "images" / "my_extra_person" / "mask1.jpg", over / "images" / person / "holiday.jpg"]
    for p in mine:
        p.parent.mkdir(exist_ok=True)
        shutil.copy(over / "images" / person / "mask1.jpg", p)
    before = _files(over)
    r = cli("synth", faces, over, *SYNTH)  # the same command over a finished output starts it over
    refused(r, str(over / "images" / person / "holiday.jpg"), "not written by synth", "1 more", "nothing was changed")
    assert _files(over) == before
    for p in mine:  # moved out by the user: the run goes on and writes what an uninterrupted run writes
        p.unlink()
    (over / "images" / "my_extra_person").rmdir()
    r = cli("synth", faces, over, *SYNTH)
    assert r.exit_code == 0, r.output
    assert file_tree(over) == file_tree(whole)


def test_synth_starting_an_interrupted_output_over_keeps_the_users_masks(work, faces, interrupted):
    over = _copy(interrupted, work / "over_interrupted")
    mine = over / "masks" / "notes.png"
    shutil.copy(next((over / "masks").rglob("*.png")), mine)
    before = _files(over)
    refused(cli("synth", faces, over, *SYNTH[:3], "2", *SYNTH[4:]), str(mine), "not written by synth")  # another seed
    assert _files(over) == before


# ---------------------------------------------------------------------------------------------- 5 and 9. damaged partial files


@pytest.mark.parametrize("damage", ["truth part cut", "keypoint part cut", "photo cut", "person mask flipped",
                                    "truth part missing"])
def test_a_damaged_block_is_redone_when_synth_resumes(work, faces, whole, interrupted, damage):
    out = _copy(interrupted, work / f"resume_{damage.replace(' ', '_')}")
    partial = out / ".partial"
    if damage == "truth part cut":
        _truncate(partial / "truth_000000.csv")
    elif damage == "keypoint part cut":
        _truncate(partial / "faces_000000.parquet")
    elif damage == "photo cut":
        _truncate(sorted((out / "images").rglob("*.jpg"))[3])
    elif damage == "person mask flipped":
        f = sorted((out / "masks").rglob("*.png"))[5]
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    else:
        (partial / "truth_000000.csv").unlink()
    r = cli("synth", faces, out, *SYNTH)
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    what = "keypoint block 0" if damage == "keypoint part cut" else "render block 0"
    assert f"{what}" in said and "redoing" in said, r.output
    assert file_tree(out) == file_tree(whole)
    people = json.loads((out / "synth.json").read_text())["people"]
    assert people > 16 and len((out / "truth.csv").read_text().splitlines()) == 1 + 2 * people  # both blocks' rows


# ---------------------------------------------------------------------------------------------- 6. crop on an unfinished synth output


def test_crop_refuses_an_unfinished_synth_output(work, interrupted, whole):
    for data in (interrupted, interrupted / "images"):
        refused(cli("crop", data, "--out", work / "crop_unfinished", "--detector", "mediapipe"), str(interrupted),
                "unfinished synth output", "same `facecurate synth` command")
    assert not (work / "crop_unfinished" / "meta.json").exists()
    # killed after train.csv was written, before synth.json: still unfinished
    late = _copy(whole, work / "late_kill")
    (late / "synth.json").unlink()
    refused(cli("inspect", late, "--out", work / "inspect_late"), str(late), "unfinished synth output")


# ---------------------------------------------------------------------------------------------- 2 and 3. train onto a run


@pytest.fixture(scope="module")
def finished(work, cache):
    out = work / "run"
    r = cli("train", cache.path, "--out", out, *TINY_TRAIN, "--folds", "3")
    assert r.exit_code == 0, r.output
    return out


def test_train_onto_a_finished_run_is_refused_and_changes_nothing(work, cache, finished):
    before = _files(finished)
    for folds in ("3", "2"):  # the same run again, or fewer folds (fold_2 would stay behind)
        refused(cli("train", cache.path, "--out", finished, *TINY_TRAIN, "--folds", folds), str(finished), "holds a finished run",
                "--resume", "another --out")
    refused(cli("train", cache.path, "--out", finished, *TINY_TRAIN, "--folds", "2", "--resume"), "config.json", "folds")
    assert _files(finished) == before
    killed = _copy(finished, work / "run_killed")
    (killed / "summary.json").unlink()
    shutil.rmtree(killed / "fold_2")
    refused(cli("train", cache.path, "--out", killed, *TINY_TRAIN, "--folds", "2"), str(killed), "holds an unfinished run",
            "--resume")
    r = cli("train", cache.path, "--out", killed, *TINY_TRAIN, "--folds", "3", "--resume")  # what the line says works
    assert r.exit_code == 0, r.output
    assert json.loads((killed / "summary.json").read_text())["folds"] == [0, 1, 2]


def test_a_quick_run_left_in_a_report_folder_is_replaced_not_mixed(work, cache):
    from facecurate.train.config import quick_config
    from facecurate.train.fit import quick_oof

    out = work / "quick_run"
    tiny = {"epochs": 1, "img_size": (32, 24), "batch_size": 8, "threads": 1, "device": "cpu", "model": "test_resnet",
            "plots": False}
    quick_oof(cache, out, quick_config(folds=3, **tiny))
    oof = quick_oof(cache, out, quick_config(folds=2, **tiny))
    assert sorted(p.name for p in out.glob("fold_*")) == ["fold_0", "fold_1"]
    assert json.loads((out / "summary.json").read_text())["folds"] == [0, 1]
    import pandas as pd
    assert sorted(pd.read_parquet(oof)["fold"].unique()) == [0, 1]


# ---------------------------------------------------------------------------------------------- 10. train's other writes on a full disk


@pytest.mark.parametrize("name", ["config.json", "metrics.csv", "oof.parquet", "summary.json"])
def test_train_writes_on_a_full_disk_are_one_line_and_leave_no_temporary_file(work, cache, monkeypatch, name):
    from facecurate.train import checkpoint

    real = checkpoint._write_file

    def full(path, data):
        if path.name == f"{name}.tmp":
            real(path, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(checkpoint, "_write_file", full)
    out = work / f"run_full_{name.replace('.', '_')}"  # a folder name, not a file-like one (--out is a folder)
    refused(cli("train", cache.path, "--out", out, *TINY_TRAIN), str(out / name), "No space left")
    assert not list(out.rglob("*.tmp")) and not (out / "summary.json").exists()


def test_a_plot_on_a_full_disk_is_one_line_and_leaves_no_cut_file(work, cache, monkeypatch):
    from matplotlib.figure import Figure

    real = Figure.savefig

    def full(self, fname, *a, **k):
        if str(fname).endswith("confusion.png"):
            Path(fname).write_bytes(b"\x89PNG half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fname))
        return real(self, fname, *a, **k)

    monkeypatch.setattr(Figure, "savefig", full)
    out = work / "run_full_plot"
    args = [a for a in TINY_TRAIN if a != "--no-plots"]
    refused(cli("train", cache.path, "--out", out, *args), str(out / "confusion.png"), "No space left", "--resume")
    assert not (out / "confusion.png").exists() and not (out / "summary.json").exists()
    monkeypatch.undo()
    r = cli("train", cache.path, "--out", out, *args, "--resume")
    assert r.exit_code == 0, r.output
    assert (out / "confusion.png").is_file() and (out / "summary.json").is_file()
