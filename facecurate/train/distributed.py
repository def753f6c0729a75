"""Training on several processes with DistributedDataParallel: the process group, sharding, agreement, per-rank RNG.

A run becomes distributed when it is started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment):
``setup`` joins the process group from the variables torchrun sets (NCCL with one GPU per process on
CUDA, ``cuda:LOCAL_RANK``; gloo on the CPU). ``WORLD_SIZE`` unset or 1 gives ``OneProcess``: the same small
interface with every collective the identity, so ``fit`` and ``fold`` have one path for one process and
for many. ``train --ddp N`` starts the processes with ``launcher``.

``Dist``'s methods keep the ranks in step: the training rows and folds must hash the same everywhere
(``same_everywhere``); a check that only rank 0 makes (claiming the run folder, its lock) is agreed on
(``on_main``), so every rank stops with rank 0's one line instead of waiting in a collective; batches are
sharded (``iter_train(shard=...)``) and validation probabilities gathered (``gather_probs``) so metrics,
early stopping and checkpoints are the same decision on every rank. Each rank draws its own augmentation
and dropout (``rank_seed``); ``rank_rng`` / ``set_rank_rng`` carry those states through ``state.pt``.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..curate.errors import InputError
from .runtime import pick_device


class AgreedError(InputError):
    """Bad input raised on every rank because one rank found it; rank 0 reports it (the others need not repeat it)."""


@dataclass(frozen=True)
class OneProcess:
    """A run not started by torchrun: rank 0 of 1, every collective the identity, every check of agreement passed.

    The same small interface as ``Dist``, so the training loop has one path for one process and for many.
    """

    device: torch.device = torch.device("cpu")
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""
    owned: bool = False
    main: bool = True

    def gather(self, obj) -> list:
        return [obj]

    def broadcast(self, obj):
        return obj

    def sync(self) -> None:
        pass

    def on_main(self, fn: Callable, *args, **kwargs):
        return fn(*args, **kwargs)

    def same_everywhere(self, what: str, *parts) -> str:
        return ""

    def check_batches(self, batch_size: int, train_photos: Sequence[int]) -> None:
        pass  # one process: a fold with fewer photos than a batch trains on one smaller batch

    def shard(self, positions: np.ndarray) -> np.ndarray:
        return np.asarray(positions)

    def gather_probs(self, probs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return probs

    def gather_sum(self, *values: float) -> list[float]:
        return [float(v) for v in values]

    def sync_buffers(self, module: torch.nn.Module) -> None:
        pass

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def own_draws(self, seed: int, fold: int, gd: torch.Generator) -> torch.Generator:
        return gd

    def rank_rng(self, gd: torch.Generator) -> dict:
        return {}  # one process: its random states are the fold's own (FoldState.state_dict)

    def set_rank_rng(self, gd: torch.Generator, state: dict) -> None:
        pass

    def record(self, batch_size: int) -> dict:
        return {}


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun run: rank, world size, its device and the backend; its collectives.

    Each method is a collective (every rank calls it, in the same order) unless it says otherwise.
    """

    rank: int
    world: int
    local_rank: int
    device: torch.device
    backend: str
    owned: bool = False  # this module started the process group (and ends it)

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run folder and reports."""
        return self.rank == 0

    def gather(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync(self) -> None:
        """Wait until every rank is here (e.g. rank 0 has written a file the others read)."""
        self.gather(None)

    def agree(self, error: str | None) -> None:
        """Raise AgreedError on every rank when any rank had ``error`` (rank order decides which one is said)."""
        errors = [e for e in self.gather(error) if e]
        if errors:
            raise AgreedError(errors[0])

    def on_main(self, fn: Callable, *args, **kwargs):
        """``fn(*args)`` on rank 0 only; its InputError is raised on every rank."""
        result, error = None, None
        if self.main:
            try:
                result = fn(*args, **kwargs)
            except InputError as e:
                error = str(e)
        self.agree(error)
        return result

    def same_everywhere(self, what: str, *parts) -> str:
        """The hash of ``parts`` on this rank, checked equal on every rank (AgreedError naming them if not)."""
        mine = digest(*parts)
        hashes = self.gather(mine)
        if len(set(hashes)) > 1:
            raise AgreedError(f"the {what} differ between processes (sha256 per rank: {', '.join(h[:12] for h in hashes)}); "
                              f"every process must read the same cache with the same options")
        return mine

    def check_batches(self, batch_size: int, train_photos: Sequence[int]) -> None:
        """Not a collective: ``check_batches`` for this run's world size."""
        check_batches(batch_size, self.world, train_photos)

    def shard(self, positions: np.ndarray) -> np.ndarray:
        """Not a collective: this rank's contiguous part of ``positions`` (validation, out-of-fold); the parts
        concatenate back in rank order."""
        return np.array_split(np.asarray(positions), self.world)[self.rank]

    def gather_probs(self, probs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each rank's probabilities over its ``shard``, joined in rank order (= the unsharded order)."""
        parts = self.gather(probs)
        return {k: np.concatenate([p[k] for p in parts]) for k in probs}

    def gather_sum(self, *values: float) -> list[float]:
        """The sums of ``values`` over every rank."""
        return [float(sum(v)) for v in zip(*self.gather(values))]

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm statistics, which each rank updates on its own shard) on every rank."""
        for b in module.buffers():
            dist.broadcast(b.data, src=0)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel: gradients averaged over the ranks in backward, rank 0's weights at the start."""
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cpu":  # oneDNN hands depthwise-conv gradients back channels-last: one copy into the bucket, no error
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def own_draws(self, seed: int, fold: int, gd: torch.Generator) -> torch.Generator:
        """Not a collective: this rank's own augmentation generator (in place of the run's ``gd``) and dropout
        (torch's global RNG), seeded by ``rank_seed``; the weights and the photo order stay the same on every rank."""
        torch.manual_seed(rank_seed(seed, fold, self.rank, 1))
        return torch.Generator(device=self.device).manual_seed(rank_seed(seed, fold, self.rank))

    def rank_rng(self, gd: torch.Generator) -> dict:
        """Every rank's own random states (augmentation generator, torch's global CPU and CUDA states), as the
        ``world_size`` and ``ranks`` entries of ``state.pt``."""
        mine = {"gd": gd.get_state(), "torch_rng": torch.get_rng_state()}
        if self.device.type == "cuda":
            mine["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return {"world_size": self.world, "ranks": self.gather(mine)}

    def set_rank_rng(self, gd: torch.Generator, state: dict) -> None:
        """Not a collective: restore this rank's own random states from a ``state.pt`` written by ``rank_rng``."""
        mine = state["ranks"][self.rank]
        gd.set_state(mine["gd"])
        torch.set_rng_state(mine["torch_rng"])
        if "cuda_rng" in mine and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda_rng"], self.device)

    def record(self, batch_size: int) -> dict:
        """Not a collective: what ``config.json`` says of the processes (one process: nothing)."""
        return {"ddp": {"world_size": self.world, "backend": self.backend, "batch_per_process": batch_size // self.world}}


Ranks = Dist | OneProcess


def env_world() -> int:
    """The world size torchrun set (1 when not started by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def env_rank() -> int:
    """This process's global rank as torchrun set it (0 when not started by torchrun)."""
    return int(os.environ.get("RANK", "0") or 0)


def rank_device(device: str | None, local_rank: int, local_world: int) -> torch.device:
    """The device of local rank ``local_rank`` of ``local_world`` processes: cuda:LOCAL_RANK on CUDA, else the CPU."""
    d = pick_device(device)
    if d.type != "cuda":
        return d
    if d.index is not None and local_world > 1:
        raise InputError(f"--device {device}: with {local_world} processes each takes its own GPU (cuda:LOCAL_RANK); "
                         f"pass --device cuda (or leave it out), or --device cpu for gloo on the CPU")
    count = torch.cuda.device_count()
    if local_world > count:
        raise InputError(f"{local_world} processes on this machine but {count} GPU(s): DDP runs one process per GPU; "
                         f"use --ddp {count} (torchrun --nproc_per_node {count}) or --device cpu")
    return torch.device("cuda", local_rank if d.index is None else d.index)


def setup(device: str | None) -> Ranks:
    """Join torchrun's process group (started here unless the caller already did); ``OneProcess`` on ``device``
    when not started by torchrun with more than one process."""
    world = env_world()
    if world <= 1:
        return OneProcess(pick_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    d = rank_device(device, local_rank, local_world)
    owned = not dist.is_initialized()
    if d.type == "cuda":
        torch.cuda.set_device(d)
    if owned:
        dist.init_process_group("nccl" if d.type == "cuda" else "gloo", device_id=d if d.type == "cuda" else None)
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, d, dist.get_backend(), owned)


def teardown(d: Ranks) -> None:
    """End the process group if ``setup`` started it."""
    if d.owned and dist.is_initialized():
        dist.destroy_process_group()


def digest(*parts) -> str:
    """sha256 of arrays (bytes, dtype, shape) and strings: what ``same_everywhere`` compares."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, str):
            h.update(p.encode())
        else:
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def check_batches(batch_size: int, world: int, train_photos: Sequence[int]) -> None:
    """The global batch splits evenly (``batch_size / world`` photos per process) and every fold fills one batch."""
    if batch_size % world:
        lo, hi = batch_size // world * world, -(-batch_size // world) * world
        raise InputError(f"--batch-size {batch_size} is the global batch and must split evenly over {world} processes "
                         f"(batch-size / {world} photos each); use {lo or world} or {hi}")
    if batch_size // world < 2:
        raise InputError(f"--batch-size {batch_size} over {world} processes leaves fewer than 2 photos per process; "
                         f"use at least {2 * world}")
    if min(train_photos) < batch_size:
        raise InputError(f"a fold holds {min(train_photos)} training photos, fewer than one global batch ({batch_size}); "
                         f"lower --batch-size or train in one process")


def rank_seed(seed: int, fold: int, rank: int, stream: int = 0) -> int:
    """A seed of its own for each (run seed, fold, rank, stream): augmentation and dropout differ between ranks."""
    return int(np.random.SeedSequence([seed, fold, rank, stream]).generate_state(1)[0])


def check_resume_world(state: dict, d: Ranks, path) -> None:
    """A fold resumes on as many processes as saved it: each rank's random states are in ``state.pt``."""
    saved, now = int(state.get("world_size", 1)), d.world
    if saved != now:
        how = "in one process (without --ddp / torchrun)" if saved == 1 else f"with {saved} processes (--ddp {saved})"
        raise InputError(f"{path}: saved by a run of {saved} process(es), resumed with {now}; resume it {how}")
