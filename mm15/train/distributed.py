"""One process or many (`torchrun`): the process group, the device, DDP or FSDP2 wrapping, and sums.

Launched by `torchrun`, each process reads RANK / WORLD_SIZE / LOCAL_RANK; NCCL on GPUs, gloo on CPUs.
DDP replicates the model; FSDP2 (`fully_shard`) shards each decoder and vision layer and the rest.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn

Strategy = Literal["ddp", "fsdp"]


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world(device: str | None = None) -> World:
    """The process group (when launched with several processes) and this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    target = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, world_size, local_rank, target)


def close_world(wait_for_peers: bool = True) -> None:
    """Tear the process group down; on a clean exit all ranks meet first, since a rank that destroys
    gloo while a peer still talks to it can abort ("terminate called without an active exception")."""
    if dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, world: World, strategy: Strategy) -> nn.Module:
    """DDP or FSDP2 around `model` (unchanged in one process)."""
    if not world.distributed:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in [*_layers(model.language_model), *_layers(model.vision_tower)]:
            fully_shard(layer)
        fully_shard(model)
        return model
    ids = [world.device.index] if world.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def _layers(part: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a tower or LM (whatever their attribute path)."""
    for module in part.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1:
            return list(module)
    return []


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


@contextlib.contextmanager
def accumulating(model: nn.Module, sync: bool) -> Iterator[None]:
    """Backward passes that only accumulate gradients locally unless `sync` (the last micro-batch)."""
    if isinstance(model, nn.parallel.DistributedDataParallel) and not sync:
        with model.no_sync():
            yield
        return
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(sync)
    yield


def sum_across(values: Sequence[float], world: World) -> list[float]:
    """Element-wise sums over all processes."""
    if not world.distributed:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64, device=world.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Whole (unsharded) model and optimizer states, on the CPU of rank 0 under FSDP2."""
    if not is_sharded(model):
        return unwrap(model).state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(model, optimizer, options=options)


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, optim_state: dict[str, Any]) -> None:
    """Load the optimizer state saved by `full_state` (the model's weights are loaded before wrapping)."""
    if not is_sharded(model):
        optimizer.load_state_dict(optim_state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True)
    set_optimizer_state_dict(model, optimizer, optim_state, options=options)
