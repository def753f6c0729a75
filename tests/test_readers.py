"""Dataset readers on generated layouts holding every quirk of the real data."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _layout_data import photo, quirky_train_layout, write_person
from facecurate.curate.decode import BadImage, _plain_jpeg, read_rgb
from facecurate.curate.errors import InputError
from facecurate.curate.labels import encode
from facecurate.curate.readers import MANIFEST_COLUMNS, detect_layout, read_dataset, read_eval, read_folder, read_plain_csv, read_train


@pytest.fixture(scope="module")
def quirky(tmp_path_factory):
    root = tmp_path_factory.mktemp("quirky")
    expect = quirky_train_layout(root)
    return root, expect


def _problems(ds, needle):
    return [p for p in ds.problems if needle in p.what or needle in p.path]


def test_train_layout_counts_and_columns(quirky):
    root, expect = quirky
    ds = read_train(root)
    m = ds.manifest
    assert list(m.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    assert m["person"].nunique() == expect["persons"]
    assert len(m) == expect["photos"]
    assert m["image_id"].is_unique
    assert m["label"].notna().all()
    assert all(Path(p).is_file() for p in m["path"])


def test_train_reader_from_images_folder_and_csv_path(quirky):
    root, _ = quirky
    a = read_train(root).manifest
    for other in (root / "images", root / "train.csv"):
        b = read_dataset(other).manifest
        pd.testing.assert_frame_equal(a, b)


def test_labels_follow_file_names_and_csv(quirky):
    root, _ = quirky
    m = read_train(root).manifest.set_index("image_id")
    r = m.loc["000003_male_White_62/incorrect_mask.jpg"]
    assert (r["mask"], r["gender"], r["age"], r["age_group"]) == (1, 0, 62, 2)
    assert r["label"] == encode(1, 0, 2)
    r = m.loc["000001_female_Asian_45/normal.jpg"]
    assert r["label"] == encode(2, 1, 1)
    assert set(m.loc[m["person"] == "000001_female_Asian_45", "photo"]) == {
        "mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"}


def test_mixed_extensions_and_macos_files(quirky):
    root, _ = quirky
    m = read_train(root).manifest
    p = m[m["person"] == "001498-1_female_Asian_33"]
    assert len(p) == 7
    assert {Path(x).suffix for x in p["path"]} == {".jpg", ".JPG", ".jpeg", ".png", ".PNG", ".Jpeg"}
    assert not any(Path(x).name.startswith(".") for x in m["path"])
    assert (p["id"] == "001498-1").all()


def test_one_id_two_folders_are_two_people(quirky):
    root, _ = quirky
    ds = read_train(root)
    folders = ds.manifest.loc[ds.manifest["id"] == "003399", "person"].unique()
    assert len(folders) == 2
    assert _problems(ds, "id 003399 is used by 2 folders")


def test_missing_extra_broken_and_unlisted(quirky):
    root, expect = quirky
    ds = read_train(root)
    m = ds.manifest
    assert _problems(ds, "missing photo(s): mask4")
    assert _problems(ds, "mask6") and "mask6" not in set(m["photo"])
    for rel in expect["bad_files"]:
        hits = [p for p in ds.problems if p.path.endswith(rel)]
        assert hits and hits[0].level == "error", rel
        assert not m["path"].str.endswith(rel).any()
    assert {p.what.split(";")[0] for p in ds.problems if p.level == "error" and "000012" in p.path} == {
        "empty file (0 bytes)", "truncated JPEG (no end-of-image marker)", "not an image"}
    assert _problems(ds, "listed in train.csv but the folder is missing")
    assert _problems(ds, "folder not in train.csv; labels taken from its name")
    unlisted = m[m["person"] == "000015_female_Asian_58"]
    assert len(unlisted) == 7 and (unlisted["age"] == 58).all() and (unlisted["gender"] == 1).all()


def test_every_kept_photo_decodes_to_rgb_uint8(quirky):
    root, expect = quirky
    m = read_train(root).manifest
    for path in m["path"]:
        a = read_rgb(path)
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    odd = m[m["person"] == expect["odd_folder"]].set_index("photo")
    assert read_rgb(odd.at["mask1", "path"]).shape == (40, 80, 3)  # EXIF orientation 6 applied
    assert read_rgb(odd.at["mask5", "path"]).max() == round(40000 / 65535 * 255)  # 16-bit scaled, not clipped
    gray = read_rgb(odd.at["mask2", "path"])
    assert np.array_equal(gray[..., 0], gray[..., 2])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_colour_jpegs_decode_to_pils_pixels_in_every_orientation(tmp_path, orientation):
    """read_rgb decodes a colour JPEG with OpenCV; the pixels are exactly what PIL's path (open, EXIF transpose) gives,
    and a cut one is still refused."""
    from PIL import Image, ImageOps

    rng = np.random.default_rng(orientation)
    im = Image.fromarray((rng.random((60, 80, 3)) * 255).astype(np.uint8))
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    im.save(path, exif=exif, quality=90)
    with Image.open(path) as raw:
        want = np.asarray(ImageOps.exif_transpose(raw).convert("RGB"))
    fast = _plain_jpeg(path, want.shape[:2])  # the OpenCV path itself, not PIL's fallback
    assert fast is not None and fast.shape == want.shape and np.array_equal(fast, want)
    assert np.array_equal(read_rgb(path), want)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    assert _plain_jpeg(cut, want.shape[:2]) is None  # no end marker: left to PIL, which refuses it
    with pytest.raises(BadImage):
        read_rgb(cut)


def test_read_rgb_rejects_broken_files(quirky):
    root, expect = quirky
    for rel in expect["bad_files"]:
        with pytest.raises(BadImage):
            read_rgb(root / "images" / rel)


def test_eval_layout_keeps_info_order_and_reports_missing(tmp_path):
    (tmp_path / "images").mkdir()
    names = [f"{h}.jpg" for h in ("cbc5c6e1", "0e72482b", "b549040c")]
    for i, n in enumerate(names):
        photo(i).save(tmp_path / "images" / n)
    photo(9).save(tmp_path / "images" / "unlisted.png")
    (tmp_path / "info.csv").write_text("ImageID,ans\n" + "".join(f"{n},0\n" for n in names + ["gone.jpg"]))
    assert detect_layout(tmp_path) == "eval"
    ds = read_eval(tmp_path)
    assert list(ds.manifest["image_id"]) == names
    assert ds.manifest["label"].isna().all()
    assert any("gone.jpg" in p.what for p in ds.problems)
    assert any(p.path.endswith("unlisted.png") for p in ds.problems)


def test_plain_csv_with_custom_columns(tmp_path):
    for i in range(4):
        photo(i).save(tmp_path / f"p{i}.jpg")
    (tmp_path / "list.csv").write_text(
        "file,who,m,sex,years\np0.jpg,a,wear,female,25\np1.jpg,a,incorrect,female,25\n"
        "p2.jpg,b,2,male,61\np3.jpg,b,not worn,m,61\nmissing.jpg,b,0,male,61\n")
    ds = read_plain_csv(tmp_path / "list.csv", path_col="file", person_col="who", mask_col="m",
                        gender_col="sex", age_col="years")
    m = ds.manifest
    assert list(m["label"]) == [encode(0, 1, 0), encode(1, 1, 0), encode(2, 0, 2), encode(2, 0, 2)]
    assert list(m["person"]) == ["a", "a", "b", "b"]
    assert any("missing.jpg" in p.what for p in ds.problems)


def test_plain_folder_has_no_labels(tmp_path):
    write_person(tmp_path / "x", "someone", seed=1)
    (tmp_path / "x" / "._junk.jpg").write_bytes(b"junk")
    ds = read_folder(tmp_path / "x")
    assert len(ds.manifest) == 7 and ds.manifest["label"].isna().all()
    assert set(ds.manifest["person"]) == {"someone"}


@pytest.mark.parametrize("content, needle", [
    ("id,gender,race,age\n1,male,Asian,20\n", "missing column(s) path"),
    ("", "the CSV is empty"),
    ('id,gender,race,age,path\n1,male,"Asian,20,x\n', "malformed CSV"),
])
def test_malformed_train_csv_is_one_clear_error(tmp_path, content, needle):
    (tmp_path / "images").mkdir()
    (tmp_path / "train.csv").write_text(content)
    with pytest.raises(InputError) as e:
        read_train(tmp_path)
    assert str(tmp_path / "train.csv") in str(e.value) and needle in str(e.value)


def test_bad_row_values_are_listed_not_fatal(tmp_path):
    write_person(tmp_path / "images", "000001_male_Asian_20", seed=1)
    write_person(tmp_path / "images", "000002_robot_Asian_xx", seed=2)
    (tmp_path / "train.csv").write_text("id,gender,race,age,path\n000001,male,Asian,20,000001_male_Asian_20\n"
                                        "000002,robot,Asian,xx,000002_robot_Asian_xx\n")
    ds = read_train(tmp_path)
    assert set(ds.manifest["person"]) == {"000001_male_Asian_20"}
    assert any("bad gender 'robot'" in p.what for p in ds.problems)
