"""Our torch-only MTCNN parts give what facenet-pytorch and torchvision give: the networks, NMS, roi_align, and the
whole detector on a real face. torchvision and facenet-pytorch are installed here (the naive anchor and CUDA use them),
so the real ones are the reference; the CPU detector must not import them."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from skimage import data
from torchvision import ops as tv

from facecurate.curate.detect.mtcnn_ops import (
    StageNet,
    batched_nms,
    load_net,
    nms,
    roi_align,
)


@pytest.mark.parametrize("name", ["pnet", "rnet", "onet"])
def test_stage_nets_give_facenets_outputs(name: str) -> None:
    from facenet_pytorch.models import mtcnn as fn

    ours, theirs = load_net(name), getattr(fn, name[0].upper() + "Net")().eval()
    assert set(ours.state_dict()) == set(theirs.state_dict())
    side = {"pnet": 60, "rnet": 24, "onet": 48}[name]
    x = torch.randn(5, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        for a, b in zip(ours(x), theirs(x), strict=True):
            torch.testing.assert_close(a, b)
    assert isinstance(ours, StageNet)


def _boxes(n: int, seed: int, span: float = 200.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * span
    wh = 5 + torch.rand(n, 2, generator=g) * 60
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("iou", [0.3, 0.5, 0.7])
def test_nms_keeps_torchvisions_boxes(iou: float) -> None:
    boxes = _boxes(400, 1)
    scores = torch.rand(400, generator=torch.Generator().manual_seed(2))
    groups = torch.randint(0, 3, (400,), generator=torch.Generator().manual_seed(3))
    assert nms(boxes, scores, iou).tolist() == tv.nms(boxes, scores, iou).tolist()
    assert batched_nms(boxes, scores, groups, iou).tolist() == tv.batched_nms(boxes, scores, groups, iou).tolist()
    assert batched_nms(boxes[:0], scores[:0], groups[:0], iou).numel() == 0
    # boxes reaching below 0 (MTCNN's squared boxes at a photo's edge): groups still never suppress each other
    low = boxes - 150
    kept = batched_nms(low, scores, groups, iou)
    per_group = sorted(int(i) for g in range(3) for i in (groups == g).nonzero()[:, 0][nms(low[groups == g], scores[groups == g], iou)])
    assert sorted(kept.tolist()) == per_group


@pytest.mark.parametrize("size", [(24, 24), (48, 48)])
def test_roi_align_matches_torchvision_inside_and_over_the_edges(size: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(4)
    images = torch.rand(3, 3, 90, 70, generator=g) * 2 - 1
    boxes = torch.cat([_boxes(30, 5, span=80.0) - 10, torch.tensor([[-30.0, -30.0, 100.0, 120.0], [60.0, 80.0, 69.5, 89.5]])])
    rois = torch.cat([torch.randint(0, 3, (len(boxes), 1), generator=g).float(), boxes], 1)
    ours = roi_align(images, rois, size, 2)
    theirs = tv.roi_align(images, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)  # float32 rounding of the grid coordinates
    assert roi_align(images, rois[:0], size, 2).shape == (0, 3, *size)


def test_cpu_mtcnn_finds_facenets_face_without_torchvision() -> None:
    """A fresh process: our MTCNN on the CPU finds the astronaut where facenet's own MTCNN does, and neither
    torchvision nor the facenet package was imported for it."""
    code = """
import json, sys
from skimage import data
from facecurate.curate.detect.mtcnn import MTCNNDetector
faces = MTCNNDetector(device="cpu", calibrate=False).detect([data.astronaut()])[0]
print(sorted(m for m in ("torchvision", "facenet_pytorch") if m in sys.modules))
print(json.dumps([[float(v) for v in faces[0].box], float(faces[0].score)]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"
    box, score = json.loads(out[1])
    from facenet_pytorch import MTCNN

    ref_boxes, ref_probs = MTCNN(device="cpu").detect(data.astronaut())
    np.testing.assert_allclose(box, np.asarray(ref_boxes[0], dtype=np.float64), atol=3.0)  # facenet crops stage 2-3 by area resizing, we by roi_align
    assert abs(score - float(ref_probs[0])) < 0.01


def test_detector_finds_the_same_faces_with_our_ops_and_torchvisions() -> None:
    """The whole detector at crop's recall thresholds, on a real photo and a crowd of copies of it: our NMS and
    roi_align against torchvision's give the same faces (boxes within 0.01 px, scores within 1e-4)."""
    from skimage.transform import rescale

    from facecurate.curate.detect import RECALL_THRESHOLDS
    from facecurate.curate.detect.mtcnn import MTCNNDetector

    face = (rescale(data.astronaut(), 0.4, channel_axis=2, anti_aliasing=True) * 255).astype(np.uint8)
    crowd = np.full((512, 384, 3), 90, np.uint8)
    for y, x in ((0, 0), (0, 180), (220, 90)):
        crowd[y:y + face.shape[0], x:x + face.shape[1]] = face[: 512 - y, : 384 - x]
    photos = [data.astronaut(), crowd]
    ours = MTCNNDetector(device="cpu", thresholds=RECALL_THRESHOLDS).detect(photos)
    theirs = MTCNNDetector(device="cpu", thresholds=RECALL_THRESHOLDS, torchvision_ops=True).detect(photos)
    assert [len(f) for f in ours] == [len(f) for f in theirs] and len(ours[1]) >= 3
    for a, b in zip([f for fs in ours for f in fs], [f for fs in theirs for f in fs], strict=True):
        np.testing.assert_allclose(a.box, b.box, atol=0.01)
        assert abs(a.score - b.score) < 1e-4
