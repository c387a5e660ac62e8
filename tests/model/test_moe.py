import math

import pytest
import torch
from transformers import AutoModelForImageTextToText, LlamaConfig
from transformers.models.llama.modeling_llama import LlamaMLP

from mm15.model.moe import MoEFeedForward, moe_layer_indices, router_losses
from mm15.model.presets import build_model


def reference_moe(moe: MoEFeedForward, x: torch.Tensor) -> torch.Tensor:
    """Token by token: the normalised top-k mixture of expert SwiGLUs."""
    out = torch.zeros_like(x)
    probs = moe.router(x).float().softmax(-1)
    for t in range(x.shape[0]):
        weights, experts = probs[t].topk(moe.top_k)
        for w, e in zip(weights / weights.sum(), experts.tolist(), strict=True):
            gate, up = (x[t] @ moe.gate_up[e]).chunk(2)
            out[t] += w * ((moe.act(gate) * up) @ moe.down[e])
    return out


def test_grouped_experts_match_the_per_token_definition():
    torch.manual_seed(0)
    moe = MoEFeedForward(hidden_size=16, intermediate_size=24, num_experts=5, top_k=2)
    x = torch.randn(2, 7, 16)
    with torch.no_grad():
        assert torch.allclose(moe(x), reference_moe(moe, x.reshape(-1, 16)).reshape(2, 7, 16), atol=1e-5)


def test_router_losses_for_a_uniform_router_are_known():
    moe = MoEFeedForward(hidden_size=8, intermediate_size=8, num_experts=4, top_k=2)
    torch.nn.init.zeros_(moe.router.weight)  # all logits 0: uniform probabilities
    moe(torch.randn(10, 8))
    load_balance, z_loss = moe.router_losses
    assert load_balance.item() == pytest.approx(1.0)  # E * sum(share * 1/E) = 1
    assert z_loss.item() == pytest.approx(math.log(4) ** 2)


def test_upcycled_experts_compute_the_dense_mlp():
    config = LlamaConfig(hidden_size=16, intermediate_size=24, num_attention_heads=2)
    mlp = LlamaMLP(config)
    moe = MoEFeedForward(16, 24, num_experts=4, top_k=2)
    assert moe.upcycle_from(mlp)
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        assert torch.allclose(moe(x), mlp(x), atol=1e-5)
    assert not MoEFeedForward(16, 32, 4).upcycle_from(mlp)  # other width: starts fresh


def test_every_second_layer_is_moe():
    assert moe_layer_indices(4, 2) == [1, 3]
    assert moe_layer_indices(5, 2) == [1, 3]
    assert moe_layer_indices(6, 3) == [2, 5]
    assert router_losses([]) is None


def test_moe_model_trains_a_step_with_finite_positive_aux_losses(tiny_processor, make_image):
    torch.manual_seed(0)
    model = build_model("tiny-moe", tiny_processor)
    layers = model.language_model.model.layers
    assert isinstance(layers[1].mlp, MoEFeedForward) and isinstance(layers[0].mlp, LlamaMLP)
    messages = [{"role": "user", "content": "<image>Colour?"}, {"role": "assistant", "content": "red"}]
    batch = tiny_processor(
        conversations=[messages, messages], images=[[make_image(60, 60)], [make_image(90, 60)]]
    )
    out = model(**batch)
    assert torch.isfinite(out.aux_loss) and out.aux_loss > 0
    assert out.load_balance_loss > 0 and out.router_z_loss > 0
    expected_aux = 0.01 * out.load_balance_loss + 0.001 * out.router_z_loss
    assert torch.allclose(out.aux_loss, expected_aux)
    dense = model(**batch, return_logits=True)  # the loss is the LM loss plus aux
    lm_only = dense.loss - dense.aux_loss
    assert 0 < lm_only < 10
    router_before = layers[1].mlp.router.weight.detach().clone()
    out.loss.backward()
    assert layers[1].mlp.router.weight.grad.abs().sum() > 0 and layers[1].mlp.gate_up.grad.abs().sum() > 0
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    assert not torch.equal(layers[1].mlp.router.weight, router_before)


def test_dense_model_reports_no_aux_loss(tiny_model, tiny_processor):
    batch = tiny_processor(
        conversations=[[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]]
    )
    out = tiny_model(**batch)
    assert out.aux_loss is None and out.load_balance_loss is None


def test_moe_model_round_trips_through_save_pretrained(tmp_path, tiny_processor):
    torch.manual_seed(0)
    model = build_model("tiny-moe", tiny_processor).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert loaded.config.moe_num_experts == 4 and isinstance(
        loaded.language_model.model.layers[1].mlp, MoEFeedForward
    )
    batch = tiny_processor(
        conversations=[[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]]
    )
    with torch.no_grad():
        a, b = model(**batch, return_logits=True), loaded(**batch, return_logits=True)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.aux_loss, b.aux_loss)
