"""Choosing the next token from the model's logits: greedy, temperature, top-k, top-p.

Shapes: B sequences, V vocabulary.
"""

from __future__ import annotations

import torch

from tinylm.generation.settings import GenerationSettings


def keep_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the k-th largest of its row to -inf: (B, V) -> (B, V)."""
    kth_largest = logits.topk(min(k, logits.size(-1)), dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def keep_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the most likely tokens until together they hold probability p,
    -inf elsewhere: (B, V) -> (B, V). The most likely token is always kept."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V) each
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each
    drop_sorted = mass_before >= p  # the set already holds p without this token
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocab order
    return logits.masked_fill(drop, float("-inf"))


def choose_next_tokens(
    logits: torch.Tensor, settings: GenerationSettings, generator: torch.Generator | None
) -> torch.Tensor:
    """The next token of each sequence: logits (B, V) -> ids (B,).

    Filters apply in a fixed order: temperature first (it reshapes the distribution that the
    nucleus is measured on), then top-k, then top-p.
    """
    if settings.strategy == "greedy" or settings.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / settings.temperature
    if settings.top_k is not None:
        logits = keep_top_k(logits, settings.top_k)
    if settings.top_p < 1.0:
        logits = keep_top_p(logits, settings.top_p)
    probs = logits.softmax(dim=-1)  # (B, V), zero where filtered out
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
