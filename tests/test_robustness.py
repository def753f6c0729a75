"""Hostile input through the real CLI, in-process: every case is one line naming the file, exit code 2, no traceback,
and not one byte of the user's data changed. Damaged caches are caught by their checksums; locked folders refuse a
second writer; huge and tiny photos are handled."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli import cli, refused_quietly
from _crop_data import astronaut_person, save, train_layout
from PIL import Image

from facecurate.curate.cache import load_cache, save_cache

ROOT = Path(__file__).resolve().parents[1]
FAST_CROP = ["--detector", "mediapipe", "--batch-size", "8"]
TINY_TRAIN = ["--model", "test_resnet", "--epochs", "1", "--folds", "2", "--batch-size", "8", "--img-size", "32",
              "--threads", "1", "--patience", "0", "--ema", "0"]


def tree_sha(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("robust")


@pytest.fixture(scope="module")
def data(work):
    persons = {}
    for k, folder in enumerate(["000001_female_Asian_45", "000002_male_Asian_20", "000003_female_Asian_70"]):
        photos, _ = astronaut_person(7, start=k)
        persons[folder] = photos
    return train_layout(work / "data", persons)


@pytest.fixture(scope="module")
def cache(work, data):
    r = cli("crop", data, "--out", work / "cache", *FAST_CROP)
    assert r.exit_code == 0, r.output
    return work / "cache"


@pytest.fixture(scope="module")
def run(work, cache):
    r = cli("train", cache, "--out", work / "run", *TINY_TRAIN)
    assert r.exit_code == 0, r.output
    return work / "run"


@pytest.fixture
def untouched(data):
    """The user's data is byte-identical after the test."""
    before = tree_sha(data)
    yield
    assert tree_sha(data) == before


