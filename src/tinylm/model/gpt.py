"""The GPT: embeddings, a stack of blocks, a final norm and an LM head (tied to the embedding or
not).

Token ids (B, T) become vectors by looking up a row of the token embedding; a transformer has no
other sense of order, so positions enter either as a vector added to each token's (learned or
sinusoidal) or as a rotation of queries and keys inside attention (rope). n_layer blocks refine
those vectors; the LM head turns each position's final vector into one score (logit) per vocabulary
entry, the model's guess at the token that comes next. Training compares the logits at every
position with the token that actually followed (cross-entropy), so one sequence of T tokens
gives T lessons at once; the causal mask in attention keeps a position from reading its answer.

Shapes: B batch, T time (tokens), C = d_model, V = vocab_size, D = head size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tinylm.model.block import Block
from tinylm.model.config import GPTConfig
from tinylm.model.kv_cache import KVCache
from tinylm.model.norms import make_norm
from tinylm.model.rotary import rotary_tables
from tinylm.model.softcap import soft_cap

INIT_STD = 0.02


def sinusoidal_positions(block_size: int, d_model: int) -> torch.Tensor:
    """The fixed encoding of "Attention Is All You Need": sin on even channels, cos on odd ones."""
    position = torch.arange(block_size, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    frequency = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )  # (C/2,)
    table = torch.zeros(block_size, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
    return table  # (T, C)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.padded_vocab_size, config.d_model)
        if config.pos_encoding == "learned":
            self.pos_emb = nn.Embedding(config.block_size, config.d_model)
        elif config.pos_encoding == "sinusoidal":
            table = sinusoidal_positions(config.block_size, config.d_model)
            self.register_buffer("pos_table", table, persistent=False)
        else:  # rope: cos and sin of every position's angles, (block_size, D) each, once
            cos, sin = rotary_tables(config.block_size, config.head_dim, config.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.ln_emb = make_norm(config, config.d_model) if config.embed_norm else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = make_norm(config, config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.padded_vocab_size, bias=False)
        if config.tie_embeddings:
            # Weight tying: reading a token in and writing it out use one matrix (fewer
            # parameters, and better small GPT-2s).
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        # Each block adds its two residual projections to the stream; scaling them by
        # 1/√(2·n_layer) keeps the stream's variance from growing with depth (GPT-2). Zero
        # (model.zero_init_proj) makes every block start as the identity (modded-nanogpt).
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight"):
                std = 0.0 if config.zero_init_proj else INIT_STD / math.sqrt(2 * config.n_layer)
                nn.init.normal_(parameter, mean=0.0, std=std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)

    def forward(
        self, idx: torch.Tensor, cache: KVCache | None = None, last_only: bool = False
    ) -> torch.Tensor:
        """Token ids (B, T) -> next-token logits (B, T, V), or (B, 1, V) with `last_only`.

        With a `cache`, idx holds the tokens that follow the cached ones: they take the positions
        after them, attend to them, and are appended to the cache.
        `last_only` computes logits for the last position alone, all that generation needs;
        the LM head is the largest matmul of a small model.
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(
                f"Sequence of {start + T} tokens is longer than the context (block_size "
                f"{self.config.block_size})."
            )
        x = self.tok_emb(idx)  # (B, T, C)
        rotation = None
        if self.config.pos_encoding == "rope":  # cos, sin (T, 1, D) for positions start ..
            rotation = (
                self.rope_cos[start : start + T, None],
                self.rope_sin[start : start + T, None],
            )
        else:
            x = x + self.position_encoding(start, T)
        if self.ln_emb is not None:
            x = self.ln_emb(x)
        x = self.drop(x)
        layer_caches = cache.layers if cache is not None else [None] * len(self.blocks)
        for block, layer_cache in zip(self.blocks, layer_caches, strict=True):
            x = block(x, layer_cache, rotation)
        if last_only:
            x = x[:, -1:]  # (B, 1, C)
        logits = self.lm_head(self.ln_f(x))  # (B, T or 1, padded V)
        # The padding rows exist only for speed: cutting them off here means they can never be
        # sampled and never take probability mass.
        logits = logits[..., : self.config.vocab_size]  # (B, T or 1, V)
        if self.config.logit_softcap is not None:  # squashed smoothly into (-cap, cap)
            logits = soft_cap(logits, self.config.logit_softcap)
        return logits

    def position_encoding(self, start: int, T: int) -> torch.Tensor:
        """The added encodings of positions start .. start + T - 1, (T, C) (learned, sinusoidal)."""
        if self.config.pos_encoding == "learned":
            positions = torch.arange(start, start + T, device=self.tok_emb.weight.device)
            return self.pos_emb(positions)  # (T, C)
        return self.pos_table[start : start + T]

    def new_cache(self, batch_size: int) -> KVCache:
        """An empty KV cache for `batch_size` sequences, on this model's device and dtype."""
        weight = self.tok_emb.weight
        return KVCache(batch_size, self.config, weight.device, weight.dtype)

    def flops_per_token(self) -> int:
        """Training FLOPs per token, forward and backward (PaLM, appendix B): 6 per weight of
        every matmul — the blocks and the LM head (a token's embedding lookup costs none) —
        and 12·layers·d_model·context for the attention scores and their weighted sums."""
        config = self.config
        matmul_weights = (
            self.num_parameters(include_embeddings=False)
            + config.padded_vocab_size * config.d_model
        )
        return 6 * matmul_weights + 12 * config.n_layer * config.d_model * config.block_size

    def num_parameters(self, include_embeddings: bool = True) -> int:
        """Trainable parameters, a tied LM head counted once.

        Without embeddings means without the token and learned position tables and an untied
        head: the number that sets the model's compute per token (Kaplan et al. 2020).
        """
        total = sum(p.numel() for p in self.parameters())  # parameters() yields tied ones once
        if not include_embeddings:
            total -= self.tok_emb.weight.numel()
            if self.config.pos_encoding == "learned":
                total -= self.pos_emb.weight.numel()
            if not self.config.tie_embeddings:
                total -= self.lm_head.weight.numel()
        return total
