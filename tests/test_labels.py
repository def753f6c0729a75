"""The label model: encode/decode are inverse, age groups follow the bins."""
import numpy as np
import pytest

from facecurate.curate.errors import InputError
from facecurate.curate.labels import age_group, class_names, decode, encode, parse_age_bins


def test_encode_decode_inverse_scalars_and_arrays():
    seen = set()
    for mask in range(3):
        for gender in range(2):
            for age in range(3):
                c = encode(mask, gender, age)
                assert decode(c) == (mask, gender, age)
                seen.add(c)
    assert seen == set(range(18))
    labels = np.arange(18)
    m, g, a = decode(labels)
    assert np.array_equal(encode(m, g, a), labels)


def test_age_groups_default_and_custom_bins():
    assert [age_group(a) for a in (0, 29, 30, 59, 60, 90)] == [0, 0, 1, 1, 2, 2]
    assert [age_group(a, (30, 58)) for a in (57, 58, 59)] == [1, 2, 2]
    assert list(age_group(np.array([10, 45, 70]))) == [0, 1, 2]


def test_parse_age_bins():
    assert parse_age_bins("30,58") == (30, 58)
    for bad in ("60,30", "30", "a,b", "0,10"):
        with pytest.raises(InputError):
            parse_age_bins(bad)


def test_class_names_follow_encoding():
    names = class_names()
    assert names[encode(0, 0, 0)] == "wear/male/<30"
    assert names[encode(1, 1, 2)] == "incorrect/female/>=60"
    assert names[encode(2, 0, 1)] == "not worn/male/30-59"
