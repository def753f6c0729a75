"""Training on several processes with DistributedDataParallel: the process group, sharding, agreement, per-rank RNG.

A run becomes distributed when it is started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment):
``setup`` joins the process group from the variables torchrun sets (NCCL with one GPU per process on
CUDA, ``cuda:LOCAL_RANK``; gloo on the CPU). ``WORLD_SIZE`` unset or 1 is the single-process path,
untouched. ``launch`` is what ``train --ddp N`` runs: torchrun's own launcher (``elastic_launch``, which the
``torchrun`` command calls) with ``--standalone``'s settings, so both ways in give the processes the same
environment, and torchrun's agent stops every process when one fails. ``torch.multiprocessing.spawn``
would need a rendezvous and failure handling of its own.

The helpers keep the ranks in step: the training rows and folds must hash the same everywhere
(``same_everywhere``); a check that only rank 0 makes (claiming the run folder, its lock) is agreed on
(``on_main``), so every rank stops with rank 0's one line instead of waiting in a collective; batches are
sharded (``iter_train(shard=...)``) and validation probabilities gathered (``gather_probs``) so metrics,
early stopping and checkpoints are the same decision on every rank. Each rank draws its own augmentation
and dropout (``rank_seed``); ``rank_rng`` / ``set_rank_rng`` carry those states through ``state.pt``.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
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
class Dist:
    """This process's place in the run: rank, world size, its device and the backend."""

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


def setup(device: str | None) -> Dist | None:
    """Join torchrun's process group (started here unless the caller already did); None for a single process."""
    world = env_world()
    if world <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    d = rank_device(device, local_rank, local_world)
    owned = not dist.is_initialized()
    if d.type == "cuda":
        torch.cuda.set_device(d)
    if owned:
        dist.init_process_group("nccl" if d.type == "cuda" else "gloo", device_id=d if d.type == "cuda" else None)
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, d, dist.get_backend(), owned)


def teardown(d: Dist | None) -> None:
    """End the process group if ``setup`` started it."""
    if d is not None and d.owned and dist.is_initialized():
        dist.destroy_process_group()


