import pytest
import torch
from torch import nn

from mm15.model.cabstractor import Bottleneck, CAbstractor, LayerNorm2d, SqueezeExcite


def test_patch_tokens_become_q_tokens_in_the_lm_width():
    connector = CAbstractor(vision_dim=24, lm_dim=40, num_patches=49, num_queries=16, depth=2, width=32)
    out = connector(torch.randn(3, 49, 24))
    assert out.shape == (3, 16, 40)
    paper = CAbstractor(vision_dim=8, lm_dim=8, num_patches=48 * 48, num_queries=144, depth=1, width=8)
    assert paper(torch.randn(1, 48 * 48, 8)).shape == (1, 144, 8)  # 672 px / 14 -> 12 x 12 tokens


def test_structure_follows_honeybee():
    connector = CAbstractor(vision_dim=24, lm_dim=40, num_patches=49, num_queries=16, depth=3, width=32)
    assert len(connector.stage1) == 3 and len(connector.stage2) == 3
    assert all(isinstance(block, Bottleneck) for block in [*connector.stage1, *connector.stage2])
    block = connector.stage2[0]
    depthwise = block.conv2[0]
    assert depthwise.kernel_size == (3, 3) and depthwise.groups == depthwise.in_channels == 32
    assert isinstance(block.se, SqueezeExcite) and block.se.reduce.out_channels == 8  # 0.25 x 32
    assert isinstance(block.conv1[1], LayerNorm2d) and isinstance(block.conv1[2], nn.SiLU)
    assert connector.stage1[0].shortcut is not None and block.shortcut is None  # width change only
    assert isinstance(connector.pool, nn.AdaptiveAvgPool2d) and connector.pool.output_size == 4
    assert isinstance(connector.readout[1], nn.SiLU) and connector.readout[2].out_features == 40


def test_residual_passes_input_when_the_branch_is_silenced():
    block = Bottleneck(8, 8)
    nn.init.zeros_(block.conv3[1].weight)  # LayerNorm2d gain 0: the branch outputs 0
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(block(x), nn.functional.silu(x))


def test_layernorm2d_normalises_channels_per_pixel():
    x = torch.randn(2, 6, 3, 3) * 5 + 2
    y = LayerNorm2d(6)(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 3, 3), atol=1e-5)
    assert torch.allclose(y.var(1, unbiased=False), torch.ones(2, 3, 3), atol=1e-3)


def test_every_parameter_gets_a_gradient():
    connector = CAbstractor(vision_dim=16, lm_dim=16, num_patches=16, num_queries=4, depth=1, width=16)
    connector(torch.randn(2, 16, 16)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in connector.parameters())


def test_positional_embedding_distinguishes_patch_positions():
    connector = CAbstractor(vision_dim=8, lm_dim=8, num_patches=16, num_queries=4, depth=1, width=8)
    with torch.no_grad():
        connector.pos_embed.normal_()
        same = torch.ones(1, 16, 8)  # identical patches: only positions differ
        out = connector(same)
    assert not torch.allclose(out[0, 0], out[0, 3], atol=1e-4)


@pytest.mark.parametrize(("patches", "queries"), [(49, 15), (50, 16), (16, 25)])
def test_token_counts_must_be_squares_that_fit(patches, queries):
    with pytest.raises(ValueError):
        CAbstractor(vision_dim=8, lm_dim=8, num_patches=patches, num_queries=queries)
