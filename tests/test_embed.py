"""The `embed` stage on real files: real dlib landmarks and chips, dlib's ResNet (our port, checked against dlib's own),
two real faces (skimage's astronaut, matplotlib's Grace Hopper), error rows, checksums, resume, reuse, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from typer.testing import CliRunner

from _crop_data import OFFSETS, blank, paste_face, train_layout
from facecurate.cli import app
from facecurate.curate.cache import load_cache
from facecurate.curate.crop import CropParams, crop_dataset
from facecurate.curate.embed import EmbedParams, embed_cache
from facecurate.curate.embed.dlib_backend import DlibBackend
from facecurate.curate.embed.stage import cache_boxes
from facecurate.curate.errors import InputError

FAST = dict(detector="mediapipe", workers=2, batch=4)
A, B = "000001_female_Asian_45", "000002_female_White_61"  # the astronaut, Grace Hopper


def _masked(img: np.ndarray, face: tuple) -> np.ndarray:
    """A flat light-blue mask from just under the nose to below the chin, across the face."""
    x1, y1, x2, y2 = face
    out = img.copy()
    out[int(y1 + 0.62 * (y2 - y1)):int(y2 + 8), int(x1 - 4):int(x2 + 4)] = (150, 190, 230)
    return out


def _hopper(offset: tuple[int, int]) -> np.ndarray:
    """Grace Hopper's portrait (public domain, bundled with matplotlib) at half size on a 384 x 512 canvas."""
    src = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((256, 300), Image.BILINEAR)
    canvas = np.full((512, 384, 3), 140, np.uint8)
    canvas[offset[1]:offset[1] + 300, offset[0]:offset[0] + 256] = np.asarray(src)
    return canvas


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A cache of 7 rows: the astronaut 3 times (once masked), Hopper twice, a corrupt file, a blank photo."""
    root = tmp_path_factory.mktemp("embed")
    astro = [paste_face(OFFSETS[k]) for k in range(3)]
    photos_a = [("mask1.jpg", _masked(astro[0][0], astro[0][1])), ("mask2.jpg", astro[1][0]), ("normal.jpg", astro[2][0]),
                ("mask3.jpg", blank(120))]
    data = train_layout(root / "data", {A: photos_a, B: [("mask1.jpg", _hopper((60, 100))), ("normal.jpg", _hopper((100, 180)))]})
    (data / "images" / B / "mask2.jpg").write_text("not a photo")
    crop_dataset(data, root / "cache", CropParams(**FAST))
    return root / "cache"


def _rows(cache, person: str) -> list[int]:
    m = cache.manifest
    return list(m.index[(m["person"] == person) & (m["error"] == "")])


def test_pass_writes_vectors_for_usable_photos_and_reasons_for_the_others(cache_dir, tmp_path):
    import shutil

    work = shutil.copytree(cache_dir, tmp_path / "cache")
    r = embed_cache(work, EmbedParams())
    c = load_cache(work)
    vec, why = c.embeddings, c.embed_errors
    assert vec.shape == (7, 128) and vec.dtype == np.float32 and r.dim == 128 + 2 and r.backend == "dlib"
    attrs = c.face_attributes  # the age/gender network's two columns, read from the same chip
    assert list(attrs.columns) == ["age", "male_logit"] and len(attrs) == 7
    assert (np.isfinite(attrs.to_numpy()).all(1) == np.isfinite(vec).all(1)).all()
    bad = c.manifest.index[c.manifest["error"] != ""]
    assert len(bad) == 1 and np.isnan(vec[bad]).all() and why[bad[0]].startswith("no crop")
    blank = c.manifest.index[c.manifest["image_id"] == f"{A}/mask3.jpg"][0]  # no face: crop gave it the person box
    assert why[blank] == "no face detected (person box)" and np.isnan(vec[blank]).all()
    good = [i for i in range(7) if why[i] == ""]
    assert np.isfinite(vec[good]).all() and r.embedded == len(good) == 5 and r.failed == 2
    assert set(_rows(c, B)) | set(_rows(c, A)) == set(good) | {blank}
    meta = json.loads((work / "meta.json").read_text())["embeddings"]
    assert meta["dim"] == 130 and meta["identity_dim"] == 128 and meta["attributes"] == ["age", "male_logit"]
    assert len(meta["files"]) == 4 and all(len(h) == 64 for h in meta["files"].values())  # dlib's two, the network's two
    # the same face under a mask and other crops is closer to itself than to another face (dlib's 0.6 rule)
    a, b = [i for i in _rows(c, A) if i in good], _rows(c, B)
    def dist(i: int, j: int) -> float:
        return float(np.linalg.norm(vec[i] - vec[j]))

    same = [dist(i, j) for g in (a, b) for i in g for j in g if i < j]
    cross = [dist(i, j) for i in a for j in b]
    assert max(same) < 0.6 < min(cross), (same, cross)
    # too small for the asked minimum: NaN rows and the reason, nothing else touched
    small = embed_cache(work, EmbedParams(min_face=1000))
    assert small.embedded == 0 and small.reasons.get("face too small") == 5 and np.isnan(load_cache(work).embeddings).all()
    every = embed_cache(work, EmbedParams(boxes="all"))  # the fallback box embedded too when asked
    assert every.embedded == 6 and np.isfinite(load_cache(work).embeddings[blank]).all()


def test_port_matches_dlibs_own_network(cache_dir):
    c = load_cache(cache_dir)
    idx = c.usable()
    port, native = DlibBackend("cpu"), DlibBackend("cpu", native=True)
    chips, _ = port.chips(np.asarray(c.images[idx]), cache_boxes(c.manifest, *c.images.shape[1:3])[idx])
    chips = [x for x in chips if x is not None]
    assert len(chips) >= 5
    assert np.abs(port.descriptors(chips) - native.descriptors(chips)).max() <= 1e-4


class _StopAt:
    """A Progress that raises once the "embed" bar reaches ``at`` photos: an interruption through the real code path."""

    def __init__(self, at: int | None = None) -> None:
        self.at, self.notes = at, []

    def update(self, task, done, total, info=""):
        if task == "embed" and self.at is not None and done >= self.at:
            raise KeyboardInterrupt

    def note(self, text):
        self.notes.append(text)


def test_interrupted_pass_resumes_to_identical_bytes_and_a_finished_one_is_reused(cache_dir, tmp_path):
    import shutil

    whole, cut = shutil.copytree(cache_dir, tmp_path / "whole"), shutil.copytree(cache_dir, tmp_path / "cut")
    params = EmbedParams(chunk=2, batch=1)
    embed_cache(whole, params)
    with pytest.raises(KeyboardInterrupt):
        embed_cache(cut, params, progress=_StopAt(3))  # chunk 0 finished, chunk 1 under way
    assert load_cache(cut).embeddings is None and not (cut / "embeddings.npy").exists()  # nothing half-written is listed
    shown = _StopAt()
    resumed = embed_cache(cut, EmbedParams(chunk=4, batch=3), progress=shown)  # the pass's own chunk and batch are kept
    assert resumed.state == "resume" and resumed.chunks_resumed == 1 and resumed.computed == 5
    assert any("resuming" in n for n in shown.notes)
    assert (cut / "embeddings.npy").read_bytes() == (whole / "embeddings.npy").read_bytes()
    assert (cut / "embeddings.parquet").read_bytes() == (whole / "embeddings.parquet").read_bytes()
    again = embed_cache(cut, EmbedParams(), progress=shown)
    assert again.state == "complete" and again.computed == 0 and any("reused" in n for n in shown.notes)


def test_damaged_embeddings_are_caught_by_load_cache(cache_dir, tmp_path):
    import shutil

    work = shutil.copytree(cache_dir, tmp_path / "cache")
    embed_cache(work, EmbedParams())
    raw = bytearray((work / "embeddings.npy").read_bytes())
    raw[-5] ^= 0xFF
    (work / "embeddings.npy").write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"embeddings\.npy: checksum mismatch.*run `embed` again"):
        load_cache(work)
    (work / "embeddings.npy").unlink()
    with pytest.raises(InputError, match=r"embeddings\.npy: missing"):
        load_cache(work)
    r = embed_cache(work, EmbedParams(verify="off"))  # `embed` again rebuilds them
    assert r.state == "fresh" and load_cache(work).embeddings.shape == (7, 128)


def test_cli_crop_embed_then_missing_cache_and_missing_dlib_exit_2(cache_dir, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    r = CliRunner().invoke(app, ["crop", str(cache_dir.parent / "data"), "--out", str(out), "--detector", "mediapipe", "--embed"])
    assert r.exit_code == 0, r.output
    assert "embeddings:" in r.output and "no face detected (person box) 1" in r.output
    assert load_cache(out).embeddings.shape == (7, 128)
    r = CliRunner().invoke(app, ["embed", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "not a cache" in r.output and "Traceback" not in r.output
    user = tmp_path / "mine"  # a user's folder that happens to hold a meta.json: refused, nothing written in it
    user.mkdir()
    (user / "meta.json").write_text("{}")
    r = CliRunner().invoke(app, ["embed", str(user)])
    assert r.exit_code == 2 and "not a cache" in r.output and sorted(p.name for p in user.iterdir()) == ["meta.json"]
    import sys

    monkeypatch.setitem(sys.modules, "dlib", None)  # as if dlib were not installed: `import dlib` raises ImportError
    for args in (["embed", str(out)], ["crop", str(cache_dir.parent / "data"), "--out", str(tmp_path / "c2"), "--embed"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and "pip install dlib-bin==20.0.1.post1" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "c2" / "images.npy").exists()  # the crop never started


def test_facenet_plumbing_with_random_weights_and_missing_weights_line(cache_dir, tmp_path, monkeypatch):
    from facecurate.curate.embed import check_ready
    from facecurate.curate.embed.facenet_backend import FacenetBackend

    c = load_cache(cache_dir)
    idx = c.usable()[:3]
    boxes = cache_boxes(c.manifest, *c.images.shape[1:3])[idx]
    boxes[0] = (10, 10, 15, 15)  # 5 px: too small
    net = FacenetBackend("cpu", weights=None)
    vec, why = net.embed(np.asarray(c.images[idx]), boxes)
    assert vec.shape == (len(idx), 512) and why[0].startswith("face too small") and np.isnan(vec[0]).all()
    assert np.allclose(np.linalg.norm(vec[1:], axis=1), 1, atol=1e-4) and net.provenance()["weights"] == "random"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache: nothing to load, nothing fetched
    with pytest.raises(InputError, match="20180402-114759-vggface2.pt: facenet's VGGFace2 weights are missing"):
        check_ready("facenet")


def test_embeddings_from_before_the_age_gender_columns_are_computed_again_by_the_report(cache_dir, tmp_path):
    """A cache embedded by the earlier dlib pass (128 columns, no attributes in meta.json): relabel-report computes the
    pass again, once, so its probe reads gender from the faces; without attributes the probe would read identity."""
    import shutil

    from facecurate.curate.audit.faces import ensure_embeddings
    from facecurate.curate.audit.options import ReportOptions
    from facecurate.curate.cache import EMBEDDINGS, write_meta
    from facecurate.curate.checksums import file_hash, meta_hash

    work = shutil.copytree(cache_dir, tmp_path / "cache")
    embed_cache(work, EmbedParams())
    vec = np.load(work / EMBEDDINGS)
    np.save(work / EMBEDDINGS, np.ascontiguousarray(vec[:, :128]))  # the older pass's file and meta.json entry
    meta = json.loads((work / "meta.json").read_text())
    for k in ("identity_dim", "attributes"):
        meta["embeddings"].pop(k)
    meta["embeddings"].update(dim=128, key="an older pass")
    meta["checksums"]["embeddings"] = file_hash(work / EMBEDDINGS)
    meta["checksums"]["meta"] = meta_hash(meta)
    write_meta(work, meta)
    old = load_cache(work)  # a sound cache: its checksums hold
    assert old.embeddings.shape == (7, 128) and old.face_attributes is None
    notes = _StopAt()
    new = ensure_embeddings(old, ReportOptions(), notes)
    assert any("from before the age/gender columns" in n for n in notes.notes)
    assert new.face_attributes is not None and load_cache(work).face_attributes.shape == (7, 2)
    assert np.allclose(np.asarray(new.embeddings), vec[:, :128], equal_nan=True)  # identity unchanged
    again = _StopAt()
    assert ensure_embeddings(load_cache(work), ReportOptions(), again) is not None and not again.notes  # once
