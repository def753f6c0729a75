"""``tune``: an Optuna search over training settings on person-grouped folds, scored by out-of-fold macro F1.

Every trial is a real ``train`` run (``OUT/trials/trial_NNN/``) on the same cache with the same folds
(``--folds``, ``--seed``); its score is the run's out-of-fold 18-class macro F1 (``summary.json``). After each
epoch the trainer's ``on_epoch_end`` reports the fold's best validation F1 so far to Optuna at step
``fold position x max epochs + epoch`` (so fold f of every trial shares steps), and the median pruner stops a
trial whose report falls below the median of the earlier trials at that step (``optuna.TrialPruned`` raised
from the hook). The study lives in ``OUT/study.db`` (Optuna's SQLite storage): running the same command again
continues it. A trial that was running when the tune was stopped is marked failed and its values are tried
again first. Finished trials keep their ``best.safetensors`` and tables; the resume files (``state.pt``,
``last.safetensors``) are removed, and a pruned trial keeps only its ``metrics.csv``.

Writes ``best.yaml`` (the best trial as ``train`` options: ``train CACHE --config best.yaml``), ``trials.csv``,
``tune.json`` after every trial, and ``history.png`` / ``importance.png`` (Optuna's matplotlib plots) at the end.
Optuna itself is imported here only, and its own logging is silenced while a tune runs: stages never print.
"""
from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ...curate.cache import Cache, load_cache
from ...curate.errors import InputError
from ...curate.locks import folder_lock
from ...curate.outputs import claimed_output
from ...curate.progress import QUIET, Progress
from ..fit import train
from .tune_space import SearchSpace, check_space, space_record, suggest, trial_config, write_best_config

STUDY = "facecurate-tune"
DB = "study.db"
RESUME_FILES = ("state.pt", "last.safetensors")


@dataclass
class TuneResult:
    """What a tune holds after this call: the best trial, the trial counts by state, the files written."""

    out: Path
    best_value: float | None
    best_trial: int | None
    best_params: dict
    best_config: Path | None
    counts: dict[str, int]
    ran: int
    files: list[Path] = field(default_factory=list)


class _Prefixed:
    """Passes the trainer's progress on with the trial named in front, so every bar says which trial it is; a note
    every trial repeats word for word (the batches per epoch) is passed on once per tune."""

    def __init__(self, progress: Progress, prefix: str, seen: set[str]) -> None:
        self.progress, self.prefix, self.seen = progress, prefix, seen

    def update(self, task: str, done: int, total: int, info: str = "") -> None:
        self.progress.update(f"{self.prefix} {task}", done, total, info)

    def note(self, text: str) -> None:
        if text not in self.seen:
            self.seen.add(text)
            self.progress.note(f"{self.prefix}: {text}")


def default_tune_dir(cache: str | Path) -> Path:
    """``artifacts/tune/<cache name>``."""
    return Path("artifacts/tune") / Path(cache).resolve().name


def _settings(cache: Cache, space: SearchSpace, folds: int, batch_size: int, seed: int) -> dict:
    sums = (cache.meta or {}).get("checksums") or {}
    return {"cache": str(Path(cache.path).resolve()), "cache_manifest": sums.get("manifest"), "space": space_record(space),
            "folds": folds, "batch_size": batch_size, "seed": seed}


def _check_resume(study, settings: dict, out: Path) -> None:
    old = study.user_attrs.get("settings")
    if old is None:
        study.set_user_attr("settings", settings)
        return
    diff = [k for k in settings if json.dumps(old.get(k), sort_keys=True) != json.dumps(settings[k], sort_keys=True)]
    if diff:
        raise InputError(f"{out}: this tune was started with other {', '.join(diff)} (see its tune.json); run it with the "
                         f"same options to continue it, or give another --out for a new tune")


def _recover(study, progress: Progress) -> None:
    """Trials left running by a killed tune are failed; interrupted trials are queued once to run again first."""
    from optuna.trial import TrialState

    storage = study._storage  # noqa: SLF001 - Optuna has no public call to fail a stale trial
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(t._trial_id, "interrupted", True)  # noqa: SLF001
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)  # noqa: SLF001
    requeued = list(study.user_attrs.get("requeued", []))
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.user_attrs.get("interrupted") and t.number not in requeued and t.params:
            study.enqueue_trial(t.params)
            requeued.append(t.number)
            progress.note(f"tune: trial {t.number} was interrupted; its values run again first")
    study.set_user_attr("requeued", requeued)


def _tidy(run: Path, pruned: bool) -> None:
    """Drop the files only a resumed run needs (a pruned trial also drops its weights)."""
    for name in RESUME_FILES + (("best.safetensors",) if pruned else ()):
        for p in run.glob(f"fold_*/{name}"):
            p.unlink(missing_ok=True)


