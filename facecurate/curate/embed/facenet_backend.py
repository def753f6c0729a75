"""The ``facenet`` backend: facenet-pytorch's InceptionResnetV1 (VGGFace2 weights, 512-D, L2-normalised) on the face box.

No landmarks: the face box, squared and grown by ``MARGIN``, is resized to 160 px, as facenet-pytorch's
own ``extract_face`` does. The weights are used only when already in the torch hub cache (nothing is
downloaded); otherwise one line says which file is missing and where it goes. ``weights=None`` builds
the network with random weights (tests of the plumbing only; its vectors mean nothing).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..versions import installed_versions
from .backend import WHY_SMALL, EmbedBackend, register

WEIGHTS = "20180402-114759-vggface2.pt"
URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/" + WEIGHTS
SIDE, MARGIN, MIN_FACE = 160, 0.1, 20


def weights_path() -> Path:
    """Where facenet-pytorch keeps the VGGFace2 weights: ``<torch hub dir>/checkpoints/``."""
    import torch

    return Path(torch.hub.get_dir()).parent / "checkpoints" / WEIGHTS  # get_dir() is $TORCH_HOME/hub


def square_box(box: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """The square around a face box's centre, its side the box's longer side grown by ``margin`` on each edge."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * (0.5 + margin)
    return np.array([cx - half, cy - half, cx + half, cy + half])


class FacenetBackend(EmbedBackend):
    """InceptionResnetV1 on ``SIDE`` px face squares; 512-D unit vectors."""

    name, dim = "facenet", 512

    def __init__(self, device: str = "cpu", threads: int = 0, weights: str | None = "vggface2", min_face: int = MIN_FACE) -> None:
        import torch
        from facenet_pytorch import InceptionResnetV1

        self.device, self.min_face, self.weights = device, int(min_face), weights
        self.net = InceptionResnetV1(pretrained=None).eval()
        self.file = ""
        if weights is not None:
            ready()
            path = weights_path()
            self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            from ..models import sha256_file

            self.file = sha256_file(path)
        else:
            self.name = "facenet-random"
        self.net.to(device)

    def provenance(self) -> dict:
        packages = ("facenet-pytorch", "torch", "opencv-contrib-python-headless", "numpy", "facecurate")
        return {"files": {WEIGHTS: self.file} if self.file else {}, "weights": self.weights or "random",
                "versions": installed_versions(packages)}

    def embed(self, images: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, list[str]]:
        import torch

        faces, why = [], []
        for img, box in zip(images, np.asarray(boxes, np.float64)):
            if not np.all(np.isfinite(box)):
                why.append("no face box")
            elif box[2] - box[0] < self.min_face:
                why.append(f"{WHY_SMALL} ({box[2] - box[0]:.0f} px wide in the cache)")
            else:
                x1, y1, x2, _ = square_box(box)
                scale = SIDE / (x2 - x1)
                m = np.array([[scale, 0, -x1 * scale], [0, scale, -y1 * scale]], np.float64)
                faces.append(cv2.warpAffine(np.ascontiguousarray(img), m, (SIDE, SIDE), flags=cv2.INTER_AREA,
                                            borderMode=cv2.BORDER_REPLICATE))
                why.append("")
        vec = np.full((len(why), self.dim), np.nan, np.float32)
        if faces:
            x = torch.from_numpy(np.stack(faces)).to(self.device).permute(0, 3, 1, 2).float()
            with torch.inference_mode():
                vec[[i for i, w in enumerate(why) if not w]] = self.net((x - 127.5) / 128.0).float().cpu().numpy()
        return vec, why

    def close(self) -> None:
        self.net = None


def ready() -> None:
    """InputError naming the weights file when it is not in the torch hub cache."""
    if not weights_path().is_file():
        raise InputError(f"{weights_path()}: facenet's VGGFace2 weights are missing (nothing is downloaded); fetch {URL} "
                         f"into that folder, or use --backend dlib")


@register("facenet", ready)
def _facenet(device: str = "cpu", threads: int = 0, **options) -> FacenetBackend:
    return FacenetBackend(device, threads, **options)
