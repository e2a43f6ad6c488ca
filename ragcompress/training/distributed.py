"""Data parallelism for `train`: the ranks of a ``torchrun`` job, one start, one gradient average a step.

Every rank starts from rank 0's trained weights (`broadcast_trained`), reads its own share of each batch,
and the trained weights' gradients are averaged over the ranks once per optimizer step, after the last
micro-batch (`average_gradients`). That is all DistributedDataParallel (or accelerate, which wraps it)
would do here, without its constraints: a step may run any number of forwards and backwards (substeps,
compression and answer passes of stage 2, one backward over all substeps without ``stop_gradient``),
and a weight that no backward of a rank reached counts as a zero gradient there instead of stalling the
reduction (one that no rank's backward reached keeps no gradient, as in one process). DDP (or
accelerate) would need ``no_sync`` around every backward but the last, ``find_unused_parameters`` for
steps that skip part of the model, and its wrapper's forward around the segment loop's many model calls;
and it would hand AdamW a zero gradient for a weight no rank reached, a step the single-process run
does not take.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    """This process's place in the run: rank, number of ranks, and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """One process (WORLD_SIZE unset or 1), or a rank of a torchrun job (NCCL on GPUs, gloo on CPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        device = torch.device("cuda", local) if cuda else torch.device("cpu")
        return Dist(dist.get_rank(), world, device)
    return Dist(0, 1, torch.device("cuda" if cuda else "cpu"))


def broadcast_trained(params: list[torch.nn.Parameter], env: Dist) -> None:
    """Every rank starts from rank 0's trained weights (fresh LoRA factors may differ otherwise)."""
    if env.world > 1:
        for param in params:
            dist.broadcast(param.data, src=0)


def average_gradients(params: list[torch.nn.Parameter], env: Dist, bucket: int = 1 << 24) -> None:
    """Average the gradients of ``params`` over the ranks, in flat buckets of ~``bucket`` elements.

    A parameter that some rank has a gradient for but this rank has not (no backward of this rank reached
    it) contributes zeros here. A parameter that no rank has a gradient for keeps ``grad = None`` on
    every rank, as it would in one process, so the optimizer skips it (AdamW would otherwise take a
    momentum and weight-decay step on a zero gradient).
    """
    if env.world <= 1:
        return
    device = params[0].device if params else env.device
    present = torch.tensor([float(p.grad is not None) for p in params], device=device)
    dist.all_reduce(present)
    params = [p for p, n in zip(params, present.tolist()) if n > 0]
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    group: list[torch.Tensor] = []
    size = 0
    for i, param in enumerate(params):
        group.append(param.grad)
        size += param.grad.numel()
        if size >= bucket or i == len(params) - 1:
            flat = torch.cat([g.reshape(-1) for g in group])
            dist.all_reduce(flat)
            flat /= env.world
            offset = 0
            for g in group:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
            group, size = [], 0


def agree_on_clock(env: Dist, elapsed: float, projected: float, budget: float, start_progress: float):
    """(stop now?, share of the time schedule done) from rank 0's clock, so every rank agrees."""
    done = start_progress + (1 - start_progress) * min(1.0, elapsed / budget)
    if env.world == 1:  # nothing to agree on: no tensor, so no host-device sync each step
        return projected > budget, done
    values = torch.tensor([float(projected > budget), done], device=env.device, dtype=torch.float64)
    if env.world > 1:
        dist.broadcast(values, src=0)
    stop, done = values.tolist()
    return bool(stop), done