def _copy(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


# ---------------------------------------------------------------------------------------------- data loss


@pytest.mark.parametrize("where", ["data", "data/images", "parent"])
def test_crop_never_writes_into_around_or_inside_the_data(work, data, untouched, where):
    out = {"data": data, "data/images": data / "images", "parent": data.parent}[where]
    refused_quietly(cli("crop", data, "--out", out, *FAST_CROP), "--out")


def test_inspect_never_writes_into_the_data(data, untouched):
    refused_quietly(cli("inspect", data, "--out", data), "--out")
    refused_quietly(cli("inspect", data, "--out", data / "images" / "000001_female_Asian_45"), "--out")


def test_a_plain_folder_with_a_users_contact_png_and_meta_json_is_left_alone(work):
    folder = work / "plain"
    photos, _ = astronaut_person(2)
    for name, img in photos:
        save(img, folder / name)
    save(np.full((64, 64, 3), 7, np.uint8), folder / "contact.png")  # the user's own photo named like our sheet
    (folder / "meta.json").write_text('{"mine": true}')
    before = tree_sha(folder)
    refused_quietly(cli("crop", folder, "--out", folder, *FAST_CROP), "--out")
    other = work / "theirs"
    other.mkdir()
    (other / "meta.json").write_text('{"mine": true}')
    (other / "contact.png").write_bytes(b"not ours")
    refused_quietly(cli("crop", folder, "--out", other, *FAST_CROP), "not empty", "theirs")
    assert (other / "meta.json").read_text() == '{"mine": true}' and (other / "contact.png").read_bytes() == b"not ours"
    assert tree_sha(folder) == before


def test_an_out_that_is_a_file_or_cannot_be_created(work, data, untouched):
    f = work / "a_file.txt"
    f.write_text("keep me")
    refused_quietly(cli("crop", data, "--out", f, *FAST_CROP), "existing file")
    refused_quietly(cli("crop", data, "--out", "/proc/facecurate-nope/out", *FAST_CROP), "cannot create")
    assert f.read_text() == "keep me"


# ---------------------------------------------------------------------------------------------- silent wrong results


def test_a_second_writer_stops_at_once_naming_the_first(work, data, untouched):
    out = work / "locked"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from facecurate.curate.locks import folder_lock; from facecurate.curate.outputs import claim_folder\n"
        f"claim_folder({str(out)!r}, 'cache')\n"
        f"with folder_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(60)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused_quietly(cli("crop", data, "--out", out, *FAST_CROP), str(out), f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    r = cli("crop", data, "--out", out, *FAST_CROP)  # a killed holder leaves no stale lock
    assert r.exit_code == 0, r.output


def test_flipped_bytes_in_images_are_caught_and_crop_rebuilds(work, data, cache, untouched):
    bad = _copy(cache, work / "flipped")
    good = np.array(np.load(cache / "images.npy"))
    with open(bad / "images.npy", "r+b") as f:
        size = os.path.getsize(bad / "images.npy")
        rng = np.random.default_rng(0)
        for pos in rng.choice(np.arange(200, size), 2000, replace=False):
            f.seek(int(pos))
            byte = f.read(1)
            f.seek(int(pos))
            f.write(bytes([byte[0] ^ 0xFF]))
    refused_quietly(cli("train", bad, "--out", work / "run_flipped", *TINY_TRAIN), "images.npy", "checksum")
    assert not (work / "run_flipped" / "config.json").exists()
    r = cli("crop", data, "--out", bad, *FAST_CROP)
    assert r.exit_code == 0 and "failed its check" in r.output and "cache reused" not in r.output, r.output
    assert np.array_equal(np.load(bad / "images.npy"), good)


def test_an_edited_manifest_or_a_removed_row_is_caught(work, cache):
    edited = _copy(cache, work / "edited")
    m = pd.read_parquet(edited / "manifest.parquet")
    m.loc[0, "gender"] = 1 - int(m.loc[0, "gender"])
    m.to_parquet(edited / "manifest.parquet", index=False)
    refused_quietly(cli("train", edited, "--out", work / "run_edited", *TINY_TRAIN), "manifest.parquet", "checksum")
    short = _copy(cache, work / "short")
    np.save(short / "images.npy", np.load(short / "images.npy")[1:])
    pd.read_parquet(short / "manifest.parquet").iloc[1:].to_parquet(short / "manifest.parquet", index=False)
    refused_quietly(cli("train", short, "--out", work / "run_short", *TINY_TRAIN), str(short))
    meta = json.loads((cache / "meta.json").read_text())
    other = _copy(cache, work / "meta_edited")
    (other / "meta.json").write_text(json.dumps({**meta, "params": {**meta["params"], "age_bins": [20, 40]}}))
    refused_quietly(cli("train", other, "--out", work / "run_meta", *TINY_TRAIN), "meta.json")


@pytest.mark.parametrize("damage", ["truncated images.npy", "garbage meta.json", "garbage manifest.parquet"])
def test_damaged_cache_files_are_one_line(work, cache, damage):
    bad = _copy(cache, work / ("bad_" + damage.split()[1].replace(".", "_")))
    name = damage.split()[1]
    if damage.startswith("truncated"):
        with open(bad / name, "r+b") as f:
            f.truncate(os.path.getsize(bad / name) // 2)
    else:
        (bad / name).write_bytes(b"\x00garbage{" * 50)
    for args in (["train", bad, "--out", work / f"r_{name}", *TINY_TRAIN], ["relabel-report", bad, "--out", work / f"rep_{name}"]):
        refused_quietly(cli(*args), name)


def test_the_full_check_also_reads_the_labels(work, cache):
    """--verify full re-derives what the checksums cannot see: a label that disagrees with its parts."""
    c = load_cache(cache)
    m = c.manifest.copy()
    m.loc[0, "label"] = (int(m.loc[0, "label"]) + 1) % 18
    forged = save_cache(work / "forged", np.asarray(c.images), m, {k: v for k, v in c.meta.items() if k != "checksums"})
    assert cli("train", forged.path, "--out", work / "run_forged_quick", *TINY_TRAIN, "--epochs", "1").exit_code == 0
    refused_quietly(cli("train", forged.path, "--out", work / "run_forged", *TINY_TRAIN, "--verify", "full"), "labels disagree")


def test_a_single_class_is_refused_and_never_scores_one(work, cache):
    c = load_cache(cache)
    m = c.manifest.copy()
    m["mask"], m["gender"], m["age_group"], m["label"] = 0, 0, 0, 0
    m["age"] = 20
    one = save_cache(work / "one_class", np.asarray(c.images), m, {"params": c.meta["params"]})
    refused_quietly(cli("train", one.path, "--out", work / "run_one", *TINY_TRAIN), "single class")


# ---------------------------------------------------------------------------------------------- photos and options


def _huge_png(path: Path, w: int = 20000, h: int = 20000) -> Path:
    """A valid 20000 x 20000 grey (one-channel) PNG written row by row: a few MB on disk, 400 megapixels decoded, over
    twice PIL's decompression-bomb limit."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    comp, row, parts = zlib.compressobj(6), b"\x00" + b"\x80" * w, []
    for _ in range(h):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


def test_a_huge_photo_is_downscaled_and_a_tiny_one_flagged(work):
    folder = work / "sizes"
    photos, _ = astronaut_person(1)
    save(photos[0][1], folder / "ok.jpg")
    _huge_png(folder / "huge.png")
    Image.new("RGB", (1, 1), (9, 9, 9)).save(folder / "tiny.png")
    before = tree_sha(folder)
    r = cli("inspect", folder, "--out", work / "sizes_inspect")
    assert r.exit_code == 0, r.output
    problems = pd.read_csv(work / "sizes_inspect" / "problems.csv")
    assert list(problems["path"].map(lambda p: Path(p).name)) == ["tiny.png"] and "too small" in problems["what"].iloc[0]
    r = cli("crop", folder, "--out", work / "sizes_cache", *FAST_CROP)
    assert r.exit_code == 0, r.output
    m = load_cache(work / "sizes_cache").manifest.set_index("image_id")
    assert m.loc["huge.png", "error"] == "" and m.loc["huge.png", "width"] == 4096
    assert "too small" in m.loc["tiny.png", "error"] and m.loc["ok.jpg", "error"] == ""
    assert tree_sha(folder) == before


@pytest.mark.parametrize("args, needle", [
    (["train", "{cache}", "--device", "nope"], "--device"),
    (["crop", "{data}", "--device", "nope"], "--device"),
    (["train", "{cache}", "--folds", "100"], "--folds 100"),
    (["train", "{cache}", "--lr", "-1"], "--lr"),
    (["train", "{cache}", "--weight-decay", "-0.1"], "--weight-decay"),
    (["train", "{cache}", "--fold-workers", "-1"], "--fold-workers"),
    (["relabel-report", "{cache}", "--fold-workers", "-1"], "--fold-workers"),
    (["crop", "{data}", "--size", "0"], "--size"),
    (["crop", "{data}", "--min-photo-size", "0"], "--min-photo-size"),
    (["relabel-report", "{cache}", "--img-size", "0"], "--img-size"),
    (["relabel-report", "{cache}", "--img-size", "0"], "--img-size"),
    (["relabel-report", "{cache}", "--age-bins", "60,30"], "--age-bins"),
    (["predict", "{run}", "{data}", "--batch-size", "0"], "--batch-size"),
])
def test_bad_options_are_one_line_before_any_work(work, data, cache, run, untouched, args, needle):
    out = work / f"opt_{abs(hash(tuple(args))) % 10**8}"
    args = [a.format(data=data, cache=cache, run=run) for a in args]
    extra = ["--out", out / ("submission.csv" if args[0] == "predict" else "")] if args[0] != "crop" else ["--out", out]
    refused_quietly(cli(*args, *extra), needle)
    assert not (out / "quick_run").exists() and not (out / "config.json").exists()


def test_predict_on_a_run_with_a_garbage_config(work, data, run, untouched):
    bad = _copy(run, work / "run_garbage")
    (bad / "config.json").write_text("{not json")
    refused_quietly(cli("predict", bad, data, "--out", work / "pred_garbage" / "submission.csv"), "config.json")


def test_resume_a_run_locked_by_another_process(work, cache, run):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from facecurate.curate.locks import folder_lock\n"
        f"with folder_lock({str(run)!r}, 'run'):\n    print('held', flush=True); time.sleep(60)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.perf_counter()
        refused_quietly(cli("train", cache, "--out", run, *TINY_TRAIN, "--resume"), str(run), f"pid {holder.pid}")
        assert time.perf_counter() - t0 < 30  # it stops, it does not wait
    finally:
        holder.kill()
        holder.wait()
