"""A training run: person-grouped folds over the cache, one timm model per fold, a run folder on disk.

``train(cache, out, cfg)`` writes ``out/``: ``config.json``, ``fold_<i>/{best,last}.safetensors`` (+
``state.pt`` to resume), ``metrics.csv``, ``tensorboard/``, ``oof.parquet``, ``confusion.png``,
``curves.png`` and ``summary.json``, and returns ``out``. The fold loop itself is ``fold.fit_fold``; the
``--extra`` caches (``extra.load_extra``) sit behind the main cache's rows and join every fold's training.
``quick_oof`` is the short preset relabel-report's CLI trains when it is given no out-of-fold table.
``plan_run`` checks the data and folds into one record, ``FitPlan``, before anything is written.
Started by torchrun (``WORLD_SIZE`` > 1), ``train`` runs the same on every rank with DistributedDataParallel
(``distributed``): the folds are computed on every rank and checked equal, rank 0 alone claims, locks and
writes the run folder, and ``check_distributed`` is what ``train --ddp N`` checks before it starts torchrun.
One process runs the same code with ``distributed.OneProcess``. With ``cfg.fold_workers`` above 1 on the CPU the folds
train side by side, each a one-fold run in its own process (``fold_pool``), joined into the same run folder.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..curate.cache import Cache, load_cache
from ..curate.errors import InputError
from ..curate.locks import folder_lock, writer_of
from ..curate.outputs import claim_output, claimed_output
from ..curate.overrides import EXCLUDED, ORIG_COLUMNS, apply_overrides, describe_changes, override_changes, read_overrides
from ..curate.progress import QUIET, Progress
from . import distributed, fold_pool
from .augment import Norm
from .checkpoint import BEST, load_weights, write_atomic
from .config import (
    PROBE_MODELS,
    RESUME_KEYS,
    TrainConfig,
    QUICK_FOLDS,
    QUICK_STEPS,
    folds_to_run,
    parse_img_size,
    quick_config,
    validate_config,
)
from .data import LABEL_COLUMN, CacheImages, SourceImages, label_array, steps_per_epoch
from .extra import ExtraCache, load_extra
from .fold import FoldInputs, RunTask, fit_fold, new_model
from .groups import groups_record, person_groups, read_groups
from .infer import infer_probs, probs_frame, probs_from_frame
from .metrics import confusion, head_metrics, per_class
from .model import build_model, resolve_weights
from .run_folder import check_fresh, clear_run, plot_guard, write_parquet
from .runtime import NoEvents, amp_dtype, event_writer, pick_device, torch_threads
from .splits import holdout_persons, kfold_persons, split_indices


def data_norm(model: torch.nn.Module) -> Norm:
    """The model's own input normalisation (mean, std) from timm's data config (0.5/0.5 for many ViTs, ImageNet's for most CNNs)."""
    from timm.data import resolve_model_data_config

    dc = resolve_model_data_config(model)
    return tuple(float(v) for v in dc["mean"]), tuple(float(v) for v in dc["std"])


def training_labels(cache: Cache, cfg: TrainConfig, age_bins) -> tuple[pd.DataFrame, np.ndarray, int, tuple[int, int] | None]:
    """(labelled usable manifest rows after overrides, their cache row numbers, photos changed by overrides, (photos,
    people) the overrides' exclude rows left out or None); excluded photos are not among the rows."""
    manifest = cache.manifest
    changed, excluded = 0, None
    if cfg.overrides:
        manifest, changed = apply_overrides(manifest, read_overrides(cfg.overrides), age_bins)
    rows = cache.usable()
    labelled = label_array(manifest.iloc[rows])[:, LABEL_COLUMN["class"]] >= 0
    rows = rows[labelled]
    if EXCLUDED in manifest:
        out = manifest[EXCLUDED].to_numpy(bool)[rows]
        if out.any():
            excluded = int(out.sum()), int(manifest.iloc[rows[out]]["person"].nunique())
        rows = rows[~out]
    if len(rows) < 4:
        raise InputError(f"{cache.path}: only {len(rows)} labelled photos without errors; training needs a labelled cache")
    return manifest.iloc[rows].reset_index(drop=True), rows, changed, excluded


def _is_run(path: Path) -> bool:
    """A run folder written before folder markers existed: its config.json names a model and a cache."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and "model" in config and "cache" in config


def check_heads(manifest: pd.DataFrame, labels: np.ndarray, progress: Progress) -> None:
    """Refuse data with fewer than two classes (nothing to tell apart); say loudly when one head has a single class."""
    present = {h: np.unique(labels[:, LABEL_COLUMN[h]]) for h in LABEL_COLUMN}
    if len(present["class"]) < 2:
        raise InputError(f"the training photos hold a single class ({int(present['class'][0])}); a classifier needs at "
                         f"least two: nothing to learn and every score would be meaningless")
    for head in ("mask", "gender", "age"):
        if len(present[head]) < 2:
            progress.note(f"warning: every training photo has the same {head} ({int(present[head][0])}); the {head} head "
                          f"cannot learn and its F1 is reported as n/a")


@dataclass(frozen=True)
class FitPlan:
    """What a run trains on, checked before anything is written (``plan_run``)."""

    manifest: pd.DataFrame      # the labelled usable rows of the main cache, after --overrides
    rows: np.ndarray            # their row numbers in the cache
    changed: int                # photos whose labels --overrides changed
    fold_ids: np.ndarray        # fold id per manifest row
    extra: list[ExtraCache]     # the --extra caches, de-duplicated against the main photos
    excluded: int = 0           # labelled photos --overrides' exclude rows left out
    groups: dict | None = None  # person -> group of the ids linked as one person (--groups, identity overrides), or None

    def caches(self, cache: Cache) -> list[Cache]:
        """The main cache and the extra caches: what the run reads (and its folder must not overlap)."""
        return [cache, *(x.cache for x in self.extra)]

    def train_photos(self, cfg: TrainConfig) -> list[int]:
        """Photos per epoch of each fold ``cfg`` trains (with every extra photo once per epoch unless --extra-weight)."""
        n_extra = sum(len(x.rows) for x in self.extra) if cfg.extra_weight is None else 0
        return [len(split_indices(self.fold_ids, f)[0]) + n_extra for f in folds_to_run(cfg)]


def train(cache: str | Path | Cache, out: str | Path, cfg: TrainConfig = TrainConfig(), progress: Progress | None = None,
          on_epoch_end: Callable[[int, int, dict], None] | None = None,
          on_save: Callable[[str, int, int], None] | None = None, replace: bool = False) -> Path:
    """Train ``cfg`` on the cache and write the run folder ``out`` (see module doc); returns ``out``.

    ``on_epoch_end(fold, epoch, metrics_row)`` is called after each epoch's files are saved; ``on_save``
    after each file (see ``fold.fit_fold``). The run folder is locked while the run writes it, and the
    cache locked against rewriting while it is read. Without ``cfg.resume`` a folder holding a run is
    refused (``check_fresh``), unless ``replace``: then that run's files are deleted first.
    """
    cache = cache if isinstance(cache, Cache) else load_cache(cache)
    progress = progress or QUIET
    validate_config(cfg)
    if cfg.model in PROBE_MODELS:  # heads on the cache's embeddings, the same folds, the same run files
        from .probe import RunWriters, check_probe, train_probe
        check_probe(cfg, cache)  # before the data is read: the options a probe cannot take, the embeddings it needs
        writers = RunWriters(_write_config, _oof_part, _finish, _is_run)
        return train_probe(cache, Path(out), cfg, plan_run(cache, cfg, progress), writers, progress, replace)
    workers = fold_pool.pool_size(cfg, pick_device(cfg.device).type, Path(out))
    if workers > 1 and distributed.env_world() == 1 and on_save is None:
        return _train_side_by_side(cache, Path(out), cfg, workers, progress, on_epoch_end, replace)
    dist = distributed.setup(cfg.device)  # OneProcess unless started by torchrun with more than one process
    try:
        return _train_ranks(cache, Path(out), cfg, dist, progress, on_epoch_end, on_save, replace)
    finally:
        distributed.teardown(dist)


def _train_ranks(cache: Cache, out: Path, cfg: TrainConfig, dist: distributed.Ranks, progress: Progress,
                 on_epoch_end, on_save, replace: bool = False) -> Path:
    """``train`` on this rank (or the one process): rank 0's folder and reports, the same plan checked on every rank."""
    progress = progress if dist.main else QUIET
    out = Path(dist.broadcast(str(out)))  # rank 0's folder, however each rank's default was picked
    plan = plan_run(cache, cfg, progress)  # every check that needs the data, before anything is written
    dist.same_everywhere("training rows, labels, folds and options", plan.rows, label_array(plan.manifest), plan.fold_ids,
                         *(x.rows for x in plan.extra), json.dumps(asdict(cfg), sort_keys=True, default=str))
    dist.check_batches(cfg.batch_size, plan.train_photos(cfg))
    caches = plan.caches(cache)
    with contextlib.ExitStack() as locks:
        # the run folder's claim and lock: rank 0's; the caches are read by all
        run_folder = claimed_output(out, "run", [c.path for c in caches], recognise=_is_run, what="run")
        dist.on_main(locks.enter_context, run_folder)
        dist.on_main(clear_run if replace and not cfg.resume else check_fresh, out, cfg)
        for c in caches:
            locks.enter_context(folder_lock(c.path, "cache", shared=True))
        locks.enter_context(torch_threads(cfg.threads))
        return _train(cache, out, cfg, plan, progress, on_epoch_end, on_save, dist)


def _train_side_by_side(cache: Cache, out: Path, cfg: TrainConfig, workers: int, progress: Progress, on_epoch_end,
                        replace: bool) -> Path:
    """``train`` with its folds in ``workers`` processes (``fold_pool``): the same checks, claim and locks as one
    process, then the folds' runs joined into ``out`` and finished as the loop finishes a run."""
    plan = plan_run(cache, cfg, progress)  # every check that needs the data, before anything is written
    caches = plan.caches(cache)
    with contextlib.ExitStack() as locks:
        locks.enter_context(claimed_output(out, "run", [c.path for c in caches], recognise=_is_run, what="run"))
        (clear_run if replace and not cfg.resume else check_fresh)(out, cfg)
        for c in caches:
            locks.enter_context(folder_lock(c.path, "cache", shared=True))
        parts = fold_pool.train_side_by_side(Path(cache.path), out, cfg, workers, progress, on_epoch_end)
        config, oof, history, summaries, extra = fold_pool.join_parts(out, parts)
        _write_config(out, cfg, {**config, "fold": cfg.fold, "threads": cfg.threads, "fold_workers": cfg.fold_workers,
                                 "plots": cfg.plots, "resume": cfg.resume})
        fold_pool.write_joined(out, oof, history)
        _finish(out, oof, history, summaries, cache.age_bins, cfg, extra)
        shutil.rmtree(out / fold_pool.PARTS)
    return out


def check_distributed(cache: Cache, out: str | Path, cfg: TrainConfig, world: int) -> None:
    """What ``train --ddp N`` checks before it starts torchrun, so bad input is one line before any process starts:
    the options, the device for ``world`` processes, the data and folds, the batch split and the output folder
    (claimed here, as rank 0 will claim it; nobody else may be writing it)."""
    validate_config(cfg)
    distributed.rank_device(cfg.device, 0, world)
    plan = plan_run(cache, cfg, QUIET)
    distributed.check_batches(cfg.batch_size, world, plan.train_photos(cfg))
    # rank 0 claims it again (a no-op); its lock is rank 0's to take
    claim_output(Path(out), "run", [c.path for c in plan.caches(cache)], recognise=_is_run)
    if writer_of(out):
        raise InputError(f"{out}: this run is being written by {writer_of(out)}; wait for it to finish (or stop it), then run again")
    check_fresh(Path(out), cfg)


def plan_run(cache: Cache, cfg: TrainConfig, progress: Progress) -> FitPlan:
    """The run's training rows, labels and folds, checked (``FitPlan``); the extra caches are de-duplicated against the
    main photos."""
    manifest, rows, changed, excluded = training_labels(cache, cfg, cache.age_bins)
    lines = describe_changes(override_changes(manifest))
    if excluded:
        lines.append(f"--overrides: {excluded[0]} photo(s) of {excluded[1]} people excluded from training (exclude rows)")
    for line in lines:  # what --overrides does, said before training
        progress.note(line)
    check_heads(manifest, label_array(manifest), progress)
    people = manifest["person"].nunique()
    if cfg.val_ratio is None and people < 2:
        raise InputError(f"{cache.path}: the cache holds {people} labelled person; K-fold needs photos of at least 2 "
                         f"people: add people to the data")
    if cfg.val_ratio is None and cfg.folds > people:
        raise InputError(f"--folds {cfg.folds}: the cache holds {people} labelled people; use at most {people} folds")
    groups = person_groups(manifest, cfg.groups)
    if cfg.val_ratio is None and groups and cfg.folds > len(set(groups.values())) + manifest["person"].nunique() - len(groups):
        raise InputError(f"--folds {cfg.folds}: the cache holds fewer people than folds once the ids of one group are "
                         f"counted once (--groups / identity overrides); use fewer folds")
    fold_ids = (holdout_persons(manifest, cfg.val_ratio, cfg.seed, groups) if cfg.val_ratio is not None
                else kfold_persons(manifest, cfg.folds, cfg.seed, groups))
    extra = load_extra(cfg.extra, cache, rows, cfg.task, cache.age_bins, progress) if cfg.extra else []
    return FitPlan(manifest, rows, changed, fold_ids, extra, excluded[0] if excluded else 0, groups)



def _write_config(out: Path, cfg: TrainConfig, config: dict) -> None:
    cfg_path = out / "config.json"
    if cfg.resume and cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        defaults = asdict(TrainConfig())  # a key missing from an older run's config held its default
        diff = [k for k in RESUME_KEYS if json.dumps(old.get(k, defaults.get(k))) != json.dumps(config.get(k))]
        if diff:
            raise InputError(f"{cfg_path}: --resume with different {', '.join(diff)} than the run it continues")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(cfg_path, json.dumps(config, indent=2).encode())


def _oof_part(f: int, manifest: pd.DataFrame, labels: np.ndarray, val_pos: np.ndarray, probs: dict) -> pd.DataFrame:
    """The out-of-fold rows of fold ``f``: ids, labels trained on, probabilities, prediction."""
    meta = manifest.iloc[val_pos]
    part = pd.DataFrame({"image_id": meta["image_id"].astype(str).to_numpy(), "person": meta["person"].astype(str).to_numpy(),
                         "photo": meta["photo"].astype(str).to_numpy(), "fold": f,
                         "label": labels[val_pos, LABEL_COLUMN["class"]], "mask": labels[val_pos, LABEL_COLUMN["mask"]],
                         "gender": labels[val_pos, LABEL_COLUMN["gender"]], "age_group": labels[val_pos, LABEL_COLUMN["age"]]})
    for c in ORIG_COLUMNS:  # the labels before --overrides, so scores can be given against both
        if c in meta:
            part[c] = meta[c].astype("Int64").fillna(-1).to_numpy(dtype=int)
    part = pd.concat([part, probs_frame(probs)], axis=1)
    part["pred"] = probs["class"].argmax(1)
    return part


def _train(cache: Cache, out: Path, cfg: TrainConfig, plan: FitPlan, progress: Progress, on_epoch_end, on_save,
           dist: distributed.Ranks) -> Path:
    """The folds of ``plan`` into the claimed run folder ``out``, then the out-of-fold table and summary (rank 0 writes)."""
    device = dist.device
    # CPU kernels used here are deterministic (the tests check it); on CUDA speed wins over bit-exact repeats
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    age_bins = cache.age_bins
    manifest, rows, extra = plan.manifest, plan.rows, plan.extra
    labels = np.concatenate([label_array(manifest), *(x.labels for x in extra)]).reshape(-1, len(LABEL_COLUMN))
    extra_pos = np.arange(len(rows), len(labels))
    size = tuple(cfg.img_size) if cfg.img_size else tuple(int(s) for s in cache.images.shape[1:3])
    norm = data_norm(build_model(cfg.model, cfg.task, age_loss=cfg.age_loss))
    weights_file = str(resolve_weights(cfg.weights)[0].resolve()) if cfg.weights else None
    main = dist.main
    dist.on_main(_write_config, out, cfg, {
        **asdict(cfg), "img_size": list(size), "cache": str(Path(cache.path).resolve()),
        "crop": (cache.meta or {}).get("params", {}), "age_bins": list(age_bins), "overrides_changed": plan.changed,
        "overrides_excluded": plan.excluded, "overrides_changes": override_changes(manifest) or None, "n_photos": int(len(rows)),
        "n_people": int(manifest["person"].nunique()), "device": str(device), "weights_file": weights_file,
        "norm": {"mean": list(norm[0]), "std": list(norm[1])}, "extra_data": [x.record for x in extra],
        **groups_record(cfg.groups, plan.groups), **dist.record(cfg.batch_size)})

    images = SourceImages([CacheImages(cache.images, device, rows), *(CacheImages(x.cache.images, device, x.rows) for x in extra)])
    labels_t = torch.as_tensor(labels, device=device)
    resumed = main and cfg.resume
    history = pd.read_csv(out / "metrics.csv") if resumed and (out / "metrics.csv").is_file() else pd.DataFrame()
    oof_old = pd.read_parquet(out / "oof.parquet") if resumed and (out / "oof.parquet").is_file() else pd.DataFrame()
    writer = event_writer(progress) if main else NoEvents  # ranks other than 0 log nowhere

    summaries, oof_parts = [], []
    folds = folds_to_run(cfg)
    run_task = RunTask(progress, folds, cfg.epochs, on_epoch_end)  # the whole run's bar and ETA
    for f in folds:
        train_pos, val_pos = split_indices(plan.fold_ids, f)
        if len(val_pos) == 0 or len(train_pos) < 2:
            raise InputError(f"fold {f}: {len(train_pos)} training and {len(val_pos)} validation photos; too few people for {cfg.folds} folds")
        with writer(str(out / "tensorboard" / f"fold_{f}")) as tb:
            data = FoldInputs(images, labels, labels_t, train_pos, val_pos, extra_pos, size, norm, device)
            fold_rows, best = fit_fold(f, cfg, data, out, history, tb, progress, run_task.epoch_end, on_save, dist)
        run_task.fold_done(f)
        history = pd.concat([history[history["fold"] != f] if len(history) else history, pd.DataFrame(fold_rows)],
                            ignore_index=True)
        dist.sync()  # rank 0 has written the fold's files: every rank reads its best weights
        if main:
            write_atomic(out / "metrics.csv", history.to_csv(index=False).encode())
        # out-of-fold probabilities of the best checkpoint, with the flipped photo averaged in (as predict does)
        model = load_weights(new_model(cfg, device), out / f"fold_{f}" / BEST)
        probs = infer_probs(model, images, dist.shard(val_pos), size, cfg.task, cfg.eval_batch_size, flip_tta=True,
                            dtype=amp_dtype(cfg.amp, device), channels_last=device.type == "cuda" and cfg.channels_last,
                            norm=norm, age_loss=cfg.age_loss)
        probs = dist.gather_probs(probs)
        if not main:
            continue
        oof_parts.append(_oof_part(f, manifest, labels, val_pos, probs))
        done = list(oof_parts)
        if len(oof_old):
            done.insert(0, oof_old[~oof_old["fold"].isin([q["fold"].iloc[0] for q in oof_parts])])
        write_parquet(out / "oof.parquet", pd.concat(done, ignore_index=True))
        summaries.append({"fold": f, **best, **{f"tta_{k}": v for k, v in head_metrics(probs, labels[val_pos]).items()}})

    if main:
        _finish(out, pd.read_parquet(out / "oof.parquet"), history, summaries, age_bins, cfg, [x.record for x in extra])
    dist.sync()  # every rank returns once the run folder is complete
    return out


def _finish(out: Path, oof: pd.DataFrame, history: pd.DataFrame, summaries: list[dict], age_bins, cfg: TrainConfig,
            extra: list[dict] = ()) -> dict:
    """Plots and summary.json from the out-of-fold table and the metric history."""
    from .plots import plot_confusion, plot_curves

    probs = probs_from_frame(oof)
    labels = oof[["mask", "gender", "age_group", "label"]].to_numpy()
    m = head_metrics(probs, labels, prefix="oof_")
    table = per_class(probs, labels, age_bins)
    write_atomic(out / "per_class.csv", table.to_csv(index=False, float_format="%.4f").encode())
    if cfg.plots:
        mats = {h: confusion(labels[:, LABEL_COLUMN[h]], probs[h].argmax(1), h) for h in probs}
        with plot_guard(out / "confusion.png"):
            plot_confusion(out / "confusion.png", mats, {h: m[f"oof_f1{'' if h == 'class' else '_' + h}"] for h in probs},
                           age_bins, per_class=table)
        if len(history):
            with plot_guard(out / "curves.png"):
                plot_curves(out / "curves.png", history)
    if all(c in oof for c in ORIG_COLUMNS):  # --overrides: also scored against the original labels
        m.update(head_metrics(probs, oof[ORIG_COLUMNS].to_numpy(), prefix="oof_orig_"))
        m["overrides_changes"] = override_changes(oof)
    summary = {**m, "n_oof": int(len(oof)), "folds": sorted(int(x) for x in oof["fold"].unique()), "per_fold": summaries,
               "extra": list(extra)}
    write_atomic(out / "summary.json", json.dumps(summary, indent=2, default=float).encode())
    return summary


def quick_plan(cache: str | Path | Cache, folds: int = QUICK_FOLDS, steps: int = QUICK_STEPS, epochs: int | None = None,
               model: str | None = None, image_size: int | str = 64, batch_size: int = 32, device: str | None = None,
               seed: int = 0, threads: int | None = None, groups: str | Path | None = None,
               fold_workers: int = 0) -> TrainConfig:
    """The short K-fold preset (``quick_config``) for ``cache``, checked: InputError before any training when it cannot run.

    ``steps``: optimiser steps per fold whatever the cache's size, as whole epochs enough that the fold with the
    fewest photos reaches it; ``epochs`` (not None) sets the epochs instead. ``image_size``: the input height (the
    width keeps the cache's aspect) or "HEIGHT,WIDTH", as `train --img-size` reads it; ``model`` None = the
    quick model (``QUICK_MODEL``); ``groups``: a person,group CSV (relabel-report's identity_groups.csv): one person's ids share a
    fold; ``fold_workers``: folds trained side by side on the CPU (``fold_pool``; 0 = one per core).
    """
    cache = cache if isinstance(cache, Cache) else load_cache(cache, verify="off")
    size = parse_img_size(str(image_size), cache.path)  # InputError under 8 px or not HEIGHT[,WIDTH]
    if size is None or max(size) > 4096:
        raise InputError(f"--img-size {image_size}: expected HEIGHT or HEIGHT,WIDTH, each 8..4096 pixels")
    if epochs is None and steps < 1:
        raise InputError(f"--steps {steps}: expected at least 1 optimiser step per fold")
    changes = dict(folds=folds, epochs=epochs or 1, img_size=size, batch_size=batch_size, device=device, seed=seed, threads=threads,
                   groups=str(groups) if groups else None, fold_workers=fold_workers)
    if model:
        changes["model"] = model
    cfg = quick_config(**changes)
    validate_config(cfg)
    if groups:
        read_groups(groups)  # a bad groups file is one line before any training
    if epochs is None:
        fewest = min(steps_per_epoch(n, cfg.batch_size) for n in plan_run(cache, cfg, QUIET).train_photos(cfg))
        cfg = quick_config(**{**changes, "epochs": -(-int(steps) // fewest)})
    pick_device(cfg.device)
    return cfg


def quick_oof(cache: str | Path | Cache, out: str | Path, cfg: TrainConfig | None = None,
              progress: Progress | None = None, **quick) -> Path:
    """Train the quick K-fold (``cfg`` from ``quick_plan``, or ``quick_plan(cache, **quick)``) into ``out``; its ``oof.parquet``."""
    cfg = cfg or quick_plan(cache, **quick)
    run = train(cache, out, cfg=cfg, progress=progress, replace=True)  # a quick run left in a report folder is redone
    oof = Path(run) / "oof.parquet"
    if not oof.is_file():
        raise InputError(f"{run}: the quick training run wrote no oof.parquet")
    return oof
