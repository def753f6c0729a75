"""Label audit (`relabel-report`): which labels look wrong, how sure that is, and a page to review them.

``relabel_report(cache, oof)`` is the stage. Inside: ``oof`` (the out-of-fold table), ``pooling`` (a
person's photos pooled), ``scores`` (one score per unit and kind), ``quality`` (the per-head gate),
``simulate`` (injected errors -> thresholds and expected precision), ``checks`` (the flags, structural
checks, ``audit_labels``), ``near_duplicates`` (one person filed twice), ``flags`` (the flags schema),
``report_html`` / ``report_banner`` / ``report_page`` (the files written and the review page).
"""
from .checks import LabelAudit, audit_labels
from .flags import FLAG_COLUMNS, KINDS
from .report_banner import KIND_TITLES
from .stage import (
           QUICK_RUN,
           RelabelResult,
           default_report_dir,
           prepare_report_dir,
           relabel_report,
           validate_options,
)

__all__ = ["FLAG_COLUMNS", "KINDS", "KIND_TITLES", "LabelAudit", "QUICK_RUN", "RelabelResult", "audit_labels",
           "default_report_dir", "prepare_report_dir", "relabel_report", "validate_options"]
