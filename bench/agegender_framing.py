"""The age/gender network on UTKFace's aligned faces at several chip paddings: which framing the embedding pass uses.

Each adult face of ``--faces`` (UTKFace "age_gender_race_date.jpg.chip.jpg" files; children are left out, their
gender is hard for any reader) is found by dlib's HOG detector, given dlib's 5 landmarks, and cut as dlib's aligned
chip at each ``--paddings`` value, 112 px, then read by ``curate.embed.agegender_net``; the whole UTKFace chip
resized to 112 px is read too. Prints one JSON line: per padding, gender accuracy and age MAE (years).

  .venv/bin/python bench/agegender_framing.py --faces ../shared/data/utkface --limit 500
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "data" / "utkface")
    ap.add_argument("--limit", type=int, default=500, help="the first N files (sorted by name), before leaving out children")
    ap.add_argument("--paddings", default="0,0.1,0.2,0.25,0.3,0.4,0.6")
    a = ap.parse_args()

    import dlib
    import torch
    from PIL import Image

    from facecurate.curate.embed import agegender_models as agm
    from facecurate.curate.embed.agegender_net import SIZE, load_agegender
    from facecurate.curate.embed.dlib_models import LANDMARKS, model_file

    net = load_agegender(agm.model_file(agm.MANIFEST), agm.model_file(agm.WEIGHTS))
    predictor, detect = dlib.shape_predictor(str(model_file(LANDMARKS))), dlib.get_frontal_face_detector()
    images, shapes, ages, genders = [], [], [], []
    for f in sorted(a.faces.glob("*.jpg"))[:a.limit]:
        age, gender = (int(v) for v in f.name.split("_")[:2])
        if age < 18:
            continue
        img = np.asarray(Image.open(f).convert("RGB"))
        found = detect(img, 0)
        if not found:
            continue
        images.append(img)
        shapes.append(predictor(img, found[0]))
        ages.append(age)
        genders.append(gender)  # UTKFace: 0 male, 1 female
    ages, genders = np.array(ages), np.array(genders)

    def read(chips: list[np.ndarray]) -> dict:
        with torch.inference_mode():
            age, male_logit = net(torch.from_numpy(np.stack(chips).astype(np.float32)))
        return {"gender_accuracy": round(float(((male_logit.numpy() > 0) == (genders == 0)).mean()), 3),
                "age_mae": round(float(np.abs(age.numpy() - ages).mean()), 2)}

    out = {p: read([dlib.get_face_chip(i, s, size=SIZE, padding=float(p)) for i, s in zip(images, shapes)])
           for p in a.paddings.split(",")}
    out["whole_utkface_chip"] = read([np.asarray(Image.fromarray(i).resize((SIZE, SIZE), Image.BILINEAR)) for i in images])
    print(json.dumps({"bench": "agegender_framing", "faces": len(ages), "by_padding": out}))


if __name__ == "__main__":
    main()
