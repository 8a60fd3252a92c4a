import pytest
import torch

from tests.model.test_gpt import tiny_config
from tinylm.model import GPT


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
def test_feeding_a_sequence_in_pieces_through_the_cache_gives_the_full_logits(
    attention, pos_encoding
):
    torch.manual_seed(0)
    model = GPT(tiny_config(attention=attention, pos_encoding=pos_encoding)).eval()
    idx = torch.randint(0, 50, (3, 16))
    cache = model.new_cache(batch_size=3)
    # A prefill of 5, a chunk of 4 (queries after a cached past), then one token at a time.
    pieces = [idx[:, :5], idx[:, 5:9], *idx[:, 9:].split(1, dim=1)]
    logits = torch.cat([model(piece, cache=cache) for piece in pieces], dim=1)
    torch.testing.assert_close(logits, model(idx), rtol=1e-5, atol=1e-5)
    assert cache.length == 16


SWITCHES = {
    "rope": dict(pos_encoding="rope"),
    "rope base 500": dict(pos_encoding="rope", rope_base=500.0),
    "rmsnorm": dict(norm="rmsnorm"),
    "weightless rmsnorm": dict(norm="rmsnorm", norm_weight=False),
    "swiglu": dict(mlp="swiglu"),
    "relu2": dict(mlp="relu2"),
    "qk-norm": dict(qk_norm=True),
    "untied": dict(tie_embeddings=False),
    "soft-cap": dict(logit_softcap=3.0),
    "grouped-query": dict(n_head=4, n_kv_head=2),
    "multi-query": dict(n_head=4, n_kv_head=1),
    "embed norm": dict(embed_norm=True),
    "modern": dict(pos_encoding="rope", norm="rmsnorm", norm_weight=False, mlp="relu2",
                   qk_norm=True, embed_norm=True, tie_embeddings=False, logit_softcap=15.0,
                   bias=False, n_head=4, n_kv_head=2),
}  # fmt: skip


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("switch", SWITCHES)
def test_the_cache_gives_the_full_logits_under_every_switch(switch, attention):
    torch.manual_seed(0)
    model = GPT(tiny_config(attention=attention, **SWITCHES[switch])).eval()
    idx = torch.randint(0, 50, (2, 16))
    cache = model.new_cache(batch_size=2)
    assert cache.layers[0].keys.shape == (2, model.config.kv_heads, 16, model.config.head_dim)
    pieces = [idx[:, :5], idx[:, 5:9], *idx[:, 9:].split(1, dim=1)]
    logits = torch.cat([model(piece, cache=cache) for piece in pieces], dim=1)
    torch.testing.assert_close(logits, model(idx), rtol=1e-5, atol=1e-5)


def test_last_only_gives_the_last_row_of_the_logits():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx = torch.randint(0, 50, (2, 9))
    last = model(idx, last_only=True)
    assert last.shape == (2, 1, 50)
    torch.testing.assert_close(last[:, 0], model(idx)[:, -1])


def test_select_reorders_and_duplicates_cached_sequences():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx = torch.randint(0, 50, (3, 6))
    cache = model.new_cache(batch_size=3)
    model(idx[:, :5], cache=cache)
    rows = torch.tensor([2, 0, 2])
    cache.select(rows)
    torch.testing.assert_close(
        model(idx[rows, 5:], cache=cache)[:, -1], model(idx[rows])[:, -1], rtol=1e-5, atol=1e-5
    )


def test_the_cache_refuses_more_positions_than_the_context():
    model = GPT(tiny_config()).eval()
    cache = model.new_cache(batch_size=1)
    model(torch.zeros(1, 16, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_clear_starts_the_cache_again_at_position_zero():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx = torch.randint(0, 50, (1, 7))
    cache = model.new_cache(batch_size=1)
    model(torch.randint(0, 50, (1, 12)), cache=cache)
    cache.clear()
    assert cache.length == 0
    torch.testing.assert_close(model(idx, cache=cache), model(idx), rtol=1e-5, atol=1e-5)
