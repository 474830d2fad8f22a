"""Data-parallel training: the train stage starts itself again under torchrun, one process per device.

torchrun (torch.distributed.run) is torch's own launcher: it sets RANK, WORLD_SIZE and the rendezvous for each
process, and the sentence-transformers trainer (through accelerate) joins that process group, NCCL on GPUs and
gloo on CPUs. Multi-node runs use torchrun's own flags instead (`--nnodes`, `--rdzv-endpoint`), see the README.
"""

from __future__ import annotations

import os
import subprocess
import sys

from augir.errors import AugirError


def inside_launcher() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ


def torchrun_command(processes: int, target: list[str]) -> list[str]:
    """`python -m torch.distributed.run` for `processes` processes on this machine, each running `target`: a
    script and its arguments, or `-m module` and its arguments."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *target]


def run_distributed(processes: int, target: list[str]) -> None:
    """Run `target` in `processes` processes and wait; a failed process is a one-line error naming the param."""
    result = subprocess.run(torchrun_command(processes, target))
    if result.returncode != 0:
        raise AugirError(f"runtime.train_processes: {processes}: a training process failed (exit status "
                         f"{result.returncode}; its traceback is above)")
