"""Each switch of the model (model.pos_encoding=rope, norm, mlp, qk_norm, n_kv_head,
logit_softcap, tie_embeddings, embed_norm, zero_init_proj) against a slow reference written here."""

import math

import pytest
import torch
import torch.nn.functional as F

from tests.model.test_gpt import tiny_config
from tinylm.model import GPT
from tinylm.model.attention import CausalSelfAttention
from tinylm.model.mlp import MLP, ReLUSquared, SwiGLU
from tinylm.model.norms import RMSNorm, make_norm
from tinylm.model.rotary import rotary_tables, rotate
from tinylm.model.softcap import soft_cap


def test_the_rms_norms_gradient_matches_finite_differences():
    x = torch.randn(3, 4, 8, dtype=torch.float64, requires_grad=True)
    norm = RMSNorm(8, eps=1e-5).double()
    torch.nn.init.normal_(norm.weight)
    assert torch.autograd.gradcheck(norm, (x,), eps=1e-6, atol=1e-6)
    expected = F.rms_norm(x, (8,), norm.weight, 1e-5)  # PyTorch's, which a GPU runs
    torch.testing.assert_close(norm(x), expected)


def test_rotary_turns_each_pair_as_a_complex_number_times_its_phase():
    D, T, base = 8, 6, 10000.0
    x = torch.randn(2, T, 3, D)  # (B, T, heads, D)
    cos, sin = rotary_tables(T, D, base)
    # Pair i = channels (i, i + D/2) as the complex number x_i + j·x_{i+D/2}, times e^{j·m·θᵢ}.
    pairs = torch.complex(x[..., : D // 2], x[..., D // 2 :])  # (2, T, 3, D/2)
    theta = torch.tensor([base ** (-2 * i / D) for i in range(D // 2)])
    phase = torch.polar(torch.ones(T, D // 2), torch.arange(T)[:, None] * theta)  # (T, D/2)
    turned = pairs * phase[:, None]
    expected = torch.cat([turned.real, turned.imag], dim=-1)
    torch.testing.assert_close(rotate(x, cos[:, None], sin[:, None]), expected)


def test_the_rotations_written_out_gradient_is_the_turn_back_and_matches_autograds():
    D, T = 8, 6
    x = torch.randn(2, T, 3, D, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, T, 3, D, dtype=torch.float64)
    cos, sin = (table[:, None].double() for table in rotary_tables(T, D, 10000.0))
    swapped = torch.cat([x[..., D // 2 :], x[..., : D // 2]], dim=-1)
    (expected,) = torch.autograd.grad(x * cos + swapped * sin, x, grad)
    (written_out,) = torch.autograd.grad(rotate(x, cos, sin), x, grad)
    torch.testing.assert_close(written_out, expected)
    # A turn keeps lengths, so its gradient is the opposite turn: g·cos - (g₂, g₁)·sin.
    torch.testing.assert_close(written_out, rotate(grad, cos, -sin))
    assert torch.autograd.gradcheck(lambda x: rotate(x, cos, sin), (x,))


def test_rotary_scores_depend_on_the_distance_between_positions_only():
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    cos, sin = rotary_tables(64, 16, 10000.0)

    def score(m: int, n: int) -> torch.Tensor:
        return (
            rotate(q, cos[m : m + 1], sin[m : m + 1]) * rotate(k, cos[n : n + 1], sin[n : n + 1])
        ).sum()

    torch.testing.assert_close(score(7, 3), score(40, 36), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(score(7, 3), score(7, 5))


@pytest.mark.parametrize("weight", [True, False])
def test_rmsnorm_divides_by_the_root_mean_square(weight):
    norm = RMSNorm(8, eps=1e-5, weight=weight)
    if weight:
        torch.nn.init.normal_(norm.weight)
    x = torch.randn(3, 5, 8)
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-5)
    expected = expected * norm.weight if weight else expected
    torch.testing.assert_close(norm(x), expected)
    assert (len(list(norm.parameters())) == 1) == weight


def test_a_layernorm_without_weight_has_no_parameters_and_normalises():
    norm = make_norm(tiny_config(norm_weight=False), 8)
    x = torch.randn(4, 8)
    assert list(norm.parameters()) == []
    torch.testing.assert_close(
        norm(x),
        (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5),
    )


def test_relu2_and_swiglu_compute_their_formulas():
    x = torch.randn(2, 3, 16)
    relu2 = MLP(tiny_config(mlp="relu2"))
    fc, proj = relu2.fc, relu2.proj
    expected = (torch.clamp(x @ fc.weight.T + fc.bias, min=0) ** 2) @ proj.weight.T + proj.bias
    torch.testing.assert_close(relu2(x), expected)
    swiglu = SwiGLU(tiny_config(mlp="swiglu", bias=False))
    gate, up = x @ swiglu.gate.weight.T, x @ swiglu.up.weight.T
    expected = (gate / (1 + torch.exp(-gate)) * up) @ swiglu.proj.weight.T
    torch.testing.assert_close(swiglu(x), expected)


def test_relu2s_written_out_gradient_is_autograds_of_the_formula():
    x = torch.randn(4, 8, 32, requires_grad=True)
    grad = torch.randn(4, 8, 32)
    (expected,) = torch.autograd.grad(torch.clamp(x, min=0) ** 2, x, grad)
    (written_out,) = torch.autograd.grad(ReLUSquared()(x), x, grad)
    torch.testing.assert_close(written_out, expected, rtol=0, atol=0)
    double = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ReLUSquared(), (double,))


def test_soft_capped_logits_are_cap_tanh_of_the_uncapped_ones():
    torch.manual_seed(0)
    capped = GPT(tiny_config(logit_softcap=2.0)).eval()
    plain = GPT(tiny_config()).eval()
    plain.load_state_dict(capped.state_dict())
    idx = torch.randint(0, 50, (2, 12))
    torch.testing.assert_close(capped(idx), 2.0 * torch.tanh(plain(idx) / 2.0))
    assert capped(idx).abs().max() < 2.0


def test_the_soft_caps_written_out_gradient_is_autograds_of_the_formula():
    logits = (torch.randn(2, 5, 70, dtype=torch.float64) * 20).requires_grad_()
    grad = torch.randn(2, 5, 70, dtype=torch.float64)
    (expected,) = torch.autograd.grad(15.0 * torch.tanh(logits / 15.0), logits, grad)
    (written_out,) = torch.autograd.grad(soft_cap(logits, 15.0), logits, grad)
    torch.testing.assert_close(written_out, expected)
    assert torch.autograd.gradcheck(
        lambda x: soft_cap(x, 3.0), (logits[0, :2, :6].detach().div(4).requires_grad_(),)
    )


def reference_attention(layer: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention one query head at a time: head h reads key/value head
    h // (H / K), softmax(q·k/√D) over the positions up to its own."""
    B, T, C = x.shape
    H, K, D = layer.n_head, layer.n_kv_head, layer.head_dim
    q, k, v = layer.qkv(x).split([C, K * D, K * D], dim=-1)
    heads = []
    for h in range(H):
        g = h // (H // K)
        qh, kh, vh = (
            q[..., h * D : (h + 1) * D],
            k[..., g * D : (g + 1) * D],
            v[..., g * D : (g + 1) * D],
        )
        scores = qh @ kh.transpose(1, 2) / math.sqrt(D)  # (B, T, T)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        heads.append(F.softmax(scores, dim=-1) @ vh)
    return layer.proj(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("n_kv_head", [1, 2, 4])
def test_grouped_query_attention_matches_one_head_at_a_time(attention, n_kv_head):
    torch.manual_seed(0)
    layer = CausalSelfAttention(tiny_config(n_head=4, n_kv_head=n_kv_head, attention=attention))
    assert layer.qkv.out_features == 16 + 2 * n_kv_head * 4  # K·D keys and values
    x = torch.randn(2, 7, 16)
    torch.testing.assert_close(layer(x), reference_attention(layer, x), rtol=1e-5, atol=1e-5)


def test_as_many_key_value_heads_as_heads_is_plain_attention():
    torch.manual_seed(0)
    plain = GPT(tiny_config()).eval()
    grouped = GPT(tiny_config(n_kv_head=2)).eval()  # tiny_config has n_head=2
    grouped.load_state_dict(plain.state_dict())
    idx = torch.randint(0, 50, (2, 10))
    torch.testing.assert_close(grouped(idx), plain(idx), rtol=0, atol=0)


def test_untied_head_embed_norm_and_zero_init_build_what_they_say():
    model = GPT(tiny_config(tie_embeddings=False, embed_norm=True, zero_init_proj=True))
    tied = GPT(tiny_config())
    assert model.lm_head.weight is not model.tok_emb.weight
    assert model.num_parameters() - tied.num_parameters() == 64 * 16 + 2 * 16  # head, ln_emb
    assert model.num_parameters(include_embeddings=False) == tied.num_parameters(False) + 2 * 16
    projections = [p for name, p in model.named_parameters() if name.endswith("proj.weight")]
    assert len(projections) == 4 and all(torch.count_nonzero(p) == 0 for p in projections)
    # Every block starts as the identity: the logits are the head applied to the normed input.
    idx = torch.randint(0, 50, (1, 5))
    x = model.ln_emb(model.tok_emb(idx) + model.position_encoding(0, 5))
    expected = model.lm_head(model.ln_f(x))[..., :50]
    torch.testing.assert_close(model.eval()(idx), expected)


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_a_modern_model_never_lets_a_token_see_ahead_and_learns(attention):
    torch.manual_seed(0)
    config = tiny_config(
        pos_encoding="rope", norm="rmsnorm", norm_weight=False, mlp="relu2", qk_norm=True,
        embed_norm=True, tie_embeddings=False, logit_softcap=15.0, n_kv_head=1, bias=False,
        attention=attention,
    )  # fmt: skip
    model = GPT(config)
    idx = torch.randint(0, 50, (2, 16))
    changed = idx.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 50
    before, after = model(idx), model(changed)
    torch.testing.assert_close(before[:, :9], after[:, :9], rtol=0, atol=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = F.cross_entropy(model(idx[:, :-1]).flatten(0, 1), idx[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 1.0  # one batch memorised from ln 50 ≈ 3.9
