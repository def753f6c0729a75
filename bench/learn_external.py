#!/usr/bin/env python3
"""External faces for the trainer: 5-fold out-of-fold macro F1 from scratch, with --extra, with --weights, and both.

Main data = ``--people`` people synthesised from ../shared/data/utkface (5-fold by person, out-of-fold
scores); external = ``--external-people`` people synthesised from ../shared/data/utkface-large, none of
them in the main folder: external faces with a main face's file name, bytes or pHash (within 4 bits, on
the 200 x 200 chips) are left out before ``synth`` (UTKFace holds one face under several names; the list
goes to WORK/external_left_out.txt), and ``train --extra`` also drops external people whose crops duplicate
a main crop. Each set goes through ``synth`` and ``crop`` once (reused from ``--work``), via the public
API (``synthesize`` / ``synthesize_sources``, ``crop_dataset``). Configurations (``--configs``):

- ``scratch``: ``train`` on the main cache, as today;
- ``extra``: the same with ``extra=(external cache,)`` at ``--extra-weight`` of each batch;
- ``weights``: first a run on the external cache alone (``--pretrain-epochs``, one person-grouped split with
  ``--pretrain-val`` of its people; reused from --work when its settings match), then the main 5-fold
  started from it (``weights=that run``: its fold 0 best) at ``--finetune-lr``;
- ``both``: ``weights`` and ``extra`` together.

Every configuration runs for each ``--age-loss`` given (ce, ordinal or both). Prints one JSON line: 18-class,
mask, gender and age out-of-fold macro F1 per configuration, their training seconds (the goal: 30 minutes
each on the 2-core CPU; the external run's seconds are reported apart, as it is trained once for any number
of fine-tuned runs), what the external data held and dropped, and the run folders (``relabel_quality`` can
be pointed at the best one's oof.parquet).

Commands:
  .venv/bin/python bench/learn_external.py                       # 300 main people, 2000 external, 15 epochs, ce
  .venv/bin/python bench/learn_external.py --age-loss ce,ordinal # both age heads
  .venv/bin/python bench/learn_external.py --people 20 --external-people 40 --epochs 1 --pretrain-epochs 1 \\
      --folds 2 --work /tmp/fc_learn_external_tiny                # a smoke test (about 2-3 minutes)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facecurate.curate.crop import CropParams, crop_dataset  # noqa: E402
from facecurate.curate.synth import synthesize  # noqa: E402
from facecurate.train import TrainConfig, train  # noqa: E402

CONFIGS = ("scratch", "extra", "weights", "both")
GOALS = {"oof_f1": 0.60, "oof_f1_mask": 0.98, "oof_f1_gender": 0.90, "oof_f1_age": 0.70}


def face_hashes(folder: Path, work: Path, tag: str) -> tuple[list[str], object, list[str]]:
    """(file names, pHash of each decoded photo, sha1 of each file) of a face folder, cached in ``work``."""
    import cv2
    import numpy as np

    from facecurate.curate.audit.near_duplicates import perceptual_hash

    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    store = work / f"face_hashes_{tag}.json"
    if store.is_file():
        saved = json.loads(store.read_text())
        if saved["names"] == names:
            return names, np.array([int(h) for h in saved["phash"]], np.uint64), saved["sha1"]
    sha, hashes = [], []
    for s in range(0, len(names), 512):
        chunk = []
        for n in names[s:s + 512]:
            raw = (folder / n).read_bytes()
            sha.append(hashlib.sha1(raw).hexdigest())
            img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
            chunk.append(cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (64, 64), interpolation=cv2.INTER_AREA))
        hashes.append(perceptual_hash(np.stack(chunk)))
    phash = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    store.write_text(json.dumps({"names": names, "phash": [str(int(h)) for h in phash], "sha1": sha}))
    return names, phash, sha


def external_sources(main: Path, external: Path, work: Path):
    """The external faces with none of the main folder's: same name, same bytes, or a pHash within 4 bits
    (UTKFace holds the same face under several names); (FaceSources, problems, what was left out)."""
    from facecurate.curate.synth import read_faces
    from facecurate.train.extra import DUPLICATE_DISTANCE, duplicates_of

    m_names, m_hash, m_sha = face_hashes(main, work, "main")
    e_names, e_hash, e_sha = face_hashes(external, work, "external")
    near = duplicates_of(m_hash, e_hash, DUPLICATE_DISTANCE)
    same_bytes = [s in set(m_sha) for s in e_sha]
    same_name = [n in set(m_names) for n in e_names]
    out = {n for n, a, b, c in zip(e_names, near, same_bytes, same_name) if a or b or c}
    faces, problems = read_faces(external)
    kept = [f for f in faces if Path(f.path).name not in out]
    (work / "external_left_out.txt").write_text("".join(f"{n}\n" for n in sorted(out)))
    return kept, problems, {"main_files": len(m_names), "external_files": len(e_names), "same_name": int(sum(same_name)),
                            "same_bytes": int(sum(same_bytes)), "near_duplicate": int(near.sum()), "left_out": len(out)}


def synth_once(faces, out: Path, people: int | None, seed: int, problems=(), photos: str | None = None) -> dict:
    """``synthesize`` (a folder) or ``synthesize_sources`` (a list of faces) unless ``out`` holds the same request;
    its seconds, photos, photos/s and the process's peak RSS after it (the synth-at-scale figure)."""
    import resource

    from facecurate.curate.labels import PHOTO_STEMS
    from facecurate.curate.synth import synthesize_sources

    photos = photos or ",".join(PHOTO_STEMS)
    meta = out / "synth.json"
    if meta.is_file():
        params = json.loads(meta.read_text()).get("params", {})
        if params.get("people") == people and params.get("seed") == seed and \
                ",".join(params.get("photos", PHOTO_STEMS)) == photos:
            return {"seconds": 0.0, "reused": True}
    t0 = time.perf_counter()
    kw = dict(people=people, seed=seed, balance=("age", "gender"), photos=photos, person_masks=False)
    if isinstance(faces, Path):
        r = synthesize(faces, out, **kw)
    else:
        r = synthesize_sources(faces, out, problems=problems, **kw)
    t = time.perf_counter() - t0
    return {"seconds": round(t, 1), "people": r.people, "photos": r.photos, "photos_per_s": round(r.photos / t, 1),
            "duplicates_skipped": r.duplicates, "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def crop_once(synth: Path, out: Path, size: int, margins: str | None = None):
    """``crop_dataset`` (it reuses a cache whose fingerprint matches); (cache, seconds)."""
    t0 = time.perf_counter()
    cache = crop_dataset(synth, out, CropParams(size=size, **({"margins": tuple(float(v) for v in margins.split(","))} if margins else {}))).cache
    return cache, time.perf_counter() - t0


def scores(run: Path, seconds: float) -> dict:
    s = json.loads((run / "summary.json").read_text())
    out = {k: round(float(s[k]), 4) for k in ("oof_f1", "oof_f1_mask", "oof_f1_gender", "oof_f1_age", "oof_acc")}
    out["per_fold_f1"] = [round(float(f["tta_f1"]), 4) for f in s["per_fold"]]
    out["train_s"] = round(seconds, 1)
    out["goals_met"] = [k for k, v in GOALS.items() if out[k] >= v]
    out["run"] = str(run)
    return out


def fresh_train(cache, run: Path, cfg: TrainConfig) -> float:
    """Train into an empty ``run`` folder (a previous run there is removed: the bench owns --work); seconds."""
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    train(cache, run, cfg)
    return time.perf_counter() - t0


def pretrain_once(cache, run: Path, cfg: TrainConfig) -> tuple[float, bool]:
    """The external-only run, reused when its config.json asked for the same; (seconds, reused)."""
    keys = ("model", "epochs", "img_size", "val_ratio", "age_loss", "lr", "seed", "batch_size")
    if (run / "summary.json").is_file():
        old = json.loads((run / "config.json").read_text())
        new = json.loads(json.dumps({k: getattr(cfg, k) for k in keys}))
        if all(old.get(k) == new[k] for k in keys) and old.get("cache") == str(Path(cache.path).resolve()):
            return 0.0, True
    return fresh_train(cache, run, cfg), False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = ROOT.parent / "shared" / "data"
    ap.add_argument("--faces", type=Path, default=data / "utkface", help="main data's faces")
    ap.add_argument("--external-faces", type=Path, default=data / "utkface-large", help="external faces (none in --faces)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/facecurate_learn_external"))
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--external-people", type=int, default=2000, help="0: every external face")
    ap.add_argument("--external-photos", default="mask1,normal",
                    help="photos per external person (synth --photos): a masked and a plain face teach gender and age")
    ap.add_argument("--crop-size", type=int, default=256, help="main cache crop height (crop's default)")
    ap.add_argument("--external-crop-size", type=int, default=160, help="external cache crop height (smaller on disk)")
    ap.add_argument("--margins", default=None,
                    help="crop --margins TOP,SIDE,BOTTOM (face widths) of both caches; tighter: a larger face at --img-size")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--age-loss", default="ce", help="ce, ordinal or ce,ordinal: every configuration runs for each")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--img-size", type=int, default=128, help="input height; width keeps the main cache's 3:4 aspect")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--model", default=TrainConfig().model)
    ap.add_argument("--extra-weight", type=float, default=0.5, help="share of each batch from the external data")
    ap.add_argument("--pretrain-epochs", type=int, default=12)
    ap.add_argument("--pretrain-val", type=float, default=0.1, help="share of external people validating the external run")
    ap.add_argument("--finetune-lr", type=float, default=1e-3, help="peak lr of runs started from the external run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: on a shared, loaded 2-core machine two OpenMP threads stall each other)")
    a = ap.parse_args()
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    age_losses = [c.strip() for c in a.age_loss.split(",") if c.strip()]
    if bad := [c for c in configs if c not in CONFIGS]:
        ap.error(f"--configs: unknown {bad}; choose from {', '.join(CONFIGS)}")
    a.work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    ext_faces, ext_problems, overlap = external_sources(a.faces, a.external_faces, a.work)
    seconds["external_dedupe"] = time.perf_counter() - t0
    synth_runs = {"main": synth_once(a.faces, a.work / "main_synth", a.people, a.seed)}
    synth_runs["external"] = synth_once(ext_faces, a.work / "external_synth", a.external_people or None, a.seed + 1,
                                        ext_problems, a.external_photos)
    for k, v in synth_runs.items():
        seconds[f"synth_{k}"] = v["seconds"]
    tag = f"_m{a.margins.replace(',', '_')}" if a.margins else ""
    main_cache, seconds["crop_main"] = crop_once(a.work / "main_synth", a.work / f"main_cache{tag}", a.crop_size, a.margins)
    ext_cache, seconds["crop_external"] = crop_once(a.work / "external_synth", a.work / f"external_cache{tag}",
                                                    a.external_crop_size, a.margins)
    h, w = main_cache.images.shape[1:3]
    size = (a.img_size, round(a.img_size * w / h))
    base = dict(model=a.model, epochs=a.epochs, img_size=size, folds=a.folds, threads=a.threads, seed=a.seed)
    results: dict[str, dict] = {}
    pretrain: dict[str, dict] = {}
    extra_record = None
    for age_loss in age_losses:
        pre_run = a.work / "runs" / f"external-{age_loss}{tag}"
        if {"weights", "both"} & set(configs):
            cfg = TrainConfig(**{**base, "epochs": a.pretrain_epochs}, val_ratio=a.pretrain_val, age_loss=age_loss)
            t, reused = pretrain_once(ext_cache, pre_run, cfg)
            s = json.loads((pre_run / "summary.json").read_text())
            pretrain[age_loss] = {"train_s": round(t, 1), "reused": reused, "epochs": a.pretrain_epochs, "run": str(pre_run),
                                  **{k: round(float(s[k]), 4) for k in ("oof_f1", "oof_f1_mask", "oof_f1_gender", "oof_f1_age")}}
        for name in configs:
            cfg = dict(base, age_loss=age_loss)
            if name in ("extra", "both"):
                cfg.update(extra=(str(ext_cache.path),), extra_weight=a.extra_weight)
            if name in ("weights", "both"):
                cfg.update(weights=str(pre_run), lr=a.finetune_lr)
            run = a.work / "runs" / f"{name}-{age_loss}{tag}"
            t = fresh_train(main_cache, run, TrainConfig(**cfg))
            results[f"{name}-{age_loss}"] = scores(run, t)
            if name in ("extra", "both") and extra_record is None:
                extra_record = json.loads((run / "config.json").read_text())["extra_data"][0]
    best = max(results, key=lambda k: results[k]["oof_f1"]) if results else None
    print(json.dumps({
        "bench": "learn_external", "main": {"people": int(main_cache.manifest["person"].nunique()),
                                            "photos": int(len(main_cache.usable())), "crop": [int(h), int(w)]},
        "external": {"people": int(ext_cache.manifest["person"].nunique()), "photos": int(len(ext_cache.usable())),
                     "crop": [int(v) for v in ext_cache.images.shape[1:3]], "as_trained": extra_record, "folders": overlap},
        "settings": {"model": a.model, "margins": a.margins or "crop's default", "img_size": list(size), "epochs": a.epochs, "folds": a.folds,
                     "external_photos": a.external_photos, "extra_weight": a.extra_weight, "pretrain_epochs": a.pretrain_epochs, "pretrain_val": a.pretrain_val,
                     "finetune_lr": a.finetune_lr, "other": "TrainConfig defaults (smooth 0.1, AdamW 2e-3, EMA 0.998, "
                                                          "patience 5, augment on)"},
        "synth": synth_runs, "pretrain": pretrain, "results": results, "best": best, "goals": GOALS,
        "seconds": {k: round(v, 1) for k, v in seconds.items()}, "cpus": os.cpu_count(), "torch_threads": a.threads,
        "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
