"""facecurate's trainer: a timm backbone fed straight from the crop cache, person-grouped K-fold, fold ensemble.

``train(cache, out, TrainConfig(...))`` writes a run folder; ``predict(run, data)`` a submission;
``quick_oof`` the short K-fold relabel-report needs. Inside: ``config`` (every option), ``splits``,
``data`` and ``augment`` (batches from the cache), ``extra`` (``--extra`` caches), ``model`` with
``heads``, ``warmstart`` (``--weights``) and ``hub`` (``--pretrained``), ``losses``, ``fold`` (one fold's
loop), ``checkpoint``, ``infer``, ``metrics``, ``plots``, ``fit`` (the whole run), ``predict``.
It reads ``facecurate.curate`` only through its public surface (``curate.PUBLIC_SURFACE``).
The names below load on first use (PEP 562), so ``facecurate.train.config`` (the CLI's defaults) loads without torch.
"""
from __future__ import annotations

import importlib
import sys
import types

_HOME = {"TrainConfig": "config", "quick_config": "config", "quick_oof": "fit", "quick_plan": "fit", "train": "fit",
         "predict": "predict", "predict_cache": "predict"}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    """``facecurate.train.train`` and the others: imported from their module when first asked for."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """This package: the function ``predict`` keeps its name when the import system binds the submodule ``predict``
    (with the names loaded on first use, that submodule can load first)."""

    def __setattr__(self, name: str, value) -> None:
        if name in _HOME and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
