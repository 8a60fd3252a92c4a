"""Llama, Qwen3 and NanoChat weights and configs in tinylm's terms, and back: the one place that
lines them up. All three are rotary, RMSNorm models; tinylm computes each exactly with the
switches interop.classes lists for it.

Layouts that differ from tinylm's:
- tinylm makes queries, keys and values in one Linear (qkv); they have q_proj, k_proj and
  v_proj: the rows of qkv split as [C, K·D, K·D].
- NanoChat turns each pair the other way round (its rotate_half is (x₂, -x₁), tinylm's and
  Llama's (-x₂, x₁)). Swapping the two halves of every query and key head turns one into the
  other and leaves each q·k unchanged (QK-norm without gains does not see the order), so
  NanoChat's q_proj and k_proj are tinylm's with the halves of each head's rows swapped.
- A norm without gains (model.norm_weight=false) is written as gains of one where the class
  has them (Llama, Qwen3); NanoChat has none.
- tinylm pads its embedding (and an untied head) to a multiple of 64 rows; theirs hold the
  vocab_size real rows, and padding read back is zeros.
"""

from __future__ import annotations

from typing import Any

import torch

from tinylm.errors import CheckpointError
from tinylm.model import GPT, GPTConfig

HIDDEN_ACT = {"llama": "silu", "qwen3": "silu", "nanochat": "relu2"}
MLP = {"llama": "swiglu", "qwen3": "swiglu", "nanochat": "relu2"}


