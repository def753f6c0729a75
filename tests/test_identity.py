"""Identity checks (curate.identity) and the embedding probe (curate.audit.probe) on embeddings built with known structure."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

from facecurate.curate.audit.oof import validate_oof
from facecurate.curate.audit.probe import (
    ProbeOptions,
    combine_oof,
    probe_folds,
    probe_oof,
)
from facecurate.curate.identity import (
    IDENTITY_FLAG_COLUMNS,
    IdentityOptions,
    audit_identity,
    duplicate_id_flags,
    identity_groups,
    identity_leak_flags,
    identity_overrides,
    stranger_flags,
)
from facecurate.curate.labels import MASK_FROM_STEM, PHOTO_STEMS, encode

DIM = 128


def _unit(rng, n):
    v = rng.normal(size=(n, DIM))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_set(people=60, seed=0, spread=0.6, prefix="p", centres=None):
    """People with a random centre each (impostor distances ~ spread * sqrt(2)), 7 photos = centre + noise, masked noisier."""
    rng = np.random.default_rng(seed)
    centres = spread * _unit(rng, people) if centres is None else centres
    rows, emb = [], []
    for k in range(people):
        gender, age = k % 2, k % 3
        for stem in PHOTO_STEMS:
            noise = 0.05 if stem == "normal" else 0.08
            emb.append(centres[k] + noise * rng.normal(size=DIM) / np.sqrt(DIM))
            mask = MASK_FROM_STEM[stem]
            rows.append({"image_id": f"{prefix}{k:03d}/{stem}.jpg", "person": f"{prefix}{k:03d}", "photo": stem,
                         "mask": mask, "gender": gender, "age_group": age, "label": int(encode(mask, gender, age))})
    return np.asarray(emb), pd.DataFrame(rows), centres


def test_strangers_far_from_their_person_are_flagged_and_nothing_else():
    emb, man, _ = make_set(seed=1)
    rng = np.random.default_rng(5)
    planted = ["p003/normal.jpg", "p017/normal.jpg", "p030/mask2.jpg", "p041/mask4.jpg"]
    for image_id in planted:
        i = man.index[man["image_id"] == image_id][0]
        emb[i] = 0.6 * _unit(rng, 1)[0] + 0.05 * rng.normal(size=DIM) / np.sqrt(DIM)
    emb[man.index[man["image_id"] == "p050/mask1.jpg"][0]] = np.nan  # no face: skipped, never flagged
    misfiled = man.index[man["image_id"] == "p055/normal.jpg"][0]  # p055's normal photo is p020's face
    emb[misfiled] = emb[man.index[man["image_id"] == "p020/normal.jpg"][0]] + 0.05 * rng.normal(size=DIM) / np.sqrt(DIM)
    planted.append("p055/normal.jpg")
    flags, fits = stranger_flags(emb, man, IdentityOptions(seed=0))
    assert list(flags.columns) == IDENTITY_FLAG_COLUMNS
    assert set(flags["image_id"]) == set(planted)
    assert dict(zip(flags["image_id"], flags["other_person"])) == {i: ("p020" if i == "p055/normal.jpg" else "") for i in planted}
    assert (flags["kind"] == "stranger").all() and (flags["field"] == "exclude").all() and (flags["suggested"] == "1").all()
    # the side-by-side photo is one of the flagged person's own photos
    assert all(o.split("/")[0] == i.split("/")[0] and o != i for o, i in zip(flags["other_image_id"], flags["image_id"]))
    assert fits["normal~any"].on and fits["normal~any"].precision >= 0.8
    rows = identity_overrides(flags)
    assert set(rows["key"]) == set(planted) and set(rows["field"]) == {"exclude"} and (rows["scope"] == "photo").all()


def test_a_duplicate_id_is_one_pair_and_one_identity_group():
    emb, man, centres = make_set(seed=2)
    # p007 and p033 are one face (a fresh rendering: their own photo noise); p033's labels agree
    rng = np.random.default_rng(3)
    rows = man["person"] == "p033"
    emb[rows.to_numpy()] = centres[7] + 0.06 * rng.normal(size=(rows.sum(), DIM)) / np.sqrt(DIM)
    flags, fit = duplicate_id_flags(emb, man, IdentityOptions())
    assert len(flags) == 1
    assert {flags["person"][0], flags["other_person"][0]} == {"p007", "p033"}
    assert flags["image_id"][0].endswith("normal.jpg") and flags["other_image_id"][0].endswith("normal.jpg")
    assert flags["score"][0] >= 0.8 and fit.flagged == 1
    rows = identity_overrides(flags)
    assert set(rows["key"]) == {"p007", "p033"} and set(rows["field"]) == {"identity"} and rows["value"].nunique() == 1
    audit = audit_identity(emb, man)
    assert audit.off == ""
    assert audit.groups["p007"] == audit.groups["p033"]
    assert len(set(audit.groups.values())) == 59
    assert set(audit.flags["kind"]) == {"duplicate_id"}


def test_identity_groups_join_chains():
    groups = identity_groups(["a", "b", "c", "d", "e"], pd.DataFrame({"i": [0, 3], "j": [3, 4]}))
    assert groups["a"] == groups["d"] == groups["e"] != groups["b"] != groups["c"]
    assert groups["a"] == 0


def test_people_of_one_set_found_in_another_and_an_eval_set_without_people():
    emb_a, man_a, centres = make_set(seed=4)
    emb_b, man_b, _ = make_set(people=30, seed=5, prefix="q")
    for q, p in ((2, 10), (9, 44)):  # q002 is p010, q009 is p044
        rows = (man_b["person"] == f"q{q:03d}").to_numpy()
        emb_b[rows] = centres[p] + 0.06 * np.random.default_rng(q).normal(size=(rows.sum(), DIM)) / np.sqrt(DIM)
    flags, _ = identity_leak_flags(emb_a, man_a, emb_b, man_b)
    assert set(zip(flags["person"], flags["other_person"])) == {("p010", "q002"), ("p044", "q009")}
    # an eval set: no people, no labels; each photo is a unit
    ev = man_b[["image_id"]].assign(person="")
    flags, _ = identity_leak_flags(emb_a, man_a, emb_b, ev)
    assert set(flags["person"]) == {"p010", "p044"}
    assert all(o.startswith(("q002/", "q009/")) for o in flags["other_image_id"])


def test_one_face_for_everyone_turns_the_checks_off_with_one_line():
    rng = np.random.default_rng(6)
    one = 0.6 * _unit(rng, 1)
    emb, man, _ = make_set(seed=6, centres=np.repeat(one, 60, axis=0))
    audit = audit_identity(emb, man)
    assert audit.off.startswith("identity checks off: ")
    assert audit.flags.empty and audit.duplicates is None
    assert len(set(audit.groups.values())) == 60


def test_probe_reads_an_encoded_label_in_person_grouped_folds():
    emb, man, _ = make_set(people=80, seed=7)
    rng = np.random.default_rng(8)
    direction = _unit(rng, 1)[0]
    emb = emb + 0.3 * np.where(man["gender"].to_numpy()[:, None] == 1, 1.0, -1.0) * direction
    emb[0] = np.nan
    groups = {"p000": 0, "p001": 0}  # one identity under two ids: one fold
    oof = probe_oof(emb, man, ProbeOptions(folds=4, seed=1), groups=groups)
    assert len(validate_oof(oof)) == len(man)
    assert (oof.groupby("person")["fold"].nunique() == 1).all()
    assert oof.loc[oof["person"] == "p000", "fold"].iloc[0] == oof.loc[oof["person"] == "p001", "fold"].iloc[0]
    assert not oof["embedded"][0] and np.allclose(oof.loc[0, ["p_gender_0", "p_gender_1"]].to_numpy(float), 0.5)
    acc = (oof[["p_gender_0", "p_gender_1"]].to_numpy().argmax(axis=1) == oof["gender"].to_numpy())[1:].mean()
    assert acc > 0.95
    assert np.array_equal(probe_folds(man, 4, 1), probe_folds(man, 4, 1))
    # combined with a "CNN" that knows nothing about gender: the probe takes the gender head's weight
    cnn = oof.drop(columns=["embedded"]).copy()
    cnn[["p_gender_0", "p_gender_1"]] = 0.5
    combined, weights = combine_oof(oof, cnn)
    w = weights.set_index("head")["w_probe"]
    assert w["gender"] >= 0.9
    g = weights.set_index("head").loc["gender"]
    assert g["logloss_combined"] <= min(g["logloss_cnn"], g["logloss_probe"]) + 1e-12
    assert np.allclose(combined.loc[0, ["p_gender_0", "p_gender_1"]].to_numpy(float), 0.5)  # no embedding: the CNN's
    validate_oof(combined)


def _dlib():
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or importlib.util.find_spec("dlib") is None:
        pytest.skip("dlib or its models are not installed")
    import dlib

    d = spec.submodule_search_locations[0]
    return (dlib, dlib.shape_predictor(os.path.join(d, "models", "shape_predictor_5_face_landmarks.dat")),
            dlib.face_recognition_model_v1(os.path.join(d, "models", "dlib_face_recognition_resnet_model_v1.dat")))


def test_real_dlib_variants_of_one_face_are_a_degenerate_set():
    """The demo's case on real descriptors: people who are all the astronaut, shifted and re-lit, cannot be told apart."""
    from skimage import data

    dlib, sp, fr = _dlib()
    img = data.astronaut()
    rng = np.random.default_rng(0)
    emb, rows = [], []
    for k in range(12):
        for j, stem in enumerate(("normal", "mask1", "mask2")):
            dx, dy = rng.integers(-6, 7, size=2)
            gain = rng.uniform(0.8, 1.2)
            im = np.ascontiguousarray(np.clip(np.roll(img, (dy, dx), axis=(0, 1)) * gain, 0, 255).astype(np.uint8))
            shape = sp(im, dlib.rectangle(170 + int(dx), 50 + int(dy), 290 + int(dx), 190 + int(dy)))
            emb.append(np.asarray(fr.compute_face_descriptor(im, shape)))
            rows.append({"image_id": f"a{k}/{stem}.jpg", "person": f"a{k}", "photo": stem, "mask": MASK_FROM_STEM[stem]})
    emb = np.asarray(emb)
    assert np.max(np.linalg.norm(emb - emb.mean(axis=0), axis=1)) < 0.3  # one face to dlib
    audit = audit_identity(emb, pd.DataFrame(rows), IdentityOptions(impostors=4))
    assert audit.off.startswith("identity checks off: ") and audit.flags.empty


