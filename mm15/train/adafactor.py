"""Adafactor for FSDP2: ``torch.optim.Adafactor``'s algorithm, also on sharded DTensor parameters.

``torch.optim.Adafactor`` breaks on the ``Shard(0)`` DTensors that ``fully_shard`` makes (an in-place
``pow_`` on a partial-norm DTensor), and transformers' Adafactor mixes Tensors and DTensors.
``ShardedAdafactor`` runs torch's single-tensor algorithm op for op on each parameter's *local*
shard; on plain tensors its updates and state are bitwise torch's (and the state dicts interchange).

Only the statistics that reduce over a sharded dim differ from a local computation. Those are
summed locally, all-reduced over the process group of the mesh dim that shards the tensor, and
divided by the *global* count, since FSDP2 shards unevenly (5 rows over 2 ranks is 3 + 2; 1 row
is 1 + 0, an empty shard). They are

* the parameter RMS (relative step size) and the update RMS (update clipping), always;
* for factored (>= 2-D, factored over the last two dims) parameters sharded on dim -2, the rows
  of a 2-D weight as FSDP2 shards them: the column mean of grad² and the mean of ``row_var``
  over rows in the normaliser; sharded on dim -1: the row mean of grad². Sharding a leading
  (batch) dim of a >2-D parameter needs nothing beyond the RMSs.

A DTensor parameter's state is DTensors on its mesh (``Replicate`` where the factor reduced the
sharded dim), so ``torch.distributed.checkpoint`` can gather and reshard it. Supported layouts:
one ``Shard`` placement, any other mesh dims ``Replicate`` (FSDP2, HSDP). Cost: per sharded
parameter up to four tiny all-reduces, next to the two host syncs per parameter torch already makes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.tensor import DTensor, Replicate
from torch.optim.optimizer import Optimizer, ParamsT

__all__ = ["ShardedAdafactor"]


class _Layout(NamedTuple):
    """Which dim of a parameter is sharded, and over which process group (both None: not sharded)."""

    dim: int | None = None
    group: dist.ProcessGroup | None = None


def _layout(p: Tensor) -> _Layout:
    if not isinstance(p, DTensor):
        return _Layout()
    sharded = [(mesh_dim, pl) for mesh_dim, pl in enumerate(p.placements) if not pl.is_replicate()]
    if not sharded:
        return _Layout()
    if len(sharded) > 1 or not sharded[0][1].is_shard():
        raise NotImplementedError(
            f"ShardedAdafactor supports one Shard placement (FSDP2, HSDP), got {p.placements}"
        )
    mesh_dim, placement = sharded[0]
    return _Layout(placement.dim % p.dim(), p.device_mesh.get_group(mesh_dim))


def _local(t: Tensor) -> Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


def _all_reduce(t: Tensor, group: dist.ProcessGroup | None) -> Tensor:
    if group is not None:
        dist.all_reduce(t, group=group)
    return t


def _norm(t: Tensor, group: dist.ProcessGroup | None) -> float:
    """The L2 norm of the whole tensor that `t` is the local shard of."""
    if group is None:
        return t.norm(2).item()
    return _all_reduce(t.norm(2).double().square(), group).sqrt().item()


def _sq_mean(g: Tensor, dim: int, count: int, group: dist.ProcessGroup | None) -> Tensor:
    """Mean of g * g over `dim` (global size `count`), as torch computes it, summed over `group`."""
    return _all_reduce(torch.norm(g, dim=dim, keepdim=True).square_(), group).div_(count)


def _mean(t: Tensor, dim: int, count: int, group: dist.ProcessGroup | None) -> Tensor:
    if group is None:
        return t.mean(dim=dim, keepdim=True)
    return _all_reduce(t.sum(dim=dim, keepdim=True), group).div_(count)


def _factor_zeros(t: Tensor, dim: int) -> Tensor:
    """Zeros like `t` with `dim` reduced to size 1; a DTensor on `t`'s mesh if `t` is one."""
    local = _local(t)
    shape = list(local.shape)
    shape[dim] = 1
    zeros = local.new_zeros(shape)
    if not isinstance(t, DTensor):
        return zeros
    dim %= t.dim()
    global_shape = list(t.shape)
    global_shape[dim] = 1
    placements = [Replicate() if pl.is_shard() and pl.dim % t.dim() == dim else pl for pl in t.placements]
    return DTensor.from_local(
        zeros,
        t.device_mesh,
        placements,
        shape=torch.Size(global_shape),
        stride=torch.empty(global_shape, device="meta").stride(),
    )


