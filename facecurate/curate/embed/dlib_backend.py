"""The default backend: dlib's 5-point landmarks and aligned 150 px chip, then dlib's face-recognition ResNet (128-D)
and, from the same chip, face-api.js's age/gender network (``age``, ``male_logit``: two more columns).

Landmarks and chips come from dlib itself (``shape_predictor``, ``get_face_chip``: about 4 ms a photo);
the ResNet runs as our PyTorch port (``dlib_resnet``: batched, on CUDA when present), because dlib's prebuilt wheel runs it without BLAS at ~300 ms a face. ``dlib-native``
runs dlib's own network instead: the reference the port is checked against (bench/embed_speed.py).

The age/gender network (``agegender_net``) reads the chip shrunk to 112 px: the framing (padding 0.25 around the
landmarks) at which it read gender best on UTKFace's aligned faces (0.97 of 385 adults at padding 0.2-0.4; 0.94 at
0, 0.90 at 0.6). Identity says who, not whether a face is male or old: on a few hundred people a linear probe on
identity alone read gender at ~0.8 a photo, and 0.4-0.53 of its 15 most suspect people were planted gender flips;
with these two columns 0.6-0.8 (docs/embeddings.md).
"""
from __future__ import annotations

import threading
import time

import numpy as np

from ..versions import installed_versions
from . import agegender_models
from .backend import WHY_SMALL, EmbedBackend, register
from .dlib_models import EXPECTED, LANDMARKS, RESNET, import_dlib, model_file

CHIP, PADDING = 150, 0.25  # dlib's own defaults for compute_face_descriptor
ATTRIBUTES = ("age", "male_logit")  # the age/gender network's outputs: years, log p(male) - log p(female)
MIN_FACE = 20  # face boxes narrower than this many cache pixels are not embedded
WHY_LANDMARKS, WHY_BOX = "landmarks off the face", "no face box"


def landmarks_ok(points: np.ndarray, box: np.ndarray) -> bool:
    """Do the 5 points (2 per eye corner pair, then the nose) sit on a face in ``box``? Inside the box grown by
    a quarter of its width, with the eyes at least a fifth of the box width apart."""
    x1, y1, x2, y2 = box
    m = 0.25 * (x2 - x1)
    inside = np.all((points[:, 0] >= x1 - m) & (points[:, 0] <= x2 + m) & (points[:, 1] >= y1 - m) & (points[:, 1] <= y2 + m))
    eyes = np.linalg.norm(points[0:2].mean(0) - points[2:4].mean(0))
    return bool(inside and eyes >= 0.2 * (x2 - x1))


