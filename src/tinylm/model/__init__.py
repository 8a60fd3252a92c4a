"""The GPT itself, written from its parts. Read them in this order:

config.py     GPTConfig: every number and switch that fixes the model (layers, heads, widths,
              positions, norms, MLP, …); conf/arch/ names recipes of switches.
norms.py      LayerNorm or RMSNorm: each position's vector rescaled.
rotary.py     Rotary positions: queries and keys turned by their position.
attention.py  CausalSelfAttention: each token gathers information from the tokens before it.
mlp.py        The MLP (GELU, ReLU² or SwiGLU): each position alone, widened and back.
block.py      Block: attention then an MLP, each added to the residual stream.
gpt.py        GPT: token ids (B, T) -> embeddings (B, T, C) -> blocks -> logits (B, T, V).
kv_cache.py   KVCache: keys and values kept between generation steps, so a step reads one token.
"""

from tinylm.model.config import GPTConfig
from tinylm.model.gpt import GPT

__all__ = ["GPT", "GPTConfig"]
