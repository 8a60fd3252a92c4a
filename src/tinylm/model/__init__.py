"""The GPT itself, written from its parts. Read them in this order:

config.py     GPTConfig: every number that fixes the model's shape (layers, heads, widths).
attention.py  CausalSelfAttention: each token gathers information from the tokens before it.
block.py      Block: attention then an MLP, each added to the residual stream.
gpt.py        GPT: token ids (B, T) -> embeddings (B, T, C) -> blocks -> logits (B, T, V).
kv_cache.py   KVCache: keys and values kept between generation steps, so a step reads one token.
"""

from tinylm.model.config import GPTConfig
from tinylm.model.gpt import GPT

__all__ = ["GPT", "GPTConfig"]
