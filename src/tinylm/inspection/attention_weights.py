"""The attention weights of every layer and head for a batch of token ids.

Shapes: L layers, B batch, H heads, T tokens. Weights are (L, B, H, T, T): entry
[l, b, h, i, j] is how much query i takes from key j in head h of layer l, softmax(q·k/√D)
with the causal mask, exactly as the model computes it (read from the probe
`blocks.<l>.attn.probe.weights`). Each row sums to 1 and is 0 above the diagonal.
"""

from __future__ import annotations

import torch

from tinylm.inspection.hooks import record_outputs
from tinylm.model import GPT


def attention_weights(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Token ids (B, T) -> the weights of every layer and head, (L, B, H, T, T)."""
    probes = {f"layer {i}": block.attn.probe.weights for i, block in enumerate(model.blocks)}
    _, recorded = record_outputs(model, idx, probes)
    return torch.stack([weights for _, weights in recorded])