def swap_head_halves(rows: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Rows (heads·D, ...) with the two halves of each head's D rows swapped (its own inverse)."""
    heads = rows.unflatten(0, (-1, 2, head_dim // 2))  # (heads, 2, D/2, ...)
    return heads.flip(1).flatten(0, 2)


def tensor_pairs(config: GPTConfig, model_type: str) -> list[tuple[str, str, slice | None]]:
    """(tinylm name, their name, the rows of the tinylm tensor) for every tensor of their model;
    None: all rows."""
    C, KD = config.d_model, config.kv_heads * config.head_dim
    V = config.vocab_size
    pairs = [("tok_emb.weight", "model.embed_tokens.weight", slice(0, V))]
    if not config.tie_embeddings:
        pairs.append(("lm_head.weight", "lm_head.weight", slice(0, V)))
    kinds = ["weight", "bias"] if config.bias else ["weight"]
    if model_type == "nanochat":
        mlp = [("mlp.fc", "mlp.fc1"), ("mlp.proj", "mlp.fc2")]
    else:
        mlp = [("mlp.gate", "mlp.gate_proj"), ("mlp.up", "mlp.up_proj"),
               ("mlp.proj", "mlp.down_proj")]  # fmt: skip
    for i in range(config.n_layer):
        ours, theirs = f"blocks.{i}", f"model.layers.{i}"
        for kind in kinds:
            for name, rows in (("q_proj", slice(0, C)), ("k_proj", slice(C, C + KD)),
                               ("v_proj", slice(C + KD, C + 2 * KD))):  # fmt: skip
                pairs.append((f"{ours}.attn.qkv.{kind}", f"{theirs}.self_attn.{name}.{kind}", rows))
            pairs.append((f"{ours}.attn.proj.{kind}", f"{theirs}.self_attn.o_proj.{kind}", None))
            pairs += [(f"{ours}.{a}.{kind}", f"{theirs}.{b}.{kind}", None) for a, b in mlp]
        if model_type != "nanochat":  # NanoChat's norms have no gains
            pairs.append((f"{ours}.ln_1.weight", f"{theirs}.input_layernorm.weight", None))
            pairs.append((f"{ours}.ln_2.weight", f"{theirs}.post_attention_layernorm.weight", None))
        if model_type == "qwen3":
            pairs.append((f"{ours}.attn.q_norm.weight", f"{theirs}.self_attn.q_norm.weight", None))
            pairs.append((f"{ours}.attn.k_norm.weight", f"{theirs}.self_attn.k_norm.weight", None))
    if model_type != "nanochat":
        pairs.append(("ln_f.weight", "model.norm.weight", None))
    return pairs


def is_turned_the_other_way(their_name: str, model_type: str) -> bool:
    return model_type == "nanochat" and their_name.split(".")[-2] in ("q_proj", "k_proj")


@torch.no_grad()
def to_llama_weights(model: GPT, model_type: str) -> dict[str, torch.Tensor]:
    """The state dict of their model holding `model`'s function: copies, contiguous, on the CPU.
    A tied head is theirs to tie: lm_head.weight is the embedding's rows."""
    config, state = model.config, model.state_dict()
    weights = {}
    for ours, theirs, rows in tensor_pairs(config, model_type):
        if ours in state:
            tensor = state[ours] if rows is None else state[ours][rows]
        else:  # a norm without gains: gains of one compute the same
            width = config.head_dim if "_norm." in ours else config.d_model
            tensor = torch.ones(width)
        if is_turned_the_other_way(theirs, model_type):
            tensor = swap_head_halves(tensor, config.head_dim)
        weights[theirs] = tensor
    if config.tie_embeddings:
        weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
    return {name: tensor.detach().cpu().contiguous().clone() for name, tensor in weights.items()}


@torch.no_grad()
def from_llama_weights(
    weights: dict[str, torch.Tensor], config: GPTConfig, model_type: str
) -> dict:
    """The state dict of GPT(config) from their model's weights."""
    pieces: dict[str, list[torch.Tensor]] = {}
    for ours, theirs, _ in tensor_pairs(config, model_type):
        tensor = weights[theirs]
        if is_turned_the_other_way(theirs, model_type):
            tensor = swap_head_halves(tensor, config.head_dim)
        pieces.setdefault(ours, []).append(tensor)  # q, k, v rows in order
    state = {name: torch.cat(parts) for name, parts in pieces.items()}
    for name in ("tok_emb.weight", "lm_head.weight"):
        if name in state:  # padding rows of zeros, never reaching the logits
            table = state[name]
            state[name] = torch.cat(
                [table, table.new_zeros(config.padded_vocab_size - len(table), table.shape[1])]
            )
    if config.tie_embeddings:
        state["lm_head.weight"] = state["tok_emb.weight"]
    return state


def llama_config_values(config: GPTConfig, eos_id: int, model_type: str) -> dict[str, Any]:
    """The config class's arguments for a model of `config`."""
    values = {
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head,
        "num_key_value_heads": config.kv_heads,
        "max_position_embeddings": config.block_size,
        "hidden_act": HIDDEN_ACT[model_type],
        "rms_norm_eps": config.norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_base},
        "attention_bias": config.bias,
        "attention_dropout": config.dropout,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
    }
    if model_type == "llama":
        values["mlp_bias"] = config.bias
    if model_type != "nanochat":
        values["head_dim"] = config.head_dim
    if model_type == "nanochat":
        values["final_logit_softcapping"] = config.logit_softcap
    return values


def gpt_config_from_llama(hf_config: Any, source: str) -> GPTConfig:
    """tinylm's config for a Llama, Qwen3 or NanoChat config, or a CheckpointError naming what
    tinylm's GPT lacks. Dropout is left at 0 (a training setting)."""
    model_type = hf_config.model_type
    heads, width = hf_config.num_attention_heads, hf_config.hidden_size
    head_dim = getattr(hf_config, "head_dim", None) or width // heads
    rope = hf_config.rope_parameters or {}
    attention_bias = hf_config.attention_bias
    unsupported = {
        f"hidden_act {hf_config.hidden_act!r}": hf_config.hidden_act != HIDDEN_ACT[model_type],
        f"rope_type {rope.get('rope_type')!r} (tinylm's rotary is the default)": (
            rope.get("rope_type", "default") != "default"
        ),
        f"head_dim {head_dim} apart from hidden_size / num_attention_heads": (
            head_dim * heads != width
        ),
        "attention_bias apart from mlp_bias": (
            model_type == "llama" and attention_bias != hf_config.mlp_bias
        ),
        "attention_bias (its MLP has none)": model_type != "llama" and attention_bias,
        "sliding-window attention": getattr(hf_config, "use_sliding_window", False),
    }
    differences = [what for what, applies in unsupported.items() if applies]
    if differences:
        raise CheckpointError(
            f"{source} is a {model_type} model with {', '.join(differences)}, which tinylm's "
            "GPT does not have."
        )
    kv_heads = hf_config.num_key_value_heads or heads
    return GPTConfig(
        vocab_size=hf_config.vocab_size,
        block_size=hf_config.max_position_embeddings,
        n_layer=hf_config.num_hidden_layers,
        n_head=heads,
        n_kv_head=None if kv_heads == heads else kv_heads,
        d_model=width,
        d_ff=hf_config.intermediate_size,
        bias=attention_bias,
        pos_encoding="rope",
        rope_base=float(rope.get("rope_theta", 10000.0)),
        norm="rmsnorm",
        norm_weight=model_type != "nanochat",
        norm_eps=hf_config.rms_norm_eps,
        mlp=MLP[model_type],
        qk_norm=model_type != "llama",
        embed_norm=model_type == "nanochat",
        tie_embeddings=hf_config.tie_word_embeddings,
        logit_softcap=getattr(hf_config, "final_logit_softcapping", None),
    )