def _scalar_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class ShardedAdafactor(Optimizer):
    """``torch.optim.Adafactor`` (same arguments, defaults, state) that also steps sharded DTensors.

    ``foreach`` is accepted for compatibility and ignored: this is the single-tensor algorithm.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not lr >= 0.0:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not beta2_decay <= 0.0:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not eps[0] >= 0.0:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not eps[1] >= 0.0:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not d >= 1.0:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {
            "lr": lr,
            "beta2_decay": beta2_decay,
            "eps": eps,
            "d": d,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            for p in group["params"]:
                p_state = self.state.get(p, {})
                if p_state and not torch.is_tensor(p_state["step"]):
                    p_state["step"] = torch.tensor(float(p_state["step"]), dtype=_scalar_dtype())

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform a single optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._step_param(p, group)
        return loss

    def _step_param(self, p: Tensor, group: dict[str, Any]) -> None:
        if torch.is_complex(p):
            raise RuntimeError("Adafactor does not support complex parameters")
        if p.grad.is_sparse:
            raise RuntimeError("Adafactor does not support sparse gradients")
        layout = _layout(p)
        if isinstance(p, DTensor) and (
            not isinstance(p.grad, DTensor) or tuple(p.grad.placements) != tuple(p.placements)
        ):
            raise RuntimeError("a DTensor parameter needs a DTensor gradient with the same placements")

        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
            if p.grad.dim() > 1:
                state["row_var"] = _factor_zeros(p.grad, -1)
                state["col_var"] = _factor_zeros(p.grad, -2)
            else:
                state["variance"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)

        lr = group["lr"].squeeze() if isinstance(group["lr"], Tensor) else group["lr"]  # as torch does
        eps1, eps2 = group["eps"]
        if eps1 is None:  # torch takes the first parameter's dtype for the whole group
            eps1 = torch.finfo(p.dtype).eps
        param, grad = _local(p), _local(p.grad)
        if group["maximize"]:
            grad = -grad

        step_t = state["step"]
        step_t += 1
        step_float = step_t.item()
        one_minus_beta2_t = step_float ** group["beta2_decay"]
        rho_t = min(lr, 1 / (step_float**0.5))
        alpha = max(eps2, _norm(param, layout.group) / (p.numel() ** 0.5)) * rho_t

        if group["weight_decay"] != 0:
            param.mul_(1 - lr * group["weight_decay"])

        if grad.dim() > 1:
            # the process group that shards the rows (dim -2, FSDP2's dim 0 of a 2-D weight) / columns
            rows_group = layout.group if layout.dim == grad.dim() - 2 else None
            cols_group = layout.group if layout.dim == grad.dim() - 1 else None
            row_var, col_var = _local(state["row_var"]), _local(state["col_var"])
            row_var.lerp_(_sq_mean(grad, -1, p.size(-1), cols_group), one_minus_beta2_t)
            col_var.lerp_(_sq_mean(grad, -2, p.size(-2), rows_group), one_minus_beta2_t)
            var_estimate = row_var @ col_var
            var_estimate.div_(_mean(row_var, -2, p.size(-2), rows_group).clamp_(min=eps1))
        else:
            variance = _local(state["variance"])
            variance.lerp_(grad * grad, one_minus_beta2_t)
            var_estimate = variance.clone()

        # square the eps1 as we sqrt after to keep eps1's magnitude
        update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_()
        update.mul_(grad)
        denom = max(1.0, _norm(update, layout.group) / ((p.numel() ** 0.5) * group["d"]))
        param.add_(update, alpha=-alpha / denom)