def step_name(step: int, max_epochs: int) -> str:
    """A report step (fold position x max epochs + epoch) in words: 'fold 1 epoch 3'."""
    fold = (int(step) - 1) // max_epochs
    return f"fold {fold} epoch {int(step) - fold * max_epochs}"


def _describe(values: dict) -> str:
    return (f"{values['model']} {values['img_height']}px {values['epochs']} ep lr {values['lr']:.2g} wd "
            f"{values['weight_decay']:.2g} {values['loss']} sampler {values['sampler']}")


def _objective(cache: Cache, out: Path, space: SearchSpace, fixed: dict, progress: Progress):
    import optuna

    shape = tuple(cache.images.shape[1:3])
    max_epochs = space.epochs[1]
    seen: set[str] = set()

    def objective(trial) -> float:
        values = suggest(trial, space)
        cfg = trial_config(values, shape, **fixed)
        run = out / "trials" / f"trial_{trial.number:03d}"
        trial.set_user_attr("run", str(run))
        trial.set_user_attr("train", {"model": cfg.model, "img_size": list(cfg.img_size), "epochs": cfg.epochs})
        best: dict[int, float] = {}
        order = {f: i for i, f in enumerate(range(cfg.folds))}

        def on_epoch_end(fold: int, epoch: int, row: dict) -> None:
            f1 = row.get("val_f1", float("nan"))
            best[fold] = max(best.get(fold, -1.0), f1 if math.isfinite(f1) else -1.0)
            trial.report(best[fold], order[fold] * max_epochs + epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"fold {fold} epoch {epoch}: best validation F1 {best[fold]:.3f} below the median")

        progress.note(f"trial {trial.number}: {_describe(values)}")
        try:
            train(cache, run, cfg, progress=_Prefixed(progress, f"t{trial.number}", seen), on_epoch_end=on_epoch_end)
        except optuna.TrialPruned:
            _tidy(run, pruned=True)
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        summary = json.loads((run / "summary.json").read_text())
        for k in ("oof_f1_mask", "oof_f1_gender", "oof_f1_age", "oof_acc"):
            trial.set_user_attr(k, summary.get(k))
        _tidy(run, pruned=False)
        value = float(summary["oof_f1"])
        return value if math.isfinite(value) else 0.0

    return objective


