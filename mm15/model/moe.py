"""Mixture-of-experts feed-forward for the LM (docs/RECIPE.md section 1: top-2, every second layer).

:class:`MoEFeedForward` replaces a decoder layer's `mlp`; it returns a tensor like the MLP it
replaces and keeps its router losses of the last forward in `router_losses`, which the MM1.5
model sums into `aux_loss`. In a pretrained LM the experts start as copies of the dense MLP they
replace (sparse upcycling), so the LM computes the same function at step 0; in an LM trained
from scratch they start independent.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN


class MoEFeedForward(nn.Module):
    """Top-k routed SwiGLU experts; experts are stacked weights, tokens grouped per expert."""

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        num_experts: int,
        top_k: int = 2,
        act: str = "silu",
        init_std: float = 0.02,
    ):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"need 1 <= top_k <= num_experts, got top_k={top_k}, num_experts={num_experts}")
        self.num_experts = num_experts
        self.top_k = top_k
        self.router = nn.Linear(hidden_size, num_experts, bias=False)
        self.gate_up = nn.Parameter(torch.empty(num_experts, hidden_size, 2 * intermediate_size))
        self.down = nn.Parameter(torch.empty(num_experts, intermediate_size, hidden_size))
        nn.init.normal_(self.router.weight, std=init_std)
        nn.init.normal_(self.gate_up, std=init_std)
        nn.init.normal_(self.down, std=init_std)
        self.act = ACT2FN[act]
        self.router_losses: tuple[torch.Tensor, torch.Tensor] | None = None

    def upcycle_from(self, mlp: nn.Module) -> bool:
        """Copy a Llama-style dense MLP (gate_proj, up_proj, down_proj) into every expert."""
        projections = [getattr(mlp, name, None) for name in ("gate_proj", "up_proj", "down_proj")]
        if any(not isinstance(p, nn.Linear) or p.bias is not None for p in projections):
            return False
        gate, up, down = (p.weight for p in projections)
        inter, hidden = gate.shape
        if self.gate_up.shape[1:] != (hidden, 2 * inter) or self.down.shape[1:] != (inter, hidden):
            return False
        with torch.no_grad():
            self.gate_up.copy_(torch.cat([gate.t(), up.t()], dim=1).expand_as(self.gate_up))
            self.down.copy_(down.t().expand_as(self.down))
        return True

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        shape = hidden.shape
        x = hidden.reshape(-1, shape[-1])
        logits = self.router(x).float()
        probs = logits.softmax(-1)
        weights, experts = probs.topk(self.top_k, dim=-1)
        weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)

        # group the (token, expert) assignments by expert; one matmul pair per expert
        flat_experts = experts.reshape(-1)
        order = flat_experts.argsort(stable=True)
        token_of = order // self.top_k
        counts = torch.bincount(flat_experts, minlength=self.num_experts)
        outputs = []
        for e, chunk in enumerate(x[token_of].split(counts.tolist())):
            if len(chunk):
                gate, up = (chunk @ self.gate_up[e]).chunk(2, dim=-1)
                outputs.append((self.act(gate) * up) @ self.down[e])
        routed = torch.cat(outputs) * weights.reshape(-1)[order, None]
        out = torch.zeros_like(x).index_add_(0, token_of, routed)

        # Switch-style load balance: E * sum_e (share of assignments to e) * (mean router prob of e)
        share = counts.float() / flat_experts.numel()
        load_balance = self.num_experts * (share * probs.mean(0)).sum()
        z_loss = torch.logsumexp(logits, dim=-1).square().mean()
        self.router_losses = (load_balance, z_loss)
        return out.reshape(shape)


def decoder_layers(language_model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a Hugging Face causal LM (Llama, Qwen2, Mistral, ... layouts)."""
    decoder = language_model.get_decoder() if hasattr(language_model, "get_decoder") else language_model
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"cannot find decoder layers in {type(language_model).__name__}")
    return layers


def moe_layer_indices(num_layers: int, every: int) -> list[int]:
    """Layers whose MLP becomes an MoE: every `every`-th layer, the first at index every - 1."""
    return list(range(every - 1, num_layers, every))


def replace_mlps(
    language_model: nn.Module,
    num_experts: int,
    top_k: int = 2,
    every: int = 2,
    intermediate_size: int | None = None,
    upcycle: bool = False,
) -> list[MoEFeedForward]:
    """Swap the `mlp` of every `every`-th decoder layer for an MoE (in place); returns the MoEs.

    `upcycle` copies each dense MLP into its experts when the shapes allow.
    """
    config = language_model.config
    inter = intermediate_size or config.intermediate_size
    layers = decoder_layers(language_model)
    moes = []
    for i in moe_layer_indices(len(layers), every):
        std = getattr(config, "initializer_range", 0.02)
        moe = MoEFeedForward(config.hidden_size, inter, num_experts, top_k, config.hidden_act, std)
        if upcycle:
            moe.upcycle_from(layers[i].mlp)
        layers[i].mlp = moe
        moes.append(moe)
    return moes


def router_losses(moes: list[MoEFeedForward]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Mean load-balance and z-loss over the MoE layers of the last forward, or None."""
    losses = [m.router_losses for m in moes if m.router_losses is not None]
    if not losses:
        return None
    load_balance, z_loss = zip(*losses, strict=True)
    return torch.stack(load_balance).mean(), torch.stack(z_loss).mean()
