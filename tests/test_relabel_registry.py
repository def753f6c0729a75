"""relabel-report's records: one options record checked once (the CLI's defaults read from it), one registry entry per kind."""
from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from _relabel_data import faces, make_oof, manifest_of
from facecurate.cli.audit import relabel_report as relabel_command
from facecurate.curate.audit import KINDS, FlagKind, QuickModel, ReportOptions, audit_labels, register, relabel_report
from facecurate.curate.audit.flags import FLAG_COLUMNS
from facecurate.curate.cache import save_cache
from facecurate.curate.errors import InputError


def test_options_are_checked_once_made_naming_the_cli_option():
    for changes, option in (({"pool": "max"}, "--pool"), ({"gate": 1.0}, "--gate"), ({"margin": 0.5}, "--margin"),
                            ({"draws": 0}, "--draws"), ({"min_corr": 0.0}, "--min-corr"),
                            ({"max_hash_distance": 65}, "--max-hash-distance"), ({"age_bins": "60,30"}, "--age-bins")):
        with pytest.raises(InputError, match=option):
            ReportOptions(**changes)
        with pytest.raises(InputError, match=option):
            ReportOptions().replace(**changes)  # a copy is checked too
    assert ReportOptions(age_bins="25,50").age_bins == (25, 50)  # parsed once, here
    assert ReportOptions(age_bins=[25, 50]) == ReportOptions(age_bins="25,50")
    with pytest.raises(TypeError):
        ReportOptions().replace(lift=0.3)  # one name per idea: the CLI's (--gate)


def test_the_cli_defaults_are_the_records():
    params = inspect.signature(relabel_command).parameters
    report, quick = ReportOptions(), QuickModel()
    shared = [n for n in params if n in ReportOptions.__dataclass_fields__ and n not in ("quick", "age_bins")]
    assert len(shared) == 17  # 12 report options + embed, probe, identity, against, photo_quality
    for name in shared:
        default = params[name].default.default
        if name == "against":  # a repeatable option: None on the command line, () in the record
            default = tuple(default or ())
        assert default == getattr(report, name), name
    for name in QuickModel.__dataclass_fields__:
        assert params[name].default.default == getattr(quick, name), name


def test_every_kind_is_one_complete_entry_in_report_order():
    first = ["gender", "age", "mask_swap", "mask_photo", "structure", "near_duplicate"]
    assert [k for k in KINDS if k in first] == first  # the kinds that come next register after these
    for k in KINDS.values():
        assert k.title and k.description and k.scope in ("person", "photo")
        assert k.model_based == (k.detect is None) and (k.head is not None) == k.model_based
    with pytest.raises(ValueError, match="already registered"):
        register(KINDS["gender"])
    with pytest.raises(ValueError, match="give detect"):
        register(FlagKind("half", "half", "person", "a model-based kind without its units", head="gender"))
    assert "half" not in KINDS


def _darkest(ctx) -> pd.DataFrame:
    """A stand-in photo-quality detector: flags the darkest photo of the cache (reads the context, not the model)."""
    if ctx.cache is None:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    m = ctx.cache.manifest.reset_index(drop=True)
    i = int(np.argmin([float(ctx.cache.images[j].mean()) for j in range(len(m))]))
    return pd.DataFrame([{"kind": "dark_photo", "scope": "photo", "person": m["person"].iloc[i], "image_id": m["image_id"].iloc[i],
                          "photo": m["photo"].iloc[i], "field": "", "given": None, "suggested": None, "score": 0.99,
                          "threshold": ctx.options.gate, "reason": "the darkest photo of the cache", "confidence": ""}],
                        columns=FLAG_COLUMNS)


def test_a_detected_kind_plugs_in_as_one_entry(tmp_path):
    oof, _ = make_oof(12, seed=8, gender_flip=(3,))
    m = manifest_of(oof)
    images = faces(12, seed=8, h=32, w=24)
    images[5] //= 8  # one dark photo
    cache = save_cache(tmp_path / "cache", images, m, {"params": {}, "versions": {}})
    oof.to_parquet(tmp_path / "oof.parquet")
    register(FlagKind("dark_photo", "dark photo", "photo", "a photo too dark to read", detect=_darkest))
    try:
        assert audit_labels(oof, m).flags["kind"].ne("dark_photo").all()  # no cache in the context: nothing to read
        res = relabel_report(cache.path, oof=tmp_path / "oof.parquet", out=tmp_path / "rep", near_duplicates=False, gate=0.3)
    finally:
        KINDS.pop("dark_photo")
    hit = res.flags[res.flags["kind"] == "dark_photo"]
    assert list(hit["image_id"]) == [m["image_id"].iloc[5]] and hit["threshold"].iloc[0] == 0.3  # it read the options
    assert res.counts["dark_photo"] == (1, 1)
    page = res.paths["html"].read_text()
    assert 'data-kind="dark_photo" title="a photo too dark to read">dark photo (1)' in page
    assert "dark_photo" in set(pd.read_csv(res.paths["issues"])["kind"])
