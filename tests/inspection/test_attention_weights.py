"""The attention weights tinylm.inspection reads are the model's own: a distribution over the
keys a query may see, and exactly the mix the fused kernel computes."""

import pytest
import torch

from tinylm.inspection import attention_weights
from tinylm.inspection.hooks import record_outputs
from tinylm.model import GPT, GPTConfig


def small_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    values = dict(vocab_size=50, block_size=16, n_layer=2, n_head=4, d_model=32, d_ff=64)
    return GPT(GPTConfig(**{**values, **overrides})).eval()


def test_each_row_is_a_distribution_over_the_keys_at_or_before_the_query():
    model = small_gpt()
    idx = torch.randint(0, 50, (3, 11))
    weights = attention_weights(model, idx)
    assert weights.shape == (2, 3, 4, 11, 11)  # (L, B, H, T, T)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 4, 11), rtol=0, atol=1e-6)
    assert (weights >= 0).all()
    above_diagonal = torch.ones(11, 11, dtype=torch.bool).triu(diagonal=1)
    assert (weights[..., above_diagonal] == 0).all()
    assert (weights[..., 0, 0] == 1).all()  # the first token can only look at itself


def attention_outputs_as_trained(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """Each attention layer's output, (B, T, C), from a plain forward pass on the model's own
    path: the fused sdpa kernel, which never shows its weights."""
    outputs = []
    handles = [
        block.attn.register_forward_hook(lambda module, args, output: outputs.append(output))
        for block in model.blocks
    ]
    with torch.no_grad():
        model(idx)
    for handle in handles:
        handle.remove()
    return outputs


def test_weights_times_values_reproduce_each_layers_output_on_the_fused_path():
    """The drawn weights, applied to the values and projected, give what every attention layer
    outputs when the model runs as it trains."""
    model = small_gpt(attention="sdpa")
    idx = torch.randint(0, 50, (2, 13))
    expected = attention_outputs_as_trained(model, idx)

    weights = attention_weights(model, idx)  # (L, B, H, T, T)
    probes = {f"layer {i}": block.attn.probe.v for i, block in enumerate(model.blocks)}
    _, values = record_outputs(model, idx, probes)  # [(name, v (B, H, T, D))], one per layer
    for layer, (_, v) in enumerate(values):
        heads = weights[layer] @ v  # (B, H, T, D)
        B, H, T, D = heads.shape
        with torch.no_grad():
            output = model.blocks[layer].attn.proj(heads.transpose(1, 2).reshape(B, T, H * D))
        torch.testing.assert_close(output, expected[layer], rtol=0, atol=1e-6)


def test_reading_the_weights_leaves_the_model_as_it_was():
    model = small_gpt(attention="sdpa", dropout=0.1).train()
    idx = torch.randint(0, 50, (1, 8))
    first = attention_weights(model, idx)
    assert model.training
    assert all(block.attn.implementation == "sdpa" for block in model.blocks)
    assert not any(module._forward_hooks for module in model.modules())
    # Read in eval mode: dropout does not blur the weights, so a second look sees the same.
    torch.testing.assert_close(attention_weights(model, idx), first, rtol=0, atol=0)


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
def test_weights_of_a_manual_model_match_those_of_the_same_weights_on_sdpa(pos_encoding):
    sdpa = small_gpt(attention="sdpa", pos_encoding=pos_encoding)
    manual = small_gpt(attention="manual", pos_encoding=pos_encoding)
    manual.load_state_dict(sdpa.state_dict())
    idx = torch.randint(0, 50, (2, 9))
    torch.testing.assert_close(attention_weights(manual, idx), attention_weights(sdpa, idx))