class DlibBackend(EmbedBackend):
    """dlib landmarks + chip; descriptors from the PyTorch port (``native=False``) or dlib's own net."""

    name, dim, attributes = "dlib", 128 + len(ATTRIBUTES), ATTRIBUTES

    def __init__(self, device: str = "cpu", threads: int = 0, native: bool = False, min_face: int = MIN_FACE) -> None:
        self.dlib = import_dlib()
        self.agegender = _agegender_net(device)
        self.predictor = self.dlib.shape_predictor(str(model_file(LANDMARKS)))
        self.device, self.native, self.min_face = device, native, int(min_face)
        self.name = "dlib-native" if native else "dlib"
        self._threads = None
        # CPU seconds of the calling thread per step (bench/embed_speed.py): all of a step's CPU when threads == 1, as
        # with one worker per core; unlike wall time, not inflated when other processes share the cores
        self.seconds = {"landmarks": 0.0, "chip": 0.0, "net": 0.0, "agegender": 0.0}
        self._lock = threading.Lock()  # workers add to ``seconds`` from several threads
        if native:
            self.net = self.dlib.face_recognition_model_v1(str(model_file(RESNET)))
        else:
            self.net = _torch_net(device, threads)
            import torch

            if not str(device).startswith("cuda") and threads:
                self._threads = torch.get_num_threads()
                torch.set_num_threads(int(threads))

    def _count(self, step: str, seconds: float) -> None:
        with self._lock:
            self.seconds[step] += seconds

    def provenance(self) -> dict:
        files = {n: EXPECTED[n] for n in (LANDMARKS, RESNET)}  # model_file() refused any other content
        files.update({n: agegender_models.FILES[n][1] for n in (agegender_models.WEIGHTS, agegender_models.MANIFEST)})
        packages = ("dlib-bin", "face_recognition_models", "torch", "numpy", "facecurate")
        return {"files": files, "versions": installed_versions(packages)}

    def chips(self, images: np.ndarray, boxes: np.ndarray) -> tuple[list[np.ndarray | None], list[str]]:
        """Aligned 150 x 150 chips (None where a photo cannot be embedded) and the reasons."""
        out, why = [], []
        for img, box in zip(images, np.asarray(boxes, np.float64)):
            if not np.all(np.isfinite(box)):
                out.append(None)
                why.append(WHY_BOX)
                continue
            if box[2] - box[0] < self.min_face:
                out.append(None)
                why.append(f"{WHY_SMALL} ({box[2] - box[0]:.0f} px wide in the cache)")
                continue
            t0 = time.thread_time()
            img = np.ascontiguousarray(img)
            rect = self.dlib.rectangle(*(int(round(v)) for v in box))
            shape = self.predictor(img, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
            t1 = time.thread_time()
            self._count("landmarks", t1 - t0)
            if not landmarks_ok(pts, box):
                out.append(None)
                why.append(WHY_LANDMARKS)
                continue
            out.append(self.dlib.get_face_chip(img, shape, size=CHIP, padding=PADDING))
            why.append("")
            self._count("chip", time.thread_time() - t1)
        return out, why

    def descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        """len(chips) x 128 float32 from aligned 150 px chips."""
        if not chips:
            return np.zeros((0, self.identity_dim), np.float32)
        t0 = time.thread_time()
        if self.native:
            out = np.array([np.array(v) for v in self.net.compute_face_descriptor(chips)], np.float32)
        else:
            import torch

            x = torch.from_numpy(np.stack(chips)).to(self.device).permute(0, 3, 1, 2).float()  # a channels-last view
            with torch.inference_mode():
                out = self.net(x).float().cpu().numpy()
        self._count("net", time.thread_time() - t0)
        return out

    def face_attributes(self, chips: list[np.ndarray]) -> np.ndarray:
        """len(chips) x 2 float32 (``ATTRIBUTES``) from aligned 150 px chips, shrunk to the network's 112 px."""
        if not chips:
            return np.zeros((0, len(ATTRIBUTES)), np.float32)
        import torch
        import torch.nn.functional as F

        from .agegender_net import SIZE

        t0 = time.thread_time()
        x = torch.from_numpy(np.stack(chips)).to(self.device).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
            age, male_logit = self.agegender(x.permute(0, 2, 3, 1))
        self._count("agegender", time.thread_time() - t0)
        return torch.stack([age, male_logit], 1).float().cpu().numpy()

    def embed(self, images: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, list[str]]:
        chips, why = self.chips(images, boxes)
        vec = np.full((len(chips), self.dim), np.nan, np.float32)
        ok = [i for i, c in enumerate(chips) if c is not None]
        good = [chips[i] for i in ok]
        vec[ok, :self.identity_dim] = self.descriptors(good)
        vec[ok, self.identity_dim:] = self.face_attributes(good)
        return vec, why

    def close(self) -> None:
        if self._threads is not None:
            import torch

            torch.set_num_threads(self._threads)
            self._threads = None
        self.net = self.agegender = None


def ready() -> None:
    """InputError with the install line when dlib, its model files or the age/gender network's are missing."""
    import_dlib()
    model_file(LANDMARKS)
    model_file(RESNET)
    agegender_models.ready()


@register("dlib", ready)
def _dlib(device: str = "cpu", threads: int = 0, **options) -> DlibBackend:
    return DlibBackend(device, threads, native=False, **options)


@register("dlib-native", ready)
def _dlib_native(device: str = "cpu", threads: int = 0, **options) -> DlibBackend:
    return DlibBackend(device, threads, native=True, **options)


def _torch_net(device: str, threads: int):
    """The port on ``device``, channels-last and eager.

    Channels-last: the chips arrive height x width x 3, so the network's input is a channels-last view (no copy),
    and channels-last convolutions took 21% less CPU than contiguous ones (8.9 vs 11.3 ms a face, one thread, batch
    64, alternating runs; the weights follow the input either way). torch.jit's trace + freeze cost ~1.3 s of CPU
    for no measurable gain (10.4 vs 11.4 ms a face on contiguous input, within noise on the shared CPU)."""
    import torch

    from .dlib_resnet import load_resnet

    return load_resnet(model_file(RESNET)).to(device).to(memory_format=torch.channels_last)


def _agegender_net(device: str):
    """face-api.js's age/gender network (``agegender_net``) on ``device``, from its checked files; channels-last like
    the ResNet (its input is a channels-last view of the chips; a few % less CPU, one thread, batch 64)."""
    import torch

    from .agegender_net import load_agegender

    m = agegender_models
    return load_agegender(m.model_file(m.MANIFEST), m.model_file(m.WEIGHTS)).to(device).to(memory_format=torch.channels_last)
