"""The age/gender network: our PyTorch port against @vladmandic/face-api's own tfjs code (run in Node.js), what it reads
from two real faces, and the one line a missing or damaged install gives."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

from facecurate.curate.embed import agegender_models as agm
from facecurate.curate.embed.agegender_net import SIZE, load_agegender
from facecurate.curate.errors import InputError

REFERENCE = Path(__file__).parent / "_agegender_reference.mjs"


def _faces() -> list[np.ndarray]:
    """Two real faces (skimage's astronaut, matplotlib's Grace Hopper; both public domain) cut square around the face."""
    astro = np.asarray(skdata.astronaut())[20:230, 130:340]
    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))[60:400, 90:430]
    return [astro, hopper]


def _inputs() -> np.ndarray:
    """8 chips of 112 px: each face as it is, mirrored, shifted by 6 px, and darkened (float32 RGB 0-255)."""
    out = []
    for face in _faces():
        chip = np.asarray(Image.fromarray(face).resize((SIZE, SIZE), Image.BILINEAR), np.float32)
        out += [chip, chip[:, ::-1], np.roll(chip, 6, axis=1), chip * 0.6]
    return np.ascontiguousarray(np.stack(out), np.float32)


def _net():
    return load_agegender(agm.model_file(agm.MANIFEST), agm.model_file(agm.WEIGHTS))


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js runs the reference (the project's CI machine has it)")
def test_port_matches_face_apis_own_tfjs_code(tmp_path):
    x = _inputs()
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    subprocess.run(["node", str(REFERENCE), str(agm.model_dir()), str(tmp_path / "in.bin"), str(len(x)),
                    str(tmp_path / "out.json")], check=True, capture_output=True, timeout=300)
    ref = json.loads((tmp_path / "out.json").read_text())
    with torch.inference_mode():
        age, male_logit = _net()(torch.from_numpy(x))
    assert len(ref) == len(x)
    assert np.abs(age.numpy() - [r["age"] for r in ref]).max() <= 1e-4
    assert np.abs(torch.sigmoid(male_logit).numpy() - [r["male"] for r in ref]).max() <= 1e-5
    assert np.ptp([r["age"] for r in ref]) > 5  # the inputs differ enough for a wrong port to show


def test_the_embedding_pass_reads_the_astronauts_gender_and_hoppers_greater_age():
    """Through the default backend (dlib's landmarks and aligned chip, shrunk to 112 px), on the face boxes dlib's own
    detector gives: Eileen Collins (~ 41 in the photo) reads as a woman, Grace Hopper (~ 79) as decades older."""
    from facecurate.curate.embed.dlib_backend import ATTRIBUTES, DlibBackend

    astro = np.asarray(skdata.astronaut())
    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    backend = DlibBackend()
    assert backend.dim == 130 and backend.identity_dim == 128 and backend.attributes == ATTRIBUTES == ("age", "male_logit")
    (a, why_a), (h, why_h) = (backend.embed(img[None], np.array([box], float))
                              for img, box in ((astro, (175, 76, 265, 166)), (hopper, (180, 139, 366, 325))))
    assert why_a == why_h == [""]
    age_a, male_a = a[0, 128:]
    age_h = h[0, 128]
    assert male_a < -1  # a woman, and clearly
    assert 20 < age_a < 50 and age_h > age_a + 25


def test_missing_or_damaged_files_are_one_line_naming_the_fix(cache, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from facecurate.cli import app

    installed = agm.model_dir()
    shutil.copytree(cache.path, tmp_path / "cache")
    monkeypatch.setenv(agm.ENV, str(tmp_path / "none"))
    agm._CHECKED.clear()
    with pytest.raises(InputError, match="not installed; run `python -m facecurate.curate.embed.agegender_models`"):
        agm.ready()
    r = CliRunner().invoke(app, ["embed", str(tmp_path / "cache")])
    assert r.exit_code == 2 and "age/gender network is not installed" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "cache" / "embeddings.npy").exists()
    damaged = tmp_path / "damaged"
    shutil.copytree(installed, damaged)
    (damaged / agm.WEIGHTS).write_bytes(b"\0" * 16)
    monkeypatch.setenv(agm.ENV, str(damaged))
    with pytest.raises(InputError, match="another or a damaged copy"):
        agm.ready()
    agm._CHECKED.clear()


def test_install_refuses_a_tarball_that_is_not_the_registrys(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        body = b"not the weights"
        info = tarfile.TarInfo(agm.FILES[agm.WEIGHTS][0])
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    (tmp_path / "fake.tgz").write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="sha512 is not the registry's"):
        agm.install(tmp_path / "dest", tarball=tmp_path / "fake.tgz")
    assert not (tmp_path / "dest").exists()
    with pytest.raises(InputError, match="missing.tgz: cannot read it"):
        agm.install(tmp_path / "dest", tarball=tmp_path / "missing.tgz")
    r = subprocess.run([sys.executable, "-m", "facecurate.curate.embed.agegender_models", "--dest", str(tmp_path / "dest"),
                        "--tarball", str(tmp_path / "missing.tgz")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
