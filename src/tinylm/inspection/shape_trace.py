"""The shape of every intermediate tensor of a GPT's forward pass, for a learner's own prompt.

trace_shapes runs the model once with a forward hook on each of its modules (and on the
attention probes, which name q, k, v, the scores and the weights), so the shapes are those the
model really produces. format_trace prints them with the letters the code's comments use and
one line on what each stage is.

Letters: B sequences, T tokens, C = d_model, H heads, D = C / H head size, K key/value heads
(= H unless grouped-query), F = d_ff, V vocabulary, V' = V padded to a multiple of 64 (the
embedding's rows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from tinylm.inspection.hooks import record_outputs
from tinylm.model import GPT, GPTConfig

# What each stage is, by module name with the layer index as N: (shape in letters, meaning).
STAGES = {
    "ids": ("B, T", "token ids, one row per sequence"),
    "tok_emb": ("B, T, C", "token embeddings: the table's row for each id"),
    "pos_emb": ("T, C", "position embeddings: one learned vector per position"),
    "ln_emb": ("B, T, C", "the embeddings normalised (model.embed_norm)"),
    "drop": ("B, T, C", "token (+ position) embeddings: the residual stream starts"),
    "blocks.N.ln_1": ("B, T, C", "the norm (LayerNorm or RMSNorm) before attention"),
    "blocks.N.attn.qkv": ("B, T, C+2KD", "queries, keys and values of all heads in one matmul"),
    "blocks.N.attn.q_norm": ("B, T, H, D", "QK-norm: each head's queries normalised"),
    "blocks.N.attn.k_norm": ("B, T, K, D", "QK-norm: each key/value head's keys normalised"),
    "blocks.N.attn.probe.q": ("B, H, T, D", "queries in H heads of D channels (rope: turned)"),
    "blocks.N.attn.probe.k": ("B, H, T, D", "keys, one per query head (KV cache: all so far)"),
    "blocks.N.attn.probe.v": ("B, H, T, D", "values"),
    "blocks.N.attn.probe.scores": ("B, H, T, T", "q·k/√D for each query and key; -inf ahead"),
    "blocks.N.attn.probe.weights": ("B, H, T, T", "softmax of each row: the attention map"),
    "blocks.N.attn.probe.heads": ("B, H, T, D", "weights @ v: each head's mix of values"),
    "blocks.N.attn.proj": ("B, T, C", "the heads side by side (H·D = C), projected"),
    "blocks.N.attn": ("B, T, C", "attention's output, added to the residual stream"),
    "blocks.N.ln_2": ("B, T, C", "the norm before the MLP"),
    "blocks.N.mlp.fc": ("B, T, F", "each position widened to F channels"),
    "blocks.N.mlp.gate": ("B, T, F", "SwiGLU: widened, the gate (through SiLU)"),
    "blocks.N.mlp.up": ("B, T, F", "SwiGLU: widened, the values the gate lets through"),
    "blocks.N.mlp.act": ("B, T, F", "the non-linearity (GELU or ReLU²)"),
    "blocks.N.mlp.proj": ("B, T, C", "back to C channels"),
    "blocks.N.mlp": ("B, T, C", "the MLP's output, added to the residual stream"),
    "blocks.N": ("B, T, C", "the residual stream after the block"),
    "ln_f": ("B, T, C", "a last norm"),
    "lm_head": ("B, T, V'", "a logit for every row of the embedding table"),
    "logits": ("B, T, V", "next-token logits: the padding rows cut off"),
}
LAYER_INDEX = re.compile(r"^blocks\.(\d+)")


@dataclass(frozen=True)
class Stage:
    name: str  # the module's name in the model; "ids" and "logits" for its input and output
    shape: tuple[int, ...]

    @property
    def generic_name(self) -> str:
        """The name with the layer index as N: blocks.1.attn.qkv -> blocks.N.attn.qkv."""
        return LAYER_INDEX.sub("blocks.N", self.name)

    @property
    def layer(self) -> int | None:
        found = LAYER_INDEX.match(self.name)
        return int(found.group(1)) if found else None


def traced_modules(model: GPT) -> dict[str, nn.Module]:
    """Every module whose output is a stage: all but the containers that are never called and
    the dropouts, which return their input in eval mode. The dropout after the embeddings is
    kept: its output is the sum of token and position embeddings, which has no module of its
    own."""
    return {
        name: module
        for name, module in model.named_modules()
        if name
        and not isinstance(module, nn.ModuleList | nn.ModuleDict)
        and (name == "drop" or not isinstance(module, nn.Dropout))
    }


def trace_shapes(model: GPT, idx: torch.Tensor) -> list[Stage]:
    """Token ids (B, T) -> the shape of every stage of model(idx), in the order computed."""
    logits, recorded = record_outputs(model, idx, traced_modules(model))
    return [
        Stage("ids", tuple(idx.shape)),
        *(Stage(name, tuple(output.shape)) for name, output in recorded),
        Stage("logits", tuple(logits.shape)),
    ]


def letter_sizes(config: GPTConfig, batch: int, tokens: int) -> dict[str, int]:
    """The size each letter of STAGES stands for."""
    return {
        "B": batch, "T": tokens, "C": config.d_model, "H": config.n_head, "K": config.kv_heads,
        "D": config.head_dim, "C+2KD": config.d_model + 2 * config.kv_heads * config.head_dim,
        "F": config.d_ff,
        "V": config.vocab_size, "V'": config.padded_vocab_size,
    }  # fmt: skip


def shape_in_letters(letters: str, sizes: dict[str, int]) -> tuple[int, ...]:
    """Letters to sizes: "B, H, T, D" -> (1, 2, 5, 32), with the sizes of letter_sizes."""
    return tuple(sizes[letter] for letter in letters.split(", "))


def format_trace(stages: list[Stage], config: GPTConfig) -> str:
    """A table of the stages: name, shape, shape in letters, what the stage is. Blocks after
    the first are summed up in one line when their shapes are the first block's."""
    batch, tokens = stages[0].shape
    grouped = config.kv_heads != config.n_head
    header = (
        f"B={batch} {'sequence' if batch == 1 else 'sequences'}, T={tokens} tokens, "
        f"C={config.d_model} channels, H={config.n_head} heads of D={config.head_dim}, "
        f"{f'K={config.kv_heads} key/value heads, ' if grouped else ''}F={config.d_ff}, "
        f"V={config.vocab_size} (V'={config.padded_vocab_size})"
    )
    repeated = blocks_repeat_the_first(stages, config.n_layer)
    width = max(len(stage.name) for stage in stages)
    lines, summarised = [header], False
    for stage in stages:
        if repeated and stage.layer not in (None, 0):
            if not summarised:
                last = config.n_layer - 1
                later = "blocks.1" if last == 1 else f"blocks.1 … blocks.{last}"
                lines.append(f"{later}: the same stages and shapes as blocks.0")
                summarised = True
            continue
        letters, meaning = STAGES.get(stage.generic_name, ("", ""))
        shape = "(" + ", ".join(str(size) for size in stage.shape) + ")"
        lines.append(f"{stage.name:<{width}}  {shape:<16} {letters:<11} {meaning}".rstrip())
    return "\n".join(lines)


def blocks_repeat_the_first(stages: list[Stage], n_layer: int) -> bool:
    """Whether every block has the stages and shapes of block 0."""
    per_layer: list[list[tuple[str, tuple[int, ...]]]] = [[] for _ in range(n_layer)]
    for stage in stages:
        if stage.layer is not None:
            per_layer[stage.layer].append((stage.generic_name, stage.shape))
    return all(layer == per_layer[0] for layer in per_layer)
