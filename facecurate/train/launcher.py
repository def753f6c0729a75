"""What ``train --ddp N`` runs: N processes of the same ``train`` command under torchrun's own launcher.

``launch`` is torchrun's launcher (``elastic_launch``, which the ``torchrun`` command calls) with ``--standalone``'s
settings, so both ways in give the processes the same environment, and torchrun's agent stops every process when
one fails. ``torch.multiprocessing.spawn`` would need a rendezvous and failure handling of its own.
``launch_train`` hands each process the checked ``TrainConfig`` as options (``config.option_args``); each process
then joins the group in ``distributed.setup``.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import TrainConfig, option_args


def launch_train(nproc: int, cache: str | Path, out: str | Path, cfg: TrainConfig, flags: Sequence[str] = ()) -> int:
    """``train CACHE`` with ``cfg`` (as options, ``config.option_args``) on ``nproc`` processes (``launch``): ``--out``
    the folder picked here, ``--verify off`` (the cache was checked here), ``flags`` as given (``--quiet``)."""
    return launch(nproc, ["train", str(cache), *option_args(cfg), "--out", str(out), "--verify", "off", *flags])


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
