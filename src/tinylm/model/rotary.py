"""Rotary position embeddings (RoPE, Su et al. 2021): positions as rotations of queries and keys.

Learned or sinusoidal positions add a vector to each token's embedding. Rotary ones add nothing:
in every head, the D channels of a query or key form D/2 pairs, and pair i of the vector at
position m is turned by the angle m·θᵢ, with θᵢ = base^(-2i/D) (fast turns for the first pairs,
slow ones for the last). A turn by m·θ of the query and by n·θ of the key leaves their dot
product depending on m - n only: attention sees how far apart two tokens are, not where they sit.

Layout: pair i is channels (i, i + D/2) — the first half of the head with the second, as in
🤗 transformers' Llama — not neighbours (2i, 2i + 1).
Shapes: T positions, D head size; the tables are (block_size, D/2), computed once.
"""

from __future__ import annotations

import torch


def rotary_tables(block_size: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos(m·θᵢ) and sin(m·θᵢ) for every position m < block_size and pair i, (block_size, D/2)."""
    frequency = base ** -(torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (D/2,)
    angle = torch.outer(torch.arange(block_size, dtype=torch.float32), frequency)  # (T, D/2)
    return angle.cos(), angle.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turn each pair (x₁, x₂) of x (B, H, T, D) by its angle: (x₁cos - x₂sin, x₁sin + x₂cos).

    cos, sin (T, D/2) are the tables' rows for x's positions.
    """
    x1, x2 = x.chunk(2, dim=-1)  # (B, H, T, D/2) each: the halves that form the pairs
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # tables stay fp32; x may be bf16
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, H, T, D)
