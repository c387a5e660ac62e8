"""Global concurrency limits the pipeline relies on."""

from __future__ import annotations

import contextlib

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

GPU_LIMIT = "gpu"


def ensure_gpu_limit() -> int:
    """Create the `gpu` limit if it is missing: one slot per visible GPU (one on a CPU-only machine, where
    training runs take the cores one at a time). An existing limit is left as its owner set it."""
    import torch

    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(GPU_LIMIT).limit
        except ObjectNotFound:
            slots = max(1, torch.cuda.device_count())
            with contextlib.suppress(ObjectAlreadyExists):  # another run created it meanwhile
                limit = GlobalConcurrencyLimitCreate(name=GPU_LIMIT, limit=slots)
                client.create_global_concurrency_limit(limit)
            return slots