def gather(d: Dist, obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def broadcast(d: Dist, obj):
    """Rank 0's ``obj`` on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync(d: Dist) -> None:
    """Wait until every rank is here (e.g. rank 0 has written a file the others read)."""
    gather(d, None)


def agree(d: Dist, error: str | None) -> None:
    """Collective: raise AgreedError on every rank when any rank had ``error`` (rank order decides which one is said)."""
    errors = [e for e in gather(d, error) if e]
    if errors:
        raise AgreedError(errors[0])


def on_main(d: Dist | None, fn: Callable, *args, **kwargs):
    """``fn(*args)`` on rank 0 only (always when ``d`` is None); its InputError is raised on every rank."""
    if d is None:
        return fn(*args, **kwargs)
    result, error = None, None
    if d.main:
        try:
            result = fn(*args, **kwargs)
        except InputError as e:
            error = str(e)
    agree(d, error)
    return result


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


def same_everywhere(d: Dist, what: str, *parts) -> str:
    """Collective: the hash of ``parts`` on this rank, checked equal on every rank (InputError naming them if not)."""
    mine = digest(*parts)
    hashes = gather(d, mine)
    if len(set(hashes)) > 1:
        raise AgreedError(f"the {what} differ between processes (sha256 per rank: {', '.join(h[:12] for h in hashes)}); "
                         f"every process must read the same cache with the same options")
    return mine


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


def shard(positions: np.ndarray, d: Dist) -> np.ndarray:
    """This rank's contiguous part of ``positions`` (validation, out-of-fold); the parts concatenate back in rank order."""
    return np.array_split(np.asarray(positions), d.world)[d.rank]


def gather_probs(d: Dist, probs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Collective: each rank's probabilities over its ``shard``, joined in rank order (= the unsharded order)."""
    parts = gather(d, probs)
    return {k: np.concatenate([p[k] for p in parts]) for k in probs}


def gather_sum(d: Dist, *values: float) -> list[float]:
    """Collective: the sums of ``values`` over every rank."""
    return [float(sum(v)) for v in zip(*gather(d, values))]


def sync_buffers(d: Dist, module: torch.nn.Module) -> None:
    """Collective: rank 0's buffers (BatchNorm statistics, which each rank updates on its own shard) on every rank."""
    for b in module.buffers():
        dist.broadcast(b.data, src=0)


def wrap(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    """``model`` in DistributedDataParallel: gradients averaged over the ranks in backward, rank 0's weights at the start."""
    from torch.nn.parallel import DistributedDataParallel

    if d.device.type == "cpu":  # oneDNN hands depthwise-conv gradients back channels-last: one copy into the bucket, no error
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)


def rank_seed(seed: int, fold: int, rank: int, stream: int = 0) -> int:
    """A seed of its own for each (run seed, fold, rank, stream): augmentation and dropout differ between ranks."""
    return int(np.random.SeedSequence([seed, fold, rank, stream]).generate_state(1)[0])


def rank_rng(d: Dist, gd: torch.Generator) -> list[dict]:
    """Collective: every rank's own random states (augmentation generator, torch's global CPU and CUDA states)."""
    mine = {"gd": gd.get_state(), "torch_rng": torch.get_rng_state()}
    if d.device.type == "cuda":
        mine["cuda_rng"] = torch.cuda.get_rng_state(d.device)
    return gather(d, mine)


def set_rank_rng(d: Dist, gd: torch.Generator, state: dict) -> None:
    """Restore this rank's own random states from a ``state.pt`` written by ``rank_rng``."""
    mine = state["ranks"][d.rank]
    gd.set_state(mine["gd"])
    torch.set_rng_state(mine["torch_rng"])
    if "cuda_rng" in mine and d.device.type == "cuda":
        torch.cuda.set_rng_state(mine["cuda_rng"], d.device)


def check_resume_world(state: dict, d: Dist | None, path) -> None:
    """A fold resumes on as many processes as saved it: each rank's random states are in ``state.pt``."""
    saved, now = int(state.get("world_size", 1)), d.world if d is not None else 1
    if saved != now:
        how = "in one process (without --ddp / torchrun)" if saved == 1 else f"with {saved} processes (--ddp {saved})"
        raise InputError(f"{path}: saved by a run of {saved} process(es), resumed with {now}; resume it {how}")


def launch(nproc: int, args: Sequence[str], module: str = "facecurate") -> int:
    """Run ``python -u -m MODULE ARGS`` on ``nproc`` processes of this machine with torchrun's own launcher, set up as
    ``torchrun --standalone --nproc_per_node N -m MODULE ARGS`` sets it up (c10d rendezvous on a free local port, no
    restarts, ``OMP_NUM_THREADS=1`` unless set). Returns 0, the exit code of the first process that failed, or 130
    when stopped by Ctrl-C or a signal (the agent stops the processes; each epoch's state.pt is already committed).

    In this process rather than a ``torchrun`` subprocess: its failure report (a traceback of the agent) is left out,
    since the failing rank has said what went wrong in one line, and its exit code (2 for bad input) is kept.
    """
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=int(nproc), run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)
    agent_log = logging.getLogger("torch.distributed.elastic")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    level, omp = agent_log.level, os.environ.get("OMP_NUM_THREADS")
    agent_log.setLevel(logging.CRITICAL)  # the agent's own lines (which process it stops, why); the ranks speak for it
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        elastic_launch(config, sys.executable)("-u", "-m", module, *map(str, args))
        return 0
    except ChildFailedError as e:
        code = e.get_first_failure()[1].exitcode
        return code if code > 0 else 1
    except (KeyboardInterrupt, SignalException):  # Ctrl-C or a kill: the agent has stopped the processes
        return 130
    finally:  # the agent's signal handlers and log level are this process's again
        for sig, handler in handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        agent_log.setLevel(level)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