def test_impostors_are_drawn_among_people_of_the_same_gender_when_there_are_enough():
    """A stranger filed under a person is the hard case when of the same gender: the impostor distances that calibrate
    the stranger check are drawn from people of the person's labelled gender (all people when too few or unlabelled)."""
    from facecurate.curate.identity.stranger import _impostors, _same_gender

    _, man, _ = make_set(people=20, seed=3)
    persons = sorted(man["person"].unique())
    gender = _same_gender(man, persons)
    assert set(gender) == {0, 1}
    rng = np.random.default_rng(0)
    for k in range(len(persons)):
        drawn = _impostors(k, persons, gender, 8, rng)
        assert len(drawn) == 8 and persons[k] not in drawn and len(set(drawn)) == 8
        assert {gender[persons.index(p)] for p in drawn} == {gender[k]}
    few = _impostors(0, persons, gender, 15, rng)  # 9 others of that gender: all 19 others are the pool
    assert len(few) == 15 and {gender[persons.index(p)] for p in few} == {0, 1}
    unlabelled = _same_gender(man.drop(columns="gender"), persons)
    assert (unlabelled == -1).all() and len(_impostors(0, persons, unlabelled, 8, rng)) == 8


def test_the_probe_reads_gender_per_person_from_face_attributes():
    """Attributes like the age/gender network's: a clear male logit on the unmasked photo, a faint one under a mask.
    Read per person (unmasked and masked means), every photo of a person gets one reading and the people whose
    gender label was flipped come first; read per photo, masked photos blur it."""
    from facecurate.curate.audit.probe import person_table
    from facecurate.curate.embed.head_features import attribute_columns, head_features

    emb, man, _ = make_set(people=80, seed=9)
    rng = np.random.default_rng(10)
    truth = man["gender"].to_numpy()
    sign = np.where(truth == 0, 1.0, -1.0)  # gender 0 (male) has a positive male logit
    unmasked = (man["mask"] == 2).to_numpy()
    z = np.where(unmasked, 3.0 * sign + rng.normal(0, 1.0, len(man)), 0.5 * sign + rng.normal(0, 1.0, len(man)))
    attrs = pd.DataFrame({"age": 35 + rng.normal(0, 8, len(man)), "male_logit": z})
    flipped = ["p004", "p021", "p046", "p063"]
    man = man.copy()
    man.loc[man["person"].isin(flipped), "gender"] = 1 - man.loc[man["person"].isin(flipped), "gender"]
    attrs.loc[man.index[man["image_id"] == "p010/normal.jpg"], :] = np.nan  # no face on p010's unmasked photo
    names, table = person_table(attribute_columns(attrs), man)
    assert table.shape == (80, 8) and np.isfinite(table).all()
    assert np.allclose(table[list(names).index("p010"), :4], np.nanmean(np.delete(table[:, :4], list(names).index("p010"), 0), 0))
    features = head_features(emb, attrs)
    per_person = probe_oof(features, man, ProbeOptions(folds=4), person_features=attribute_columns(attrs))
    per_photo = probe_oof(features, man, ProbeOptions(folds=4))
    assert (per_person.groupby("person")["p_gender_1"].nunique() == 1).all()
    given = man["gender"].astype(int).to_numpy()
    p_given = per_person[["p_gender_0", "p_gender_1"]].to_numpy()[np.arange(len(man)), given]
    worst = pd.Series(p_given).groupby(man["person"].to_numpy()).first().nsmallest(4).index
    assert set(worst) == set(flipped)
    def balanced(oof):
        from sklearn.metrics import balanced_accuracy_score

        return balanced_accuracy_score(truth, oof[["p_gender_0", "p_gender_1"]].to_numpy().argmax(1))
    assert balanced(per_person) > balanced(per_photo) + 0.1 and balanced(per_person) > 0.95
