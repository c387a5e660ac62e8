"""ShardedAdafactor steps exactly like torch.optim.Adafactor, on plain tensors and on FSDP2 shards.

Run as a script (under torchrun, 2 ranks, gloo on CPU) this file is the distributed worker.
"""

from __future__ import annotations

import copy
import datetime
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from mm15.train.adafactor import ShardedAdafactor

SHAPES = [(), (5,), (4, 3), (2, 3, 4), (2, 1, 3, 2)]
STEPS = 5


def _params() -> list[nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    return [nn.Parameter(torch.randn(shape, generator=gen)) for shape in SHAPES]


def _set_grads(params: list[nn.Parameter], step: int) -> None:
    gen = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * (step + 1)


def _run(opt: torch.optim.Optimizer, params: list[nn.Parameter], steps: range) -> None:
    for step in steps:
        _set_grads(params, step)
        opt.step()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lr": 0.3, "weight_decay": 0.1, "maximize": True},
        {"lr": torch.tensor(0.05), "beta2_decay": -0.5, "eps": (1e-6, 1e-2), "d": 2.0},
    ],
    ids=["defaults", "decay-maximize", "tensor-lr-eps-d"],
)
def test_matches_torch_adafactor(kwargs: dict) -> None:
    ours, ref = _params(), _params()
    opt, ref_opt = ShardedAdafactor(ours, **kwargs), torch.optim.Adafactor(ref, **kwargs)
    for step in range(STEPS):
        _set_grads(ours, step)
        _set_grads(ref, step)
        opt.step()
        ref_opt.step()
        for p, r in zip(ours, ref, strict=True):
            torch.testing.assert_close(p, r, rtol=0, atol=0)  # op for op the same: bitwise equal
            torch.testing.assert_close(opt.state[p], ref_opt.state[r], rtol=0, atol=0)


def test_state_dict_resume() -> None:
    """Save after 2 steps, load into a fresh optimizer, go on: the same as uninterrupted.
    The state dict is torch.optim.Adafactor's, so either optimizer can resume the other."""
    straight = _params()
    _run(ShardedAdafactor(straight, weight_decay=0.1), straight, range(STEPS))

    first = _params()
    opt = ShardedAdafactor(first, weight_decay=0.1)
    _run(opt, first, range(2))
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in first], "optim": opt.state_dict()}, buf)

    for cls in (ShardedAdafactor, torch.optim.Adafactor):
        buf.seek(0)
        ckpt = torch.load(buf, weights_only=True)
        resumed = [nn.Parameter(t.clone()) for t in ckpt["params"]]
        opt = cls(resumed, weight_decay=0.1)
        opt.load_state_dict(ckpt["optim"])
        _run(opt, resumed, range(2, STEPS))
        for p, s in zip(resumed, straight, strict=True):
            torch.testing.assert_close(p, s, rtol=0, atol=0)


# ---- distributed: FSDP2 on 2 ranks ---------------------------------------------------------------


class _Net(nn.Module):
    """Odd sizes so FSDP2 shards unevenly: 5 rows over 2 ranks (3 + 2), 3 experts (2 + 1),
    and 1 row (1 + 0, an empty shard on rank 1)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.inp = nn.Linear(7, 5)
        self.norm = nn.LayerNorm(5)
        self.experts = nn.Parameter(torch.randn(3, 5, 4, generator=gen) * 0.5)  # 3-D, dim 0 a batch dim
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.norm(self.inp(x)))
        h = torch.einsum("bi,eio->beo", h, self.experts).mean(1)
        return self.out(torch.tanh(h)).squeeze(-1)


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + step)
    return torch.randn(6, 7, generator=gen), torch.randn(6, generator=gen)


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: range) -> None:
    for step in steps:
        x, y = _batch(step)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def _worker(out: Path) -> None:
    """Every rank trains the same batches; FSDP2 averages identical gradients, so the sharded run
    must match one unsharded process. Also: other shard dims (1, 2) on bare DTensors, a per-rank
    state-dict resume, and DCP's full optimizer state dict against torch's state."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))  # no orphan hangs forever
    mesh = init_device_mesh("cpu", (2,))
    kwargs = {"lr": 0.05, "weight_decay": 0.01}

    torch.manual_seed(0)
    ref = _Net()
    model = copy.deepcopy(ref)
    fully_shard(model, mesh=mesh)
    ref_opt = torch.optim.Adafactor(ref.parameters(), **kwargs)
    _train(ref, ref_opt, range(STEPS))
    opt = ShardedAdafactor(model.parameters(), **kwargs)
    _train(model, opt, range(3))
    state = copy.deepcopy(opt.state_dict())
    opt = ShardedAdafactor(model.parameters(), **kwargs)
    opt.load_state_dict(state)
    _train(model, opt, range(3, STEPS))
    full_state = get_optimizer_state_dict(model, opt, options=StateDictOptions(full_state_dict=True))

    # bare DTensors sharded on a non-leading dim (or replicated), with given gradients
    layouts = [((4, 5), Shard(1)), ((3, 4, 5), Shard(2)), ((3, 5, 4), Shard(1)), ((2, 3), Replicate())]
    plain = [
        nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(7))) for shape, _ in layouts
    ]
    bare = [
        nn.Parameter(distribute_tensor(p.detach(), mesh, [pl]))
        for p, (_, pl) in zip(plain, layouts, strict=True)
    ]
    bare_opt, plain_opt = ShardedAdafactor(bare, **kwargs), torch.optim.Adafactor(plain, **kwargs)
    for step in range(STEPS):
        _set_grads(plain, step)
        for b, p in zip(bare, plain, strict=True):
            b.grad = distribute_tensor(p.grad, mesh, b.placements)
        bare_opt.step()
        plain_opt.step()

    sharded = {n: p.full_tensor() for n, p in model.named_parameters()}
    bare_full = [b.full_tensor() for b in bare]
    if dist.get_rank() == 0:
        ref_state = {n: ref_opt.state[p] for n, p in ref.named_parameters()}
        torch.save(
            {
                "sharded": sharded,
                "reference": {n: p.detach() for n, p in ref.named_parameters()},
                "state": {n: full_state["state"][n] for n in ref_state},
                "ref_state": ref_state,
                "bare": bare_full,
                "plain": [p.detach() for p in plain],
            },
            out,
        )
    dist.barrier()  # both ranks done before gloo goes down: a rank leaving early can abort its peer
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_fsdp2_sharded_matches_unsharded(tmp_path: Path) -> None:
    out = tmp_path / "result.pt"
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2"]
    cmd += ["--master_addr", "127.0.0.1", "--master_port", str(_free_port()), __file__, str(out)]
    proc = subprocess.run(cmd, env=env, cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    result = torch.load(out, weights_only=True)
    assert result["sharded"].keys() == result["reference"].keys()
    tol = {"rtol": 1e-5, "atol": 1e-6}  # sharded sums add in another order
    for name, ref in result["reference"].items():
        torch.testing.assert_close(result["sharded"][name], ref, **tol, msg=lambda m, n=name: f"{n}: {m}")
        torch.testing.assert_close(
            result["state"][name], result["ref_state"][name], **tol, msg=lambda m, n=name: f"state {n}: {m}"
        )
    for i, (bare, plain) in enumerate(zip(result["bare"], result["plain"], strict=True)):
        torch.testing.assert_close(bare, plain, **tol, msg=lambda m, i=i: f"bare DTensor {i}: {m}")


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
