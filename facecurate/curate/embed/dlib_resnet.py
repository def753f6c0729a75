"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as a PyTorch module, weights read from the .dat.

Why our own port: the prebuilt dlib wheel (``dlib-bin``) runs this network without BLAS, at about
300 ms a face on this project's CPU, six times too slow for a 50 photos/s pass. The same network in
PyTorch batches on oneDNN (or a GPU). ``read_dat`` parses dlib's serialisation (integers as a size byte +
little-endian bytes, tensors as version 2 + n, k, nr, nc + raw float32); ``DlibResNet`` is dlib's
``anet_type`` from dnn_face_recognition_ex.cpp (29 convolutions, affine = folded batch norm, strided
convolutions unpadded, the shortcut of a down block avg-pooled and added zero-padded to the larger
tensor, as dlib's ``add_prev`` does). Checked against dlib's own net in bench/embed_speed.py and
tests/test_embed.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: (channels, blocks, first block strided) per level, input side first: alevel4 .. alevel0.
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
CHIP = 150  # input side, px (input_rgb_image_sized<150>)


class _Reader:
    """A cursor over dlib-serialised bytes."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def int(self) -> int:
        head = self.data[self.pos]
        size, neg = head & 0x0F, head & 0x80
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if neg else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(mantissa) * 2.0 ** exponent

    def string(self) -> str:
        n = self.int()
        s = self.data[self.pos:self.pos + n].decode("ascii")
        self.pos += n
        return s

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"tensor version {version} at byte {self.pos} (expected 2)")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        arr = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).reshape(shape)
        self.pos += 4 * count
        return arr.astype(np.float32)

    def seek_string(self, name: str) -> None:
        """Move just past the next serialised string ``name``; ValueError when there is none."""
        needle = bytes([1, len(name)]) + name.encode("ascii")
        at = self.data.find(needle, self.pos)
        if at < 0:
            raise ValueError(f"no {name!r} after byte {self.pos}")
        self.pos = at + len(needle)


@dataclass
class DatWeights:
    """What ``read_dat`` found: the input means, each convolution, each affine layer and the final projection."""

    means: tuple[float, float, float]
    convs: list[tuple[np.ndarray, np.ndarray, int, int]]  # (weight O x I x kh x kw, bias O, stride, padding)
    affines: list[tuple[np.ndarray, np.ndarray]]           # (gamma, beta) per channel
    fc: np.ndarray                                          # in x out (dlib's layout)


def read_dat(path: str | Path) -> DatWeights:
    """Parse ``dlib_face_recognition_resnet_model_v1.dat``; ValueError when the file does not hold that network."""
    r = _Reader(Path(path).read_bytes())
    r.seek_string("input_rgb_image_sized")
    means = (r.float(), r.float(), r.float())
    convs, affines = [], []
    for _ in range(29):
        r.seek_string("con_4")
        params = r.tensor().reshape(-1)
        n_out, kh, kw, sy, sx, py, px = (r.int() for _ in range(7))
        n_in = (params.size - n_out) // (n_out * kh * kw)
        if sy != sx or py != px or n_in * n_out * kh * kw + n_out != params.size:
            raise ValueError(f"{path}: unexpected convolution {n_out}x{kh}x{kw} stride {sy},{sx} padding {py},{px}")
        w = params[:-n_out].reshape(n_out, n_in, kh, kw)
        convs.append((w, params[-n_out:], sy, py))
        r.seek_string("affine_")
        ab = r.tensor().reshape(-1)
        affines.append((ab[:ab.size // 2], ab[ab.size // 2:]))
    r.seek_string("fc_2")
    n_out, n_in = r.int(), r.int()
    fc = r.tensor().reshape(n_in, n_out)
    return DatWeights(means, convs, affines, fc)


class _Conv(nn.Module):
    """dlib's ``affine<con<...>>``: a biased convolution then a per-channel scale and shift (folded into one conv)."""

    def __init__(self, w: np.ndarray, b: np.ndarray, stride: int, padding: int, gamma: np.ndarray, beta: np.ndarray) -> None:
        super().__init__()
        g = torch.from_numpy(gamma.astype(np.float64))
        self.conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride=stride, padding=padding)
        with torch.no_grad():
            self.conv.weight.copy_((torch.from_numpy(w.astype(np.float64)) * g[:, None, None, None]).float())
            self.conv.bias.copy_((torch.from_numpy(b.astype(np.float64)) * g + torch.from_numpy(beta.astype(np.float64))).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, the smaller tensor zero-padded at the far end.

    The pads are plain ints fixed by the 150 px input; the batch dimension is never touched."""
    k, h, w = (max(int(s), int(t)) for s, t in zip(a.shape[1:], b.shape[1:]))

    def grow(x: torch.Tensor) -> torch.Tensor:
        pads = (0, w - int(x.shape[3]), 0, h - int(x.shape[2]), 0, k - int(x.shape[1]))
        return F.pad(x, pads) if any(pads) else x

    return grow(a) + grow(b)


class _Block(nn.Module):
    """``ares`` / ``ares_down``: relu(x + affine(con(relu(affine(con(x)))))), the down version strided with an avg-pooled shortcut."""

    def __init__(self, first: _Conv, second: _Conv, down: bool) -> None:
        super().__init__()
        self.first, self.second, self.down = first, second, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.second(F.relu(self.first(x)))
        short = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(short, y))


class DlibResNet(nn.Module):
    """The network: uint8-range RGB chips (N x 3 x 150 x 150, float) -> 128-D descriptors, as dlib computes them."""

    def __init__(self, weights: DatWeights) -> None:
        super().__init__()
        layers = [_Conv(*c, *a) for c, a in zip(weights.convs, weights.affines)]
        self.register_buffer("means", torch.tensor(weights.means, dtype=torch.float32).view(1, 3, 1, 1))
        self.stem = layers[0]
        blocks, i = [], 1
        for _channels, count, down in LEVELS:
            for j in range(count):
                blocks.append(_Block(layers[i], layers[i + 1], down and j == 0))
                i += 2
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(weights.fc.shape[0], weights.fc.shape[1], bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights.fc.T)))

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips - self.means) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def load_resnet(path: str | Path) -> DlibResNet:
    """The port with the .dat file's weights, in eval mode."""
    return DlibResNet(read_dat(path)).eval()
