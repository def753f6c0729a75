"""Label audit (`relabel-report`): which labels look wrong, how sure that is, and a page to review them.

``relabel_report(cache, oof)`` is the stage, ``ReportOptions`` its options (``options``). Inside: ``kinds``
(the registry: one ``FlagKind`` record per kind of flag, ``flag_kind``), ``oof`` (the out-of-fold
table), ``pooling`` (a person's photos pooled), ``scores`` (one score per unit of a model-based kind),
``quality`` (the per-head gate), ``simulate`` (injected errors -> thresholds and expected precision),
``explain`` (a model-based flag in words), ``structure`` and ``near_duplicates`` (the checks that do not
read the model), ``checks`` (``audit_labels``: every kind in order), ``flags`` (the flags schema),
``report_html`` / ``report_banner`` / ``report_page`` (the files written and the review page).
"""
from __future__ import annotations

from .options import QuickModel, ReportOptions

__all__ = ["FLAG_COLUMNS", "KINDS", "AuditContext", "FlagKind", "LabelAudit", "QUICK_RUN", "QuickModel", "RelabelResult",
           "ReportOptions", "audit_labels", "default_report_dir", "register", "relabel_report", "report_folder",
           "write_relabel_report"]


def __getattr__(name: str):
    """The checks and the stage load on first use: the CLI reads ``ReportOptions``' defaults without pandas, OpenCV
    or scikit-learn (start-up stays fast)."""
    if name in ("QUICK_RUN", "RelabelResult", "default_report_dir", "relabel_report", "report_folder",
                "write_relabel_report"):
        from . import stage
        return getattr(stage, name)
    if name in ("LabelAudit", "audit_labels"):
        from . import checks
        return getattr(checks, name)
    if name in ("KINDS", "register"):
        from . import kinds
        return getattr(kinds, name)
    if name in ("AuditContext", "FlagKind"):
        from . import flag_kind
        return getattr(flag_kind, name)
    if name == "FLAG_COLUMNS":
        from .flags import FLAG_COLUMNS
        return FLAG_COLUMNS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
