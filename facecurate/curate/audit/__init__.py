"""Label audit (`relabel-report`): which labels look wrong, how sure that is, and a page to review them.

``relabel_report(cache, oof)`` is the stage. Inside: ``oof`` (the out-of-fold table), ``thresholds``
(confident-learning thresholds, per-person pooling), ``checks`` (the model-based and structural checks),
``near_duplicates`` (one person filed twice), ``flags`` (the flags schema), ``report_html`` (the files written).
"""
from .flags import FLAG_COLUMNS, KINDS
from .report_html import KIND_TITLES
from .stage import (
           QUICK_RUN,
           RelabelResult,
           default_report_dir,
           prepare_report_dir,
           relabel_report,
)

__all__ = ["FLAG_COLUMNS", "KINDS", "KIND_TITLES", "QUICK_RUN", "RelabelResult", "default_report_dir", "prepare_report_dir",
           "relabel_report"]
