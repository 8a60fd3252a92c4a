"""Logit soft-capping (Gemma 2, modded-nanogpt, nanochat): cap · tanh(logits / cap).

Every logit is squashed smoothly into (-cap, cap): near zero it is unchanged, far from zero it
saturates, so no single score can grow without bound and dominate the softmax early in training.
Shapes: (B, T, V) -> (B, T, V).
"""

from __future__ import annotations

import torch


class SoftCapFunction(torch.autograd.Function):
    """cap · tanh(x / cap), with its gradient (1 - tanh²(x / cap)) · g from the one tanh it keeps.

    The logits are the largest tensor of a small model with a large vocabulary (B·T·V: 8.4M
    numbers at model=small, context 256, batch 8, V 4,096), and every pass over them counts:
    autograd's backward of the formula makes three (the product, tanh's, the quotient); this one
    makes two.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, cap: float) -> torch.Tensor:
        squashed = (logits / cap).tanh_()  # (B, T, V), in (-1, 1)
        ctx.save_for_backward(squashed)
        return squashed * cap

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (squashed,) = ctx.saved_tensors
        product = grad * squashed  # (B, T, V), then overwritten by the gradient
        return torch.addcmul(grad, product, squashed, value=-1, out=product), None


def soft_cap(logits: torch.Tensor, cap: float) -> torch.Tensor:
    return SoftCapFunction.apply(logits, cap)
