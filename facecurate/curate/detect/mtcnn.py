"""facenet-pytorch's MTCNN networks in a batched pipeline: one tensor per photo size, roi_align for stages 2-3.

facenet's own ``detect`` crops stage 2-3 candidates in a Python loop and needs equal-size photos;
this keeps its weights and thresholds and batches every step (the reason it is not facenet's class). On the CPU it
runs without torchvision (``mtcnn_ops``: the networks, NMS and roi_align without its ~2 s import).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from .faces import Detector, Face, check_images, default_min_face, make_face


def pyramid_scales(height: int, width: int, min_face: float, factor: float = 0.709) -> list[float]:
    """MTCNN image-pyramid scales: the first maps ``min_face`` px to PNet's 12 px cell, down until the
    shorter side falls under 12 px."""
    m = 12.0 / min_face
    minl = min(height, width) * m
    scales = []
    while minl >= 12:
        scales.append(m)
        m *= factor
        minl *= factor
    return scales


class MTCNNDetector(Detector):
    """facenet-pytorch's MTCNN networks (weights shipped in the package) in a batched pipeline.

    Photos of one size run together as one tensor; the pyramid starts at ``min_face`` (None: 10% of the
    shorter side, >= 20 px); stages 2 and 3 crop every candidate of every photo at once with
    roi_align instead of facenet's per-box loop. CUDA or CPU (``device``); ``threads`` caps torch's CPU threads while
    it detects (None: torch's default; 1 where other detector copies already keep the cores busy);
    ``torchvision_ops``: NMS and roi_align from torchvision (None: on CUDA only; ``mtcnn_ops``)."""

    def __init__(
        self,
        device: str | torch.device | None = None,
        min_face: int | None = None,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        batch_size: int | None = None,
        calibrate: bool = True,
        sampling: int = 2,
        threads: int | None = None,
        torchvision_ops: bool | None = None,
    ) -> None:
        from .mtcnn_ops import load_net, ops_for

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.min_face, self.thresholds, self.factor, self.calibrate = min_face, thresholds, factor, calibrate
        self.sampling = sampling  # roi_align samples per bin side for the stage 2-3 crops (>= 1)
        self.batch_size = batch_size or (64 if self.device.type == "cuda" else 8)
        self.name = "mtcnn"
        self.threads = threads
        self._nms, self._roi_align = ops_for(self.device, torchvision_ops)
        # channels-last: mkldnn convolutions and max-pooling run several times faster on the CPU
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.pnet, self.rnet, self.onet = (load_net(net).to(self.device, memory_format=self.memory_format)
                                           for net in ("pnet", "rnet", "onet"))

    def _pyramid_level(self, batch_hwc: torch.Tensor, imgs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """One pyramid level, normalised: cv2 INTER_AREA on the CPU (~2x torch's area mode), torch on CUDA."""
        if self.device.type == "cpu":
            import cv2

            small = np.stack([cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_AREA) for im in batch_hwc.numpy()])
            return (torch.from_numpy(small).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125  # NHWC memory = channels-last
        return torch.nn.functional.interpolate(imgs, size=size, mode="area")

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        check_images(images)
        out: list[list[Face]] = [[] for _ in images]
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, im in enumerate(images):
            by_size[im.shape[:2]].append(i)
        was = torch.get_num_threads()
        if self.threads and self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        try:
            for idx in by_size.values():
                for s in range(0, len(idx), self.batch_size):
                    chunk = idx[s:s + self.batch_size]
                    batch = torch.from_numpy(np.stack([images[i] for i in chunk]))
                    for i, faces in zip(chunk, self._detect_batch(batch)):
                        out[i] = faces
        finally:
            if torch.get_num_threads() != was:
                torch.set_num_threads(was)
        return out

    @torch.inference_mode()
    def _detect_batch(self, batch_hwc: torch.Tensor) -> list[list[Face]]:
        batched_nms, roi_align = self._nms, self._roi_align
        dev = self.device
        n, h, w = batch_hwc.shape[:3]
        imgs = batch_hwc.to(dev).permute(0, 3, 1, 2).float()
        imgs = (imgs - 127.5) * 0.0078125  # normalise once; roi_align is linear so crops match
        min_face = self.min_face or default_min_face(h, w)
        t1, t2, t3 = self.thresholds

        # stage 1: PNet over the pyramid, all photos at once
        boxes_l, inds_l = [], []
        for scale in pyramid_scales(h, w, min_face, self.factor):
            sh, sw = int(h * scale + 1), int(w * scale + 1)
            reg, probs = self.pnet(self._pyramid_level(batch_hwc, imgs, (sh, sw)))
            prob = probs[:, 1]
            mask = prob >= t1
            if not mask.any():
                continue
            nz = mask.nonzero()
            b_i, yy, xx = nz[:, 0], nz[:, 1].float(), nz[:, 2].float()
            score = prob[mask]
            r = reg.permute(0, 2, 3, 1)[mask]
            q1x, q1y = ((2 * xx + 1) / scale).floor(), ((2 * yy + 1) / scale).floor()
            q2x, q2y = ((2 * xx + 12) / scale).floor(), ((2 * yy + 12) / scale).floor()
            bb = torch.stack([q1x, q1y, q2x, q2y], 1)
            keep = batched_nms(bb, score, b_i, 0.5)
            bb, score, r, b_i = bb[keep], score[keep], r[keep], b_i[keep]
            bw, bh = bb[:, 2] - bb[:, 0], bb[:, 3] - bb[:, 1]
            refined = torch.stack([bb[:, 0] + r[:, 0] * bw, bb[:, 1] + r[:, 1] * bh,
                                   bb[:, 2] + r[:, 2] * bw, bb[:, 3] + r[:, 3] * bh], 1)
            boxes_l.append(torch.cat([bb, score[:, None], refined], 1))
            inds_l.append(b_i)
        results: list[list[Face]] = [[] for _ in range(n)]
        if not boxes_l:
            return results
        cand, inds = torch.cat(boxes_l), torch.cat(inds_l)
        keep = batched_nms(cand[:, :4], cand[:, 4], inds, 0.7)
        boxes, inds = _square(cand[keep, 5:9]), inds[keep]

        # stage 2: RNet on 24x24 crops of every candidate of every photo
        if len(boxes):
            rois = torch.cat([inds[:, None].float(), boxes[:, 0:2] - 1, boxes[:, 2:4]], 1)
            crops = roi_align(imgs, rois, (24, 24), self.sampling)
            reg, prob = _chunked(self.rnet, crops.contiguous(memory_format=self.memory_format))
            score = prob[:, 1]
            ok = score > t2
            boxes, inds, score, reg = boxes[ok], inds[ok], score[ok], reg[ok]
            keep = batched_nms(boxes, score, inds, 0.7)
            boxes, inds, reg = boxes[keep], inds[keep], reg[keep]
            boxes = _square(_bbreg(boxes, reg))

        # stage 3: ONet on 48x48 crops, boxes + 5 landmarks
        if len(boxes):
            rois = torch.cat([inds[:, None].float(), boxes[:, 0:2] - 1, boxes[:, 2:4]], 1)
            crops = roi_align(imgs, rois, (48, 48), self.sampling)
            reg, pts, prob = _chunked(self.onet, crops.contiguous(memory_format=self.memory_format))
            score = prob[:, 1]
            ok = score > t3
            boxes, inds, score, reg, pts = boxes[ok], inds[ok], score[ok], reg[ok], pts[ok]
            bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
            bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
            px = bw * pts[:, :5] + boxes[:, 0:1] - 1
            py = bh * pts[:, 5:] + boxes[:, 1:2] - 1
            points = torch.stack([px, py], 2)  # (k, 5, 2)
            boxes = _bbreg(boxes, reg)
            keep = _nms_min(boxes, score, inds, 0.7)
            boxes, inds, score, points = boxes[keep], inds[keep], score[keep], points[keep]
            b, s, p, ii = boxes.cpu().numpy(), score.cpu().numpy(), points.cpu().numpy(), inds.cpu().numpy()
            for k in np.argsort(-s):
                kp4 = np.stack([p[k, 0], p[k, 1], p[k, 2], (p[k, 3] + p[k, 4]) / 2])
                results[ii[k]].append(make_face(b[k], s[k], kp4, self.name, h, w, self.calibrate))
        return results


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre (MTCNN's ``rerec``)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1, y1 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], 1)


def _bbreg(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply MTCNN's box regression offsets (fractions of the box's 1-based width/height)."""
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    return boxes + reg[:, :4] * torch.cat([w, h, w, h], 1)


def _chunked(net: torch.nn.Module, x: torch.Tensor, size: int = 512) -> tuple[torch.Tensor, ...]:
    outs = [net(x[i:i + size]) for i in range(0, len(x), size)]
    return tuple(torch.cat(v, 0) for v in zip(*outs))


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, inds: torch.Tensor, thresh: float) -> torch.Tensor:
    """Per-image NMS with overlap = intersection / smaller area (MTCNN's last stage), greedy by score."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    ix = (torch.minimum(b[:, None, 2], b[None, :, 2]) - torch.maximum(b[:, None, 0], b[None, :, 0]) + 1).clamp(min=0)
    iy = (torch.minimum(b[:, None, 3], b[None, :, 3]) - torch.maximum(b[:, None, 1], b[None, :, 1]) + 1).clamp(min=0)
    over = (ix * iy / torch.minimum(area[:, None], area[None, :])).cpu().numpy()
    same = (inds[order][:, None] == inds[order][None, :]).cpu().numpy()
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= (over[i] > thresh) & same[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]
