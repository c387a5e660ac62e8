"""Global concurrency limits the pipeline relies on, created on first use:

- `gpu`: training runs, one slot per visible GPU (one on a CPU-only machine, where a training run takes
  all the cores);
- `registry`: one registration or promotion at a time (model versions and their aliases).

An existing limit is left as its owner set it (`prefect gcl update gpu --limit N`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

GPU_LIMIT = "gpu"
REGISTRY = "registry"
LEASE = 60.0


def ensure_limit(name: str, slots: int) -> int:
    """The slots of limit `name`, created with `slots` if it is missing."""
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).limit
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # another run created it meanwhile
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
            return slots


def ensure_gpu_limit() -> int:
    import torch

    return ensure_limit(GPU_LIMIT, max(1, torch.cuda.device_count()))


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Hold the one slot of limit `name` (created on first use) while the block runs. The slot is leased
    and renewed while the block runs: a holder killed outright frees it within LEASE seconds."""
    ensure_limit(name, 1)
    with concurrency(name, occupy=1, strict=True, lease_duration=LEASE):
        yield
