"""`embed --ray` on a local Ray instance (2 CPUs) writes the same embeddings, byte for byte, as a local pass."""
from __future__ import annotations

import shutil

import pytest

from _crop_data import astronaut_person, blank, train_layout
from facecurate.curate.crop import CropParams, crop_dataset
from facecurate.curate.embed import EmbedParams, embed_cache

ray = pytest.importorskip("ray")


def test_ray_embeddings_are_byte_identical_to_a_local_pass(tmp_path):
    a, _ = astronaut_person(5)
    data = train_layout(tmp_path / "data", {"000001_female_Asian_45": a + [("normal.jpg", blank(120))]})
    crop_dataset(data, tmp_path / "local", CropParams(detector="mediapipe", batch=3))
    shutil.copytree(tmp_path / "local", tmp_path / "ray")
    local = embed_cache(tmp_path / "local", EmbedParams(chunk=2, batch=1))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        remote = embed_cache(tmp_path / "ray", EmbedParams(chunk=2, batch=1, ray="local"))
    finally:
        ray.shutdown()
    assert remote.chunks == local.chunks == 3 and remote.embedded == local.embedded == 5 and remote.reasons == local.reasons
    for name in ("embeddings.npy", "embeddings.parquet"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
