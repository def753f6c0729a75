#!/usr/bin/env python3
"""How far a person's own face and the bystanders around it lie from the person's consensus box, on a crowded set with
truth (``crop_coverage.py --crowd``'s): the figures behind ``subject.STEADY`` and ``STEADY_CENTRE``.

Pass 1 as ``crop`` runs it (the quick look and ``first_look`` on every photo, the default detector), then the
person consensus as pass 2 builds it (``person_pass.person_consensus``, against the data set's framing). A candidate
is the subject when it overlaps the truth box by IoU 0.3 or more; per photo the subject's best (nearest) box counts.
Prints one JSON line: the subject's distance (face widths) percentiles and maximum, the per-person median's, and
where the bystanders within one face width lie.

    python bench/subject_distances.py --sample /tmp/crowd_work/crowd300
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from facecurate.curate.crop.first_look import first_look, read_photo
from facecurate.curate.crop.params import CropParams
from facecurate.curate.crop.person_pass import (
    dataset_consensus,
    person_consensus,
    photo_choice,
)
from facecurate.curate.crop.subject import disagreement
from facecurate.curate.detect import box_iou, make_detector


def pass1_rows(sample: Path, truth: pd.DataFrame, batch: int = 32) -> pd.DataFrame:
    """Pass-1 rows (candidates with their cues) of every photo, in ``truth``'s order."""
    params, det = CropParams(), make_detector("auto", threads=2)
    paths = [str(sample / "images" / i) for i in truth["image_id"]]
    rows = []
    try:
        for s in range(0, len(paths), batch):
            part = [(i, *read_photo(p)) for i, p in enumerate(paths[s:s + batch], start=s)]
            rows += [rec for rec, _ in first_look(part, det, None, params, (256, 192))]
    finally:
        det.close()
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=Path, required=True, help="a crowded set with truth.csv (crop_coverage.py --crowd's)")
    a = ap.parse_args()
    truth = pd.read_csv(a.sample / "truth.csv")
    rows = pass1_rows(a.sample, truth)
    persons = truth["person"].astype(str).tolist()
    cons = person_consensus(rows, persons, prior=dataset_consensus(rows))
    subject, bystander, person_of = [], [], []
    for i, r in enumerate(rows.itertuples()):
        c = cons.get(persons[i])
        _, boxes, _, _, _ = photo_choice(r.candidates, int(r.width), int(r.height))
        if c is None or not len(boxes):
            continue
        w, h = float(r.width), float(r.height)
        d, _ = disagreement(boxes / np.array([w, h, w, h]), c[0], w / h)
        t = truth.iloc[i][["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(float)
        own = box_iou(boxes, t[None])[:, 0] >= 0.3
        if own.any():
            subject.append(float(d[own].min()))
            person_of.append(persons[i])
        bystander += [float(v) for v in d[~own] if v <= 1.0]
    subject, bystander = np.array(subject), np.array(bystander)
    medians = pd.Series(subject).groupby(person_of).median().to_numpy()
    pct = lambda x, q: [round(float(v), 3) for v in np.percentile(x, q)]
    print(json.dumps({"bench": "subject_distances", "sample": str(a.sample), "photos": len(rows),
                      "subject": {"photos": len(subject), "p50_p99": pct(subject, [50, 99]), "max": round(float(subject.max()), 3)},
                      "person_median": {"people": len(medians), "p99": pct(medians, [99])[0], "max": round(float(medians.max()), 3),
                                        "over_0.2": int((medians > 0.2).sum())},
                      "bystanders_within_1": {"boxes": len(bystander), "beyond_0.5": round(float((bystander > 0.5).mean()), 3),
                                              "within_0.75": int((bystander <= 0.75).sum())}}))


if __name__ == "__main__":
    main()
