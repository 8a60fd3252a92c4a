import math

import pytest
import torch
from hydra import compose, initialize_config_dir

from tests.conftest import CONF_DIR
from tinylm.errors import ConfigError
from tinylm.model import GPT, GPTConfig
from tinylm.model.attention import CausalSelfAttention
from tinylm.model.block import Block


def tiny_config(**overrides) -> GPTConfig:
    values = dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, d_model=16, d_ff=32)
    return GPTConfig(**{**values, **overrides})


def test_logits_have_one_row_per_position_and_exactly_vocab_size_columns():
    torch.manual_seed(0)
    model = GPT(tiny_config())
    idx = torch.randint(0, 50, (3, 11))
    assert model(idx).shape == (3, 11, 50)
    # The embedding is padded to a multiple of 64, but padded ids never reach the logits.
    assert model.tok_emb.weight.shape[0] == 64


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
def test_changing_a_token_never_changes_logits_before_it(attention, pos_encoding):
    torch.manual_seed(0)
    model = GPT(tiny_config(attention=attention, pos_encoding=pos_encoding)).eval()
    idx = torch.randint(0, 50, (2, 16))
    changed = idx.clone()
    t = 9
    changed[:, t] = (changed[:, t] + 1) % 50
    before, after = model(idx), model(changed)
    torch.testing.assert_close(before[:, :t], after[:, :t], rtol=0, atol=0)
    assert not torch.allclose(before[:, t], after[:, t])


def test_manual_attention_matches_sdpa():
    torch.manual_seed(0)
    sdpa = GPT(tiny_config(attention="sdpa")).eval()
    manual = GPT(tiny_config(attention="manual")).eval()
    manual.load_state_dict(sdpa.state_dict())
    idx = torch.randint(0, 50, (4, 16))
    torch.testing.assert_close(manual(idx), sdpa(idx), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_attention_gradients_match_finite_differences(attention):
    torch.manual_seed(0)
    layer = CausalSelfAttention(tiny_config(attention=attention, d_model=8)).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-5)


def test_block_gradients_match_finite_differences():
    torch.manual_seed(0)
    block = Block(tiny_config(attention="manual", d_model=8, d_ff=16)).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5)


def test_lm_head_is_tied_to_the_token_embedding():
    model = GPT(tiny_config())
    assert model.lm_head.weight is model.tok_emb.weight
    names = [name for name, _ in model.named_parameters()]
    assert "lm_head.weight" not in names  # one tensor, counted once


def test_residual_projections_start_smaller_with_depth():
    torch.manual_seed(0)
    model = GPT(tiny_config(n_layer=8, d_model=64, d_ff=256))
    expected = 0.02 / math.sqrt(2 * 8)
    assert model.blocks[0].attn.proj.weight.std().item() == pytest.approx(expected, rel=0.1)
    assert model.blocks[0].mlp.fc.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_sinusoidal_encoding_is_a_fixed_buffer():
    model = GPT(tiny_config(pos_encoding="sinusoidal"))
    assert not hasattr(model, "pos_emb")
    assert "pos_table" not in model.state_dict()  # rebuilt from the config, never stored
    assert model.pos_table[0, 0] == 0.0 and model.pos_table[0, 1] == 1.0  # sin(0), cos(0)


# Parameter counts by hand: each block has qkv (C·3C + 3C), proj (C·C + C), two LayerNorms
# (2·2C), fc (C·F + F) and proj (F·C + C); the model adds the final LayerNorm (2C).
def expected_non_embedding(n_layer: int, C: int, F: int) -> int:
    block = (3 * C * C + 3 * C) + (C * C + C) + 4 * C + (C * F + F) + (F * C + C)
    return n_layer * block + 2 * C


@pytest.mark.parametrize("size", ["tiny", "small", "medium", "large", "gpt2"])
def test_each_size_instantiates_with_the_expected_parameter_count(size):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={size}", "data.path=unused.txt"])
    config = GPTConfig(vocab_size=50257, **cfg.model)
    with torch.device("meta"):  # shapes only: gpt2 would take seconds to initialise
        model = GPT(config)
    non_embedding = expected_non_embedding(config.n_layer, config.d_model, config.d_ff)
    embeddings = config.padded_vocab_size * config.d_model + config.block_size * config.d_model
    assert model.num_parameters(include_embeddings=False) == non_embedding
    assert model.num_parameters() == non_embedding + embeddings
    if size == "gpt2":  # the published figure: 124M with GPT-2's vocabulary
        assert round(model.num_parameters() / 1e6) == 124


def test_a_model_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(tiny_config(d_model=32, d_ff=64))
    idx = torch.randint(0, 50, (4, 17))
    x, y = idx[:, :-1], idx[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_a_sequence_longer_than_the_context_is_refused():
    model = GPT(tiny_config())
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"d_model": 30, "n_head": 4}, "divisible"),
        ({"pos_encoding": "rotary"}, "pos_encoding"),
        ({"attention": "flash"}, "attention"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_model_configs_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)


def test_flops_per_token_counts_six_per_matmul_weight_and_the_attention():
    config = tiny_config()  # vocab 50 (padded to 64), C 16, F 32, 2 layers, context 16
    model = GPT(config)
    blocks = expected_non_embedding(2, 16, 32)
    assert model.flops_per_token() == 6 * (blocks + 64 * 16) + 12 * 2 * 16 * 16
