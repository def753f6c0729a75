"""`crop --ray` on a local Ray instance (2 CPUs) gives the same cache, byte for byte, as a local `crop`, resumes the same."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _crop_data import astronaut_person, blank, train_layout
from facecurate.curate.crop import CropParams, CropStopped, crop_dataset

ray = pytest.importorskip("ray")
FAST = dict(detector="mediapipe", batch=3, chunk=4)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_data")
    a, _ = astronaut_person(5)
    b, _ = astronaut_person(4, start=2)
    return train_layout(root / "data", {"000001_female_Asian_45": a + [("normal.jpg", blank(120))],
                                        "000002_male_Asian_20": b, "000003_male_Asian_70": [("mask1.jpg", blank(90))]})


def _same_cache(a, b):
    assert np.load(a / "images.npy").tobytes() == np.load(b / "images.npy").tobytes()
    pd.testing.assert_frame_equal(pd.read_parquet(a / "manifest.parquet"), pd.read_parquet(b / "manifest.parquet"))


def test_ray_cache_is_byte_identical_to_a_local_one(tmp_path, data, local_ray):
    local = crop_dataset(data, tmp_path / "local", CropParams(**FAST))
    remote = crop_dataset(data, tmp_path / "ray", CropParams(ray="local", **FAST))
    assert remote.chunks == local.chunks == 3 and remote.counts == local.counts
    assert set(local.cache.manifest["box_source"]) == {"detected", "person", "prior"}
    _same_cache(tmp_path / "local", tmp_path / "ray")


def test_an_interrupted_ray_run_resumes_locally_or_on_ray_to_the_same_cache(tmp_path, data, local_ray):
    with pytest.raises(CropStopped):
        crop_dataset(data, tmp_path / "cut", CropParams(ray="local", **FAST), stop_after_chunks=1)
    resumed = crop_dataset(data, tmp_path / "cut", CropParams(**FAST))  # the same chunk files: a local run resumes it
    assert resumed.state == "resume" and resumed.chunks_resumed == 1
    crop_dataset(data, tmp_path / "whole", CropParams(**FAST))
    _same_cache(tmp_path / "cut", tmp_path / "whole")