def _write_tables(study, out: Path, cache: Cache, fixed: dict) -> tuple[Path | None, dict]:
    """trials.csv, tune.json and best.yaml from the study as it stands."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
    frame.to_csv(out / "trials.csv", index=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(done, key=lambda t: t.value) if done else None
    best_path = None
    info = {"settings": study.user_attrs.get("settings"), "counts": counts, "best": None}
    if best is not None:
        values = {**_fixed_values(study), **best.params}
        values["img_height"] = values.pop("img_size")
        cfg = trial_config(values, tuple(cache.images.shape[1:3]), **fixed)
        best_path = write_best_config(out / "best.yaml", cfg, f"best of {len(done)} finished trial(s) of the tune in {out}: "
                                      f"trial {best.number}, out-of-fold macro F1 {best.value:.4f}\n"
                                      f"repeat it: facecurate train {cache.path} --config {out / 'best.yaml'}")
        info["best"] = {"trial": best.number, "value": best.value, "params": best.params, "run": best.user_attrs.get("run"),
                        **{k: best.user_attrs.get(k) for k in ("oof_f1_mask", "oof_f1_gender", "oof_f1_age")}}
    (out / "tune.json").write_text(json.dumps(info, indent=2, default=str))
    return best_path, info


def _fixed_values(study) -> dict:
    """The values of the dimensions that were not searched (one value each), keyed as Optuna names them."""
    space = study.user_attrs["settings"]["space"]
    return {"model": space["models"][0], "img_size": space["img_sizes"][0], "epochs": space["epochs"][0],
            "lr": space["lr"][0], "weight_decay": space["weight_decay"][0], "loss": space["losses"][0],
            "sampler": space["samplers"][0]}


def write_plots(study, out: Path, searched: list[str], progress: Progress) -> list[Path]:
    """history.png and importance.png (Optuna's matplotlib plots), each when the study has enough to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    written = []
    plots = [("history.png", vis.plot_optimization_history, 1, "a finished trial")]
    if not searched:
        progress.note("tune: every dimension has one value (nothing searched): no importance.png")
    elif len({t.value for t in done}) >= 2:
        plots.append(("importance.png", vis.plot_param_importances, 2, "two finished trials with different scores"))
    else:
        progress.note("tune: importance.png needs two finished trials with different scores; not drawn yet")
    for name, plot, need, what in plots:
        if len(done) < need:
            progress.note(f"tune: {name} needs {what}; not drawn yet")
            continue
        try:
            ax = plot(study)
        except (ValueError, RuntimeError) as e:  # e.g. nothing was searched: no importance to give
            progress.note(f"tune: {name} not drawn ({e})")
            continue
        ax = ax[0] if hasattr(ax, "__len__") else ax
        counts = f"{len(done)} finished trial(s)"
        if name == "history.png":
            ax.set_title(f"tune: out-of-fold macro F1 per trial ({counts}; pruned trials have none)")
            ax.set_ylabel("out-of-fold macro F1 (18 classes)")
        else:
            ax.set_title(f"tune: which settings moved the F1 (Optuna's fANOVA over {counts})")
        fig = ax.figure
        fig.set_size_inches(8, 4.5)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(out / name)
    return written


def check_study_db(path: Path) -> None:
    """SQLite's own ``quick_check`` of an existing study.db: a cut or damaged file is one line naming it (Optuna
    would stop on ``sqlite3.DatabaseError``, or read a part of the trials)."""
    import sqlite3

    if not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            verdict = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as e:
        verdict = [f"{type(e).__name__}: {e}"]
    if verdict != ["ok"]:
        raise InputError(f"{path}: the study database is damaged ({verdict[0][:80]}); move it away to start the tune "
                         f"afresh (each trial's run stays under trials/)")


@contextlib.contextmanager
def _optuna_quiet():
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def tune(cache: str | Path | Cache, out: str | Path, space: SearchSpace = SearchSpace(), trials: int = 20,
         timeout_min: float | None = None, folds: int = 3, batch_size: int = 32, seed: int = 0, device: str | None = None,
         threads: int | None = None, pruner: str = "median", startup_trials: int = 3,
         progress: Progress | None = None, groups: str | Path | None = None) -> TuneResult:
    """Run (or continue) the study in ``out`` until it holds ``trials`` finished trials or ``timeout_min`` passes;
    ``groups``: a person,group CSV, so every trial keeps one person's ids in one fold (``train --groups``)."""
    import optuna

    progress = progress or QUIET
    cache = cache if isinstance(cache, Cache) else load_cache(cache)
    if trials < 1 or startup_trials < 0 or (timeout_min is not None and timeout_min <= 0):
        raise InputError("--trials must be >= 1, --startup-trials >= 0 and --timeout > 0 minutes")
    if pruner not in ("median", "none"):
        raise InputError(f"--pruner must be median or none, got {pruner!r}")
    fixed = dict(folds=folds, batch_size=batch_size, seed=seed, device=device, threads=threads,
                 groups=str(groups) if groups else None)
    check_space(space, tuple(cache.images.shape[1:3]), **fixed)
    out = Path(out)
    with claimed_output(out, "tune", [cache.path], recognise=lambda p: (p / DB).is_file()), \
            folder_lock(cache.path, "cache", shared=True), _optuna_quiet():
        check_study_db(out / DB)
        storage = optuna.storages.RDBStorage(f"sqlite:///{out.resolve() / DB}")
        study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize", load_if_exists=True)
        _check_resume(study, _settings(cache, space, folds, batch_size, seed), out)
        _recover(study, progress)
        before = len(study.get_trials(deepcopy=False))
        study.sampler = optuna.samplers.TPESampler(seed=seed + before, n_startup_trials=max(startup_trials, 1))
        study.pruner = (optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=space.epochs[0])
                        if pruner == "median" else optuna.pruners.NopPruner())
        finished = lambda: sum(t.state.is_finished() and t.state.name != "FAIL" for t in study.get_trials(deepcopy=False))  # noqa: E731
        left = max(0, trials - finished())
        if finished():
            progress.note(f"tune: {out / DB} holds {finished()} finished trial(s); {left} more to reach --trials {trials}")

        def after(study, t) -> None:
            _write_tables(study, out, cache, fixed)
            best = study.best_trial if any(x.state.name == "COMPLETE" for x in study.get_trials(deepcopy=False)) else None
            what = (f"F1 {t.value:.4f}" if t.state.name == "COMPLETE" else t.state.name.lower()
                    + (f" at {step_name(t.last_step, space.epochs[1])}" if t.last_step is not None else ""))
            progress.note(f"trial {t.number}: {what}" + (f" (best {best.value:.4f}, trial {best.number})" if best else ""))

        if left:
            study.optimize(_objective(cache, out, space, fixed, progress), n_trials=left,
                           timeout=None if timeout_min is None else timeout_min * 60, callbacks=[after])
        best_path, info = _write_tables(study, out, cache, fixed)
        files = [out / DB, out / "trials.csv", out / "tune.json", *([best_path] if best_path else []),
                 *write_plots(study, out, space.searched(), progress)]
        best = info["best"] or {}
        return TuneResult(out, best.get("value"), best.get("trial"), best.get("params", {}), best_path, info["counts"],
                          len(study.get_trials(deepcopy=False)) - before, files)
