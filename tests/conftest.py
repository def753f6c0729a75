"""Fixtures the test modules share: a module's scratch folder and a small synthetic cache in it.

A module sizes its cache with ``CACHE_PEOPLE`` (default 8; ``_train_data.make_cache``, seed 2: both genders among
the validation people); a module that needs another kind of cache defines its own ``cache`` fixture, which wins.
"""
from __future__ import annotations

import pytest
from _train_data import make_cache


@pytest.fixture(scope="module")
def work(tmp_path_factory, request):
    """The module's scratch folder, named after it (test_train.py -> train0)."""
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2].removeprefix("test_"))


@pytest.fixture(scope="module")
def cache(work, request):
    """A synthetic cache of ``CACHE_PEOPLE`` people (the module's, default 8), seed 2, in ``work/cache``."""
    return make_cache(work / "cache", n_people=getattr(request.module, "CACHE_PEOPLE", 8), seed=2)
