"""The shape trace: every stage of the forward pass, as the model computes it."""

import pytest
import torch

from tinylm.inspection import format_trace, trace_shapes
from tinylm.inspection.shape_trace import STAGES, letter_sizes, shape_in_letters
from tinylm.model import GPT, GPTConfig


def small_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    values = dict(vocab_size=70, block_size=16, n_layer=3, n_head=4, d_model=32, d_ff=48)
    return GPT(GPTConfig(**{**values, **overrides})).eval()


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "rope"])
def test_every_stage_has_the_shape_its_letters_say(pos_encoding):
    model = small_gpt(pos_encoding=pos_encoding)
    stages = trace_shapes(model, torch.randint(0, 70, (2, 5)))
    sizes = letter_sizes(model.config, batch=2, tokens=5)
    for stage in stages:
        letters, _ = STAGES[stage.generic_name]  # every stage of tinylm's GPT is described
        assert stage.shape == shape_in_letters(letters, sizes), stage.name
    # The learner's path through one block, in the order the model computes it.
    names = [stage.name for stage in stages]
    path = ["ids", "tok_emb", "drop", "blocks.0.ln_1", "blocks.0.attn.qkv",
            "blocks.0.attn.probe.q", "blocks.0.attn.probe.k", "blocks.0.attn.probe.v",
            "blocks.0.attn.probe.scores", "blocks.0.attn.probe.weights",
            "blocks.0.attn.probe.heads", "blocks.0.attn.proj", "blocks.0.attn",
            "blocks.0.mlp.fc", "blocks.0.mlp.proj", "blocks.0", "blocks.2", "ln_f", "lm_head",
            "logits"]  # fmt: skip
    assert [name for name in names if name in path] == path
    assert ("pos_emb" in names) == (pos_encoding == "learned")
    assert stages[-1].shape == (2, 5, 70) and stages[-2].shape == (2, 5, 128)  # V, padded V


@pytest.mark.parametrize("mlp", ["swiglu", "relu2"])
def test_every_stage_of_a_modern_grouped_query_model_has_the_shape_its_letters_say(mlp):
    model = small_gpt(pos_encoding="rope", norm="rmsnorm", qk_norm=True, embed_norm=True,
                      tie_embeddings=False, mlp=mlp, n_kv_head=2)  # fmt: skip
    stages = trace_shapes(model, torch.randint(0, 70, (2, 5)))
    sizes = letter_sizes(model.config, batch=2, tokens=5)
    for stage in stages:
        letters, _ = STAGES[stage.generic_name]
        assert stage.shape == shape_in_letters(letters, sizes), stage.name
    names = {stage.generic_name for stage in stages}
    assert {"ln_emb", "blocks.N.attn.q_norm", "blocks.N.attn.k_norm"} <= names
    assert ({"blocks.N.mlp.gate", "blocks.N.mlp.up"} <= names) == (mlp == "swiglu")
    assert dict((s.name, s.shape) for s in stages)["blocks.0.attn.qkv"] == (2, 5, 32 + 2 * 2 * 8)
    header = format_trace(stages, model.config).splitlines()[0]
    assert "H=4 heads of D=8, K=2 key/value heads, F=48" in header


def test_the_printed_trace_shows_the_first_block_and_sums_up_the_others():
    model = small_gpt()
    text = format_trace(trace_shapes(model, torch.randint(0, 70, (1, 6))), model.config)
    lines = text.splitlines()
    assert lines[0] == (
        "B=1 sequence, T=6 tokens, C=32 channels, H=4 heads of D=8, F=48, V=70 (V'=128)"
    )
    scores = next(line for line in lines if line.startswith("blocks.0.attn.probe.scores"))
    assert scores.split()[1:6] == ["(1,", "4,", "6,", "6)", "B,"]
    assert "blocks.1 … blocks.2: the same stages and shapes as blocks.0" in lines
    assert not any(line.startswith(("blocks.1.", "blocks.2.")) for line in lines)
    assert lines[-1].startswith("logits") and "(1, 6, 70)" in lines[-1]
