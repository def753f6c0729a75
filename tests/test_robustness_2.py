"""Hostile input, round two (issue 25), through the real CLI: invalid overrides, killed or damaged runs, run files under
checksums, a full disk, odd folder names, damaged partial chunks. Each case is one line naming the file and exit code 2,
or works where working is right; the CLI helpers are tests/_cli.py's."""
from __future__ import annotations

import errno
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli import cli, refused
from _train_data import band_image, make_eval_layout, make_people

from facecurate.curate.cache import save_cache

TINY_TRAIN = ["--model", "test_resnet", "--epochs", "1", "--folds", "2", "--batch-size", "8", "--img-size", "32",
              "--threads", "1", "--patience", "0", "--ema", "0", "--device", "cpu", "--no-plots"]


def _copy(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def _flip(path: Path, n: int = 64, start: int | None = None, seed: int = 0, span: tuple[int, int] | None = None) -> None:
    """Flip ``n`` bytes of ``path``: from ``start`` on (the header), else at random places in the second half of
    ``span`` (begin, end; default the whole file)."""
    lo, hi = span or (0, os.path.getsize(path))
    where = (np.arange(start, start + n) if start is not None
             else np.random.default_rng(seed).choice(np.arange((lo + hi) // 2, hi), n, replace=False))
    with open(path, "r+b") as f:
        for pos in where:
            f.seek(int(pos))
            b = f.read(1)
            f.seek(int(pos))
            f.write(bytes([b[0] ^ 0xFF]))


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _data_span(path: Path) -> tuple[int, int]:
    """Where ``path`` holds its bulk data: a zip (torch.save's format) its largest member's bytes, else the whole file.
    Flips there leave the file readable, so what catches them is the checksum, not the parser."""
    size = os.path.getsize(path)
    if not zipfile.is_zipfile(path):
        return 0, size
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        big = max(z.infolist(), key=lambda i: i.compress_size)
        f.seek(big.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        start = big.header_offset + 30 + name_len + extra_len
    return start, start + big.compress_size


def _damage(path: Path, how: str) -> None:
    """``truncated`` (cut in half), ``header flipped`` (64 bytes from the start) or ``64 bytes flipped`` (in the second
    half of its bulk data, ``_data_span``)."""
    if how == "truncated":
        _truncate(path)
    elif how == "header flipped":
        _flip(path, 64, start=0)
    else:
        _flip(path, 64, span=_data_span(path))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("robust2")


@pytest.fixture(scope="module")
def cache(work):
    """8 people of band images; the crop params name mediapipe, so predict's re-crop of new photos is quick."""
    m = make_people(8, seed=3)
    rng = np.random.default_rng(4)
    images = np.stack([band_image(int(r.mask), int(r.gender), int(r.age_group), (32, 24), rng) for r in m.itertuples()])
    save_cache(work / "cache", images, m, {"params": {"size": 32, "aspect": 0.75, "detector": "mediapipe"}, "source": "generated"})
    return work / "cache"


@pytest.fixture(scope="module")
def overrides(work, cache):
    """A valid fix and a row whose key is in no cache."""
    person = sorted(pd.read_parquet(cache / "manifest.parquet")["person"].unique())[0]
    path = work / "overrides.csv"
    path.write_text(f"scope,key,field,value,reason\nperson,{person},age_group,2,test\nphoto,nobody/normal.jpg,mask,2,typo\n")
    return path


@pytest.fixture(scope="module")
def trained(work, cache, overrides):
    """The tiny run every run test copies: (run folder, the train command's output)."""
    r = cli("train", cache, "--out", work / "run", *TINY_TRAIN, "--overrides", overrides)
    assert r.exit_code == 0, r.output
    return work / "run", r.output


@pytest.fixture(scope="module")
def run(trained):
    return trained[0]


@pytest.fixture(scope="module")
def eval_data(work):
    make_eval_layout(work / "eval", n=3)
    return work / "eval"


def predict(run: Path, data: Path, work: Path, name: str):
    """predict through the CLI; the crop cache of ``data`` is shared by every call (cropped once)."""
    return cli("predict", run, data, "--out", work / name / "submission.csv", "--cache-root", work / "pred_caches",
               "--device", "cpu", "--batch-size", "8")


# ---------------------------------------------------------------------------------------------- 4. overrides


@pytest.mark.parametrize("scope, field, value", [("person", "mask", -1), ("person", "gender", 7), ("photo", "age_group", 5),
                                                 ("person", "age", 400)])
def test_an_override_value_out_of_range_is_one_line_naming_the_row(work, cache, scope, field, value):
    m = pd.read_parquet(cache / "manifest.parquet")
    key = m["person"].iloc[0] if scope == "person" else m["image_id"].iloc[0]
    path = work / f"ov_{field}.csv"
    path.write_text(f"scope,key,field,value,reason\nperson,{m['person'].iloc[7]},gender,1,fine\n{scope},{key},{field},{value},bad\n")
    out = work / f"run_ov_{field}"
    refused(cli("train", cache, "--out", out, *TINY_TRAIN, "--overrides", path), f"{path}:3", field, str(value), "out of range")
    assert not (out / "config.json").exists()


def test_override_rows_that_match_no_photo_are_counted(trained, cache):
    run, output = trained
    assert "warning: --overrides: 1 row(s) matched no photo of the cache (photo nobody/normal.jpg)" in " ".join(output.split())
    changes = json.loads((run / "config.json").read_text())["overrides_changes"]
    assert changes["unmatched"] == ["photo nobody/normal.jpg"]
    m = pd.read_parquet(cache / "manifest.parquet")
    assert changes["age"]["people"] == 1 and changes["age"]["photos"] == int((m["person"] == sorted(m["person"].unique())[0]).sum())


# ---------------------------------------------------------------------------------------------- 7 and 3. which folds predict takes


def test_predict_refuses_a_killed_run_or_one_missing_a_folds_weights(work, run, eval_data):
    killed = _copy(run, work / "run_killed")
    (killed / "summary.json").unlink()  # killed before its last fold ended: summary.json is written last
    refused(predict(killed, eval_data, work, "p_killed"), "summary.json", "did not finish", "--resume")
    resumed = _copy(run, work / "run_resume_killed")
    from facecurate.train import TrainConfig, train

    def killed(what, fold, epoch):  # `train --resume --epochs 2` killed once fold 0's second epoch is saved
        if what == "state" and epoch == 2:
            raise KeyboardInterrupt

    config = json.loads((resumed / "config.json").read_text())
    with pytest.raises(KeyboardInterrupt):
        train(config["cache"], resumed, TrainConfig.from_dict({**config, "resume": True, "epochs": 2}), on_save=killed)
    refused(predict(resumed, eval_data, work, "p_resumed"), "summary.json", "fold 0", "did not finish", "--resume")
    lost = _copy(run, work / "run_lost_fold")
    (lost / "fold_1" / "best.safetensors").unlink()
    refused(predict(lost, eval_data, work, "p_lost"), str(lost / "fold_1" / "best.safetensors"), "missing")
    assert not (work / "p_killed" / "submission.csv").exists() and not (work / "p_lost" / "submission.csv").exists()


def test_predict_takes_only_the_folds_the_run_trained(work, run, eval_data):
    """A fold_2 left by an earlier --folds 3 run in the same folder is not averaged in."""
    r = predict(run, eval_data, work, "p_clean")
    assert r.exit_code == 0 and "2 fold(s)" in r.output, r.output
    stale = _copy(run, work / "run_stale")
    _copy(stale / "fold_0", stale / "fold_2")
    from safetensors.torch import load_file, save_file
    w = load_file(str(stale / "fold_2" / "best.safetensors"))
    save_file({k: v + 1 if v.is_floating_point() else v for k, v in w.items()}, str(stale / "fold_2" / "best.safetensors"))
    r = predict(stale, eval_data, work, "p_stale")
    assert r.exit_code == 0 and "2 fold(s)" in r.output, r.output
    assert json.loads((work / "p_stale" / "predict.json").read_text())["folds"] == 2
    a, b = (pd.read_parquet(work / n / "probs.parquet") for n in ("p_clean", "p_stale"))
    cols = [c for c in a if c.startswith("p_")]
    np.testing.assert_array_equal(a[cols].to_numpy(), b[cols].to_numpy())


# ---------------------------------------------------------------------------------------------- 9 and 11. damaged run files


@pytest.mark.parametrize("damage", ["truncated", "header flipped", "64 bytes flipped"])
def test_damaged_weights_are_one_line_naming_the_file(work, cache, run, eval_data, damage):
    bad = _copy(run, work / f"run_w_{damage.replace(' ', '_')}")
    f = bad / "fold_1" / "best.safetensors"
    _damage(f, damage)
    needles = [str(f)] + (["checksum"] if damage == "64 bytes flipped" else [])
    refused(predict(bad, eval_data, work, f"p_w_{damage.replace(' ', '_')}"), *needles)
    # --weights RUN starts from fold 0's weights: damage there is one line too
    shutil.copy(f, bad / "fold_0" / "best.safetensors")
    refused(cli("train", cache, "--out", work / f"run_from_{damage.replace(' ', '_')}", *TINY_TRAIN, "--weights", bad),
            str(bad / "fold_0" / "best.safetensors"))


def test_a_config_naming_another_model_is_one_line(work, run, eval_data):
    other = _copy(run, work / "run_other_model")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model": "resnet18"}))
    refused(predict(other, eval_data, work, "p_other"), "best.safetensors", "do not fit", "config.json")


@pytest.mark.parametrize("damage", ["truncated", "header flipped", "64 bytes flipped"])
def test_a_damaged_resume_state_is_one_line_naming_it(work, cache, run, overrides, damage):
    bad = _copy(run, work / f"run_s_{damage.replace(' ', '_')}")
    f = bad / "fold_0" / "state.pt"
    _damage(f, damage)
    before = (bad / "fold_0" / "best.safetensors").read_bytes()
    refused(cli("train", cache, "--out", bad, *TINY_TRAIN, "--overrides", overrides, "--resume", "--epochs", "2"),
            str(f), "checksum" if damage == "64 bytes flipped" else "damaged")
    assert (bad / "fold_0" / "best.safetensors").read_bytes() == before


def test_run_files_carry_their_checksum(run):
    from safetensors import safe_open

    from facecurate.train.checkpoint import content_hash, load_state
    with safe_open(str(run / "fold_0" / "best.safetensors"), "pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    assert meta["xxh3"] == content_hash(dict(sorted(state.items())))
    import torch
    raw = torch.load(run / "fold_0" / "state.pt", weights_only=False)
    assert raw["xxh3"] == content_hash({k: v for k, v in raw.items() if k != "xxh3"}) and "xxh3" not in load_state(run / "fold_0" / "state.pt")


# ---------------------------------------------------------------------------------------------- 10. a full disk


def test_train_on_a_full_disk_is_one_line_and_leaves_no_temporary_file(work, cache, monkeypatch):
    """The checkpoint write fails half way with ENOSPC (as a full disk does): one line, no ``*.tmp`` left behind."""
    from facecurate.train import checkpoint

    real = checkpoint._write_file

    def full(path, data):
        if path.name == "state.pt.tmp":
            real(path, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(checkpoint, "_write_file", full)
    out = work / "run_full"
    refused(cli("train", cache, "--out", out, *TINY_TRAIN), str(out / "fold_0" / "state.pt"), "No space left", "--resume")
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncated", "flipped", "all-NaN"])
def test_a_damaged_oof_table_in_ensemble_is_one_line_naming_it(work, run, damage):
    good = _copy(run, work / f"ens_a_{damage}")
    bad = _copy(run, work / f"ens_b_{damage}")
    f = bad / "oof.parquet"
    if damage == "truncated":
        _truncate(f)
    elif damage == "flipped":
        _flip(f, 64, start=os.path.getsize(f) - 200)  # the footer: the table's schema and row groups
    else:
        oof = pd.read_parquet(f)
        oof[[c for c in oof if c.startswith("p_")]] = np.nan
        oof.to_parquet(f, index=False)
    refused(cli("ensemble", good, bad, "--oof", "--out", work / f"ens_{damage}"), str(f))
    refused(cli("explain", bad, "--out", work / f"explain_{damage}", "--device", "cpu"), str(f))


def test_a_truncated_study_db_is_one_line_naming_it(work, cache):
    out = work / "tune"
    args = ["tune", cache, "--out", out, "--trials", "1", "--epochs", "1", "--models", "test_resnet", "--img-sizes", "32",
            "--folds", "2", "--batch-size", "8", "--threads", "1", "--samplers", "none", "--losses", "ce", "--pruner", "none"]
    r = cli(*args)
    assert r.exit_code == 0, r.output
    _truncate(out / "study.db")
    refused(cli(*args[:5], "2", *args[6:]), str(out / "study.db"), "damaged")


# ---------------------------------------------------------------------------------------------- crop: partial chunks, a full disk

FAST_CROP = ["--detector", "mediapipe", "--batch-size", "8", "--chunk", "2"]


@pytest.fixture(scope="module")
def photos(work):
    from _crop_data import astronaut_person, train_layout

    faces, _ = astronaut_person(6)
    return train_layout(work / "photos", {"000001_female_Asian_45": faces[:3], "000002_male_Asian_20": faces[3:]})


@pytest.fixture(scope="module")
def whole(work, photos):
    r = cli("crop", photos, "--out", work / "whole", *FAST_CROP)
    assert r.exit_code == 0, r.output
    return work / "whole"


def _same_cache(a: Path, b: Path) -> None:
    from facecurate.curate.cache import load_cache

    ca, cb = load_cache(a), load_cache(b)
    assert np.array_equal(np.asarray(ca.images), np.asarray(cb.images))
    cols = ["image_id", "box_source", "face_x1", "face_y2", "crop_x1", "crop_y2", "score", "error"]
    pd.testing.assert_frame_equal(ca.manifest[cols], cb.manifest[cols])


def test_a_cut_partial_chunk_is_redone_when_crop_resumes(work, photos, whole):
    from facecurate.curate.crop import CropParams, crop_dataset
    from facecurate.curate.crop.stage import CropStopped

    cut = work / "cut_chunk"
    with pytest.raises(CropStopped):  # an interrupted crop: two of three chunks finished
        crop_dataset(photos, cut, CropParams(detector="mediapipe", batch=8, chunk=2), stop_after_chunks=2)
    _truncate(cut / ".partial" / "chunk_000000.parquet")
    r = cli("crop", photos, "--out", cut, *FAST_CROP)
    assert r.exit_code == 0, r.output
    assert "chunk(s) 0 changed since they were written; redoing them" in " ".join(r.output.split())
    _same_cache(cut, whole)


def test_crop_on_a_full_disk_says_so_in_one_line_and_resumes(work, photos, whole, monkeypatch):
    """images.npy's blocks are reserved up front: no room is one line (not a bus error), the cache stays incomplete."""
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = work / "full_images"
    monkeypatch.setattr(os, "posix_fallocate", full)
    refused(cli("crop", photos, "--out", out, *FAST_CROP), str(out / "images.npy"), "No space left", "resumes")
    assert json.loads((out / "meta.json").read_text())["complete"] is False
    monkeypatch.undo()
    r = cli("crop", photos, "--out", out, *FAST_CROP)
    assert r.exit_code == 0, r.output
    _same_cache(out, whole)


def test_crop_on_a_real_full_tmpfs_is_one_line_not_a_bus_error(work, photos):
    """The real thing where this machine lets us mount a 300 kB tmpfs: the cache (6 x 256 x 192 x 3 bytes) cannot fit."""
    import subprocess
    import sys

    mnt = work / "tiny_disk"
    mnt.mkdir(exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        p = subprocess.run([sys.executable, "-m", "facecurate", "crop", str(photos), "--out", str(mnt / "cache"), *FAST_CROP],
                           capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=300)
        assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "images.npy" in lines[0] and "No space left" in lines[0], p.stderr
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_crop_on_a_full_disk_while_drawing_the_sheet_keeps_the_complete_cache(work, photos, whole, monkeypatch):
    from PIL import Image

    from facecurate.curate.cache import load_cache

    out = work / "full_sheet"
    real = Image.Image.save

    def full(self, fp, *a, **k):
        if str(fp).endswith("contact.png.tmp"):
            Path(fp).write_bytes(b"\x89PNG half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", full)
    refused(cli("crop", photos, "--out", out, *FAST_CROP), str(out / "contact.png"), "No space left", "complete")
    monkeypatch.undo()
    assert not (out / "contact.png").exists() and not (out / "contact.png.tmp").exists()
    _same_cache(out, whole)  # complete and checked
    r = cli("crop", photos, "--out", out, *FAST_CROP)
    assert r.exit_code == 0 and "cache reused" in r.output, r.output
    assert load_cache(out) and Image.open(out / "contact.png").size == Image.open(whole / "contact.png").size


# ---------------------------------------------------------------------------------------------- 8. odd names, symlink loops


def _odd_layout(root: Path) -> Path:
    """The photos' train layout plus a person folder (not in train.csv, labels in its name) whose name holds bytes that
    are not UTF-8, a symlink loop beside the person folders and one inside a person folder."""
    from _crop_data import astronaut_person, train_layout

    faces, _ = astronaut_person(4)
    train_layout(root, {"000001_female_Asian_45": faces[:2], "000002_male_Asian_20": faces[2:]})
    images = os.fsencode(root / "images")
    odd = images + b"/000003_female_As\xff\xfeian_30"
    os.mkdir(odd)
    shutil.copy(os.fsencode(root / "images" / "000001_female_Asian_45" / "mask1.jpg"), odd + b"/mask1.jpg")
    os.symlink("loopA", root / "images" / "loopB")
    os.symlink("loopB", root / "images" / "loopA")
    os.symlink("mask8.jpg", root / "images" / "000002_male_Asian_20" / "mask5.jpg")
    os.symlink("mask5.jpg", root / "images" / "000002_male_Asian_20" / "mask8.jpg")
    return root


def test_undecodable_names_and_symlink_loops_are_listed_not_tracebacks(work):
    data = _odd_layout(work / "odd")
    r = cli("inspect", data, "--out", work / "odd_inspect")
    assert r.exit_code == 0, r.output
    problems = pd.read_csv(work / "odd_inspect" / "problems.csv")
    said = " | ".join(problems["path"] + ": " + problems["what"])
    assert "000003_female_As\\xff\\xfeian_30/mask1.jpg: its name holds bytes that are not UTF-8" in said, said
    assert "loopA: cannot be followed" in said and "loopB: cannot be followed" in said and "mask5.jpg: cannot be followed" in said
    assert sorted(pd.read_parquet(work / "odd_inspect" / "manifest.parquet")["person"].unique()) == [
        "000001_female_Asian_45", "000002_male_Asian_20"]
    r = cli("crop", data, "--out", work / "odd_cache", *FAST_CROP)
    assert r.exit_code == 0, r.output
    assert len(pd.read_parquet(work / "odd_cache" / "manifest.parquet")) == 4
    folder = work / "odd_plain"  # a plain folder of photos, read recursively
    shutil.copytree(os.fsencode(data / "images"), os.fsencode(folder), symlinks=True)
    r = cli("inspect", folder, "--out", work / "odd_plain_inspect")
    assert r.exit_code == 0, r.output
    said = " ".join(pd.read_csv(work / "odd_plain_inspect" / "problems.csv")["what"])
    assert "not UTF-8" in said and "Symlink loop" in said


def test_a_data_root_with_undecodable_bytes_is_one_line(work, photos):
    root = os.fsdecode(os.fsencode(work) + b"/caf\xe9")
    shutil.copytree(photos, root)
    for args in (["inspect", root, "--out", work / "root_inspect"], ["crop", root, "--out", work / "root_cache", *FAST_CROP]):
        refused(cli(*args), "caf\\xe9", "not UTF-8")


# ---------------------------------------------------------------------------------------------- also: info.csv, one person


def test_a_photo_listed_twice_in_info_csv_is_predicted_once_and_said(work, run):
    data = work / "eval_twice"
    order = make_eval_layout(data, n=3, order_seed=1)
    pd.DataFrame({"ImageID": [*order, order[1]], "ans": 0}).to_csv(data / "info.csv", index=False)
    r = predict(run, data, work, "p_twice")
    assert r.exit_code == 0, r.output
    assert f"warning: info.csv lists 1 photo(s) more than once (e.g. {order[1]})" in " ".join(r.output.split())
    sub = pd.read_csv(work / "p_twice" / "submission.csv")
    assert list(sub["ImageID"]) == [*order, order[1]] and sub["ans"].iloc[1] == sub["ans"].iloc[3]
    probs = pd.read_parquet(work / "p_twice" / "probs.parquet")
    assert sorted(probs["image_id"]) == sorted(order)


def test_one_person_with_a_validation_split_is_one_line(work):
    m = make_people(1, seed=5)
    images = np.stack([band_image(int(r.mask), int(r.gender), int(r.age_group), (32, 24)) for r in m.itertuples()])
    one = save_cache(work / "one_person", images, m, {"params": {"size": 32, "aspect": 0.75}, "source": "generated"})
    refused(cli("train", one.path, "--out", work / "run_one", *TINY_TRAIN, "--val-ratio", "0.3"), "1 labelled person",
            "at least 2 people")


def test_one_person_with_k_folds_gets_one_hint(work):
    m = make_people(1, seed=6)
    images = np.stack([band_image(int(r.mask), int(r.gender), int(r.age_group), (32, 24)) for r in m.itertuples()])
    one = save_cache(work / "one_person_k", images, m, {"params": {"size": 32, "aspect": 0.75}, "source": "generated"})
    out = refused(cli("train", one.path, "--out", work / "run_one_k", *TINY_TRAIN, "--folds", "5"), "1 labelled person",
                  "at least 2 people")
    assert "use at most" not in out and "must be >= 2" not in out
