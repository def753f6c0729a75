"""facecurate's trainer: a timm backbone fed straight from the crop cache, person-grouped K-fold, fold ensemble.

``train(cache, out, TrainConfig(...))`` writes a run folder; ``predict(run, data)`` a submission;
``quick_oof`` the short K-fold relabel-report needs. Inside: ``config`` (every option), ``splits``,
``data`` and ``augment`` (batches from the cache), ``extra`` (``--extra`` caches), ``model`` with
``heads``, ``warmstart`` (``--weights``) and ``hub`` (``--pretrained``), ``losses``, ``fold`` (one fold's
loop), ``checkpoint``, ``infer``, ``metrics``, ``plots``, ``fit`` (the whole run), ``predict``.
It reads ``facecurate.curate`` only through its public surface (``curate.PUBLIC_SURFACE``).
"""
from .config import TrainConfig, quick_config
from .fit import quick_oof, quick_plan, train
from .predict import predict, predict_cache

__all__ = ["TrainConfig", "predict", "predict_cache", "quick_config", "quick_oof", "quick_plan", "train"]
