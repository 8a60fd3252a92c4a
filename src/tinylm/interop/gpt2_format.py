"""GPT-2's weights and config in tinylm's terms, and back: the one place that lines them up.

tinylm's GPT is GPT-2's architecture; only names and four layouts differ:
- GPT-2's attention and MLP layers are Conv1D, whose weight is (in, out): the transpose of
  nn.Linear's (out, in).
- tinylm pads its token embedding to a multiple of 64 rows (GPTConfig.padded_vocab_size); the
  padding never reaches the logits, so GPT-2's embedding holds only the vocab_size real rows, and
  padding read back from GPT-2 is zeros.
- A sinusoidal tinylm model has a fixed position table where GPT-2 learns one: the table is
  written as the learned table it equals.
- A bias-free tinylm model (bias=false) is written with zero biases, and LayerNorms without
  gains (norm_weight=false) with gains of one: they compute the same.
Weights use GPT2Model's names (as in OpenAI's GPT-2 checkpoints); the LM head is tied to `wte`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tinylm.errors import CheckpointError
from tinylm.model import GPT, GPTConfig

# tinylm's GELU -> GPT-2's activation_function; and every GPT-2 name for one of the two
# (gelu_new, GPT-2's own, writes the tanh formula out: ~1e-7 from torch's fused kernel).
GPT2_ACTIVATIONS = {"exact": "gelu", "tanh": "gelu_new"}
TINYLM_GELUS = {
    "gelu": "exact",
    "gelu_new": "tanh",
    "gelu_pytorch_tanh": "tanh",
    "gelu_fast": "tanh",
}
LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, which tinylm's LayerNorms use

# Per block: (tinylm module, GPT-2 module, whether GPT-2's weight is the transpose).
BLOCK_LAYERS = (
    ("ln_1", "ln_1", False),
    ("attn.qkv", "attn.c_attn", True),  # queries, keys, values side by side in both
    ("attn.proj", "attn.c_proj", True),
    ("ln_2", "ln_2", False),
    ("mlp.fc", "mlp.c_fc", True),
    ("mlp.proj", "mlp.c_proj", True),
)


@torch.no_grad()
def to_gpt2_weights(model: GPT) -> dict[str, torch.Tensor]:
    """GPT2Model's state dict holding `model`'s function: copies, contiguous, on the CPU."""
    config = model.config
    modules: dict[str, nn.Module] = {"ln_f": model.ln_f}
    for i, block in enumerate(model.blocks):
        for tinylm_name, gpt2_name, _ in BLOCK_LAYERS:
            modules[f"h.{i}.{gpt2_name}"] = block.get_submodule(tinylm_name)
    weights = {
        "wte.weight": model.tok_emb.weight[: config.vocab_size],  # (V, C): no padding rows
        "wpe.weight": model.position_encoding(0, config.block_size),  # (T, C)
    }
    for name, module in modules.items():
        # A LayerNorm without gains has gains of one; a Linear's weight and a LayerNorm's gains
        # have one row per entry of the bias.
        weight = module.weight if module.weight is not None else torch.ones(config.d_model)
        weights[f"{name}.weight"] = weight.t() if isinstance(module, nn.Linear) else weight
        zeros = weight.new_zeros(weight.shape[0])
        weights[f"{name}.bias"] = module.bias if module.bias is not None else zeros
    return {name: tensor.detach().cpu().contiguous().clone() for name, tensor in weights.items()}


@torch.no_grad()
def from_gpt2_weights(weights: dict[str, torch.Tensor], config: GPTConfig) -> dict:
    """The state dict of GPT(config) (learned positions, biases) from GPT2Model's weights."""
    wte = weights["wte.weight"]  # (V, C)
    padding = wte.new_zeros(config.padded_vocab_size - wte.shape[0], wte.shape[1])
    tok_emb = torch.cat([wte, padding])  # (padded V, C)
    state = {
        "tok_emb.weight": tok_emb,
        "lm_head.weight": tok_emb,  # tied: one tensor under two names
        "pos_emb.weight": weights["wpe.weight"],
        "ln_f.weight": weights["ln_f.weight"],
        "ln_f.bias": weights["ln_f.bias"],
    }
    for i in range(config.n_layer):
        for tinylm_name, gpt2_name, transposed in BLOCK_LAYERS:
            weight = weights[f"h.{i}.{gpt2_name}.weight"]
            state[f"blocks.{i}.{tinylm_name}.weight"] = weight.t() if transposed else weight
            state[f"blocks.{i}.{tinylm_name}.bias"] = weights[f"h.{i}.{gpt2_name}.bias"]
    return state


def gpt2_config_values(config: GPTConfig, eos_id: int) -> dict[str, Any]:
    """GPT2Config's arguments for a model of `config` whose tokenizer ends text with `eos_id`."""
    return {
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.d_model,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.d_ff,
        "activation_function": GPT2_ACTIVATIONS[config.gelu],
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "tie_word_embeddings": True,
    }


def gpt_config_from_gpt2(gpt2_config: Any, source: str) -> GPTConfig:
    """tinylm's config for a GPT2Config, or a CheckpointError naming what tinylm's GPT lacks.

    Dropout is left at 0: it is a training setting, which a run takes from its own model.dropout.
    """
    activation = gpt2_config.activation_function
    unsupported = {
        f"activation_function {activation!r} (tinylm has gelu and gelu_new)": (
            activation not in TINYLM_GELUS
        ),
        f"layer_norm_epsilon {gpt2_config.layer_norm_epsilon} (tinylm's is {LAYER_NORM_EPS})": (
            gpt2_config.layer_norm_epsilon != LAYER_NORM_EPS
        ),
        "unscaled attention (scale_attn_weights false)": not gpt2_config.scale_attn_weights,
        "scale_attn_by_inverse_layer_idx": gpt2_config.scale_attn_by_inverse_layer_idx,
        "cross-attention (add_cross_attention)": gpt2_config.add_cross_attention,
        "an LM head apart from the embedding (tie_word_embeddings false)": (
            not gpt2_config.tie_word_embeddings
        ),
    }
    differences = [what for what, applies in unsupported.items() if applies]
    if differences:
        raise CheckpointError(
            f"{source} is a GPT-2 with {', '.join(differences)}, which tinylm's GPT does not have."
        )
    return GPTConfig(
        vocab_size=gpt2_config.vocab_size,
        block_size=gpt2_config.n_positions,
        n_layer=gpt2_config.n_layer,
        n_head=gpt2_config.n_head,
        d_model=gpt2_config.n_embd,
        d_ff=gpt2_config.n_inner or 4 * gpt2_config.n_embd,  # GPT-2's default when unset
        gelu=TINYLM_GELUS[activation],
    )
