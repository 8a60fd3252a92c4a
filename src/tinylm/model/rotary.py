"""Rotary position embeddings (RoPE, Su et al. 2021): positions as rotations of queries and keys.

Learned or sinusoidal positions add a vector to each token's embedding. Rotary ones add nothing:
in every head, the D channels of a query or key form D/2 pairs, and pair i of the vector at
position m is turned by the angle m·θᵢ, with θᵢ = base^(-2i/D) (fast turns for the first pairs,
slow ones for the last). A turn by m·θ of the query and by n·θ of the key leaves their dot
product depending on m - n only: attention sees how far apart two tokens are, not where they sit.

Layout: pair i is channels (i, i + D/2) — the first half of the head with the second, as in
🤗 transformers' Llama — not neighbours (2i, 2i + 1).
Shapes: T positions, D head size; the tables are (block_size, D), computed once.
"""

from __future__ import annotations

import torch


def rotary_tables(block_size: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """For every position m < block_size, (cos m·θᵢ, cos m·θᵢ) and (-sin m·θᵢ, sin m·θᵢ) over
    the two halves of a head: (block_size, D) each, the form `rotate` multiplies by."""
    frequency = base ** -(torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (D/2,)
    angle = torch.outer(torch.arange(block_size, dtype=torch.float32), frequency)  # (T, D/2)
    return torch.cat([angle.cos(), angle.cos()], 1), torch.cat([-angle.sin(), angle.sin()], 1)


class RotationFunction(torch.autograd.Function):
    """x·cos + (x₂, x₁)·sin, and its gradient: the turn by the opposite angle, g·cos - (g₂, g₁)·sin.

    Each way allocates one tensor the size of x and adds the swapped halves into its halves in
    place: autograd's backward of the formula allocates four, and on a CPU a new
    activation-sized tensor can cost more than a pass over it.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        return turn(x, cos, sin, direction=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        cos, sin = ctx.saved_tensors
        return turn(grad, cos, sin, direction=-1), None, None


def turn(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, direction: int) -> torch.Tensor:
    """x·cos + direction·(x₂, x₁)·sin, halves (..., D/2) added in place into one new tensor."""
    half = x.size(-1) // 2
    turned = x * cos  # (B, T, heads, D)
    turned[..., :half].addcmul_(x[..., half:], sin[..., :half], value=direction)
    turned[..., half:].addcmul_(x[..., :half], sin[..., half:], value=direction)
    return turned


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turn each pair (x₁, x₂) of x (B, T, heads, D) by its angle: (x₁cos - x₂sin,
    x₂cos + x₁sin). cos, sin (T, 1, D) are the tables' rows for x's positions, for every head.

    Written as x·cos + (x₂, x₁)·sin: three operations, where the pairs spelled out take seven
    (the step time counts on a CPU), and a gradient written out (RotationFunction).
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # tables stay fp32; x may be bf16
    return RotationFunction.apply(x, cos, sin)  # (B, T, heads, D)
