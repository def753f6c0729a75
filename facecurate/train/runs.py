"""Runs side by side (`facecurate runs`): one row per run folder, the settings that differ between them, the
out-of-fold macro F1 per head and 18-class, the best epoch and the training time; the pure table only."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..curate.errors import InputError
from .config import DEFAULT_RUNS_ROOT

#: config.json keys that say what a run learned or where it ran, not what was asked: never a "setting that differs".
NOT_SETTINGS = {"n_photos", "n_people", "norm", "weights_file", "overrides_changed", "overrides_changes", "extra_data",
                "resume", "plots", "device", "threads", "eval_batch_size", "crop"}
SCORES = ["oof_f1", "oof_f1_mask", "oof_f1_gender", "oof_f1_age"]
SORT_KEYS = ("oof_f1", "oof_f1_mask", "oof_f1_gender", "oof_f1_age", "run", "train_s", "best_epoch")


@dataclass
class RunsTable:
    """The compared runs: ``table`` (one row per run: run, the differing settings, the scores, best epoch, train_s),
    ``settings`` (the differing settings' names, in config order), ``curves`` (run -> metrics.csv rows)."""

    root: Path
    table: pd.DataFrame
    settings: list[str]
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # folders with config.json but no summary.json (unfinished runs)


def find_runs(root: str | Path = DEFAULT_RUNS_ROOT) -> list[Path]:
    """``root`` itself when it is a run folder (config.json), else its sub-folders that are; sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder; give a folder of run folders (default {DEFAULT_RUNS_ROOT})")
    if (root / "config.json").is_file():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file())


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path}: unreadable; the run folder is damaged (train it again, or move it out)") from None
    return data if isinstance(data, dict) else {}


def _flat(config: dict, prefix: str = "") -> dict:
    """Nested settings one key each (``augment.enabled``), so only the part that differs is shown."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _shown(value) -> str:
    """A setting as one comparable string ("128,96", "none")."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(_shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return Path(value).name if isinstance(value, str) and "/" in value else str(value)


def compare_runs(root: str | Path = DEFAULT_RUNS_ROOT, sort: str = "oof_f1") -> RunsTable:
    """Read every finished run under ``root`` into one ``RunsTable`` sorted by ``sort`` (best first for scores)."""
    if sort not in SORT_KEYS:
        raise InputError(f"--sort {sort}: expected one of {', '.join(SORT_KEYS)}")
    rows, configs, curves, skipped = [], {}, {}, []
    for run in find_runs(root):
        if not (run / "summary.json").is_file():
            skipped.append(run.name)
            continue
        config, summary = _read_json(run / "config.json"), _read_json(run / "summary.json")
        metrics = pd.read_csv(run / "metrics.csv") if (run / "metrics.csv").is_file() else pd.DataFrame()
        best = [f.get("best_epoch") for f in summary.get("per_fold", []) if f.get("best_epoch") is not None]
        rows.append({"run": run.name, **{k: summary.get(k, float("nan")) for k in SCORES},
                     "best_epoch": ",".join(str(b) for b in best) or "-",
                     "train_s": float(metrics["epoch_s"].sum()) if "epoch_s" in metrics else float("nan"),
                     "path": str(run)})
        configs[run.name] = {k: _shown(v) for k, v in _flat({k: v for k, v in config.items() if k not in NOT_SETTINGS}).items()}
        curves[run.name] = metrics
    if not rows:
        raise InputError(f"{root}: no finished run folders (config.json + summary.json) here"
                         + (f"; unfinished: {', '.join(skipped)}" if skipped else ""))
    keys = list(dict.fromkeys(k for c in configs.values() for k in c))
    settings = [k for k in keys if len({c.get(k, "-") for c in configs.values()}) > 1]
    table = pd.DataFrame(rows)
    for k in settings:
        table[k] = [configs[r].get(k, "-") for r in table["run"]]
    table = table[["run", *settings, *SCORES, "best_epoch", "train_s", "path"]]
    ascending = sort in ("run", "train_s", "best_epoch")
    table = table.sort_values(sort, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)
    return RunsTable(Path(root), table, settings, curves, skipped)
